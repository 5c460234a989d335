"""Issue 24, class 1: Ctrl-C at ANY moment then resume reproduces the uninterrupted run bit for bit.

The interrupt is raised where a real SIGINT can land: inside a batch's forward pass (after BatchNorm has
updated its running statistics, before that batch's optimizer step), inside the optimizer update, in a
later micro-batch of a gradient-accumulation group, and in validation. In-process on the toy data
(tests/toydata.py): smoke TAU (BatchNorm in its translator) and a ConvLSTM (recurrent, no BatchNorm);
seconds each. The CLI path (SIGINT -> record ``interrupted`` -> ``--resume``) is in tests/test_harness.py.
"""

from __future__ import annotations

import pytest
import torch
from conftest import smoke_model
from toydata import T_IN, T_OUT, MovingSquare

from stbench import train as T
from stbench.precision import make_precision

CPU = torch.device("cpu")
FP32 = make_precision("fp32", CPU)
EPOCHS, N_TRAIN, BS = 3, 16, 4  # 4 batches per epoch, 12 optimizer steps


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if name == "tau":
        return smoke_model("tau", in_shape=(T_IN, 1, 16, 16), t_out=T_OUT)
    return smoke_model("convlstm", in_shape=(T_IN, 1, 16, 16), t_out=T_OUT, patch_size=2)


def _cfg(name: str, **kw) -> dict:
    cfg = {"epochs": EPOCHS, "batch_size": BS, "optimizer": "adam", "scheduler": "onecycle", "lr": 5e-3}
    if name != "tau":  # recurrent: a random scheduled-sampling mask drawn from the loop's generator every step
        cfg["sampling"] = {"kind": "linear", "start": 1.0, "rate": 0.05, "stop_iter": 20}
    return {**cfg, **kw}


class _Interrupt:
    """Raises KeyboardInterrupt at the ``n``-th call of the hook it is installed as (1-based, counted over the
    whole run), as a Ctrl-C landing at that moment would."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def __call__(self, *args):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return args[1] if len(args) == 2 and isinstance(args[1], torch.Tensor) else None  # on_loss returns the loss


def _train(name: str, cfg: dict, ckpt, hooks=None, resume=None):
    torch.manual_seed(0)
    return T.train(_model(name), MovingSquare(n_train=N_TRAIN), cfg, device=CPU, prec=FP32, seed=0, ckpt_path=ckpt,
                   hooks=hooks, resume=resume, log_every=1)


def _same(a: tuple, b: tuple) -> None:
    (ma, sa), (mb, sb) = a, b
    assert [h["train_loss"] for h in sa.history] == [h["train_loss"] for h in sb.history]
    assert [h["val_mse"] for h in sa.history] == [h["val_mse"] for h in sb.history]
    assert sa.global_step == sb.global_step and sa.best_epoch == sb.best_epoch
    da, db = ma.state_dict(), mb.state_dict()
    assert da.keys() == db.keys()
    diff = [k for k in da if not torch.equal(da[k], db[k])]
    assert not diff, diff  # parameters AND buffers (BatchNorm running stats, num_batches_tracked)


# (hook, n-th call): on_loss fires inside a batch's forward (BatchNorm stats of that batch already updated);
# before_update inside the optimizer update; after_validate in validation (epoch complete, not yet recorded)
# on_loss 1: before any checkpoint; 5: first batch of epoch 2 (nothing stepped in it yet); 7, 8: mid and last batch
POINTS = [("on_loss", 1), ("on_loss", 5), ("on_loss", 7), ("on_loss", 8), ("before_update", 6), ("after_validate", 2)]
_REFERENCE: dict = {}


def _uninterrupted(name: str, cfg: dict, tmp_path):
    key = (name, repr(sorted(cfg.items())))
    if key not in _REFERENCE:
        _REFERENCE[key] = _train(name, cfg, tmp_path / "a.pt")
    return _REFERENCE[key]


@pytest.mark.parametrize("name", ["tau", "convlstm"])
@pytest.mark.parametrize("hook, n", POINTS)
def test_interrupt_anywhere_then_resume_equals_uninterrupted(tmp_path, name, hook, n):
    cfg = _cfg(name)
    want = _uninterrupted(name, cfg, tmp_path)
    ck = tmp_path / "b.pt"
    with pytest.raises(KeyboardInterrupt):
        _train(name, cfg, ck, hooks=T.LoopHooks(**{hook: _Interrupt(n)}))
    if not ck.exists():  # interrupted before the first checkpoint: a fresh start is the resume
        got = _train(name, cfg, ck)
    else:
        got = _train(name, cfg, ck, resume=T.load_checkpoint(ck))
    _same(got, want)


def test_interrupt_inside_an_accumulation_group_equals_uninterrupted(tmp_path):
    """accum 2: the interrupt lands in the 2nd micro-batch of a group, after the first one's forward and
    backward touched BatchNorm and the gradients; neither may leak into the snapshot."""
    cfg = _cfg("tau", accum_steps=2)
    want = _uninterrupted("tau", cfg, tmp_path)
    ck = tmp_path / "b.pt"
    with pytest.raises(KeyboardInterrupt):
        _train("tau", cfg, ck, hooks=T.LoopHooks(on_loss=_Interrupt(8)))  # epoch 2, micro-batch 4 of 4
    assert T.load_checkpoint(ck)["state"]["batch_in_epoch"] == 2  # the snapshot is mid-epoch (after step 1 of 3)
    _same(_train("tau", cfg, ck, resume=T.load_checkpoint(ck)), want)


class _Killed(BaseException):
    """What SIGKILL leaves: no handler runs, so no mid-epoch snapshot; only the epoch checkpoints exist."""


@pytest.mark.parametrize("n", [3, 6, 11])
def test_kill_anywhere_then_resume_equals_uninterrupted(tmp_path, n):
    def kill(model, loss):
        kill.calls += 1
        if kill.calls == n:
            raise _Killed
        return loss

    kill.calls = 0
    cfg = _cfg("tau")
    want = _uninterrupted("tau", cfg, tmp_path)
    ck = tmp_path / "b.pt"
    with pytest.raises(_Killed):
        _train("tau", cfg, ck, hooks=T.LoopHooks(on_loss=kill))
    if n <= 4:  # killed in epoch 1: no checkpoint yet, a fresh start is the resume
        assert not ck.exists()
        _same(_train("tau", cfg, ck), want)
        return
    assert T.load_checkpoint(ck)["state"]["batch_in_epoch"] == 0  # an epoch checkpoint, not a snapshot
    _same(_train("tau", cfg, ck, resume=T.load_checkpoint(ck)), want)
