#!/usr/bin/env python3
"""Check with Pillow that a PNG written by kiln carries its "parameters" text
the way AUTOMATIC1111's PNG Info reads it (Image.open(f).info["parameters"]).

usage: python3 tools/image_io/check_png_parameters.py OUT.png EXPECTED.txt
(test_image_io writes build/test-tmp/params_out.png from
tests/data/images/params.txt). Creates tools/.venv with Pillow on first use.
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV = os.path.join(ROOT, "tools", ".venv")

if os.environ.get("KILN_CHECK_VENV") != "1":
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
    subprocess.check_call([py, "-m", "pip", "install", "-q", "Pillow==11.0.0"])
    env = dict(os.environ, KILN_CHECK_VENV="1")
    sys.exit(subprocess.call([py, os.path.abspath(__file__)] + sys.argv[1:], env=env))

from PIL import Image  # noqa: E402

png, expected = sys.argv[1], sys.argv[2]
with Image.open(png) as im:
    im.load()
    got = im.info.get("parameters")
want = open(expected, encoding="utf-8").read()
if got != want:
    print(f"MISMATCH: Pillow reads {got!r}, expected {want!r}")
    sys.exit(1)
print(f"ok: Pillow reads the parameters chunk of {png} ({len(got)} characters), {im.size[0]}x{im.size[1]} {im.mode}")
