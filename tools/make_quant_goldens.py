#!/usr/bin/env python3
"""Make the golden files for kiln's tensor element types (tests/unit/test_quant.c).

The expected values come from the `gguf` Python package (gguf-py, the GGUF
reference in the llama.cpp project), whose numpy code implements the published
block formats independently of kiln's C code:

  * dequantization: random but valid blocks of every GGUF quant type are
    decoded with gguf.quants.dequantize;
  * quantization: random f32 rows are encoded with gguf.quants.quantize for
    Q4_0 and Q8_0 (bit-exact with ggml's reference quantizers), BF16 (ggml's
    rounding), and with numpy's float16 cast for F16.

Two types have no decoder in gguf-py: Q8_1 (gguf-py also lists a stale 40-byte
size for it; ggml's block is 36 bytes: f16 d, f16 s, 32 int8) and Q8_K (f32 d,
256 int8, 16 int16 bsums). Their expected values are computed below straight
from the published layout (x = d * q), which is one multiply per value.

Usage: python3 tools/make_quant_goldens.py
It creates tools/.venv (python3 -m venv) with tools/requirements-goldens.txt
on first use, re-runs itself inside it, and rewrites tests/data/quant/. The
output is deterministic (fixed seed), so a rerun leaves git clean unless the
reference changed.

Files written (all little-endian, no headers; counts follow from sizes):
  dequant_<T>.bin   raw bytes of N blocks of type T (F16/BF16: N 16-bit values)
  dequant_<T>.f32   the N * block_elems float32 values gguf-py decodes them to
  quantize_<T>.f32  float32 input values
  quantize_<T>.bin  the bytes gguf-py (numpy for F16) encodes them to
  MANIFEST.txt      versions used, and the size and sha256 of every file
"""

import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venv_reexec import run_in_venv  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "tools" / ".venv"
REQUIREMENTS = ROOT / "tools" / "requirements-goldens.txt"
OUT = ROOT / "tests" / "data" / "quant"




run_in_venv(VENV, [REQUIREMENTS])

import gguf  # noqa: E402  (only importable inside the venv)
import numpy as np  # noqa: E402
from gguf import GGMLQuantizationType as T  # noqa: E402

rng = np.random.default_rng(0x6B696C6E)  # "kiln"

# Per type: bytes per block (ggml's sizes) and byte offsets of the f16 scale
# fields (d, dmin, m, s) that must hold finite values for a valid block.
LAYOUT = {
    "Q4_0": (18, [0]),
    "Q4_1": (20, [0, 2]),
    "Q5_0": (22, [0]),
    "Q5_1": (24, [0, 2]),
    "Q8_0": (34, [0]),
    "Q8_1": (36, [0, 2]),
    "Q2_K": (84, [80, 82]),
    "Q3_K": (110, [108]),
    "Q4_K": (144, [0, 2]),
    "Q5_K": (176, [0, 2]),
    "Q6_K": (210, [208]),
    "Q8_K": (292, []),  # f32 d at offset 0, handled separately
}


def scale_values(n: int) -> np.ndarray:
    """n finite f16 scales of moderate magnitude (2^-12 .. 2^2), random sign;
    the last one is an f16 subnormal, to exercise that conversion too."""
    mag = np.exp2(rng.uniform(-12.0, 2.0, size=n))
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    vals = (sign * mag).astype(np.float16)
    vals[-1] = np.float16(3.0 * 2.0 ** -20)  # subnormal (below 2^-14)
    return vals


def write(name: str, data: bytes) -> None:
    (OUT / name).write_bytes(data)


def dequant_goldens() -> None:
    for tname, (size, f16_offsets) in LAYOUT.items():
        qk = 256 if tname.endswith("_K") else 32
        assert size == gguf.GGML_QUANT_SIZES[T[tname]][1] or tname == "Q8_1"
        n_blocks = 4 if qk == 256 else 8
        raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
        for off in f16_offsets:
            raw[:, off:off + 2] = scale_values(n_blocks).view(np.uint8).reshape(n_blocks, 2)
        if tname == "Q8_K":
            d = (np.exp2(rng.uniform(-12.0, 2.0, size=n_blocks))
                 * np.where(rng.random(n_blocks) < 0.5, -1.0, 1.0)).astype(np.float32)
            raw[:, 0:4] = d.view(np.uint8).reshape(n_blocks, 4)
            qs = raw[:, 4:260].view(np.int8).astype(np.int16)
            bsums = qs.reshape(n_blocks, 16, 16).sum(axis=-1).astype("<i2")
            raw[:, 260:292] = bsums.view(np.uint8).reshape(n_blocks, 32)
            expected = (d.reshape(-1, 1) * raw[:, 4:260].view(np.int8).astype(np.float32))
        elif tname == "Q8_1":
            d = raw[:, 0:2].copy().view(np.float16).astype(np.float32)
            expected = d * raw[:, 4:36].view(np.int8).astype(np.float32)
        else:
            expected = gguf.quants.dequantize(raw, T[tname])
        expected = np.ascontiguousarray(expected, dtype="<f4").reshape(-1)
        assert expected.size == n_blocks * qk and np.all(np.isfinite(expected))
        write(f"dequant_{tname}.bin", raw.tobytes())
        write(f"dequant_{tname}.f32", expected.tobytes())

    # F16: every class of binary16 value, then random bit patterns.
    special = np.array([0x0000, 0x8000, 0x0001, 0x8001, 0x0200, 0x03FF, 0x0400, 0x0401,
                        0x3C00, 0xBC00, 0x3555, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00,
                        0xFE00, 0x7E55], dtype=np.uint16)
    bits = np.concatenate([special, rng.integers(0, 1 << 16, size=494, dtype=np.uint16)])
    bits = bits.astype("<u2")
    write("dequant_F16.bin", bits.tobytes())
    write("dequant_F16.f32", bits.view(np.float16).astype("<f4").tobytes())

    # BF16: special values and random patterns through gguf-py's decoder.
    special = np.array([0x0000, 0x8000, 0x0001, 0x007F, 0x0080, 0x3F80, 0xBF80, 0x7F7F,
                        0x7F80, 0xFF80, 0x7FC0, 0xFFC0], dtype=np.uint16)
    bits = np.concatenate([special, rng.integers(0, 1 << 16, size=244, dtype=np.uint16)])
    bits = bits.astype("<u2")
    write("dequant_BF16.bin", bits.tobytes())
    write("dequant_BF16.f32",
          gguf.quants.dequantize(bits.view(np.uint8), T.BF16).astype("<f4").tobytes())


