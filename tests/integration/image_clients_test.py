"""Real image clients against a running `kiln serve` on the tiny SD model.

webuiapi (the AUTOMATIC1111 Python client) runs txt2img (one image and a
batch), img2img (same size, resized, inpainting with a mask and with the
mask inverted) and the side routes; the openai client runs an images
generation (PNG and JPEG) and edits (with an OpenAI-convention mask and
without). Responses are checked field by field; the same settings through
both clients must give the same PNG bytes; masks are checked pixel by pixel
so that a mask read inverted fails. Usage:

    python image_clients_test.py PORT API_KEY

Exit code 0 when every check passes.
"""
import base64
import io
import sys

import openai
import webuiapi
from openai import OpenAI
from PIL import Image

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL", what)


def halves_diff(a, b):
    """Pixels that differ between two RGB images, (left half, right half)."""
    a, b = a.convert("RGB"), b.convert("RGB")
    w, h = a.size
    left = right = 0
    pa, pb = a.load(), b.load()
    for y in range(h):
        for x in range(w):
            if pa[x, y] != pb[x, y]:
                if x < w // 2:
                    left += 1
                else:
                    right += 1
    return left, right


def png_bytes(img):
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_webuiapi(port, key):
    api = webuiapi.WebUIApi(host="127.0.0.1", port=port, sampler="Euler", steps=2)
    api.session.headers["Authorization"] = f"Bearer {key}"

    models = api.get_sd_models()
    check(len(models) == 1 and models[0]["model_name"] == "tiny-sd15", f"sd-models: {models}")
    names = [s["name"] for s in api.get_samplers()]
    check("Euler a" in names and "DPM++ 2M" in names, f"samplers: {names}")
    opts = api.get_options()
    check(opts.get("sd_model_checkpoint") == "tiny-sd15", f"options: {opts}")
    api.set_options({"sd_model_checkpoint": "tiny-sd15"})
    prog = api.get_progress()
    check(set(["progress", "eta_relative", "state"]) <= set(prog), f"progress keys: {prog}")

    r = api.txt2img(prompt="a red fox", negative_prompt="blurry", seed=11, cfg_scale=6, width=64, height=64,
                    steps=2, sampler_name="Euler")
    check(len(r.images) == 1 and r.image.size == (64, 64), f"txt2img image: {r.images}")
    check(r.info["seed"] == 11 and r.info["all_seeds"] == [11], f"txt2img seeds: {r.info}")
    check(r.info["width"] == 64 and r.info["height"] == 64 and r.info["steps"] == 2, f"txt2img info: {r.info}")
    check(r.info["prompt"] == "a red fox" and r.info["negative_prompt"] == "blurry", "txt2img prompts")
    check(r.info["sampler_name"] in ("euler", "Euler"), f"txt2img sampler: {r.info['sampler_name']}")
    infotext = r.info["infotexts"][0]
    check("Seed: 11" in infotext and "Steps: 2" in infotext and "Size: 64x64" in infotext, f"infotext: {infotext}")
    check(r.image.info.get("parameters") == infotext, "the PNG's parameters chunk is the infotext")
    check(r.parameters["steps"] == 2 and r.parameters["prompt"] == "a red fox", f"parameters: {r.parameters}")
    fox = r.image

    pi = api.png_info(fox)
    check("Seed: 11" in pi.info, f"png-info: {pi.info}")

    b = api.txt2img(prompt="two", seed=20, batch_size=2, width=64, height=64, steps=1)
    check(len(b.images) == 2 and b.info["all_seeds"] == [20, 21], f"batch: {b.info.get('all_seeds')}")

    i2i = api.img2img(images=[fox], prompt="a blue fox", denoising_strength=0.5, seed=3, width=64, height=64,
                      steps=2)
    check(i2i.image.size == (64, 64), f"img2img size {i2i.image.size}")
    check(abs(i2i.info["denoising_strength"] - 0.5) < 1e-6, f"img2img strength {i2i.info}")
    check(i2i.parameters.get("init_images") is None, "init_images not echoed")
    big = api.img2img(images=[fox], prompt="a blue fox", denoising_strength=0.5, seed=3, width=128, height=128,
                      steps=1)
    check(big.image.size == (128, 128), f"img2img resized to the size asked: {big.image.size}")

    # A1111's mask: white repaints, black keeps; inverted, the reverse.
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    inp = api.img2img(images=[fox], mask_image=mask, prompt="a cat", denoising_strength=1.0, seed=5, width=64,
                      height=64, steps=2)
    left, right = halves_diff(inp.image, fox)
    check(right == 0 and left > 500, f"inpaint keeps the black half (changed left {left}, right {right})")
    inv = api.img2img(images=[fox], mask_image=mask, inpainting_mask_invert=1, prompt="a cat",
                      denoising_strength=1.0, seed=5, width=64, height=64, steps=2)
    left, right = halves_diff(inv.image, fox)
    check(left == 0 and right > 500, f"inverted inpaint keeps the white half (changed left {left}, right {right})")
    check(api.interrupt() == {}, "interrupt answers {}")
    return base64.b64decode(r.json["images"][0])


