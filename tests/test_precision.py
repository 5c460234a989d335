"""Measured precision / layout choice and bounded profiling (issue 12)."""

import json
import os
import subprocess
import sys

import pytest
import torch

import stbench
from stbench import precision as P
from stbench.profile import profile_model

CPU = torch.device("cpu")


def _labels(cands):
    return [c.label for c in cands]


def test_candidates_follow_the_device_and_what_is_forced(monkeypatch):
    monkeypatch.setattr(P, "cpu_supports_bf16", lambda: False)
    assert _labels(P.candidates("auto", None, CPU)) == ["fp32 nchw", "fp32 channels_last"]
    monkeypatch.setattr(P, "cpu_supports_bf16", lambda: True)
    assert _labels(P.candidates("auto", None, CPU)) == ["fp32 nchw", "fp32 channels_last", "bf16 nchw",
                                                        "bf16 channels_last"]
    assert _labels(P.candidates("auto", "nchw", CPU)) == ["fp32 nchw", "bf16 nchw"]
    assert _labels(P.candidates("bf16", "auto", CPU)) == ["bf16 nchw", "bf16 channels_last"]
    assert _labels(P.candidates("fp32", "channels_last", CPU)) == ["fp32 channels_last"]
    assert len(P.candidates("fp32", None, CPU)) == 1  # forced precision, no layout: not measured
    with pytest.raises(ValueError, match="fp16 autocast is for CUDA"):
        P.candidates("fp16", None, CPU)
    with pytest.raises(ValueError, match="memory format"):
        P.candidates("auto", "nhwc", CPU)


def test_default_layout_depends_on_the_cpu(monkeypatch):
    monkeypatch.setattr(P, "cpu_capability", lambda: "AVX2")
    assert P.Precision("fp32", CPU).memory_format == "nchw"  # channels_last measured slower on AVX2
    assert P.Precision("bf16", CPU).memory_format == "channels_last"
    monkeypatch.setattr(P, "cpu_capability", lambda: "AVX512")
    assert P.Precision("fp32", CPU).memory_format == "channels_last"


def test_choice_takes_the_fastest_and_leaves_model_and_rng_alone(monkeypatch):
    fake = {"fp32 nchw": [0.030, 0.020], "fp32 channels_last": [0.012, 0.050]}  # best-of: channels_last
    monkeypatch.setattr(P, "cpu_supports_bf16", lambda: False)
    monkeypatch.setattr(P, "time_steps", lambda model, precs, batch, **kw: {p.label: fake[p.label] for p in precs})
    model = stbench.create_model("tau", in_shape=(4, 1, 16, 16), t_out=4, hid_S=4, N_S=2, hid_T=8, N_T=2,
                                 mlp_ratio=2.0)
    c = P.choose_precision(model, 2, CPU, "auto", None)
    assert c.measured and c.precision.label == "fp32 channels_last"
    d = c.as_dict()
    assert d["choice"] == "fp32 channels_last" and d["candidates_step_ms"] == {"fp32 nchw": 20.0,
                                                                               "fp32 channels_last": 12.0}
    assert "precision auto: fp32 channels_last" in c.line()


