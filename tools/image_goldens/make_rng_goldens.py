#!/usr/bin/env python3
"""Make tests/data/image/rng/cpu.json: torch.randn goldens for kiln's CPU generators.

For each seed, torch.manual_seed(seed) and then a list of torch.randn calls
on the default CPU generator, in order (so the generator's state and its
cached Box-Muller value carry from one call to the next, as in a sampler).
Each result is stored as the float32 bit patterns (hex) when small, else as
the FNV-1a 64-bit hash of its little-endian float32 bytes with the first 64
values (the whole result would be hundreds of KB).

PyTorch's CPU randn has two kernels for 16+ elements (see src/image/rng.h):
this script runs torch twice, once as it is (it must report the AVX2 CPU
capability: run it on an x86 machine with AVX2) for "cpu", once with
ATEN_CPU_CAPABILITY=default for "cpu-scalar".

torch is Debian's python3-torch (apt-get install python3-torch), seen
through the venv's system site packages.

Usage: python3 tools/image_goldens/make_rng_goldens.py
"""

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from goldens_env import ROOT, ensure_venv  # noqa: E402

ensure_venv(__file__)

import torch  # noqa: E402

OUT = ROOT / "tests" / "data" / "image" / "rng" / "cpu.json"

# (seed, shapes of successive randn calls)
CASES = [
    (0, [(1,), (7,), (15,), (16,), (17,), (33,)]),
    (1, [(4, 8, 8), (4, 8, 8), (3,), (5,), (20,)]),
    (42, [(4, 32, 32), (4, 32, 32)]),
    (2**32 + 5, [(2,), (1, 4, 4)]),
    (2**64 - 1, [(9,), (31,)]),
    (12345678901234567, [(1, 4, 64, 64), (1, 4, 64, 64), (1, 4, 128, 128)]),
]

FULL_LIMIT = 1024  # results up to this many values are stored whole


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def bits(t):
    return [f"{int(v) & 0xFFFFFFFF:08x}" for v in t.contiguous().view(torch.int32).flatten().tolist()]


def run_cases():
    out = []
    for seed, shapes in CASES:
        torch.manual_seed(seed)
        calls = []
        for shape in shapes:
            x = torch.randn(*shape)
            n = x.numel()
            call = {"shape": list(shape), "n": n}
            if n <= FULL_LIMIT:
                call["bits"] = bits(x)
            else:
                raw = x.contiguous().numpy().astype("<f4").tobytes()
                call["fnv1a64"] = f"{fnv1a64(raw):016x}"
                call["head"] = bits(x.flatten()[:64])
            calls.append(call)
        out.append({"seed": str(seed), "calls": calls})
    return out


def capability():
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage" in line:
            return line.split(":")[1].strip()
    return "unknown"


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        json.dump({"capability": capability(), "cases": run_cases()}, sys.stdout)
        return
    kernels = {}
    for name, env_cap in (("cpu", None), ("cpu-scalar", "default")):
        env = dict(os.environ)
        env.pop("ATEN_CPU_CAPABILITY", None)
        if env_cap:
            env["ATEN_CPU_CAPABILITY"] = env_cap
        res = json.loads(subprocess.run([sys.executable, __file__, "--child"], env=env, check=True,
                                        capture_output=True, text=True).stdout)
        want = "AVX2" if name == "cpu" else "NO AVX"
        if res["capability"].upper() != want:
            sys.exit(f"{name}: torch reports CPU capability {res['capability']}, need {want}")
        kernels[name] = res["cases"]
    doc = {"torch": torch.__version__, "kernels": kernels}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=0) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
