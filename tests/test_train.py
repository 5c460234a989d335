"""The training loop learns: tests that fail when optimisation, model selection, gradient accumulation,
clipping or bf16 training break. Tiny model (ConvLSTM over a 2x2 patch codec, one 16-channel layer) on a
tiny synthetic dataset (tests/toydata.py: a 3x3 square moving at constant velocity on 16x16 frames); CPU,
seconds each."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from toydata import SQ, T_IN, T_OUT, MovingSquare, square_sequences

import stbench
from stbench import train as T
from stbench.metrics import MetricAccumulator, floor_predictions
from stbench.precision import cpu_supports_bf16, make_precision

CPU = torch.device("cpu")
FP32 = make_precision("fp32", CPU)
BASE_CFG = {"batch_size": 8, "optimizer": "adam", "scheduler": "onecycle", "lr": 5e-3,
            "sampling": {"kind": "teacher"}}  # teacher forcing: no random mask, so runs are comparable


def tiny_model() -> stbench.STModel:
    torch.manual_seed(0)
    return stbench.create_model("convlstm", in_shape=(T_IN, 1, 16, 16), t_out=T_OUT, patch_size=2,
                                num_hidden=(16,), filter_size=3)


def run(cfg: dict, model=None, ds=None, hooks=None, prec=FP32):
    return T.train(model or tiny_model(), ds or MovingSquare(), {**BASE_CFG, **cfg}, device=CPU, prec=prec, seed=0,
                   ckpt_path=None, hooks=hooks)


def test_floors_of_the_toy_data_by_hand():
    """Predicting black frames misses the 3x3 square of ones: SSE 9 per frame. Copy-last misses where the
    square moved: 2 * (9 - overlap) per frame, computed here from positions (not with stbench.metrics)."""
    ds = MovingSquare()
    for kind, want in (("zeros", 9.0), ("copy_last", None)):
        acc = MetricAccumulator(("mse",))
        for x, y in ds.batches("val", 32):
            acc.update(floor_predictions(kind, x, T_OUT), y)
        if want is None:
            seq = square_sequences(np.random.default_rng([0, 1]), 32).astype(float) / 255
            last = seq[:, T_IN - 1]
            want = float(np.mean([2 * (SQ * SQ - (last[i] * seq[i, t]).sum())
                                  for i in range(32) for t in range(T_IN, T_IN + T_OUT)]))
        assert acc.result()["mse"] == pytest.approx(want)


def test_tiny_model_learns_and_beats_both_floors():
    """Five epochs of 8 steps: the training loss falls by at least 30% and the selected weights beat the
    predict-zeros floor (9.0, the better of the two floors here) on validation by at least 15%."""
    model, state = run({"epochs": 5})
    losses = [h["train_loss"] for h in state.history]
    assert losses[-1] <= 0.7 * losses[0], losses
    assert state.best_val <= 0.85 * 9.0, [h["val_mse"] for h in state.history]
    # and the returned model scores that on validation when evaluated independently of the loop
    res, _ = T.evaluate(model, MovingSquare().batches("val", 32), CPU, FP32, metrics=("mse",))
    assert res["mse"] == pytest.approx(state.best_val, rel=1e-6)


def test_returned_weights_are_the_best_validation_ones():
    """The last epoch is sabotaged (weights scrambled after every step), so it validates worst; the loop
    must hand back the weights it validated at the best epoch, not the last ones."""
    model = tiny_model()
    snaps: dict[int, dict[str, torch.Tensor]] = {}

    def scramble(epoch: int, batch: int) -> None:
        if epoch == 3:
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(torch.randn_like(p))

    hooks = T.LoopHooks(after_update=scramble,
                        after_validate=lambda e, m: snaps.__setitem__(e, copy.deepcopy(m.state_dict())))
    out, state = run({"epochs": 3}, model=model, hooks=hooks)
    val = [h["val_mse"] for h in state.history]
    best = 1 + int(np.argmin(val))
    assert best != 3 and state.best_epoch == best, val
    got = out.state_dict()
    assert all(torch.equal(got[k], snaps[best][k]) for k in got)
    assert not all(torch.equal(got[k], snaps[3][k]) for k in got)


def _grads_of_first_step(cfg: dict) -> list[torch.Tensor]:
    grads: list[list[torch.Tensor]] = []
    hooks = T.LoopHooks(before_update=lambda m: grads.append([p.grad.clone() for p in m.parameters()]))
    run({"epochs": 1, "train_size": 8, **cfg}, hooks=hooks)
    return grads[0]


def test_accumulating_two_half_batches_equals_one_full_batch():
    full = _grads_of_first_step({"batch_size": 8})
    accum = _grads_of_first_step({"batch_size": 4, "accum_steps": 2})
    half = _grads_of_first_step({"batch_size": 4, "train_size": 4})  # the first half batch alone
    for g_full, g_acc in zip(full, accum):
        torch.testing.assert_close(g_acc, g_full, rtol=1e-5, atol=1e-7)
    assert any(not torch.allclose(g_h, g_f, rtol=1e-3) for g_h, g_f in zip(half, full))  # the test can fail


def _grad_norm(cfg: dict) -> float:
    norms: list[float] = []
    hooks = T.LoopHooks(before_update=lambda m: norms.append(
        float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in m.parameters()])))))
    run({"epochs": 1, "train_size": 8, **cfg}, hooks=hooks)
    return norms[0]


def test_clip_grad_clips_the_global_norm():
    raw = _grad_norm({})
    assert raw > 1e-3  # so that a limit of 1e-3 has something to clip
    assert _grad_norm({"clip_grad": 1e-3}) == pytest.approx(1e-3, rel=1e-4)
    assert _grad_norm({"clip_grad": 10 * raw}) == pytest.approx(raw, rel=1e-6)  # below the limit: untouched


@pytest.mark.skipif(not cpu_supports_bf16(), reason="this CPU has no bf16 support")
def test_bf16_training_runs_and_learns():
    prec = make_precision("bf16", CPU)
    assert prec.name == "bf16"
    model = prec.prepare(tiny_model())
    _, state = run({"epochs": 3}, model=model, prec=prec)
    losses = [h["train_loss"] for h in state.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert state.best_val < 9.0  # beats the zeros floor in bf16 too
