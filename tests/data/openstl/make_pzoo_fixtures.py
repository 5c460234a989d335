"""Writes simvp_uniformer_nt3.pt, simvp_swin.pt and simvp_vit.pt with OpenSTL's OWN SimVP code (not part of
the test suite; run by hand, outside the repository's environment).

    pip install --no-deps --target /tmp/timm06 timm==0.6.13
    git -C <OpenSTL clone at c74deb5> archive HEAD openstl | tar -x -C /tmp/openstl_src
    python make_pzoo_fixtures.py /tmp/timm06 /tmp/openstl_src OUTDIR

OpenSTL imports ``timm.layers`` (timm >= 0.9), whose Swin / ViT blocks no longer take the ``drop`` argument
OpenSTL passes; timm 0.6.13 still does, and has the same module under ``timm.models.layers``, which is
aliased. OpenSTL's package ``__init__`` files (which pull in its training stack) are bypassed; only
``openstl.modules`` and ``openstl.models.simvp_model`` run. ``torchvision`` (imported by timm's data code
only) may have to be served by a stub. Weights are perturbed and rounded to fp16 as in the shared fixtures.
"""

import importlib
import sys
import types

import torch


def load_openstl(timm_dir: str, src: str):
    sys.path.insert(0, timm_dir)
    import timm
    import timm.models.layers

    sys.modules["timm.layers"] = timm.models.layers
    for name in ("openstl", "openstl.models", "openstl.utils"):
        mod = types.ModuleType(name)
        mod.__path__ = [f"{src}/{name.replace('.', '/')}"]
        sys.modules[name] = mod
    importlib.import_module("openstl.modules")
    return importlib.import_module("openstl.models.simvp_model"), timm.__version__


def make(simvp, timm_version: str, model_type: str, n_t: int, path: str, seed: int = 0) -> None:
    torch.manual_seed(seed)
    cfg = dict(in_shape=[10, 1, 64, 64], hid_S=8, hid_T=32, N_S=2, N_T=n_t, model_type=model_type, mlp_ratio=8.0,
               drop=0.0, drop_path=0.0, spatio_kernel_enc=3, spatio_kernel_dec=3, pre_seq_length=10,
               aft_seq_length=10)
    model = simvp.SimVP_Model(**cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_((p * (1 + 0.2 * torch.randn_like(p)) + 0.02 * torch.randn_like(p)).half().float())
        for n, b in model.named_buffers():
            if "running_var" in n:
                b.copy_((b.abs() + 0.1 * torch.rand_like(b)).half().float())
            elif "running_mean" in n:
                b.copy_((b + 0.1 * torch.randn_like(b)).half().float())
    model.eval()
    x = torch.rand(1, 10, 1, 64, 64).half()
    with torch.no_grad():
        pred = model(x.float())
    sd = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    torch.save({"method": "SimVP", "model_type": model_type, "config": cfg, "state_dict": sd, "inputs": x,
                "pred": pred.float(), "params": sum(p.numel() for p in model.parameters()), "seed": seed,
                "openstl_commit": "c74deb5", "timm": timm_version}, path)


if __name__ == "__main__":
    timm_dir, src, out = sys.argv[1:4]
    simvp_model, version = load_openstl(timm_dir, src)
    for model_type, n_t, name in [("uniformer", 3, "simvp_uniformer_nt3"), ("swin", 3, "simvp_swin"),
                                  ("vit", 3, "simvp_vit")]:
        make(simvp_model, version, model_type, n_t, f"{out}/{name}.pt")
