"""Recurrent temporal modules (ConvLSTM, PredRNN, PredRNN.V2), the patch codec, scheduled sampling,
and the encoder x temporal-module cross product. CPU, tiny shapes, except parameter and FLOP counts
of the full-size models (docs/protocol.md, "What matches the published work")."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import smoke_model
from torch import nn

import stbench
from stbench.models.base import RecurrentTemporal, upgrade_state_dict
from stbench.models.patch_codec import PatchDecoder, PatchEncoder
from stbench.models.recurrent import ConvLSTM, ConvLSTMCell, PredRNN, PredRNNv2, STLSTMCell
from stbench.models.sampling import SamplingSchedule, default_schedule, make_schedule
from stbench.registry import MODELS, TEMPORAL

SMALL = dict(in_shape=(4, 1, 16, 16), t_out=3)  # patch 4 -> latent (16, 4, 4)
SMOKE_RNN = ("convlstm", "predrnn", "predrnn_v2")  # at their smoke sizes: 2 x 8 hidden, filter 3


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def small_batch(B: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t_in, C, H, W = SMALL["in_shape"]
    return torch.rand(B, t_in, C, H, W, generator=g), torch.rand(B, SMALL["t_out"], C, H, W, generator=g)


# ---------------------------------------------------------------------------------------------
# Published parameter counts and FLOPs
# ---------------------------------------------------------------------------------------------
def _rnn_params(kind: str, c_lat: int = 16, nh: int = 128, k: int = 5, layers: int = 4) -> int:
    """Hand count from the published cell definitions (bias-free convolutions)."""
    total = nh * c_lat  # 1x1 head: top hidden -> latent channels
    for l in range(layers):
        c_in = c_lat if l == 0 else nh
        if kind == "convlstm":  # conv_x (c_in -> 4nh) + conv_h (nh -> 4nh)
            total += (c_in * 4 * nh + nh * 4 * nh) * k * k
        else:  # conv_x (c_in -> 7nh) + conv_h (nh -> 4nh) + conv_m (nh -> 3nh) + conv_o (2nh -> nh) + 1x1
            total += (c_in * 7 * nh + nh * 4 * nh + nh * 3 * nh + 2 * nh * nh) * k * k + 2 * nh * nh
    if kind == "predrnn_v2":
        total += nh * nh  # one 1x1 adapter shared by all layers
    return total


def test_param_counts_match_published():
    counts = {name: n_params(stbench.create_model(name)) for name in ("convlstm", "predrnn", "predrnn_v2")}
    assert counts == {"convlstm": 11_675_648, "predrnn": 23_838_720, "predrnn_v2": 23_855_104}
    for name, n in counts.items():
        assert n == _rnn_params(name)
    assert round(counts["predrnn"] / 1e6, 1) == 23.8
    assert round(counts["predrnn_v2"] / 1e6, 1) == 23.9
    # The published ConvLSTM 15.0M also counts a conv_o (2*128 -> 128, 5x5, bias-free) that the peer's
    # ConvLSTM cell builds in each of its 4 layers and never uses; stbench does not carry it.
    dead_conv_o = 4 * (2 * 128) * 128 * 5 * 5
    assert dead_conv_o == 3_276_800
    assert counts["convlstm"] + dead_conv_o == 14_952_448
    assert round((counts["convlstm"] + dead_conv_o) / 1e6, 1) == 15.0


class _Traced(nn.Module):
    """What fvcore traces: the forecast, plus the aux loss where the forward computes one (tracing drops
    ops whose results are not returned; the published PredRNN.V2 forward returns its loss)."""

    def __init__(self, m: nn.Module) -> None:
        super().__init__()
        self.m = m

    def forward(self, x: torch.Tensor):
        out = self.m(x)
        return out.pred if out.aux_loss is None else (out.pred, out.aux_loss)


def _fvcore_flops(model: nn.Module) -> int:
    from fvcore.nn import FlopCountAnalysis

    fca = FlopCountAnalysis(_Traced(model).eval(), (torch.zeros(1, 10, 1, 64, 64),))
    fca.unsupported_ops_warnings(False)
    fca.uncalled_modules_warnings(False)
    return int(fca.total())


def _rnn_flops(kind: str, hw: int = 16 * 16, steps: int = 19) -> int:
    """Multiply-accumulates of the 19-step unroll: every conv, per output position, in_ch * k * k * out_ch."""
    nh, c_lat, k = 128, 16, 5
    per_step = c_lat * nh  # head
    for l in range(4):
        c_in = c_lat if l == 0 else nh
        if kind == "convlstm":
            per_step += (c_in + nh) * 4 * nh * k * k
        else:
            per_step += (c_in + nh) * 7 * nh * k * k + 2 * nh * nh * k * k + 2 * nh * nh
            if kind == "predrnn_v2":
                per_step += 2 * nh * nh  # adapter on dc and on dm
    return per_step * hw * steps


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("name,published", [("convlstm", 56.8), ("predrnn", 116.0), ("predrnn_v2", 116.6)])
def test_fvcore_flops_match_published(name, published):
    flops = _fvcore_flops(stbench.create_model(name))
    assert flops == _rnn_flops(name)
    assert round(flops / 1e9, 1) == published


# ---------------------------------------------------------------------------------------------
# Cells against the gate equations written out by hand
# ---------------------------------------------------------------------------------------------
def _conv(x, w):
    return F.conv2d(x, w, padding=w.shape[-1] // 2)


def test_convlstm_cell_matches_gate_equations():
    torch.manual_seed(0)
    c_in, nh, k = 3, 5, 3
    cell = ConvLSTMCell(c_in, nh, k)
    x, h, c = torch.randn(2, c_in, 6, 7), torch.randn(2, nh, 6, 7), torch.randn(2, nh, 6, 7)
    wx, wh = cell.conv_x.weight, cell.conv_h.weight  # (4nh, c_in | nh, k, k), outputs (i, f, g, o)

    def gate(j):
        return _conv(x, wx[j * nh:(j + 1) * nh]) + _conv(h, wh[j * nh:(j + 1) * nh])

    i, f, g, o = torch.sigmoid(gate(0)), torch.sigmoid(gate(1) + 1.0), torch.tanh(gate(2)), torch.sigmoid(gate(3))
    c_ref = f * c + i * g
    h_ref = o * torch.tanh(c_ref)
    h_new, c_new = cell(x, h, c)
    torch.testing.assert_close(c_new, c_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h_new, h_ref, rtol=1e-5, atol=1e-5)
    assert all(m.bias is None for m in cell.modules() if isinstance(m, nn.Conv2d))


# cells that ran one convolution over cat([a, b]) until 2026-12: (the older key, its two parts now)
CONCATENATED_UNTIL_2026_12 = {"ConvLSTMCell": ("conv_xh", "conv_x", "conv_h"),
                              "MIMNCell": ("conv_xh", "conv_x", "conv_h"),
                              "GradientHighway": ("conv_xz", "conv_x", "conv_z")}


@pytest.mark.parametrize("name", ["convlstm", "mim", "predrnnpp"])
def test_weights_saved_with_the_concatenated_gate_conv_still_load(name):
    """Weights saved in the older form (one convolution over the concatenated inputs) load into the
    per-source convolutions and give the same forecast. The older state dict is written here from that
    form's definition: its weight is [W_a | W_b] along the input channels."""
    torch.manual_seed(0)
    inputs, _ = small_batch()
    net = smoke_model(name, **SMALL).eval()
    old, n_fused = dict(net.state_dict()), 0
    for path, mod in net.named_modules():
        if type(mod).__name__ in CONCATENATED_UNTIL_2026_12:
            fused, a, b = CONCATENATED_UNTIL_2026_12[type(mod).__name__]
            wa, wb = old.pop(f"{path}.{a}.weight"), old.pop(f"{path}.{b}.weight")
            old[f"{path}.{fused}.weight"] = torch.cat([wa, wb], dim=1)
            x, y = torch.randn(1, wa.shape[1], 5, 5), torch.randn(1, wb.shape[1], 5, 5)
            k = wa.shape[-1] // 2  # the older form's maths: one convolution over the concatenation
            torch.testing.assert_close(F.conv2d(torch.cat([x, y], 1), old[f"{path}.{fused}.weight"], padding=k),
                                       getattr(mod, a)(x) + getattr(mod, b)(y), rtol=1e-5, atol=1e-5)
            n_fused += 1
    assert n_fused >= 1
    torch.manual_seed(1)
    loaded = smoke_model(name, **SMALL).eval()
    upgraded = upgrade_state_dict(loaded, old)  # what stbench.weights checks before loading
    assert {k: v.shape for k, v in upgraded.items()} == {k: v.shape for k, v in net.state_dict().items()}
    loaded.load_state_dict(old, strict=True)
    with torch.no_grad():
        assert torch.equal(loaded(inputs).pred, net(inputs).pred)