def test_real_choice_runs_interleaved_steps_without_side_effects():
    model = stbench.create_model("tau", in_shape=(4, 1, 16, 16), t_out=4, hid_S=4, N_S=2, hid_T=8, N_T=2,
                                 mlp_ratio=2.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    c = P.choose_precision(model, 2, CPU, "fp32", "auto", reps=2, budget_s=600)
    assert torch.equal(torch.rand(3), expected)  # the run's RNG stream is untouched
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert set(c.step_ms) == {"fp32 nchw", "fp32 channels_last"} and set(c.reps.values()) == {2}
    assert c.precision.label in c.step_ms and c.step_ms[c.precision.label] <= min(c.step_ms.values()) * (1 + P.TIE)


def test_pick_keeps_the_plainer_candidate_when_the_fastest_is_not_clearly_faster(monkeypatch):
    monkeypatch.setattr(P, "cpu_capability", lambda: "AVX512")  # fp32's default layout: channels_last
    cands = [P.Precision(n, CPU, f) for n in ("fp32", "bf16") for f in ("nchw", "channels_last")]

    def chosen(ms):
        return P.pick(cands, dict(zip(["fp32 nchw", "fp32 channels_last", "bf16 nchw", "bf16 channels_last"], ms)))

    assert chosen([300, 310, 99, 100]).label == "bf16 channels_last"  # 1% apart: bf16's default layout
    assert chosen([300, 310, 90, 100]).label == "bf16 nchw"  # 10% faster is clearly faster
    assert chosen([200, 100, 150, 98]).label == "fp32 channels_last"  # bf16 2% faster: fp32, no rounding
    assert chosen([100, 102.5, 150, 150]).label == "fp32 channels_last"  # 2.5%: the default layout
    assert chosen([100, 104, 150, 150]).label == "fp32 nchw"  # 4%: beyond the tie
    monkeypatch.setattr(P, "cpu_capability", lambda: "AVX2")  # fp32's default layout there: NCHW
    assert chosen([100.5, 100, 150, 150]).label == "fp32 nchw"
    cuda = [P.Precision(n, torch.device("cuda"), "channels_last") for n in ("bf16", "fp16")]
    assert P.pick(cuda, {"bf16 channels_last": 101, "fp16 channels_last": 100}).name == "bf16"  # no loss scaling


def test_choice_line_says_when_a_tie_kept_the_plainer_candidate(monkeypatch):
    fake = {"fp32 nchw": [0.0200], "fp32 channels_last": [0.0199]}
    monkeypatch.setattr(P, "cpu_supports_bf16", lambda: False)
    monkeypatch.setattr(P, "cpu_capability", lambda: "AVX2")
    monkeypatch.setattr(P, "time_steps", lambda model, precs, batch, **kw: {p.label: fake[p.label] for p in precs})
    model = stbench.create_model("tau", in_shape=(4, 1, 16, 16), t_out=4, hid_S=4, N_S=2, hid_T=8, N_T=2,
                                 mlp_ratio=2.0)
    c = P.choose_precision(model, 2, CPU, "auto", None)
    assert c.precision.label == "fp32 nchw" and "a tie (within 3% of the fastest)" in c.line()


def test_profile_is_bounded_by_reps_and_budget():
    model = stbench.create_model("tau", in_shape=(4, 1, 16, 16), t_out=4, hid_S=4, N_S=2, hid_T=8, N_T=2,
                                 mlp_ratio=2.0)
    fp32 = P.Precision("fp32", CPU, "nchw")
    r = profile_model(model, name="t", device=CPU, precision=fp32, batch=2, warmup=1, reps=2, budget_s=60,
                      flops=False, mfu=False)
    assert r.infer_reps == 2 and r.train_reps == 2  # never more than --reps
    assert r.train_step_ms_min <= r.train_step_ms <= r.train_step_ms_max
    r = profile_model(model, name="t", device=CPU, precision=[fp32, P.Precision("fp32", CPU, "channels_last")],
                      batch=2, warmup=1, reps=50, budget_s=0.0, flops=False, mfu=False)
    assert r.infer_reps == 1 and r.train_reps == 1  # the budget is spent: one timed repetition each
    assert set(r.candidates_step_ms) == {"fp32 nchw", "fp32 channels_last"}
    ms = r.candidates_step_ms  # the choice: the fastest, or one tied with it (stbench.precision.pick's rule)
    assert ms[f"{r.precision} {r.memory_format}"] <= min(ms.values()) * (1 + P.TIE) + 0.01


def test_run_records_the_measured_choice(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "stbench", "run", "--models", "tau", "--preset", "smoke", "--epochs", "1",
                        "--precision", "fp32", "--memory-format", "auto", "--out", str(tmp_path)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "precision auto: fp32 " in r.stdout
    rec = json.loads((tmp_path / "records/mmnist/smoke/tau__seed0.json").read_text())
    choice = rec["config"]["precision_choice"]
    assert choice["measured"] and set(choice["candidates_step_ms"]) == {"fp32 nchw", "fp32 channels_last"}
    assert rec["config"]["memory_format_resolved"] == choice["memory_format"] == rec["profile"]["memory_format"]
    assert f"ms/step, fp32 {choice['memory_format']})" in r.stdout  # the estimate says what it measured


def test_a_model_that_cannot_run_channels_last_gets_nchw_only():
    # MMVP declares channels_last unsupported (a torch CPU backward that corrupts the heap): auto layouts
    # give NCHW only, a forced channels_last is refused in one line
    import pytest
    import torch
    from conftest import smoke_model

    from stbench.errors import UserError
    from stbench.precision import Precision, candidates, make_precision

    dev = torch.device("cpu")
    mmvp, tau = smoke_model("mmvp"), smoke_model("tau")
    assert {c.memory_format for c in candidates("auto", None, dev, mmvp)} == {"nchw"}
    assert {c.memory_format for c in candidates("auto", None, dev, tau)} == {"nchw", "channels_last"}
    assert make_precision("bf16", dev, None, mmvp).memory_format == "nchw"  # bf16's default is channels_last
    assert make_precision("bf16", dev, None, tau).memory_format == "channels_last"
    with pytest.raises(UserError, match="memory-format nchw"):
        Precision("fp32", dev, "channels_last").prepare(mmvp)


def test_profile_drops_the_memory_probes_step_from_its_timing(monkeypatch):
    """The first timed round runs under the memory probe (heap released, sampler thread): 10-50% slow on a 2-core
    CPU. Its time must not make train_step_ms when later rounds ran; alone (budget spent), it is all there is."""
    import stbench.profile as prof

    fp32 = P.Precision("fp32", CPU, "nchw")
    model = stbench.create_model("tau", in_shape=(4, 1, 16, 16), t_out=4, hid_S=4, N_S=2, hid_T=8, N_T=2,
                                 mlp_ratio=2.0)
    asked = {}

    def fake(model, precs, batch, reps, **kw):
        asked["reps"] = reps
        return {fp32.label: [5.0, 0.1, 0.3, 0.2][:reps]}  # the probed round first, 5 s

    monkeypatch.setattr(prof, "time_steps", fake)
    r = profile_model(model, name="t", device=CPU, precision=fp32, batch=2, warmup=1, reps=3, budget_s=60,
                      flops=False, mfu=False)
    assert asked["reps"] == 4  # one more round than the timing keeps
    assert r.train_reps == 3 and r.train_step_ms == pytest.approx(200) and r.train_step_ms_max == pytest.approx(300)
    monkeypatch.setattr(prof, "time_steps", lambda model, precs, batch, reps, **kw: {fp32.label: [5.0]})
    r = profile_model(model, name="t", device=CPU, precision=fp32, batch=2, warmup=1, reps=3, budget_s=0.0,
                      flops=False, mfu=False)
    assert r.train_reps == 1 and r.train_step_ms == pytest.approx(5000)
