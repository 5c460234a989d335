"""Writes swinlstm_d.pt with OpenSTL's own SwinLSTM-D code (commit c74deb5), like the shared fixtures.

Run OUTSIDE the repo's venv packages, e.g.::

    pip install --no-deps --target /tmp/timm06 timm==0.6.13
    git show c74deb5:openstl/modules/swinlstm_modules.py > /tmp/ostl/swinlstm_modules.py
    git show c74deb5:openstl/models/swinlstm_model.py \
        | sed 's/from openstl.modules import/from swinlstm_modules import/' > /tmp/ostl/swinlstm_model.py
    python make_swinlstm_d.py /tmp/timm06 /tmp/ostl out.pt

OpenSTL's SwinLSTM imports ``to_2tuple`` from ``timm.layers`` (timm >= 0.9) but builds timm 0.6's Swin
classes (``input_resolution`` arguments that 0.9 removed); this script serves ``timm.layers`` from
timm 0.6.13's ``timm.models.layers`` and gives timm's torchvision imports empty stand-ins (only its
data transforms use them). Sizes are small; weights are perturbed and rounded to fp16 before the run.
"""

from __future__ import annotations

import sys
import types


def _stub_torchvision() -> None:
    class Any(types.ModuleType):
        def __getattr__(self, name: str):
            if name.startswith("__"):
                raise AttributeError(name)
            return Any(name) if name[0].islower() else type(name, (), {"__init__": lambda s, *a, **k: None})

    for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional", "torchvision.ops",
                 "torchvision.ops.misc", "torchvision.datasets", "torchvision.utils", "torchvision.io"):
        sys.modules[name] = Any(name)
        sys.modules[name].__path__ = []
    modes = {"NEAREST": 0, "BILINEAR": 2, "BICUBIC": 3, "BOX": 4, "HAMMING": 5, "LANCZOS": 1}
    sys.modules["torchvision.transforms.functional"].InterpolationMode = type("InterpolationMode", (), modes)


def main(timm_dir: str, openstl_dir: str, out: str) -> None:
    sys.path[:0] = [timm_dir, openstl_dir]
    _stub_torchvision()
    import timm
    import timm.models.layers
    import torch

    sys.modules["timm.layers"] = timm.models.layers
    from swinlstm_model import SwinLSTM_D_Model

    config = {"method": "SwinLSTM_D", "in_shape": [10, 1, 64, 64], "pre_seq_length": 10, "aft_seq_length": 10,
              "total_length": 20, "patch_size": 2, "window_size": 4, "embed_dim": 16,
              "depths_downsample": "2,2", "depths_upsample": "2,2", "num_heads": "2,4"}
    torch.manual_seed(0)
    model = SwinLSTM_D_Model([2, 2], [2, 2], [2, 4], types.SimpleNamespace(**config)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_((p * (1 + 0.2 * torch.randn_like(p)) + 0.02 * torch.randn_like(p)).half().float())
    inputs = torch.rand(1, 10, 1, 64, 64).half()
    targets = torch.rand(1, 10, 1, 64, 64).half()
    with torch.no_grad():  # SwinLSTM_D.forward of openstl/methods/swinlstm.py
        ims = torch.cat([inputs.float(), targets.float()], dim=1).permute(0, 1, 3, 4, 2).contiguous()
        gen, _ = model(ims, return_loss=False)
        pred = gen[:, -10:].permute(0, 1, 4, 2, 3).contiguous()
    sd = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    torch.save({"name": "swinlstm_d", "method": "SwinLSTM_D", "config": config, "state_dict": sd,
                "inputs": inputs, "targets": targets, "pred": pred,
                "params": sum(p.numel() for p in model.parameters()), "seed": 0, "openstl_commit": "c74deb5",
                "timm": timm.__version__}, out)
    print(out, tuple(pred.shape), sum(p.numel() for p in model.parameters()))


if __name__ == "__main__":
    main(*sys.argv[1:4])
