"""Issue 26: `stbench sweep` (models x budgets x seeds, budget folders) and the compute study of `stbench report`
(Pareto frontiers, best model per budget with its paired difference, time to a validation target), checked on
synthetic records at three budgets whose answers are worked out by hand below."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_report import make_record

from stbench.budget import Budget, budget_dir
from stbench.errors import UserError
from stbench.launch.slurm import cell_argv
from stbench.report import build_report
from stbench.report.compute import first_reaching, pareto
from stbench.sweep import parse_budgets

OFFSETS = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])  # 5 test sequences; every model's per-sequence MSE = mean + OFFSETS
BUDGETS = {"samples=1000": 1000, "samples=3000": 3000, "samples=10000": 10000}
FAMILY = {"convlstm": "recurrent", "predrnn": "recurrent", "simvp": "parallel", "tau": "parallel"}
# test MSE (mean) and validation MSE per budget, and seconds of training per 100 sequences
TEST = {"convlstm": (50, 40, 35), "predrnn": (60, 45, 30), "simvp": (55, 42, 40), "tau": (70, 38, 39)}
VAL = {"convlstm": (52, 41, 36), "predrnn": (62, 47, 31), "simvp": (57, 44, 41), "tau": (72, 39, 40)}
SECONDS_PER_100 = {"convlstm": 3.0, "predrnn": 4.0, "simvp": 1.0, "tau": 1.5}


# ---------------------------------------------------------------------------------------------
# sweep: budgets, folders, cells
# ---------------------------------------------------------------------------------------------
def test_parse_budgets_inherits_the_kind_and_refuses_bad_lists():
    assert parse_budgets("samples=4e3,1.2e4,4e4") == ["samples=4000", "samples=12000", "samples=40000"]
    assert parse_budgets("flops=1e15, 1e16,flops=1e15") == [Budget.parse("flops=1e15").label,
                                                             Budget.parse("flops=1e16").label]
    for bad in ("", "4e3,samples=1", "samples=0", "steps=4"):
        with pytest.raises(UserError):
            parse_budgets(bad)


def test_budget_dir_only_for_a_budget_other_than_the_presets():
    assert budget_dir(None, "samples=4000") is None
    assert budget_dir("samples=4e3", "samples=4000") is None  # the preset's own: the records' usual place
    assert budget_dir("samples=2000", "samples=4000") == "samples=2000"
    assert budget_dir("flops=2.5e15", None) == Budget.parse("flops=2.5e15").label  # paper (epochs): its own folder


def test_cell_argv_of_a_sweep_cell_is_a_run_at_one_budget():
    argv = ["sweep", "--models", "tau,predrnn", "--budgets", "samples=2e3,6e3", "--seeds", "0,1", "--preset",
            "quick", "--launcher", "slurm", "--slurm-time", "01:00:00"]
    assert cell_argv(argv, "tau", 1, "samples=6000") == [
        "run", "--preset", "quick", "--models", "tau", "--seeds", "1", "--resume", "--budget", "samples=6000"]
    # without a budget (stbench run --launcher), the user's own --budget stays
    assert cell_argv(["run", "--budget", "samples=8", "--models", "x"], "tau", 0) == [
        "run", "--budget", "samples=8", "--models", "tau", "--seeds", "0", "--resume"]


def test_sweep_keeps_each_budget_apart_and_run_finds_them(tmp_path):
    from stbench.cli import main
    from stbench.status import grid_status

    common = ["--models", "convlstm", "--preset", "smoke", "--out", str(tmp_path), "--no-profile", "--no-weights",
              "--test-size", "4"]
    assert main(["sweep", *common, "--budgets", "samples=4,8,32"]) == 0
    smoke = tmp_path / "records/mmnist/smoke"
    # 4 and 8 are not the smoke preset's own budget (samples=32): folders of their own; 32 is the preset's place
    recs = {p.relative_to(smoke).as_posix(): json.loads(p.read_text()) for p in smoke.rglob("convlstm__seed0.json")}
    assert set(recs) == {"samples=4/convlstm__seed0.json", "samples=8/convlstm__seed0.json", "convlstm__seed0.json"}
    assert {k: r["budget"]["samples_seen"] for k, r in recs.items()} == {
        "samples=4/convlstm__seed0.json": 4, "samples=8/convlstm__seed0.json": 8, "convlstm__seed0.json": 32}
    before = (smoke / "samples=8/convlstm__seed0.json").read_text()
    assert main(["run", *common, "--budget", "samples=8"]) == 0  # the same cell: found completed, not re-run
    assert (smoke / "samples=8/convlstm__seed0.json").read_text() == before
    # a launcher finds the same record: nothing to submit (no job is started), the manifest names the folder
    assert main(["run", *common, "--budget", "samples=8", "--launcher", "submitit-local"]) == 0
    manifest = json.loads((tmp_path / "grid/mmnist__smoke.json").read_text())
    assert manifest["cells"] == [["convlstm", 0, "samples=8"]] and manifest["jobs"] == {}
    cells = grid_status(tmp_path)
    assert sorted((c.budget or "", c.status) for c in cells if c.model == "convlstm") == [
        ("", "completed"), ("samples=4", "completed"), ("samples=8", "completed")]


def test_status_names_the_budget_of_queued_sweep_cells(tmp_path):
    from stbench.status import grid_status

    (tmp_path / "grid").mkdir()
    (tmp_path / "grid/mmnist__quick.json").write_text(json.dumps({
        "dataset": "mmnist", "preset": "quick", "cells": [["tau", 0], ["tau", 0, "samples=2000"]],
        "jobs": {"tau__seed0": "11", "samples=2000/tau__seed0": "12"}}))
    cells = {(c.model, c.budget): c for c in grid_status(tmp_path)}
    assert cells[("tau", None)].detail == "job 11" and cells[("tau", "samples=2000")].detail == "job 12"
    assert "quick/samples=2000" in cells[("tau", "samples=2000")].line()


# ---------------------------------------------------------------------------------------------
# the compute study on synthetic records
# ---------------------------------------------------------------------------------------------
def _write(root: Path, model: str, budget: str, k: int, seed: int = 0, shift: float = 0.0) -> None:
    samples = BUDGETS[budget]
    rec = make_record(model, family=FAMILY[model], seed=seed, mse=TEST[model][k] + shift,
                      train_s=SECONDS_PER_100[model] * samples / 100)
    rec.update(schema_version=2, val={"best_epoch": 1, "metrics": {"mse": VAL[model][k] + shift}},
               budget={"kind": "samples", "value": float(samples), "label": budget, "samples_seen": samples,
                       "train_flops": 3 * 1e9 * samples, "train_flops_per_seq": 1e9})
    rec["config"]["budget_dir"] = budget
    path = root / "records/mmnist/quick" / budget / f"{model}__seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    name = f"{model}__seed{seed}.per_sequence.npz"
    rec["per_sequence"] = {"file": name, "metrics": ["mse"], "n": len(OFFSETS)}
    np.savez_compressed(path.parent / name, mse=TEST[model][k] + shift + OFFSETS)
    path.write_text(json.dumps(rec))


@pytest.fixture(scope="module")
def study_results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("study")
    for model in FAMILY:
        for k, budget in enumerate(BUDGETS):
            _write(root, model, budget, k)
    _write(root, "tau", "samples=3000", 1, seed=1, shift=2.0)  # tau at 3000: seeds 38 and 40, mean 39
    return root


def test_pareto_by_hand():
    # compute, error: (1, 5) (1, 6) (2, 4) (3, 4.5) (3, 3): frontier (1, 5) -> (2, 4) -> (3, 3)
    x, y = np.array([1, 1, 2, 3, 3]), np.array([5, 6, 4, 4.5, 3])
    assert pareto(x, y) == [0, 2, 4]
    assert pareto(x, -y, higher_is_better=True) == [0, 2, 4]
    assert pareto(np.array([1, 2, 3]), np.array([1.0, 2.0, 0.5])) == [0, 2]  # (2, 2) is beaten by (1, 1)


def test_first_reaching_is_the_fewest_samples_at_or_below_the_target():
    import pandas as pd

    g = pd.DataFrame({"samples_seen": [3000, 1000, 10000], "val_mse": [41.0, 52.0, 36.0], "budget": list("bac")})
    assert first_reaching(g, 41.0)["budget"] == "b" and first_reaching(g, 30.0) is None


def test_compute_study_frontier_best_per_budget_and_time_to_target(study_results, tmp_path):
    res = build_report(study_results, tmp_path / "out", formats=["md", "html"], baselines_dir=tmp_path)
    (st,) = res.studies
    assert st.budgets == ["samples=1000", "samples=3000", "samples=10000"]
    p = st.points.set_index(["model", "budget"])
    assert p.loc[("tau", "samples=3000"), "mean"] == pytest.approx(39.0)  # seeds 38 and 40
    # frontiers by hand: recurrent convlstm@1000 (50) -> convlstm@3000 (40) -> predrnn@10000 (30); parallel
    # simvp@1000 (55) -> tau@3000 (39); at 10000 every parallel point (40, 39) is no better than tau@3000
    for fam, want in (("recurrent", [("convlstm", 1000), ("convlstm", 3000), ("predrnn", 10000)]),
                      ("parallel", [("simvp", 1000), ("tau", 3000)])):
        g = st.points[st.points["family"] == fam].reset_index(drop=True)
        front = g.iloc[pareto(g["samples_seen"].to_numpy(), g["mean"].to_numpy())]
        assert list(zip(front["model"], front["samples_seen"].astype(int))) == want
    # best per budget: identical per-sequence offsets, so every paired difference is exact (a zero-width interval);
    # at 3000 tau's two seeds are 38 + o and 40 + o: resampling seeds widens the interval around -1 to [-2, 0]
    best = st.best.set_index("budget")
    assert list(best["recurrent"]) == ["convlstm", "convlstm", "predrnn"]
    assert list(best["parallel"]) == ["simvp", "tau", "tau"]
    for budget, d in (("samples=1000", 5.0), ("samples=10000", 9.0)):
        assert (best.loc[budget, "diff"], best.loc[budget, "diff_lo"], best.loc[budget, "diff_hi"]) == \
            pytest.approx((d, d, d))
    assert best.loc["samples=3000", "diff"] == pytest.approx(-1.0)
    assert best.loc["samples=3000", "diff_lo"] == pytest.approx(-2.0)
    assert best.loc["samples=3000", "diff_hi"] == pytest.approx(0.0)
    # default target: the worst validation MSE at the largest budget = simvp's 41; first budget at or below it
    assert st.target == 41.0
    t = st.to_target.set_index("model")
    assert dict(t["budget"]) == {"convlstm": "samples=3000", "predrnn": "samples=10000", "simvp": "samples=10000",
                                 "tau": "samples=3000"}
    # train_s of that run: seconds per 100 sequences x samples / 100 (tau at 3000: both seeds 45 s)
    assert dict(t["train_s"]) == {"convlstm": 90.0, "predrnn": 400.0, "simvp": 100.0, "tau": 45.0}
    md = (tmp_path / "out" / "compute_mmnist_quick.md").read_text()
    assert "| samples=1000 | convlstm | 50 | simvp | 55 | +5 [+5, +5] |" in md
    assert "compute_samples_mmnist_quick.png" in md and "compute_pflops_mmnist_quick.png" in md
    for kind in ("compute_samples", "compute_pflops"):
        assert (tmp_path / "out" / "plots" / f"{kind}_mmnist_quick.svg").is_file()
    assert "Compute study: mmnist, preset quick" in (tmp_path / "out" / "report.html").read_text()


def test_a_stated_validation_target(study_results, tmp_path):
    res = build_report(study_results, tmp_path / "out", formats=["md"], plots=False, baselines_dir=tmp_path,
                       val_target=45.0)
    t = res.studies[0].to_target.set_index("model")
    # val <= 45: convlstm 41 @3000, predrnn 47 @3000 no -> 31 @10000, simvp 44 @3000, tau mean(39, 41) = 40 @3000
    assert dict(t["budget"]) == {"convlstm": "samples=3000", "predrnn": "samples=10000", "simvp": "samples=3000",
                                 "tau": "samples=3000"}
    assert t.loc["tau", "val_mse"] == pytest.approx(40.0)
    assert "stated with --val-target" in res.studies[0].target_rule


def test_a_p_value_too_small_to_resolve_prints_as_a_bound_not_zero():
    from stbench.report.compute import _p

    assert _p(0.0) == "< 1e-15" and _p(3e-17) == "< 1e-15"  # never "0": the test cannot show p = 0
    assert _p(0.0123) == "0.0123" and _p(float("nan")) == "-" and _p(None) == "-"


def test_models_at_one_budget_are_faint_points_not_named_lines(study_results, tmp_path):
    import shutil

    from stbench.report.compute import _compute_figure

    root = tmp_path / "r"
    shutil.copytree(study_results, root)
    FAMILY["van"] = "parallel"  # a zoo model at one budget only, as the quick leaderboard's models are
    try:
        TEST["van"], VAL["van"], SECONDS_PER_100["van"] = (0, 0, 33), (0, 0, 34), 2.0
        _write(root, "van", "samples=10000", 2)
        res = build_report(root, tmp_path / "out", formats=["md"], plots=False, baselines_dir=tmp_path)
    finally:
        for d in (FAMILY, TEST, VAL, SECONDS_PER_100):
            d.pop("van")
    (st,) = res.studies
    assert "van" in set(st.points["model"])  # still a point of the study (and of the parallel frontier)
    fig = _compute_figure(st, st.points.assign(x=st.points["samples_seen"]), "sequences")
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "parallel, one budget (1)" in legend and "van" not in legend
    assert {"convlstm", "predrnn", "simvp", "tau"} <= set(legend)
    names = {t.get_text() for t in fig.axes[0].texts}
    assert "van" not in names and {"convlstm", "tau"} <= names
