# tests/cli_lib.sh - the small harness every tests/cli/*.sh script sources
# (it lives outside tests/cli/ so that CMake's glob does not run it as a
# test). A script counts passes and failures with these functions and ends
# with `finish`, whose exit status ctest reads (0 = all passed).
#
#   . "$(dirname "$0")/../cli_lib.sh"
#   expect "help" 0 "usage: kiln x" -- "$kiln" x --help
#   check "file written" [ -s "$tmp/out" ]
#   finish

passed=0 # checks that held
failed=0 # checks that did not (each printed with FAIL)

# pass: count one check that held.
pass() { passed=$((passed + 1)); }

# fail MESSAGE...: count one failed check and say which.
fail() { failed=$((failed + 1)); echo "FAIL $*"; }

# expect NAME WANT_RC PATTERN -- CMD...: run CMD; pass when it exits with
# WANT_RC and its stdout+stderr contain PATTERN (grep -E).
expect() {
  local name=$1 want=$2 pattern=$3
  shift 4
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" -eq "$want" ] && grep -qE -- "$pattern" <<<"$out"; then
    pass
  else
    fail "$name: rc=$rc (want $want), pattern '$pattern' in:"
    echo "$out" | head -20
  fi
}

# check NAME CMD...: pass when CMD succeeds (e.g. `check "x" [ -s f ]`).
check() {
  local name=$1
  shift
  if "$@"; then pass; else fail "$name"; fi
}

# check_rc NAME RC: pass when RC (usually $? of the previous command) is 0.
check_rc() { if [ "$2" -eq 0 ]; then pass; else fail "$1"; fi; }

# finish: print the totals and return 0 only when nothing failed.
finish() {
  echo "$(basename "$0"): $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
