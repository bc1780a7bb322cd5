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

# bench_stats UNITS REPS <<<JSON: recompute each test's mean and sample
# standard deviation from its "samples_s" in a `kiln bench` or `kiln
# bench-image` JSON report and compare them with the reported ones
# (avg_ts/avg_ms/mean_s, stddev_*; within 1e-6 of the mean). UNITS says
# what a sample counts as: "tokens", N / seconds (N from the test name, as
# in pp512) or milliseconds for a ttft test; "seconds", the seconds. Prints
# "NAME:ok " per test, or NAME:bad(...) when the numbers or the count of
# samples (REPS) differ.
bench_stats() {
  awk -v units="$1" -v reps="$2" '
    /"test":/ {
      split($0, a, "\""); name = a[4]; n = name; sub(/^[a-z]+/, "", n)
      ms = units == "tokens" && name ~ /^ttft/; k = 0
    }
    /"samples_s": \[/ { inside = 1; next }
    inside && /\]/ { inside = 0; next }
    inside { gsub(/[ ,]/, ""); v[++k] = units == "seconds" ? $0 + 0 : ms ? $0 * 1000 : n / $0 }
    /"(avg_(ts|ms)|mean_s)":/ { gsub(/[ ,]/, ""); split($0, a, ":"); avg = a[2] }
    /"stddev_(ts|ms|s)":/ {
      gsub(/[ ,]/, ""); split($0, a, ":"); sd = a[2]
      m = 0; for (i = 1; i <= k; i++) m += v[i]; m /= k
      s = 0; for (i = 1; i <= k; i++) s += (v[i] - m) ^ 2; s = sqrt(s / (k - 1))
      ok = (k == reps) && (m - avg) ^ 2 <= (1e-6 * m) ^ 2 && (s - sd) ^ 2 <= (1e-6 * m) ^ 2
      printf "%s:%s ", name, ok ? "ok" : "bad(" k " samples, mean " m " vs " avg ", sd " s " vs " sd ")"
    }'
}

# finish: print the totals and return 0 only when nothing failed.
finish() {
  echo "$(basename "$0"): $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
