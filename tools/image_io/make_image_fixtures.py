#!/usr/bin/env python3
"""Make the tiny image fixtures of tests/unit/test_image_io.c with Pillow.

Each input image is written by Pillow and decoded by Pillow; the decoded
pixels (Pillow's tobytes() after convert("RGB"/"RGBA"/"L")) are the goldens
kiln's decoders are compared with. PNG text chunks are written by Pillow's
PngInfo the way AUTOMATIC1111 writes its "parameters" chunk.

Run from anywhere: python3 tools/image_io/make_image_fixtures.py
It creates tools/.venv (git-ignored) with Pillow on first use.
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV = os.path.join(ROOT, "tools", ".venv")
OUT = os.path.join(ROOT, "tests", "data", "images")

if os.environ.get("KILN_FIXTURE_VENV") != "1":
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
    subprocess.check_call([py, "-m", "pip", "install", "-q", "Pillow==11.0.0"])
    env = dict(os.environ, KILN_FIXTURE_VENV="1")
    sys.exit(subprocess.call([py, os.path.abspath(__file__)], env=env))

from PIL import Image, PngImagePlugin  # noqa: E402


def pattern(w, h, mode):
    img = Image.new("RGBA", (w, h))
    for y in range(h):
        for x in range(w):
            a = 0 if (x + y) % 3 == 0 else (x * 40 + y * 9) % 256
            img.putpixel((x, y), ((x * 37 + y * 11) % 256, (x * 5 + y * 71) % 256, (x * y * 13) % 256, a))
    return img if mode == "RGBA" else img.convert(mode)


def save_golden(name, img, mode):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(Image.open(img).convert(mode).tobytes())


os.makedirs(OUT, exist_ok=True)
p = lambda n: os.path.join(OUT, n)  # noqa: E731

pattern(7, 5, "RGB").save(p("rgb.png"))
save_golden("rgb.png.rgb", p("rgb.png"), "RGB")
pattern(6, 4, "RGBA").save(p("rgba.png"))
save_golden("rgba.png.rgba", p("rgba.png"), "RGBA")
pattern(5, 3, "L").save(p("grey.png"))
save_golden("grey.png.rgb", p("grey.png"), "RGB")
# A palette image with a transparent index (tRNS).
pal = pattern(8, 4, "RGB").quantize(colors=5)
pal.info["transparency"] = 0
pal.save(p("palette.png"), transparency=0)
save_golden("palette.png.rgba", p("palette.png"), "RGBA")
# JPEG (4:2:0) and its decode by Pillow's libjpeg-turbo.
pattern(16, 12, "RGB").save(p("photo.jpg"), quality=90)
save_golden("photo.jpg.rgb", p("photo.jpg"), "RGB")
save_golden("photo.jpg.l", p("photo.jpg"), "L")
# WebP lossless with alpha (exact), and lossy.
pattern(6, 4, "RGBA").save(p("lossless.webp"), lossless=True, exact=True)
save_golden("lossless.webp.rgba", p("lossless.webp"), "RGBA")
pattern(16, 12, "RGB").save(p("lossy.webp"), quality=80)
save_golden("lossy.webp.rgb", p("lossy.webp"), "RGB")

# A1111-style parameters: tEXt (ASCII), iTXt (non-Latin-1) and zTXt.
PARAMS = ("a lighthouse at dusk\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, Schedule type: Karras, "
          "CFG scale: 7, Seed: 42, Size: 512x512, Model: sd15")
info = PngImagePlugin.PngInfo()
info.add_text("parameters", PARAMS)
pattern(2, 2, "RGB").save(p("params_text.png"), pnginfo=info)
info = PngImagePlugin.PngInfo()
info.add_text("parameters", "灯台 caf\u00e9 \u2603")
pattern(2, 2, "RGB").save(p("params_itxt.png"), pnginfo=info)
info = PngImagePlugin.PngInfo()
info.add_text("parameters", "caf\u00e9 " * 40, zip=True)
pattern(2, 2, "RGB").save(p("params_ztxt.png"), pnginfo=info)
with open(p("params.txt"), "w", encoding="utf-8") as f:
    f.write(PARAMS)
print("fixtures written to", OUT)
