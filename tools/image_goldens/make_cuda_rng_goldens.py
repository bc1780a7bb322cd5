"""Make tests/data/image/rng/cuda.json: torch.randn on PyTorch's CUDA generator.

Needs a machine with an NVIDIA GPU and a CUDA build of torch (kiln's device
machine; it has no network, so this file is kept small enough to paste into
one command). Writes JSON to stdout: per seed, successive torch.randn calls
on device "cuda", each with the float32 bit patterns of its values (every
`stride`-th value for the large ones). Usage: python3 make_cuda_rng_goldens.py > cuda.json
The committed cuda.json came from torch 2.11.0+cu130 on an NVIDIA H200.
"""
import json, torch
CASES = [(0, [(3, 4), (16,), (100,)]), (42, [(4, 8, 8), (4, 8, 8), (5,)]),
         (2**32 + 7, [(1, 4, 16, 16)]), (12345678901234567, [(1, 4, 64, 64), (1, 4, 128, 128)])]
def bits(t):
    return ["%08x" % (int(v) & 0xFFFFFFFF) for v in t.view(torch.int32).tolist()]
out = []
for seed, shapes in CASES:
    torch.manual_seed(seed)
    calls = []
    for s in shapes:
        x = torch.randn(*s, device="cuda").cpu().flatten()
        stride = 1 if x.numel() <= 1024 else 61
        calls.append({"shape": list(s), "n": x.numel(), "stride": stride, "bits": bits(x[::stride])})
    out.append({"seed": str(seed), "calls": calls})
p = torch.cuda.get_device_properties(0)
print(json.dumps({"torch": torch.__version__, "device": p.name, "sms": p.multi_processor_count,
                  "cases": out}, indent=0))
