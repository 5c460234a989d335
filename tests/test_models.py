"""Every registered published model is tested here at its smoke sizes, parametrised from the registry (timm's
habit): a new model is covered without editing this file."""

import numpy as np
import pytest
import torch
from conftest import smoke_model

import stbench
from stbench.models.base import ShapeError
from stbench.models.losses import ddr_loss
from stbench.profile import count_flops, count_params
from stbench.registry import MODELS

# the SimVP-family and recurrent seed models, also at a 16 x 16 shape (the whole zoo runs at the mmnist shape below)
SEED = ["convlstm", "gsta", "predrnn", "predrnn_v2", "simvp", "tau"]
SHAPE = (4, 1, 16, 16)  # (T_in, C, H, W)


PUBLISHED_MODELS = [n for n in MODELS.names() if not MODELS.entry(n).meta.get("tiny")
                    and MODELS.entry(n).source == "built-in"]


@pytest.mark.parametrize("name", PUBLISHED_MODELS)
def test_every_published_model_trains_at_its_smoke_size(name):
    """Registry-driven: each named model, at the smoke sizes its registry entry (or recipe) carries, on the
    Moving MNIST shape: a training step reaches every parameter and evaluation gives T_out frames."""
    from stbench.models.sampling import make_schedule
    from stbench.recipes import load_recipe

    recipe = load_recipe("mmnist", name, "smoke")
    assert recipe.model_kw, f"{name} has no smoke sizes"
    torch.manual_seed(0)
    m = recipe.build_model(name)
    assert count_params(m) < 2_000_000, f"{name}: smoke sizes should be tiny"
    t_in, C, H, W = m.in_shape
    x, y = torch.rand(1, t_in, C, H, W), torch.rand(1, m.t_out, C, H, W)
    mask = make_schedule("linear").mask(0, 1, t_in, m.t_out, "cpu") if m.recurrent else None
    loss, _ = m.loss(m(x, y, sampling_mask=mask), x, y)
    loss.backward()
    assert torch.isfinite(loss)
    missing = [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{name}: parameters without a gradient: {missing[:4]}"
    with torch.no_grad():
        assert m.eval()(x).pred.shape == y.shape


@pytest.mark.parametrize("name", SEED)
def test_smoke_forward_backward(name):
    m = smoke_model(name, in_shape=SHAPE, t_out=3)
    x, y = torch.rand(2, *SHAPE), torch.rand(2, 3, 1, 16, 16)
    out = m(x)
    assert out.pred.shape == (2, 3, 1, 16, 16)
    loss, parts = m.loss(m(x, y, sampling_mask=torch.ones(2, 5) if m.recurrent else None), x, y)
    loss.backward()
    assert torch.isfinite(loss) and "mse" in parts
    grads = [p.grad for p in m.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads), "every parameter gets a gradient"


@pytest.mark.parametrize("name", SEED)
def test_smoke_deterministic_under_seed(name):
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        m = smoke_model(name, in_shape=SHAPE, t_out=2).eval()
        torch.manual_seed(7)
        outs.append(m(torch.rand(1, *SHAPE)).pred)
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


# published Moving MNIST figures: params (M) and fvcore FLOPs (G) to the precision printed
PUBLISHED = {"simvp": (58.0, 19.4), "gsta": (46.8, 16.5), "tau": (44.7, 16.0)}
# fvcore FLOPs of OpenSTL's own SimVP / gSTA / TAU at its Moving MNIST configs (counted by running its code)
OPENSTL_EXACT_FLOPS = {"simvp": 19_430_539_264, "gsta": 16_526_049_280, "tau": 15_952_646_144}


# where our count, printed to the published precision, differs from the published figure, and why
# (docs/protocol.md, "What matches the published work"); every other figure must round exactly
KNOWN_PARAM_GAPS = {"simvp": 57.9}  # 57.946M vs the published 58.0M; FLOPs agree exactly; source unknown


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_param_and_flop_counts(name):
    with torch.device("meta"):
        m = stbench.create_model(name)
    p, f = PUBLISHED[name]
    assert round(count_params(m) / 1e6, 1) == KNOWN_PARAM_GAPS.get(name, p)
    flops = count_flops(stbench.create_model(name))
    assert round(flops / 1e9, 1) == f
    assert flops == OPENSTL_EXACT_FLOPS[name]  # OpenSTL's own model at configs/mmnist, fvcore (c74deb5)


def test_parallel_rollout_extends_the_first_chunk():
    torch.manual_seed(0)
    m10 = smoke_model("tau", in_shape=SHAPE, t_out=4).eval()
    m20 = smoke_model("tau", in_shape=SHAPE, t_out=10).eval()
    m20.load_state_dict(m10.state_dict())
    x = torch.rand(2, *SHAPE)
    p10, p20 = m10(x).pred, m20(x).pred
    assert p20.shape == (2, 10, 1, 16, 16)
    torch.testing.assert_close(p20[:, :4], p10)
    m3 = smoke_model("tau", in_shape=SHAPE, t_out=3).eval()
    m3.load_state_dict(m10.state_dict())
    torch.testing.assert_close(m3(x).pred, p10[:, :3])


def test_wrong_component_shape_is_named():
    m = smoke_model("tau", in_shape=SHAPE, t_out=4)
    m.temporal.forward = lambda z: z[:, :-1]  # drops a frame
    with pytest.raises(ShapeError, match=r"temporal module 'tau' returned shape \(2, 3, .*expected \(2, 4,"):
        m(torch.rand(2, *SHAPE))
    with pytest.raises(ShapeError, match="model input has shape"):
        m(torch.rand(2, 5, 1, 16, 16))


def test_unknown_override_is_named():
    with pytest.raises(TypeError, match="model 'tau' does not take hid_X; it accepts: .*hid_T"):
        smoke_model("tau", hid_X=3)


def test_ddr_matches_hand_computation():
    g = np.random.default_rng(0)
    P, Y = g.random((2, 4, 1, 3, 3)), g.random((2, 4, 1, 3, 3))
    dp = (P[:, 1:] - P[:, :-1]).reshape(2, 3, -1) / 0.1
    dy = (Y[:, 1:] - Y[:, :-1]).reshape(2, 3, -1) / 0.1
    p = np.exp(dp - dp.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    q = np.exp(dy - dy.max(-1, keepdims=True))
    q /= q.sum(-1, keepdims=True)
    want = np.mean(p * np.log(p / (q + 1e-12) + 1e-12))
    got = ddr_loss(torch.tensor(P), torch.tensor(Y)).item()
    assert abs(got - want) < 1e-12
    assert ddr_loss(torch.tensor(P[:, :2]), torch.tensor(Y[:, :2])).item() == 0.0


def test_tau_loss_is_mse_plus_alpha_ddr():
    m = smoke_model("tau", in_shape=SHAPE, t_out=4)
    x, y = torch.rand(2, *SHAPE), torch.rand(2, 4, 1, 16, 16)
    out = m(x)
    loss, parts = m.loss(out, x, y)
    mse = torch.mean((out.pred - y) ** 2)
    torch.testing.assert_close(loss, mse + 0.1 * ddr_loss(out.pred, y))
