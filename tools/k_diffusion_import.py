"""tools/k_diffusion_import.py - import k-diffusion's samplers for the
golden makers (tools/image_goldens/make_sampler_goldens.py,
tools/sd_goldens/make_pipeline_cases.py) inside their venvs.

k_diffusion's package __init__ imports its training code (torchvision,
clean-fid, wandb...); the samplers need none of it. k_diffusion.utils
imports torchvision.transforms.functional at the top, but no sampler uses
it: an empty module stands in for it (unless torchvision is really there).
"""
import importlib
import importlib.util
import sys
import types


def import_k_diffusion():
    """k_diffusion.sampling and k_diffusion.external, without the package's
    __init__."""
    tv = types.ModuleType("torchvision")
    tv.transforms = types.ModuleType("torchvision.transforms")
    tv.transforms.functional = types.ModuleType("torchvision.transforms.functional")
    for name, mod in (("torchvision", tv), ("torchvision.transforms", tv.transforms),
                      ("torchvision.transforms.functional", tv.transforms.functional)):
        sys.modules.setdefault(name, mod)
    spec = importlib.util.find_spec("k_diffusion")
    pkg = types.ModuleType("k_diffusion")
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__spec__ = spec
    sys.modules["k_diffusion"] = pkg
    return importlib.import_module("k_diffusion.sampling"), importlib.import_module("k_diffusion.external")
