"""The cosine schedule (OpenSTL's `sched = 'cosine'` = timm's CosineLRScheduler, per epoch, with warm-up): lr values
by hand at a few steps, and a run resumed from its checkpoint continues the same lr sequence."""

from __future__ import annotations

import math

import pytest
import torch
from toydata import T_IN, T_OUT, MovingSquare

import stbench
from stbench import train as T
from stbench.precision import make_precision

CPU = torch.device("cpu")


def _lrs(cfg: dict, steps: int, total: int) -> list[float]:
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=cfg["lr"])
    sched = T.make_scheduler(opt, cfg, total)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])  # the lr the next optimizer step uses
        opt.step()
        sched.step()
    return out


def test_cosine_lr_by_hand_with_warmup():
    # OpenSTL weather mv TAU: lr 5e-3, 50 epochs, 5 warm-up epochs; defaults warmup_lr 1e-5, min_lr 1e-6
    cfg = {"scheduler": "cosine", "lr": 5e-3, "epochs": 50, "warmup_epochs": 5}
    lrs = _lrs(cfg, 50 * 3, 50 * 3)  # 3 steps per epoch
    by_epoch = {e: lrs[3 * e: 3 * e + 3] for e in range(50)}
    assert all(len(set(v)) == 1 for v in by_epoch.values())  # constant within an epoch
    assert by_epoch[0][0] == pytest.approx(1e-5, rel=1e-9)  # warm-up starts at warmup_lr
    assert by_epoch[2][0] == pytest.approx(1e-5 + 2 * (5e-3 - 1e-5) / 5, rel=1e-9)  # 0.002006
    assert by_epoch[2][0] == pytest.approx(0.002006, rel=1e-9)
    # after warm-up the cosine runs over all 50 epochs (no warm-up prefix): epoch 5 is cos(pi/10), not the peak
    assert by_epoch[5][0] == pytest.approx(1e-6 + 0.5 * (5e-3 - 1e-6) * (1 + math.cos(math.pi * 5 / 50)), rel=1e-9)
    assert by_epoch[5][0] == pytest.approx(0.0048776, rel=1e-4)
    assert by_epoch[25][0] == pytest.approx((5e-3 + 1e-6) / 2, rel=1e-9)  # half-way
    assert by_epoch[49][0] == pytest.approx(1e-6 + 0.5 * (5e-3 - 1e-6) * (1 + math.cos(math.pi * 49 / 50)), rel=1e-9)


def test_cosine_lr_without_warmup_starts_at_lr():
    # OpenSTL weather t2m ConvLSTM: lr 5e-4, cosine, warmup_epoch 0, 50 epochs; min_lr changed by the recipe
    lrs = _lrs({"scheduler": "cosine", "lr": 5e-4, "epochs": 4, "min_lr": 1e-5}, 8, 8)
    want = [1e-5 + 0.5 * (5e-4 - 1e-5) * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    assert lrs == pytest.approx([w for w in want for _ in range(2)], rel=1e-9)
    assert lrs[0] == pytest.approx(5e-4) and lrs[4] == pytest.approx((5e-4 + 1e-5) / 2)


def _tiny() -> stbench.STModel:
    torch.manual_seed(0)
    return stbench.create_model("convlstm", in_shape=(T_IN, 1, 16, 16), t_out=T_OUT, patch_size=2,
                                num_hidden=(8,), filter_size=3)


class _Stop(Exception):
    pass


def test_resumed_run_continues_the_same_lr_sequence(tmp_path):
    cfg = {"batch_size": 8, "optimizer": "adam", "scheduler": "cosine", "lr": 5e-3, "epochs": 4, "warmup_epochs": 1,
           "train_size": 16, "val_size": 8, "sampling": {"kind": "teacher"}}
    prec = make_precision("fp32", CPU)

    def lr_log(seen: list[float]) -> T.LoopHooks:
        return T.LoopHooks(before_update=lambda m: seen.append(opt_of[0].param_groups[0]["lr"]))

    # the optimizer is created inside the loop: catch it through Adam's constructor
    opt_of: list[torch.optim.Optimizer] = []
    orig = T.make_optimizer

    def spy(model, c):
        opt = orig(model, c)
        opt_of[:] = [opt]
        return opt

    T.make_optimizer = spy
    try:
        full: list[float] = []
        T.train(_tiny(), MovingSquare(), cfg, device=CPU, prec=prec, seed=0, ckpt_path=None, hooks=lr_log(full))
        first: list[float] = []
        ckpt = tmp_path / "c.pt"
        hooks = lr_log(first)

        def stop(epoch: int) -> None:
            if epoch == 2:
                raise _Stop

        hooks.after_checkpoint = stop
        with pytest.raises(_Stop):
            T.train(_tiny(), MovingSquare(), cfg, device=CPU, prec=prec, seed=0, ckpt_path=ckpt, hooks=hooks)
        rest: list[float] = []
        T.train(_tiny(), MovingSquare(), cfg, device=CPU, prec=prec, seed=0, ckpt_path=ckpt,
                resume=T.load_checkpoint(ckpt), hooks=lr_log(rest))
    finally:
        T.make_optimizer = orig
    assert len(full) == 8 and len(first) == 4
    assert first + rest == pytest.approx(full, rel=1e-12)
    want = [1e-5] * 2 + [1e-6 + 0.5 * (5e-3 - 1e-6) * (1 + math.cos(math.pi * e / 4)) for e in (1, 1, 2, 2, 3, 3)]
    assert full == pytest.approx(want, rel=1e-9)
