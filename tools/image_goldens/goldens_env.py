"""Shared by the image golden scripts: run inside tools/image_goldens/.venv.

The venv is made from Debian's /usr/bin/python3 with --system-site-packages,
so that it sees Debian's python3-torch (1.13, CPU): PyPI's torch wheels are
huge and would not be the torch that the RNG goldens promise to match.
requirements.txt is installed normally; requirements-nodeps.txt with
--no-deps (k-diffusion and clip-anytorch declare dependencies, such as
torch>=2 and wandb, that the parts used here do not need).
"""

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VENV = HERE / ".venv"


def ensure_venv(script: str) -> None:
    """Re-exec `script` inside the venv, creating and filling it if needed."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(VENV)],
                       check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run(pip + ["-r", str(HERE / "requirements.txt")], check=True)
    subprocess.run(pip + ["--no-deps", "-r", str(HERE / "requirements-nodeps.txt")], check=True)
    os.execv(str(python), [str(python), script, *sys.argv[1:]])