def test_stlstm_cell_matches_gate_equations():
    torch.manual_seed(0)
    c_in, nh, k = 3, 4, 3
    cell = STLSTMCell(c_in, nh, k)
    x = torch.randn(2, c_in, 5, 6)
    h, c, m = (torch.randn(2, nh, 5, 6) for _ in range(3))
    wx, wh, wm = cell.conv_x.weight, cell.conv_h.weight, cell.conv_m.weight
    # published gate order: conv_x (i, f, g, i', f', g', o), conv_h (i, f, g, o), conv_m (i', f', g')

    def blk(w, j):
        return w[j * nh:(j + 1) * nh]

    def g_h(j):  # gate j of the C path from x and h; j = 3 is o
        return _conv(x, blk(wx, 6 if j == 3 else j)) + _conv(h, blk(wh, j))

    def g_m(j):  # gate j of the M path from x and M
        return _conv(x, blk(wx, 3 + j)) + _conv(m, blk(wm, j))

    i, f, g = torch.sigmoid(g_h(0)), torch.sigmoid(g_h(1) + 1.0), torch.tanh(g_h(2))
    c_ref = f * c + i * g
    i2, f2, g2 = torch.sigmoid(g_m(0)), torch.sigmoid(g_m(1) + 1.0), torch.tanh(g_m(2))
    m_ref = f2 * m + i2 * g2
    mem = torch.cat([c_ref, m_ref], dim=1)
    o = torch.sigmoid(g_h(3) + _conv(mem, cell.conv_o.weight))
    h_ref = o * torch.tanh(F.conv2d(mem, cell.conv_last.weight))
    h_new, c_new, m_new, dc, dm = cell(x, h, c, m)
    for got, ref in ((c_new, c_ref), (m_new, m_ref), (h_new, h_ref), (dc, i * g), (dm, i2 * g2)):
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    assert all(mod.bias is None for mod in cell.modules() if isinstance(mod, nn.Conv2d))


