#!/usr/bin/env python3
"""Make the GGUF reference fixture with the reference writer (the `gguf` package).

Writes tests/data/gguf/reference.gguf (every metadata value type, nested
arrays, an array of strings, unicode, a custom alignment, and F32, F16, BF16,
I32 and Q8_0 tensors, the last quantized by gguf's own quantizer) and
tests/data/gguf/reference.json listing what a reader must find: every key with
its type and value, every tensor with its GGML type name, dims (GGUF order,
fastest first) and data bytes (hex). tests/unit/test_gguf_reference.c checks
kiln's reader against both.

Integers are written to the JSON as decimal strings (u64 does not fit a JSON
integer everywhere); floats as numbers (Python's repr round-trips doubles;
f32 values are the exact float32 values).

Usage: python3 tools/make_gguf_fixtures.py   (creates tools/.venv on first run)
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from venv_reexec import run_in_venv  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "tools", ".venv")
OUT_DIR = os.path.join(ROOT, "tests", "data", "gguf")
GGUF_VERSION = "0.19.0"


def main():
    run_in_venv(VENV, packages=[f"gguf=={GGUF_VERSION}"])
    import numpy as np
    import gguf
    from gguf import GGUFValueType as T

    names = {
        T.UINT8: "u8", T.INT8: "i8", T.UINT16: "u16", T.INT16: "i16", T.UINT32: "u32",
        T.INT32: "i32", T.FLOAT32: "f32", T.BOOL: "bool", T.STRING: "string",
        T.ARRAY: "array", T.UINT64: "u64", T.INT64: "i64", T.FLOAT64: "f64",
    }

    def expect(value, vtype, sub_type=None):
        """The JSON form of a value as the reader must decode it."""
        if vtype == T.ARRAY:
            elem = sub_type if sub_type is not None else T.get_type(value[0])
            return {"type": "array", "elem": names[elem],
                    "values": [expect(v, elem) for v in value]}
        if vtype in (T.UINT8, T.INT8, T.UINT16, T.INT16, T.UINT32, T.INT32, T.UINT64, T.INT64):
            return {"type": names[vtype], "value": str(int(value))}
        if vtype == T.FLOAT32:
            return {"type": "f32", "value": float(np.float32(value))}
        if vtype == T.FLOAT64:
            return {"type": "f64", "value": float(value)}
        if vtype == T.BOOL:
            return {"type": "bool", "value": bool(value)}
        return {"type": "string", "value": value}

    path = os.path.join(OUT_DIR, "reference.gguf")
    os.makedirs(OUT_DIR, exist_ok=True)
    w = gguf.GGUFWriter(path, arch="kilntest")
    kvs = [{"key": "general.architecture", **expect("kilntest", T.STRING)}]

    def add(key, value, vtype, sub_type=None):
        w.add_key_value(key, value, vtype, sub_type=sub_type)
        kvs.append({"key": key, **expect(value, vtype, sub_type)})

    w.add_custom_alignment(64)
    kvs.append({"key": "general.alignment", **expect(64, T.UINT32)})
    add("test.u8", 250, T.UINT8)
    add("test.i8", -120, T.INT8)
    add("test.u16", 65000, T.UINT16)
    add("test.i16", -32000, T.INT16)
    add("test.u32", 4000000000, T.UINT32)
    add("test.i32", -2000000000, T.INT32)
    add("test.f32", 3.14159, T.FLOAT32)
    add("test.bool_true", True, T.BOOL)
    add("test.bool_false", False, T.BOOL)
    add("test.string", "héllo wörld ✓ 日本語 🙂", T.STRING)
    add("test.empty_string", "", T.STRING)
    add("test.u64", 18446744073709551615, T.UINT64)
    add("test.i64", -9223372036854775807, T.INT64)
    add("test.f64", 2.718281828459045, T.FLOAT64)
    add("test.arr_u8", [0, 1, 255], T.ARRAY, T.UINT8)
    add("test.arr_i16", [-1, 2, -300], T.ARRAY, T.INT16)
    add("test.arr_i32", [7, -8, 9, 2147483647], T.ARRAY, T.INT32)
    add("test.arr_u64", [1, 2**63, 2**64 - 1], T.ARRAY, T.UINT64)
    add("test.arr_i64", [-(2**63), 0, 2**63 - 1], T.ARRAY, T.INT64)
    add("test.arr_f32", [0.5, -1.25, 1e-7], T.ARRAY, T.FLOAT32)
    add("test.arr_f64", [0.1, -2.5e300], T.ARRAY, T.FLOAT64)
    add("test.arr_bool", [True, False, True], T.ARRAY, T.BOOL)
    add("test.arr_str", ["a", "", "ünï", "<0x0A>", "▁the", "🙂🙂"], T.ARRAY, T.STRING)
    add("test.nested_i32", [[1, 2, 3], [4], [5, 6]], T.ARRAY, T.ARRAY)
    add("test.nested_str", [["x", "yz"], ["ÿ"]], T.ARRAY, T.ARRAY)
    add("test.nested3", [[[1.5, 2.5], [3.5]], [[4.5]]], T.ARRAY, T.ARRAY)

    rng = np.random.default_rng(1234)
    tensors = []

    def tensor(name, array, raw_dtype=None, ggml_name=None):
        """Add a tensor; `array` holds the bytes as written (quantized for raw types)."""
        if raw_dtype is None:
            w.add_tensor(name, array)
        else:
            w.add_tensor(name, array, raw_dtype=raw_dtype)
        shape = array.shape if raw_dtype is None else \
            gguf.quant_shape_from_byte_shape(array.shape, raw_dtype)
        tensors.append({"name": name, "dtype": ggml_name, "ne": list(reversed(shape)),
                        "hex": array.tobytes().hex()})

    tensor("f32.weight", rng.standard_normal((2, 3)).astype(np.float32), ggml_name="F32")
    tensor("f16.weight", rng.standard_normal((8,)).astype(np.float16), ggml_name="F16")
    tensor("i32.ids", np.arange(-2, 3, dtype=np.int32), ggml_name="I32")
    bf16 = gguf.quants.quantize(rng.standard_normal((2, 4)).astype(np.float32),
                                gguf.GGMLQuantizationType.BF16)
    tensor("bf16.weight", bf16, gguf.GGMLQuantizationType.BF16, "BF16")
    q8 = gguf.quants.quantize(rng.standard_normal((2, 64)).astype(np.float32),
                              gguf.GGMLQuantizationType.Q8_0)
    tensor("blk.0.q8.weight", q8, gguf.GGMLQuantizationType.Q8_0, "Q8_0")
    tensor("unicode.tënsor ✓", rng.standard_normal((1, 1, 2, 3)).astype(np.float32),
           ggml_name="F32")

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    with open(os.path.join(OUT_DIR, "reference.json"), "w", encoding="utf-8") as f:
        json.dump({"generator": f"gguf {GGUF_VERSION} (Python)", "version": 3,
                   "alignment": 64, "kv": kvs, "tensors": tensors},
                  f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes) and reference.json")


if __name__ == "__main__":
    main()
