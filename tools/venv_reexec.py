"""Run a tools/ script inside its own virtual environment.

Every golden maker and fixture writer needs packages from PyPI (pinned in a
requirements file) that the build itself never needs. A script calls
run_in_venv() before importing them: when it is not yet running inside the
venv, the venv is created (python3 -m venv) and filled, and the script is
started again inside it with the same arguments. The pins are installed when
the venv is made and again whenever a requirements file (or the package
list) changes, which a stamp file inside the venv records.
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path


def _pins_digest(requirements, packages) -> str:
    """A digest of what should be installed: the files' text and the packages."""
    h = hashlib.sha256()
    for req in requirements:
        h.update(Path(req).read_bytes())
    for pkg in packages:
        h.update(pkg.encode() + b"\n")
    return h.hexdigest()


def run_in_venv(venv, requirements=(), packages=()) -> None:
    """Re-exec the running script inside `venv` with `requirements` (files)
    and `packages` (pip specifiers) installed; returns at once when already
    inside it."""
    venv = Path(venv)
    if Path(sys.prefix).resolve() == venv.resolve():
        return
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    stamp = venv / "kiln-pins.sha256"
    digest = _pins_digest(requirements, packages)
    if not stamp.exists() or stamp.read_text() != digest:
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        for req in requirements:
            subprocess.run(pip + ["-r", str(req)], check=True)
        if packages:
            subprocess.run(pip + list(packages), check=True)
        stamp.write_text(digest)
    script = os.path.abspath(sys.argv[0])
    os.execv(str(python), [str(python), script, *sys.argv[1:]])
