"""PredRNN++, MIM and E3D-LSTM: function equivalence with OpenSTL (fixtures written by its own code),
published parameter / FLOP counts, the published losses."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from stbench.interop.openstl import from_openstl
from stbench.interop.openstl_rnn_zoo import patch_permutation
from stbench.registry import MODELS

DATA = Path(__file__).parent / "data" / "openstl"
NAMES = ("predrnnpp", "mim", "e3dlstm")

# OpenSTL's own models at configs/mmnist (patch 4, 4 x 128, filter 5), commit c74deb5: params and fvcore
# FLOPs on its display_method_info dummy inputs (REFERENCE.md section 6; re-counted from its code).
PUBLISHED = {"predrnnpp": (38_584_320, 171_735_777_280), "mim": (38_043_648, 179_180_666_880),
             "e3dlstm": (51_347_456, 298_871_967_040)}
NH, K = 128, 5
# weights OpenSTL constructs but its forward never reads (stbench does not build them):
DEAD = {"predrnnpp": 4 * (2 * NH * NH * K * K),  # conv_o (2nh -> nh, k x k) in each of the 4 causal cells
        "mim": 3 * (2 * NH * NH),  # conv_last (2nh -> nh, 1x1) in each of the 3 MIM-N cells
        "e3dlstm": 0}


@pytest.mark.parametrize("name", NAMES)
def test_reproduces_openstl_fixture(name: str) -> None:
    fx = torch.load(DATA / f"{name}.pt", weights_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dropped-dead-weights note
        model = from_openstl(fx["method"], fx["config"], fx["state_dict"])
    with torch.no_grad():
        pred = model(fx["inputs"].float()).pred
    assert pred.shape == fx["pred"].shape
    assert (pred - fx["pred"].float()).abs().max().item() <= 1e-5
    # every OpenSTL weight is either loaded or reported as never used by the published forward
    ours = sum(p.numel() for p in model.parameters())
    dropped = sum(fx["state_dict"][k].numel() for k in model.dropped_keys)
    assert ours + dropped == fx["params"]


@pytest.mark.parametrize("name", NAMES)
def test_paper_params_equal_openstl_less_dead_weights(name: str) -> None:
    with torch.device("meta"):
        model = MODELS.get(name)()
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED[name][0] - DEAD[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_paper_flops_equal_openstl(name: str) -> None:
    from stbench.profile import count_flops

    assert count_flops(MODELS.get(name)()) == PUBLISHED[name][1]


def test_patch_permutation_matches_openstl_reshape_patch() -> None:
    B, C, H, W, p = 2, 3, 8, 12, 4
    x = torch.randn(B, C, H, W)
    # OpenSTL's reshape_patch on channels-last frames: (B, H, W, C) -> (B, H/p, W/p, p*p*C), (row, column, c)
    a = x.permute(0, 2, 3, 1).reshape(B, H // p, p, W // p, p, C).transpose(2, 3)
    theirs = a.reshape(B, H // p, W // p, p * p * C).permute(0, 3, 1, 2)  # (B, p*p*C, H/p, W/p)
    ours = F.pixel_unshuffle(x, p)  # the stbench patch codec
    assert torch.equal(ours, theirs[:, patch_permutation(C, p)])


def test_e3dlstm_loss_is_mse_plus_l1_over_all_next_frames() -> None:
    model = MODELS.get("e3dlstm")(num_hidden=[4, 4], filter_size=3, in_shape=(4, 1, 16, 16), t_out=3)
    x, y = torch.rand(2, 4, 1, 16, 16), torch.rand(2, 3, 1, 16, 16)
    out = model(x, y, sampling_mask=torch.ones(2, 5))
    loss, parts = model.loss(out, x, y)
    err = out.all_frames.detach() - torch.cat([x[:, 1:], y], dim=1)  # 6 next-frame outputs
    assert torch.allclose(loss.detach(), (err ** 2).mean() + err.abs().mean(), rtol=1e-6)
    assert set(parts) == {"mse", "l1"}


@pytest.mark.parametrize("name", ("predrnnpp", "mim"))
def test_mse_only_and_trains(name: str) -> None:
    model = MODELS.get(name)(num_hidden=[4, 4], filter_size=3, in_shape=(4, 1, 16, 16), t_out=3)
    x, y = torch.rand(2, 4, 1, 16, 16), torch.rand(2, 3, 1, 16, 16)
    out = model(x, y, sampling_mask=torch.zeros(2, 5))
    loss, parts = model.loss(out, x, y)
    assert set(parts) == {"mse"}
    loss.backward()
    # every parameter is reached by the gradient (no dead weights are carried)
    assert all(p.grad is not None for p in model.parameters())


def test_mim_stationary_cell_state_is_truncated_in_time() -> None:
    """OpenSTL passes each MIM block's MIM-S cell state s in detached at every step: no gradient flows
    back in time through s (it still flows through the block's other inputs)."""
    block = MODELS.get("mim")(num_hidden=[4, 4], filter_size=3, in_shape=(4, 1, 16, 16), t_out=3).temporal.blocks[0]
    x, d, h, c, m, s = (torch.rand(1, 4, 4, 4, requires_grad=True) for _ in range(6))
    _, _, _, s_new = block(x, d, h, c, m, s)
    grads = torch.autograd.grad(s_new.sum(), [s, c], allow_unused=True)
    assert grads[0] is None and grads[1] is not None


@pytest.mark.parametrize("encoder", ["patch", "simvp"])
@pytest.mark.parametrize("name", NAMES)
def test_smoke_preset_sizes_train_over_either_codec(name: str, encoder: str) -> None:
    import stbench

    sizes = dict(MODELS.entry(name).meta["presets"]["smoke"]["model"])
    model = stbench.create_model(f"{name}@{encoder}", in_shape=(4, 1, 16, 16), t_out=3, **sizes)
    x, y = torch.rand(2, 4, 1, 16, 16), torch.rand(2, 3, 1, 16, 16)
    assert model(x).pred.shape == (2, 3, 1, 16, 16)
    loss, _ = model.loss(model(x, y, sampling_mask=torch.ones(2, 5)), x, y)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.parameters())