def test_stlstm_convs_have_published_shapes():
    # conv_x (c_in -> 7nh), conv_h (nh -> 4nh), conv_m (nh -> 3nh), conv_o (2nh -> nh, k), conv_last (1x1)
    c_in, nh, k = 16, 128, 5
    cell = STLSTMCell(c_in, nh, k)
    shapes = {n: tuple(p.shape) for n, p in cell.named_parameters()}
    assert shapes == {"conv_x.weight": (7 * nh, c_in, k, k), "conv_h.weight": (4 * nh, nh, k, k),
                      "conv_m.weight": (3 * nh, nh, k, k), "conv_o.weight": (nh, 2 * nh, k, k),
                      "conv_last.weight": (nh, 2 * nh, 1, 1)}


def test_zigzag_memory_flows_from_top_to_bottom():
    torch.manual_seed(0)
    tm = PredRNN(in_shape=(4, 16, 4, 4), t_out=2, num_hidden=(6, 6, 6), filter_size=3)
    x = torch.randn(2, 16, 4, 4)
    state = tm.init_state(x)
    _, (hs, cs, m_top), _ = tm.step(x, state)
    # layer 1 at t+1 must read the top layer's M: recompute layer 1 by hand with that M
    h1, c1, m1, _, _ = tm.cells[0](x, hs[0], cs[0], m_top)
    _, (hs2, cs2, _), _ = tm.step(x, (hs, cs, m_top))
    torch.testing.assert_close(hs2[0], h1)
    torch.testing.assert_close(cs2[0], c1)