def test_openai(port, key, fox_png):
    client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0, timeout=60)
    model = client.models.list().data[0].id
    check(model == "tiny-sd15", f"model id {model}")
    gen = client.images.generate(model=model, prompt="a red fox", n=1, size="64x64", response_format="b64_json",
                                 extra_body={"steps": 2, "seed": 11, "negative_prompt": "blurry",
                                             "guidance_scale": 6, "sampler": "Euler"})
    check(gen.created > 0 and len(gen.data) == 1, f"generate: {gen}")
    png = base64.b64decode(gen.data[0].b64_json)
    img = Image.open(io.BytesIO(png))
    check(img.format == "PNG" and img.size == (64, 64), f"generate image {img.format} {img.size}")
    check(png == fox_png, "openai generation equals A1111 txt2img with the same settings, byte for byte")
    check(getattr(gen, "output_format", "png") == "png" and getattr(gen, "size", "64x64") == "64x64",
          "generate output_format and size")

    jpg = client.images.generate(model=model, prompt="a red fox", n=2, size="64x64", output_format="jpeg",
                                 extra_body={"steps": 1, "seed": 4})
    check(len(jpg.data) == 2, "two images")
    for d in jpg.data:
        im = Image.open(io.BytesIO(base64.b64decode(d.b64_json)))
        check(im.format == "JPEG" and im.size == (64, 64), f"jpeg output {im.format} {im.size}")

    # OpenAI's mask: fully transparent pixels (left half) are the area to edit.
    fox = Image.open(io.BytesIO(fox_png))
    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 32, 64))
    ed = client.images.edit(model=model, image=("fox.png", fox_png, "image/png"),
                            mask=("mask.png", png_bytes(mask), "image/png"), prompt="a green cat", n=1,
                            size="64x64", extra_body={"steps": 2, "seed": 9})
    out = Image.open(io.BytesIO(base64.b64decode(ed.data[0].b64_json)))
    left, right = halves_diff(out, fox)
    check(out.size == (64, 64), f"edit size {out.size}")
    check(right == 0 and left > 500, f"edit keeps the opaque half (changed left {left}, right {right})")

    whole = client.images.edit(model=model, image=("fox.png", fox_png, "image/png"), prompt="a fox at night",
                               extra_body={"steps": 2, "seed": 1})
    out = Image.open(io.BytesIO(base64.b64decode(whole.data[0].b64_json)))
    left, right = halves_diff(out, fox)
    check(out.size == (64, 64) and left > 0 and right > 0, "an edit without a mask transforms the whole image")

    try:
        client.images.generate(model=model, prompt="x", size="65x65")
        check(False, "size 65x65 must be refused")
    except openai.BadRequestError as e:
        check(e.status_code == 400 and "size" in str(e), f"bad size error: {e}")


def main():
    port, key = int(sys.argv[1]), sys.argv[2]
    fox_png = test_webuiapi(port, key)
    test_openai(port, key, fox_png)
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("image clients: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