def f32_from_bits(bits) -> np.ndarray:
    return np.array(bits, dtype=np.uint32).view(np.float32)


def float_inputs() -> np.ndarray:
    """f32 values for the F16/BF16 encoders: IEEE edge cases and exact
    rounding ties, then random values over the whole f16 range and beyond."""
    f16_edges = [
        0.0, -0.0, 1.0, -1.0, 65504.0, -65504.0,
        65519.99609375,        # just below the halfway point to infinity: 65504
        65520.0, -65520.0,     # halfway to 65536: ties to even = infinity
        65536.0, 1e10, np.inf, -np.inf,
        2.0 ** -24, -(2.0 ** -24),  # smallest subnormal
        2.0 ** -25,                 # tie between 0 and 2^-24: even = 0
        3 * 2.0 ** -25,             # tie between 1 and 2 units: even = 2 units
        5 * 2.0 ** -25,             # tie between 2 and 3 units: even = 2 units
        2.0 ** -14,                 # smallest normal
        2.0 ** -14 - 2.0 ** -25,    # tie between largest subnormal and 2^-14
        1.0 + 2.0 ** -11,           # tie: to 1.0
        1.0 + 3 * 2.0 ** -11,       # tie: to 1 + 2^-9
        1e-10, -1e-10, 0.1, 1.0 / 3.0, 3.14159265,
    ]
    nan_bits = [0x7FC00000, 0xFFC00000, 0x7FC01234, 0x7F800001, 0x7FBFFFFF]  # quiet, signalling
    bf16_edges = [
        0x3F808000,  # tie: to 0x3F80 (even)
        0x3F818000,  # tie: to 0x3F82 (even)
        0x3F808001,  # above the tie: up
        0x7F7F8000,  # tie at the largest finite bf16: even = infinity
        0x7F7F7FFF,  # just below: stays the largest finite
        0x00008000,  # tie among subnormals: to 0
        0x00018000,  # tie: to 0x0002
    ]
    # random values over the f16 range and a bit beyond, random sign
    mag = np.exp2(rng.uniform(-27.0, 17.0, size=400))
    rand = (mag * np.where(rng.random(400) < 0.5, -1.0, 1.0)).astype(np.float32)
    # exact f16 ties: a random f16 value plus half of its ulp
    h = rng.integers(0, 0x7BFF, size=64, dtype=np.uint16).view(np.float16)
    ulp = np.spacing(h.astype(np.float32).astype(np.float16)).astype(np.float32)
    ties = h.astype(np.float32) + ulp / np.float32(2)
    vals = np.concatenate([np.array(f16_edges, dtype=np.float32), f32_from_bits(nan_bits),
                           f32_from_bits(bf16_edges), rand, ties.astype(np.float32)])
    pad = (-vals.size) % 32
    return np.concatenate([vals, rand[:pad]]).astype("<f4")


def quantize_goldens() -> None:
    x = float_inputs()
    write("quantize_F16.f32", x.tobytes())
    with np.errstate(over="ignore"):  # values from 65520 up become infinity
        write("quantize_F16.bin", x.astype(np.float16).astype("<f2").tobytes())
    write("quantize_BF16.f32", x.tobytes())
    write("quantize_BF16.bin", gguf.quants.quantize(x, T.BF16).tobytes())

    # Q4_0 / Q8_0: 32 blocks of normal values with per-block scales from 1e-3
    # to 1e3, one all-zero block, one block whose largest magnitude occurs
    # with both signs (the first occurrence decides the sign of Q4_0's d),
    # and one block of uniform values.
    n_blocks = 32
    scales = np.exp2(rng.uniform(-10.0, 10.0, size=(n_blocks, 1)))
    rows = (rng.standard_normal((n_blocks, 32)) * scales).astype(np.float32)
    rows[1] = 0.0
    rows[2] = np.clip(rng.standard_normal(32), -3.0, 3.0).astype(np.float32)
    rows[2, 5], rows[2, 20] = -3.5, 3.5
    rows[3] = rng.uniform(-1.0, 1.0, size=32).astype(np.float32)
    rows = rows.reshape(-1).astype("<f4")
    for tname in ("Q4_0", "Q8_0"):
        write(f"quantize_{tname}.f32", rows.tobytes())
        write(f"quantize_{tname}.bin", gguf.quants.quantize(rows, T[tname]).tobytes())


def manifest() -> None:
    from importlib.metadata import version
    lines = [f"# made by tools/make_quant_goldens.py with gguf {version('gguf')},"
             f" numpy {version('numpy')}; name, bytes, sha256"]
    for p in sorted(OUT.iterdir()):
        if p.name == "MANIFEST.txt":
            continue
        digest = hashlib.sha256(p.read_bytes()).hexdigest()
        lines.append(f"{p.name} {p.stat().st_size} {digest}")
    (OUT / "MANIFEST.txt").write_text("\n".join(lines) + "\n")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    dequant_goldens()
    quantize_goldens()
    manifest()
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