def test_predrnn_v2_decoupling_loss_is_the_published_formula():
    torch.manual_seed(0)
    tm = PredRNNv2(in_shape=(4, 16, 4, 4), t_out=2, num_hidden=(6, 6), filter_size=3, decouple_beta=0.1)
    x = torch.randn(3, 16, 4, 4)
    state = tm.init_state(x)
    _, state, _ = tm.step(x, state)
    # second step: recompute dc, dm per layer by hand, adapter, normalise over H*W, mean |cos|
    hs, cs, m = state
    per_layer, inp = [], x
    for cell, h, c in zip(tm.cells, hs, cs):
        inp, c, m, dc, dm = cell(inp, h, c, m)
        a = F.normalize(tm.adapter(dc).flatten(2), dim=2)
        b = F.normalize(tm.adapter(dm).flatten(2), dim=2)
        per_layer.append(torch.mean(torch.abs(torch.cosine_similarity(a, b, dim=2))))
    _, _, aux = tm.step(x, state)
    torch.testing.assert_close(aux, 0.1 * torch.stack(per_layer).mean())


def test_predrnn_needs_equal_widths_but_convlstm_does_not():
    with pytest.raises(ValueError, match="same width"):
        PredRNN(in_shape=(4, 16, 4, 4), t_out=2, num_hidden=(8, 4))
    tm = ConvLSTM(in_shape=(4, 16, 4, 4), t_out=2, num_hidden="8,4", filter_size=3)
    assert tm.num_hidden == (8, 4)
    y, aux = tm(torch.randn(2, 4, 16, 4, 4), 2)
    assert y.shape == (2, 5, 16, 4, 4) and aux is None


def test_recurrent_modules_share_the_one_time_loop():
    for name in ("convlstm", "predrnn", "predrnn_v2"):
        cls = TEMPORAL.get(name)
        assert issubclass(cls, RecurrentTemporal)
        assert cls.forward is RecurrentTemporal.forward


# ---------------------------------------------------------------------------------------------
# Scheduled sampling
# ---------------------------------------------------------------------------------------------
def test_linear_schedule_values():
    s = make_schedule(default_schedule("predrnn"))
    assert s.kind == "linear"
    assert s.eta(0) == (1.0, 1.0)
    assert s.eta(25_000) == pytest.approx((1.0, 0.5))
    assert s.eta(50_000) == (1.0, 0.0)
    assert s.eta(60_000) == (1.0, 0.0)
    assert default_schedule("convlstm") == default_schedule("predrnn")


def test_reverse_schedule_values():
    s = make_schedule(default_schedule("predrnn_v2"))
    assert s.kind == "reverse"
    assert s.eta(0) == (0.5, 0.5)
    assert s.eta(25_000) == pytest.approx((0.5, 0.5))  # r_eta = 1 - 0.5 * exp(0)
    assert s.eta(30_000) == pytest.approx((1 - 0.5 * math.exp(-1.0), 0.4))
    assert s.eta(50_000) == (1.0, 0.0)
    assert s.eta(60_000) == (1.0, 0.0)


def test_teacher_and_free_schedules():
    assert make_schedule("teacher").eta(123) == (1.0, 1.0)
    assert make_schedule({"kind": "free"}).eta(0) == (1.0, 0.0)
    assert make_schedule(None).kind == "free"
    assert make_schedule(None, temporal="predrnn_v2").kind == "reverse"
    with pytest.raises(ValueError, match="unknown sampling schedule kind"):
        make_schedule("sometimes")
    with pytest.raises(ValueError, match="does not take"):
        make_schedule({"kind": "linear", "eta": 1.0})


