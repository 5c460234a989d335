"""Training budgets (stbench.budget): the arithmetic against hand-computed values, and the training loop
spending exactly the planned micro-batches, optimizer steps and sequences (or stopping on the clock)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from toydata import T_IN, T_OUT, MovingSquare

import stbench
from stbench import train as T
from stbench.budget import Budget, make_plan, optimizer_steps, plan, resolve_sampling
from stbench.errors import UserError
from stbench.precision import make_precision

CPU = torch.device("cpu")


def test_parse_and_label():
    assert Budget.parse("samples=4e3") == Budget("samples", 4000.0)
    assert Budget.parse(" FLOPS=2.5e15").label == "flops=2.5e15"
    assert Budget.parse("seconds=600").label == "seconds=600"
    for bad in ("4000", "epochs=3", "samples=", "samples=abc", "samples=-1", "samples=0", "seconds=inf"):
        with pytest.raises(UserError) as e:
            Budget.parse(bad)
        assert "\n" not in str(e.value) and "samples=4000" in str(e.value)


def test_samples_budget_by_hand():
    # 4,000 sequences at batch 8 = 500 micro-batches; 250 per epoch -> 2 epochs, 500 optimizer steps
    p = plan(Budget("samples", 4000), epochs=99, batches_per_epoch=250, batch_size=8)
    assert (p.batches, p.epochs, p.steps, p.samples) == (500, 2, 500, 4000)
    # 4,001 sequences need a 501st batch: a third epoch of ONE batch; 4,008 sequences are shown
    p = plan(Budget("samples", 4001), epochs=99, batches_per_epoch=250, batch_size=8)
    assert (p.batches, p.epochs, p.steps, p.samples) == (501, 3, 501, 4008)
    assert [p.batches_in_epoch(e) for e in range(3)] == [250, 250, 1]
    # two ranks of batch 8 show 16 sequences a step
    assert plan(Budget("samples", 4000), epochs=1, batches_per_epoch=125, batch_size=8, world_size=2).batches == 250


def test_accumulation_steps_by_hand():
    # 25 micro-batches, 10 per epoch, accumulating 3: epochs of 10, 10, 5 -> ceil(10/3) + ceil(10/3) + ceil(5/3)
    assert optimizer_steps(25, 10, 3) == 4 + 4 + 2
    assert make_plan(25, batches_per_epoch=10, batch_size=4, accum=3).steps == 10


def test_flops_and_seconds_budgets_by_hand():
    # 3e9 training FLOPs at 1e6 forward FLOPs per sequence: 3e9 / (3 x 1e6) = 1,000 sequences = 100 batches of 10
    p = plan(Budget("flops", 3e9), epochs=1, batches_per_epoch=40, batch_size=10, train_flops_per_seq=1e6)
    assert (p.batches, p.epochs, p.samples) == (100, 3, 1000)
    # 60 s at a measured 0.5 s per step: 120 steps planned, and a 60 s limit
    p = plan(Budget("seconds", 60), epochs=1, batches_per_epoch=50, batch_size=4, step_s=0.5)
    assert (p.batches, p.epochs, p.time_limit_s) == (120, 3, 60)
    with pytest.raises(UserError, match="samples=N"):
        plan(Budget("flops", 1e9), epochs=1, batches_per_epoch=1, batch_size=1, train_flops_per_seq=None)
    # no budget: the recipe's epochs
    assert plan(None, epochs=3, batches_per_epoch=7, batch_size=2).batches == 21


def test_sampling_schedules_follow_the_run():
    # relative: eta reaches 0 after 2/3 of 500 steps -> step 333, rate 1 / 333
    s = resolve_sampling({"kind": "linear", "relative": True, "stop_iter": 2 / 3}, steps=500, recipe_steps=1)
    assert s == {"kind": "linear", "stop_iter": 333, "rate": 1 / 333}
    r = resolve_sampling({"kind": "reverse", "relative": True, "r_sampling_step_1": 1 / 3, "r_sampling_step_2": 2 / 3,
                          "r_exp_alpha": 1 / 15}, steps=300, recipe_steps=1)
    assert (r["r_sampling_step_1"], r["r_sampling_step_2"]) == (100, 200) and math.isclose(r["r_exp_alpha"], 20)
    # absolute (published: 50,000 of PredRNN's 125,000 iterations) stretched to a 1,000-step budget: 400, rate x125
    p = resolve_sampling({"kind": "linear", "rate": 2e-5, "stop_iter": 50_000}, steps=1000, recipe_steps=125_000)
    assert p["stop_iter"] == 400 and math.isclose(p["rate"], 2.5e-3)
    # at the recipe's own length the published numbers stay exactly
    same = {"kind": "linear", "rate": 2e-5, "stop_iter": 50_000}
    assert resolve_sampling(same, steps=125_000, recipe_steps=125_000) == same


def _tiny():
    torch.manual_seed(0)
    return stbench.create_model("convlstm", in_shape=(T_IN, 1, 16, 16), t_out=T_OUT, patch_size=2, num_hidden=(8,),
                                filter_size=3)


CFG = {"batch_size": 8, "optimizer": "adam", "scheduler": "onecycle", "lr": 5e-3, "sampling": {"kind": "teacher"}}


def test_loop_spends_exactly_the_planned_batches():
    # 64 training sequences / batch 8 = 8 batches per epoch; 11 batches = one epoch and 3 batches of a second
    steps = []
    hooks = T.LoopHooks(after_update=lambda e, b: steps.append((e, b)))
    _, st = T.train(_tiny(), MovingSquare(), {**CFG, "epochs": 1, "train_batches": 11}, device=CPU,
                    prec=make_precision("fp32", CPU), seed=0, ckpt_path=None, hooks=hooks)
    assert steps == [(1, b) for b in range(1, 9)] + [(2, b) for b in range(1, 4)]
    assert (st.global_step, st.batches_done, st.epoch, len(st.history), st.stopped_by) == (11, 11, 2, 2, "plan")
    assert "val_mse" in st.history[-1]  # the partial last epoch is validated (and can be selected)


def test_lr_schedule_spans_the_budget():
    """OneCycle spans exactly the planned optimizer steps: the last of the 11 updates uses its final lr."""
    cfg = {**CFG, "epochs": 1, "train_batches": 11, "final_div_factor": 1e4}
    loop = T._Loop(_tiny(), MovingSquare(), cfg, device=CPU, prec=make_precision("fp32", CPU), seed=0,
                   ckpt_path=None, dist=T.DistInfo(), hooks=T.LoopHooks())
    assert loop.sched.total_steps == 11 and loop.epochs == 2
    used = []
    for _ in range(11):
        used.append(loop.opt.param_groups[0]["lr"])
        loop.opt.step()
        loop.sched.step()
    # OneCycle: from max_lr / 25 up to max_lr, then down to max_lr / 25 / final_div_factor at the last step
    assert math.isclose(used[0], 5e-3 / 25) and 0.95 * 5e-3 < max(used) <= 5e-3
    assert math.isclose(used[-1], 5e-3 / 25 / 1e4, rel_tol=1e-6)


def test_seconds_budget_stops_on_the_clock():
    import time

    slow = T.LoopHooks(after_update=lambda e, b: time.sleep(0.05))
    _, st = T.train(_tiny(), MovingSquare(), {**CFG, "epochs": 1, "train_batches": 1000, "time_limit_s": 0.3},
                    device=CPU, prec=make_precision("fp32", CPU), seed=0, ckpt_path=None, hooks=slow)
    assert st.stopped_by == "time" and 1 <= st.batches_done < 1000 and st.train_s >= 0.3
    assert len(st.history) == st.epoch  # the epoch it stopped in was validated and recorded


def test_run_records_its_budget(tmp_path):
    from stbench.cli import main

    rc = main(["run", "--models", "tau", "--preset", "smoke", "--budget", "samples=20", "--out", str(tmp_path),
               "--no-profile", "--test-size", "4"])
    assert rc == 0
    # a budget other than the preset's own (smoke: samples=32) has its own records folder (stbench.budget.budget_dir)
    rec = json.loads((tmp_path / "records/mmnist/smoke/samples=20/tau__seed0.json").read_text())
    assert rec["run_id"] == "mmnist/smoke/samples=20/tau__seed0" and rec["config"]["budget_dir"] == "samples=20"
    b = rec["budget"]
    # smoke: batch 4, 16 training sequences = 4 batches per epoch; 20 sequences = 5 batches = 2 epochs (4 + 1)
    assert (b["kind"], b["value"], b["label"], b["samples_seen"], b["epochs"], b["steps"]) == \
        ("samples", 20.0, "samples=20", 20, 2, 5)
    assert b["train_flops"] == 3 * b["train_flops_per_seq"] * 20 and b["train_flops_per_seq"] > 0
    assert rec["config"]["epochs"] == 2 and len(rec["history"]) == 2
