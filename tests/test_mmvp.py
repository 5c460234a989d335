"""MMVP: OpenSTL's fixture reproduced to 1e-5 through from_openstl; counts equal OpenSTL's at paper size."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stbench.interop.openstl import from_openstl
from stbench.profile import count_flops, count_params
from stbench.registry import MODELS

DATA = Path(__file__).parent / "data" / "openstl"
# OpenSTL c74deb5, configs/mmnist/MMVP.py, fvcore on one (1, 10, 1, 64, 64) sample (REFERENCE.md section 6)
PUBLISHED_PARAMS, PUBLISHED_FLOPS = 14_828_581, 93_455_863_808


def _dead_params(hid_S: int, hid_T: int) -> int:
    """OpenSTL builds scale_fuser_1 (ConvTranspose 2h->h 2x2 + 3x3 conv 2h->h without bias), scale_fuser_2
    (two 3x3 conv h->h + BatchNorm) and predictor.fuse_conv (3x3 conv 2*hid_T->hid_T without bias), which
    its forward never calls; stbench's mmvp does not carry them."""
    h = hid_S
    return (2 * h * h * 4 + h) + 2 * h * h * 9 + 2 * (h * h * 9 + h + 2 * h) + 2 * hid_T * hid_T * 9


def test_reproduces_openstl_fixture():
    fx = torch.load(DATA / "mmvp.pt", weights_only=True)
    with pytest.warns(UserWarning, match="never uses"):
        model = from_openstl("MMVP", fx["config"], fx["state_dict"])
    cfg = fx["config"]
    assert sum(p.numel() for p in model.parameters()) + _dead_params(cfg["hid_S"], cfg["hid_T"]) == fx["params"]
    with torch.no_grad():
        pred = model(fx["inputs"].float()).pred
    err = (pred - fx["pred"].float()).abs().max().item()
    assert err <= 1e-5, f"mmvp: max abs error {err:.3g}"


def test_paper_params_equal_openstl_less_dead_weights():
    with torch.device("meta"):
        model = MODELS.get("mmvp")()
    assert count_params(model) + _dead_params(32, 192) == PUBLISHED_PARAMS


def test_smoke_size_trains():
    model = MODELS.get("mmvp")(hid_S=4, hid_T=8, rrdb_encoder_num=1, rrdb_decoder_num=1, rrdb_enhance_num=1,
                               in_shape=(3, 1, 32, 32), t_out=4)
    x, y = torch.rand(1, 3, 1, 32, 32), torch.rand(1, 4, 1, 32, 32)
    out = model(x, y)
    assert out.pred.shape == (1, 4, 1, 32, 32)  # T_out > T_in: rolled out over two passes
    model.loss(out, x, y)[0].backward()
    assert all(p.grad is not None for p in model.parameters())


def test_rejects_sizes_it_cannot_tile():
    with pytest.raises(ValueError, match="divisible by 16"):
        MODELS.get("mmvp")(in_shape=(4, 1, 40, 40), t_out=4)


@pytest.mark.slow
def test_paper_flops_equal_openstl():
    assert count_flops(MODELS.get("mmvp")().eval()) == PUBLISHED_FLOPS