def test_masks():
    t_in, t_out, B = 10, 10, 64
    lin = make_schedule("linear")
    m = lin.mask(0, B, t_in, t_out, "cpu")
    assert m.shape == (B, 18) and m.dtype == torch.float32
    assert torch.equal(m, torch.ones(B, 18))  # eta = 1 at step 0
    m = lin.mask(60_000, B, t_in, t_out, "cpu")
    assert torch.equal(m[:, :9], torch.ones(B, 9)) and torch.equal(m[:, 9:], torch.zeros(B, 9))
    assert torch.equal(make_schedule("free").mask(0, B, t_in, t_out, "cpu"), m)
    g = torch.Generator().manual_seed(0)
    m = lin.mask(25_000, 4096, t_in, t_out, "cpu", generator=g)
    assert set(m.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(m[:, :9], torch.ones(4096, 9))
    assert abs(m[:, 9:].mean().item() - 0.5) < 0.02
    rev = make_schedule("reverse")
    m = rev.mask(0, 4096, t_in, t_out, "cpu", generator=torch.Generator().manual_seed(1))
    assert abs(m[:, :9].mean().item() - 0.5) < 0.02 and abs(m[:, 9:].mean().item() - 0.5) < 0.02
    m2 = rev.mask(0, 4096, t_in, t_out, "cpu", generator=torch.Generator().manual_seed(1))
    assert torch.equal(m, m2)
    assert make_schedule("teacher").mask(0, 2, 1, 1, "cpu").shape == (2, 0)


def test_schedule_is_a_frozen_dataclass():
    s = SamplingSchedule(kind="linear", rate=1e-4, stop_iter=100)
    assert s.eta(50) == pytest.approx((1.0, 0.995))
    with pytest.raises(AttributeError):
        s.kind = "free"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# The time loop through STModel: teacher forcing, test mode, smoke sizes
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SMOKE_RNN)
def test_teacher_forcing_with_eta_one_equals_hand_loop(name):
    torch.manual_seed(0)
    model = smoke_model(name, **SMALL).train()
    inputs, targets = small_batch()
    t_in, t_out = SMALL["in_shape"][0], SMALL["t_out"]
    mask = make_schedule("teacher").mask(0, inputs.shape[0], t_in, t_out, "cpu")
    out = model(inputs, targets, sampling_mask=mask)
    # by hand: every step reads the true frame
    frames = torch.cat([inputs, targets[:, :-1]], dim=1)  # (B, T_in + T_out - 1, C, H, W)
    tm = model.temporal
    z = F.pixel_unshuffle(frames.flatten(0, 1), 4).unflatten(0, frames.shape[:2])
    state, ys, auxes = tm.init_state(z[:, 0]), [], []
    for t in range(z.shape[1]):
        y, state, aux = tm.step(z[:, t], state)
        ys.append(F.pixel_shuffle(y, 4))
        auxes.append(aux)
    ref = torch.stack(ys, dim=1)
    torch.testing.assert_close(out.all_frames, ref)
    torch.testing.assert_close(out.pred, ref[:, t_in - 1:])
    if auxes[0] is None:
        assert out.aux_loss is None
    else:
        torch.testing.assert_close(out.aux_loss, torch.stack(auxes).mean())


@pytest.mark.parametrize("name", SMOKE_RNN)
def test_test_mode_never_reads_targets(name):
    torch.manual_seed(0)
    model = smoke_model(name, **SMALL)
    inputs, targets = small_batch()
    noise = torch.randn_like(targets) * 100
    for mode in (model.eval, model.train):
        mode()
        with torch.no_grad():
            ref = model(inputs)
            assert torch.equal(model(inputs, targets).pred, ref.pred)
            assert torch.equal(model(inputs, noise).pred, ref.pred)
            # the free-running training mask is the test-time rule
            free = make_schedule("free").mask(0, inputs.shape[0], 4, 3, "cpu")
            torch.testing.assert_close(model(inputs, targets, sampling_mask=free).all_frames, ref.all_frames)
    with pytest.raises(ValueError, match="needs the targets"):
        model(inputs, sampling_mask=free)


@pytest.mark.parametrize("name", SMOKE_RNN)
def test_smoke_forward_backward_and_determinism(name):
    assert MODELS.entry(name).meta["family"] == "recurrent"
    inputs, targets = small_batch()
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = smoke_model(name, **SMALL).train()
        mask = make_schedule("reverse").mask(0, 2, 4, 3, "cpu", generator=torch.Generator().manual_seed(0))
        out = model(inputs, targets, sampling_mask=mask)
        assert out.pred.shape == targets.shape
        assert out.all_frames.shape == (2, 6, 1, 16, 16)
        loss, parts = model.loss(out, inputs, targets)
        assert ("aux" in parts) == name.startswith("predrnn_v2")
        loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
        outs.append(out.pred.detach())
    assert torch.equal(outs[0], outs[1])


