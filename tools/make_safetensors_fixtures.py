#!/usr/bin/env python3
"""Make kiln's safetensors test fixtures with the reference implementation.

Writes, with the Hugging Face `safetensors` package (the Rust reference
writer) and numpy, into tests/data/safetensors/:

  mixed.safetensors  tensors of several dtypes (F32, F16, BF16, F64, I8, U8,
                     I16, I32, I64, BOOL, F8_E4M3, F8_E5M2, a scalar and an
                     empty tensor) and one metadata entry; the kiln writer
                     must reproduce it byte for byte
  meta.safetensors   one small tensor and several metadata entries (one
                     non-ASCII)
  expected.json      what each file holds: header size, per tensor its dtype,
                     shape, data_offsets (read back with Python's json from
                     the header), raw bytes in hex and the values

The script makes its own virtual environment (tools/.venv) with pinned
versions and re-runs itself inside it. Run from anywhere:
    python3 tools/make_safetensors_fixtures.py
"""
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from venv_reexec import run_in_venv  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "tools", ".venv")
OUT = os.path.join(ROOT, "tests", "data", "safetensors")
PACKAGES = ["safetensors==0.8.0", "numpy==2.4.6"]


def tensors():
    """name -> (reference dtype name, numpy array holding the raw values,
    JSON-friendly list of the values the C test expects)."""
    import numpy as np

    out = {}

    def plain(name, arr):
        out[name] = (arr.dtype.name, arr, arr.tolist())

    plain("blk.0.weight_f32", np.array([[1.5, -2.25, 3.0], [0.0, 1e-3, -7.5]], dtype=np.float32))
    plain("blk.0.weight_f16", np.array([0.5, -1.0, 65504.0, 6.103515625e-05], dtype=np.float16))
    plain("blk.1.weight_f64", np.array([3.141592653589793, -1e300], dtype=np.float64))
    plain("ids_i8", np.array([[-128, -1], [0, 127]], dtype=np.int8))
    plain("pixels_u8", np.array([0, 1, 128, 255, 7], dtype=np.uint8))
    plain("short_i16", np.array([-32768, 12345], dtype=np.int16))
    plain("int_i32", np.array([-2147483648, 7, 2147483647], dtype=np.int32))
    plain("long_i64", np.array([-5, 1 << 40], dtype=np.int64))
    plain("mask_bool", np.array([True, False, True], dtype=np.bool_))
    plain("scale", np.array(0.125, dtype=np.float32))  # a scalar: shape []
    plain("empty", np.zeros((0, 3), dtype=np.float32))

    # numpy has no bfloat16 or float8: give the reference writer the bit
    # patterns; the expected values come from widening bf16 bits to f32.
    bf16_bits = np.array([0x3F80, 0xC040, 0x4049, 0x0000, 0xBF00], dtype=np.uint16)
    bf16_vals = (bf16_bits.astype(np.uint32) << 16).view(np.float32)
    out["blk.0.weight_bf16"] = ("bfloat16", bf16_bits, [float(v) for v in bf16_vals])
    out["f8_e4m3"] = ("float8_e4m3fn", np.array([0x38, 0xB8, 0x00], dtype=np.uint8), None)
    out["f8_e5m2"] = ("float8_e5m2", np.array([0x3C, 0xBC], dtype=np.uint8), None)
    return out


def serialize(tensors_by_name, metadata):
    """Bytes of a safetensors file written by the reference writer."""
    from safetensors import TensorSpec, serialize as st_serialize

    specs = {}
    for name, (dtype, arr, _) in tensors_by_name.items():
        specs[name] = TensorSpec(dtype=dtype, shape=list(arr.shape), data_ptr=arr.ctypes.data,
                                 data_len=arr.nbytes)
    return bytes(st_serialize(specs, metadata))


def describe(blob, tensors_by_name):
    """expected.json entry for a file: offsets read back from its header."""
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    # The reference keeps metadata in a hash map: its order in the file changes
    # from run to run (so meta.safetensors' bytes do too); list it sorted.
    meta = dict(sorted(header.get("__metadata__", {}).items()))
    desc = {"header_size": n, "size": len(blob), "metadata": meta, "tensors": {}}
    order = sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])
    desc["data_order"] = order
    for name in order:
        info = header[name]
        b, e = info["data_offsets"]
        desc["tensors"][name] = {
            "dtype": info["dtype"],
            "shape": info["shape"],
            "data_offsets": [b, e],
            "hex": data[b:e].hex(),
            "values": tensors_by_name[name][2] if name in tensors_by_name else None,
        }
    return desc


def check_roundtrip(path, tensors_by_name, metadata):
    """Read the file back with the reference reader (sanity)."""
    from safetensors import safe_open

    with safe_open(path, framework="numpy") as f:
        assert (f.metadata() or {}) == metadata, f.metadata()
        assert set(f.keys()) == set(tensors_by_name), f.keys()


def main():
    run_in_venv(VENV, packages=PACKAGES)
    import numpy as np

    os.makedirs(OUT, exist_ok=True)
    expected = {}

    mixed = tensors()
    mixed_meta = {"format": "pt"}  # one key: the reference's key order is then fixed
    blob = serialize(mixed, mixed_meta)
    with open(os.path.join(OUT, "mixed.safetensors"), "wb") as f:
        f.write(blob)
    expected["mixed.safetensors"] = describe(blob, mixed)
    check_roundtrip(os.path.join(OUT, "mixed.safetensors"), mixed, mixed_meta)

    meta_tensors = {"w": ("float32", np.array([1.0, 2.0], dtype=np.float32), [1.0, 2.0])}
    meta = {"format": "pt", "kiln.note": "h\u00e9llo \u2603", "empty": "", "json": '{"a": [1, 2]}'}
    blob = serialize(meta_tensors, meta)
    with open(os.path.join(OUT, "meta.safetensors"), "wb") as f:
        f.write(blob)
    expected["meta.safetensors"] = describe(blob, meta_tensors)
    check_roundtrip(os.path.join(OUT, "meta.safetensors"), meta_tensors, meta)

    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False, allow_nan=False)
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
