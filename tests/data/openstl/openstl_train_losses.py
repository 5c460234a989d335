"""Prints OpenSTL's TRAINING losses (commit c74deb5) on the mau.pt and phydnet.pt fixtures, free-running
and teacher-forced; tests/test_rnn_zoo2.py pins the numbers.

    mkdir /tmp/ostl && cd /tmp/ostl
    git show c74deb5:openstl/modules/mau_modules.py > mau_modules.py
    git show c74deb5:openstl/models/mau_model.py | sed 's/from openstl.modules/from mau_modules/' > mau_model.py
    git show c74deb5:openstl/modules/phydnet_modules.py > phydnet_modules.py   # add PhyCell, PhyD_ConvLSTM,
    #   PhyD_EncoderRNN to its __all__
    git show c74deb5:openstl/models/phydnet_model.py | sed 's/from openstl.modules/from phydnet_modules/' \
        > phydnet_model.py
    python openstl_train_losses.py /tmp/ostl tests/data/openstl

MAU: ``MAU_Model(frames, mask)`` returns MSE over the 19 next-frame outputs (mask 0 or 1 for the 9
prediction-part inputs). PhyDNet: ``PhyDNet_Model.forward`` returns the sum over the 19 steps of the
frame MSE plus the moment constraint; the fixture stores its constant moment matrices (k2m._M*) in
fp16, so they are rebuilt exactly here (not loaded), as in a real OpenSTL model.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path


def main(openstl_dir: str, fixtures: str) -> None:
    sys.path.insert(0, openstl_dir)
    import torch
    from mau_model import MAU_Model
    from phydnet_model import PhyDNet_Model

    fx = torch.load(Path(fixtures) / "mau.pt", weights_only=True)
    cfg = types.SimpleNamespace(**fx["config"])
    nh = [int(v) for v in cfg.num_hidden.split(",")]
    model = MAU_Model(len(nh), nh, cfg).train()
    model.load_state_dict({k: v.float() for k, v in fx["state_dict"].items()})
    ims = torch.cat([fx["inputs"].float(), fx["targets"].float()], 1).permute(0, 1, 3, 4, 2).contiguous()
    for name, v in (("free", 0.0), ("teacher", 1.0)):
        print("mau", name, repr(model(ims, torch.full((1, 9, 64, 64, 1), v))[1].item()))

    fx = torch.load(Path(fixtures) / "phydnet.pt", weights_only=True)
    model = PhyDNet_Model(types.SimpleNamespace(**fx["config"])).train()
    model.load_state_dict({k: v.float() for k, v in fx["state_dict"].items() if not k.startswith("k2m.")},
                          strict=False)
    constraints = torch.zeros(49, 7, 7)
    for i in range(49):
        constraints[i, i // 7, i % 7] = 1
    x, y = fx["inputs"].float(), fx["targets"].float()
    for name, ratio in (("free", 0.0), ("teacher", 1.1)):  # ratio > 1: teacher forcing for certain
        print("phydnet", name, repr(model(x, y, constraints, teacher_forcing_ratio=ratio).item()))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