def test_channels_last_gives_the_same_forecast():
    torch.manual_seed(0)
    model = smoke_model("predrnn_v2", **SMALL).eval()
    inputs, _ = small_batch()
    with torch.no_grad():
        ref = model(inputs)
        model = model.to(memory_format=torch.channels_last)
        out = model(inputs)
    torch.testing.assert_close(out.pred, ref.pred, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.aux_loss, ref.aux_loss, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Patch codec
# ---------------------------------------------------------------------------------------------
def test_patch_codec_roundtrip_and_published_order():
    enc = PatchEncoder(in_shape=(1, 64, 64))
    dec = PatchDecoder(latent_shape=enc.latent_shape, out_shape=(1, 64, 64), skip_channels=enc.skip_channels)
    assert enc.latent_shape == (16, 16, 16) and enc.skip_channels == 0 and n_params(enc) + n_params(dec) == 0
    x = torch.rand(3, 1, 64, 64)
    z, skip = enc(x)
    assert z.shape == (3, 16, 16, 16) and skip is None
    assert torch.equal(dec(z, None), x)
    # the published reshape_patch: (N, H/p, p, W/p, p, C) -> channels ordered (row, col, c); the same for C = 1
    p = 4
    published = x.permute(0, 2, 3, 1).reshape(3, 16, p, 16, p, 1).permute(0, 1, 3, 2, 4, 5).reshape(3, 16, 16, 16)
    assert torch.equal(z, published.permute(0, 3, 1, 2))
    with pytest.raises(ValueError, match="divisible"):
        PatchEncoder(in_shape=(1, 30, 30))
    with pytest.raises(ValueError, match="pair it with the patch encoder"):
        PatchDecoder(latent_shape=(8, 16, 16), out_shape=(1, 64, 64))


# ---------------------------------------------------------------------------------------------
# Composition: {simvp, patch} encoders x {recurrent, parallel} temporal modules
# ---------------------------------------------------------------------------------------------
ENCODER_KW = {"simvp": dict(hid_S=8, N_S=2), "patch": dict(patch_size=4)}
NAMED = [n for n in MODELS.names() if not MODELS.entry(n).meta.get("tiny") and MODELS.entry(n).source == "built-in"]


@pytest.mark.parametrize("encoder", list(ENCODER_KW))
@pytest.mark.parametrize("name", NAMED)
def test_cross_product(encoder, name):
    """Registry-driven: every named model's temporal module (at its smoke sizes) over each generic codec.
    A module that cannot take that latent must say so up front in one line naming what it needs
    (e.g. PhyDNet's residual decoder needs rnn_hidden == latent channels); anything else must train."""
    from stbench.recipes import load_recipe

    torch.manual_seed(0)
    kw = load_recipe("mmnist", name, "smoke").model_kw
    try:
        model = stbench.create_model(f"{name}@{encoder}", **SMALL, recipe_defaults=kw, **ENCODER_KW[encoder])
    except ValueError as exc:  # a declared constraint of the module, not a crash
        msg = str(exc)
        assert "\n" not in msg and "need" in msg, msg
        pytest.skip(f"declared incompatible: {msg}")
    assert model.hparams["encoder"] == encoder and model.names["temporal"] == MODELS.get(name)().names["temporal"]
    inputs, targets = small_batch()
    model.train()
    mask = make_schedule("linear").mask(25_000, 2, 4, 3, "cpu") if model.recurrent else None
    out = model(inputs, targets, sampling_mask=mask)
    assert out.pred.shape == targets.shape
    loss, _ = model.loss(out, inputs, targets)
    loss.backward()
    model.eval()
    with torch.no_grad():
        assert model(inputs).pred.shape == targets.shape


def test_full_size_swaps_build():
    m = stbench.create_model("convlstm@simvp", in_shape=(2, 1, 16, 16), t_out=2)
    assert m.recurrent and m.encoder.latent_shape == (64, 4, 4) and m.temporal.num_hidden == (128,) * 4
    with torch.no_grad():
        assert m.eval()(torch.rand(1, 2, 1, 16, 16)).pred.shape == (1, 2, 1, 16, 16)
    m = stbench.create_model("tau@patch", in_shape=(2, 1, 16, 16), t_out=3)
    assert not m.recurrent and m.encoder.latent_shape == (16, 4, 4) and m.ddr_alpha == 0.1
    with torch.no_grad():
        assert m.eval()(torch.rand(1, 2, 1, 16, 16)).pred.shape == (1, 3, 1, 16, 16)
