"""`stbench report` from hand-written records with known values: ranks, aggregates, table rows, best
marks, published numbers on `paper` only, every output format, plots, and bad input."""

from __future__ import annotations

import io
import json
import math
import statistics
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from stbench.metrics import METRIC_CONVENTION
from stbench.report import EmptyResultsError, build_report, load_records
from stbench.report.cells import duration, metric_text, si
from stbench.report.records import HOW_TO_CREATE

T_OUT = 4

BASELINES = """
[presets.paper]
epochs = 200
[[models.tau.reference]]
source = "OpenSTL benchmark, 200 epochs"
epochs = 200
params_m = 44.7
flops_g = 16.0
fps = 283
mse = 24.60
mae = 71.93
ssim = 0.9454
psnr = 23.19
[[models.tau.reference]]
source = "OpenSTL benchmark, 2000 epochs"
epochs = 2000
mse = 15.69
"""


def make_record(model: str, *, dataset: str = "mmnist", preset: str = "quick", seed: int = 0,
                status: str = "completed", kind: str = "model", family: str = "parallel",
                mse: float = 30.0, mae: float = 80.0, ssim: float = 0.9, psnr: float = 21.0,
                params: float | None = 1e6, flops: float | None = 2e9, seq_per_s: float | None = 100.0,
                train_s: float | None = 60.0, epochs: int = 6, examples: str | None = None,
                reason: str | None = None) -> dict:
    """A schema-1 record (results/README.md) with the given headline numbers."""
    done = status == "completed"
    floor = kind == "floor"
    per_frame = {m: [v * (0.7 + 0.2 * k) for k in range(T_OUT)] for m, v in (("mse", mse), ("mae", mae))}
    per_frame |= {"ssim": [ssim] * T_OUT, "psnr": [psnr] * T_OUT}
    return {
        "schema_version": 1,
        "run_id": f"{dataset}/{preset}/{model}__seed{seed}",
        "status": status,
        "reason": reason,
        "kind": kind,
        "model": model,
        "dataset": dataset,
        "preset": preset,
        "seed": seed,
        "family": "floor" if floor else family,
        "encoder": "-" if floor else ("patch" if family == "recurrent" else "simvp"),
        "temporal": "-" if floor else model,
        "decoder": "-" if floor else ("patch" if family == "recurrent" else "simvp"),
        "metrics": {"mse": mse, "mae": mae, "ssim": ssim, "psnr": psnr} if done else {},
        "per_frame": per_frame if done else {},
        "metrics_meta": {"mse": {"higher_is_better": False, "convention": "per-frame SSE"},
                         "ssim": {"higher_is_better": True, "convention": "data_range 2.0"}},
        "convention": "published",
        "val": {"best_epoch": epochs, "metrics": {}},
        "history": [] if floor else [
            {"epoch": e, "train_loss": 0.1 / e + seed * 0.001, "val_loss": 0.12 / e, "val_mse": mse * 2 / e,
             "lr": 1e-3, "epoch_s": 10.0, "samples_per_s": 200.0} for e in range(1, epochs + 1)],
        "profile": {"params": None if floor else params, "flops": None if floor else flops,
                    "flops_convention": "fvcore, 1 sample, eval mode, MAC = 1 flop",
                    "infer_seq_per_s": None if floor else seq_per_s, "infer_seq_per_s_min": None,
                    "infer_seq_per_s_max": None, "infer_batch": 16, "published_protocol_fps": None,
                    "train_step_ms": 50.0, "peak_mem_mb": 100.0, "device": "cpu", "precision": "fp32"},
        "examples": {"file": examples, "indices": [3, 7]} if examples else None,
        "config": {"epochs": epochs, "batch_size": 16, "lr": 1e-3},
        "env": {"stbench": "0.1.0", "torch": "2.x", "numpy": "2.x", "python": "3.11", "platform": "linux",
                "git_commit": "abcdef0123", "git_dirty": False, "device": "cpu", "device_name": "Test CPU",
                "threads": 2, "precision": "fp32", "hostname": "test"},
        "timing": {"started_at": "2026-01-02T10:00:00+00:00", "finished_at": "2026-01-02T10:05:00+00:00",
                   "train_s": None if floor else train_s, "eval_s": 5.0, "total_s": 70.0},
    }


def write_record(root: Path, rec: dict) -> Path:
    path = root / "records" / rec["dataset"] / rec["preset"] / f"{rec['model']}__seed{rec['seed']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))
    return path


def write_examples(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    arr = {k: rng.integers(0, 256, size=(2, T_OUT, 1, 16, 16), dtype=np.uint8) for k in ("inputs", "targets")}
    arr["preds"] = rng.integers(0, 256, size=(2, T_OUT, 1, 16, 16), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arr)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    quick = root / "records" / "mmnist" / "quick"
    recs = [
        make_record("tau", seed=0, mse=20.0, mae=60.0, ssim=0.90, psnr=22.0, params=44.7e6, flops=16.0e9,
                    seq_per_s=283.0, train_s=100.0, examples="tau__seed0_examples.npz"),
        make_record("tau", seed=1, mse=22.0, mae=64.0, ssim=0.92, psnr=23.0, params=44.7e6, flops=16.0e9,
                    seq_per_s=281.0, train_s=110.0),
        make_record("simvp", mse=25.0, mae=70.0, ssim=0.93, psnr=21.5, params=58.0e6, flops=19.4e9, seq_per_s=209.0,
                    examples="simvp__seed0_examples.npz"),
        make_record("convlstm", family="recurrent", mse=30.0, mae=90.0, ssim=0.85, psnr=20.0, params=15.0e6,
                    flops=56.8e9, seq_per_s=113.0, examples="convlstm__seed0_examples.npz"),  # file never written
        make_record("predrnn", family="recurrent", status="failed", reason="non-finite loss at epoch 3, step 120"),
        make_record("simvp", seed=5, status="interrupted", reason="Ctrl-C; continue with --resume"),
        # floors: better MSE / SSIM than every model on purpose; they must still be neither ranked nor "best"
        make_record("copy_last", kind="floor", mse=15.0, mae=50.0, ssim=0.95, psnr=25.0,
                    examples="copy_last__seed0_examples.npz"),
        make_record("zeros", kind="floor", mse=200.0, mae=300.0, ssim=0.30, psnr=10.0),
        make_record("tau", preset="smoke", mse=5.0, flops=None, epochs=2),
        make_record("tau", preset="paper", mse=30.0, epochs=200),
        make_record("gsta", preset="paper", mse=31.0, epochs=200),
        make_record("tau", dataset="taxibj", mse=0.31, mae=15.0, ssim=0.98, psnr=39.0),
    ]
    for rec in recs:
        write_record(root, rec)
    for name, seed in (("tau__seed0", 0), ("simvp__seed0", 1), ("copy_last__seed0", 2)):
        write_examples(quick / f"{name}_examples.npz", seed)
    (quick / "broken.json").write_text("{not json")
    partial = make_record("gsta")
    del partial["metrics"]
    write_record(root, partial)
    newer = make_record("newmodel")
    newer["schema_version"] = 3
    write_record(root, newer)
    (root / "baselines").mkdir()
    (root / "baselines" / "mmnist.toml").write_text(BASELINES)
    return root


@pytest.fixture(scope="module")
def report(results):
    console = Console(file=io.StringIO(), width=220, record=True, color_system=None)
    res = build_report(results, results / "out", console=console, baselines_dir=results / "baselines")
    return res, console.export_text()


def test_ranks_aggregates_and_best(report):
    res, _ = report
    t = res.leaderboards["mmnist", "quick"]
    assert list(t["model"]) == ["tau", "simvp", "convlstm", "copy_last", "zeros"]  # MSE ascending, floors last
    assert list(t["rank"].astype("float").fillna(-1)) == [1, 2, 3, -1, -1]
    tau = t.set_index("model").loc["tau"]
    assert tau["n"] == 2 and tau["seeds"] == "0,1"
    assert tau["mse_mean"] == pytest.approx(21.0)
    assert tau["mse_std"] == pytest.approx(statistics.stdev([20.0, 22.0]))
    assert tau["ssim_mean"] == pytest.approx(0.91)
    assert tau["ssim_std"] == pytest.approx(statistics.stdev([0.90, 0.92]))
    assert tau["infer_seq_per_s"] == pytest.approx(282.0) and tau["train_s"] == pytest.approx(105.0)
    assert math.isnan(t.set_index("model").loc["simvp", "mse_std"])  # one seed: no std
    best = {m: list(t.loc[t[f"best_{m}"], "model"]) for m in ("mse", "mae", "ssim", "psnr")}
    assert best == {"mse": ["tau"], "mae": ["tau"], "ssim": ["simvp"], "psnr": ["tau"]}  # floors never best
    assert "predrnn" not in set(t["model"])
    lb = next(b for b in res.boards if b.key == ("mmnist", "quick"))
    assert list(lb.unfinished["model"]) == ["predrnn", "simvp"]
    assert t.set_index("model").loc["simvp", "n"] == 1  # the interrupted seed is not aggregated


def test_presets_and_datasets_never_mixed(report):
    res, _ = report
    assert set(res.leaderboards) == {("mmnist", "paper"), ("mmnist", "quick"), ("mmnist", "smoke"),
                                     ("taxibj", "quick")}
    smoke = res.leaderboards["mmnist", "smoke"]
    assert list(smoke["model"]) == ["tau"] and smoke["mse_mean"].iloc[0] == 5.0
    assert list(res.leaderboards["taxibj", "quick"]["mse_mean"]) == [0.31]


def test_published_numbers_on_paper_only(report, results):
    res, _ = report
    paper = res.leaderboards["mmnist", "paper"]
    assert list(paper["model"]) == ["tau", "gsta"]
    assert paper["mse_published"].iloc[0] == pytest.approx(24.60)  # the 200-epoch reference, not the 2000 one
    assert math.isnan(paper["mse_published"].iloc[1])  # no gsta reference in this baselines file
    assert paper["mse_mean"].iloc[0] == 30.0  # the measured value is untouched
    for key in [("mmnist", "quick"), ("mmnist", "smoke"), ("taxibj", "quick")]:
        assert not [c for c in res.leaderboards[key].columns if "published" in c]
    out = results / "out"
    md_paper = (out / "leaderboard_mmnist_paper.md").read_text()
    assert "MSE↓ (published)" in md_paper and "24.60" in md_paper and "NOT measured here" in md_paper
    assert "OpenSTL benchmark, 200 epochs" in md_paper and "15.69" not in md_paper
    md_quick = (out / "leaderboard_mmnist_quick.md").read_text()
    assert "(published)" not in md_quick and "NOT measured" not in md_quick and "24.60" not in md_quick


def test_markdown_rows(report, results):
    md = (results / "out" / "leaderboard_mmnist_quick.md").read_text()
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| #"))
    assert "MSE↓" in header and "SSIM↑" in header and "PSNR↑" in header and "Throughput↑ (seq/s, cpu)" in header
    rows = [line for line in lines if line.startswith("| ") and line is not header and "---" not in line]
    assert rows[0].startswith("| 1 | tau | parallel | simvp + tau | 44.7M | 16.0G | 282 | **21.00 ± 1.41** |")
    assert "| **0.9300** |" in rows[1]  # simvp: best SSIM
    assert rows[0].rstrip().endswith("| 2 | 12.0k | – | preset | 1m 45s |")  # n, samples, PFLOPs, tuning, time
    assert rows[3].startswith("| – | *copy\\_last (floor)* |") and "**" not in rows[3]
    assert "predrnn seed 0: failed — non-finite loss at epoch 3, step 120" in md
    assert "simvp seed 5: interrupted — Ctrl-C; continue with --resume" in md
    # the convention stated by the records (schema 1 here), not the text of today's code
    assert "Metric convention (as stated in the records): published" in md
    assert METRIC_CONVENTION not in md.replace("\\", "")
    assert "![Accuracy vs FLOPs](plots/acc_vs_flops_mmnist_quick.png)" in md


def test_every_format_written(report, results):
    res, text = report
    out = results / "out"
    for key in ("mmnist_quick", "mmnist_smoke", "mmnist_paper", "taxibj_quick"):
        for ext in ("md", "csv", "tex"):
            path = out / f"leaderboard_{key}.{ext}"
            assert path in res.files and path.stat().st_size > 0
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5 and 'src="http' not in html and "<link" not in html
    assert "<strong>21.00 ± 1.41</strong>" in html
    tex = (out / "leaderboard_mmnist_quick.tex").read_text()
    for token in (r"\toprule", r"\midrule", r"\bottomrule", r"\textbf{21.00 $\pm$ 1.41}", r"copy\_last",
                  r"MSE$\downarrow$"):
        assert token in tex
    csv = pd.read_csv(out / "leaderboard_mmnist_quick.csv")
    assert list(csv["model"]) == ["tau", "simvp", "convlstm", "copy_last", "zeros"]
    assert csv.loc[0, "mse_std"] == pytest.approx(math.sqrt(2)) and csv.loc[0, "dataset"] == "mmnist"
    # terminal: the rich table, the failed run, the convention
    assert "MSE↓" in text and "21.00 ± 1.41" in text and "copy_last (floor)" in text
    assert "non-finite loss at epoch 3" in text and "Metric convention" in text


def test_plots(report, results):
    res, _ = report
    plots = results / "out" / "plots"
    for kind in ("acc_vs_flops", "acc_vs_throughput", "horizon", "training_curves", "examples"):
        for ext in ("png", "svg"):
            path = plots / f"{kind}_mmnist_quick.{ext}"
            assert path in res.files and path.stat().st_size > 1000
    img = matplotlib.image.imread(plots / "acc_vs_flops_mmnist_quick.png")
    assert img.ndim == 3 and img.shape[0] >= 600 and img.shape[1] >= 1000  # 6.4 x 4.2 in at 200 dpi
    assert float(img[..., :3].std()) > 0.01  # not a blank canvas
    # missing data -> a note, not a crash: the smoke run has no FLOPs; convlstm's examples file is absent
    assert any("mmnist/smoke: skipped accuracy vs flops" in n for n in res.notes)
    assert not (plots / "acc_vs_flops_mmnist_smoke.png").exists()
    assert any("convlstm" in n and "missing" in n for n in res.notes)


def test_bad_records_are_skipped_with_a_warning(report):
    res, _ = report
    warnings = "\n".join(res.warnings)
    assert "broken.json: not a readable JSON record" in warnings
    assert "gsta__seed0.json: a completed record without 'metrics'" in warnings
    assert "newmodel__seed0.json: schema_version 3 is newer than this reader's 2" in warnings
    assert "newmodel" not in set(res.records["model"])
    assert "gsta" not in set(res.leaderboards["mmnist", "quick"]["model"])


def test_empty_directory(tmp_path):
    with pytest.raises(EmptyResultsError) as err:
        build_report(tmp_path, formats=["md"])
    assert HOW_TO_CREATE in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(EmptyResultsError, match="does not exist"):
        build_report(tmp_path / "nope", formats=["md"])
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "x.json").write_text('{"schema_version": 1, "model": "tau"}')
    with pytest.raises(EmptyResultsError, match="could be read") as err:
        build_report(tmp_path, formats=["md"])
    assert err.value.warnings and "x.json: missing required key(s) status" in err.value.warnings[0]
    (tmp_path / "records" / "x.json").write_text("[]")  # JSON, but not a record at all
    with pytest.raises(EmptyResultsError, match="no run records"):
        build_report(tmp_path, formats=["md"])


def test_flat_directory_and_format_choice(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(make_record("tau")))
    loaded = load_records(tmp_path)  # records directly in the directory, no records/ folder
    assert list(loaded.frame["model"]) == ["tau"]
    res = build_report(tmp_path, tmp_path / "r", formats="csv", plots=False, baselines_dir=tmp_path)
    assert [p.name for p in res.files] == ["leaderboard_mmnist_quick.csv"]
    with pytest.raises(ValueError, match="unknown report format"):
        build_report(tmp_path, formats=["pdf"])


def test_a_later_report_removes_only_its_own_stale_files(tmp_path):
    write_record(tmp_path, make_record("tau"))
    taxi = write_record(tmp_path, make_record("tau", dataset="taxibj", mse=0.31))
    out = tmp_path / "r"
    build_report(tmp_path, out, formats="md,csv", plots=False, baselines_dir=tmp_path)
    (out / "notes.md").write_text("mine")  # a user's file in the report folder
    taxi.unlink()  # the taxibj board loses its records
    build_report(tmp_path, out, formats="md", plots=False, baselines_dir=tmp_path)
    left = sorted(p.name for p in out.iterdir())
    # taxibj's Markdown (a format written again) is gone; its CSV stays (csv not asked for), as does notes.md
    assert left == [".stbench-report-files", "leaderboard_mmnist_quick.csv", "leaderboard_mmnist_quick.md",
                    "leaderboard_taxibj_quick.csv", "notes.md"]
    build_report(tmp_path, out, formats="csv", plots=False, baselines_dir=tmp_path)
    assert not (out / "leaderboard_taxibj_quick.csv").exists()
    assert (out / "leaderboard_mmnist_quick.md").exists() and (out / "notes.md").read_text() == "mine"
    (out / ".stbench-report-files").write_text("../outside.md\n")  # a tampered list never reaches outside
    (tmp_path / "outside.md").write_text("keep")
    build_report(tmp_path, out, formats="md", plots=False, baselines_dir=tmp_path)
    assert (tmp_path / "outside.md").exists()


def test_csv_has_no_column_empty_for_every_row(tmp_path):
    """Trained rows only: no `checkpoint` column (only `stbench eval` rows have one), no std at n = 1, and
    no throughput device when nothing was profiled."""
    for model in ("tau", "simvp"):
        write_record(tmp_path, make_record(model, seq_per_s=None))
    build_report(tmp_path, tmp_path / "r", formats="csv", plots=False, baselines_dir=tmp_path)
    csv = pd.read_csv(tmp_path / "r" / "leaderboard_mmnist_quick.csv")
    empty = [c for c in csv.columns if csv[c].isna().all()]
    assert empty == [] and "checkpoint" not in csv and "mse_std" not in csv and "throughput_device" not in csv
    assert list(csv["model"]) == ["simvp", "tau"]  # equal MSE: by name


def test_v1_records_read_with_published_fps(tmp_path):
    """Schema 1 wrote the profile key `published_fps` (its reader looked for `published_protocol_fps`, so the
    column was always empty); both spellings read into the `published_fps` column."""
    a, b = make_record("tau"), make_record("simvp")
    a["profile"]["published_fps"] = 283.0
    del a["profile"]["published_protocol_fps"]
    b["profile"]["published_protocol_fps"] = 209.0
    for r in (a, b):
        write_record(tmp_path, r)
    frame = load_records(tmp_path).frame.set_index("model")
    assert frame.loc["tau", "published_fps"] == 283.0 and frame.loc["simvp", "published_fps"] == 209.0


def test_mixed_conventions_are_not_ranked(tmp_path):
    from stbench.errors import StbenchError

    a, b = make_record("tau"), make_record("simvp")
    b["convention"] = "MSE as a per-pixel mean"
    for r in (a, b):
        write_record(tmp_path, r)
    with pytest.raises(StbenchError) as err:
        build_report(tmp_path, formats=["md"], plots=False, baselines_dir=tmp_path)
    msg = str(err.value)
    assert "mmnist/quick" in msg and "2 different metric conventions" in msg and "\n" not in msg


def _with_sequences(root: Path, rec: dict, mse: np.ndarray) -> None:
    """A record whose per-sequence test MSE values are ``mse`` (stored beside it, as the runner does)."""
    rec = dict(rec, schema_version=2, metrics=dict(rec["metrics"], mse=float(mse.mean())))
    name = f"{rec['model']}__seed{rec['seed']}.per_sequence.npz"
    rec["per_sequence"] = {"file": name, "metrics": ["mse"], "n": len(mse)}
    path = write_record(root, rec)
    np.savez_compressed(path.parent / name, mse=mse)


def test_bootstrap_intervals_and_ties(tmp_path):
    rng = np.random.default_rng(1)
    base = rng.normal(0, 1, 400)
    # a and b differ by 0.05 standard deviations of the per-sequence values: not separable with 400 sequences;
    # c is 1 standard deviation worse: clearly separated from both
    _with_sequences(tmp_path, make_record("a"), 30 + base)
    _with_sequences(tmp_path, make_record("b"), 30.05 + rng.permutation(base))
    _with_sequences(tmp_path, make_record("c"), 31 + base)
    res = build_report(tmp_path, tmp_path / "out", formats=["md"], plots=False, baselines_dir=tmp_path)
    t = res.leaderboards["mmnist", "quick"].set_index("model")
    # hand check of the interval: mean +- 1.96 standard errors (normal data; the bootstrap agrees closely)
    se = base.std(ddof=0) / math.sqrt(len(base))
    assert t.loc["a", "mse_ci_lo"] == pytest.approx(30 + base.mean() - 1.96 * se, abs=0.25 * se)
    assert t.loc["a", "mse_ci_hi"] == pytest.approx(30 + base.mean() + 1.96 * se, abs=0.25 * se)
    assert list(t["rank"].astype(float).fillna(-1)) == [1, 1, 3]
    assert list(t["tied"]) == [True, True, False]
    md = (tmp_path / "out" / "leaderboard_mmnist_quick.md").read_text()
    assert "| 1= | a |" in md and "| 1= | b |" in md and "| 3 | c |" in md
    assert "one bootstrap of the shared test sequences" in md and f"{t.loc['a', 'mse_ci_lo']:.2f}, " in md


def test_human_units():
    sizes = [si(16.0e9), si(116.6e9), si(44.7e6), si(283.4), si(5.213), si(None)]
    assert sizes == ["16.0G", "117G", "44.7M", "283", "5.21", "–"]
    assert [duration(4.2), duration(42), duration(312), duration(3720)] == ["4.2s", "42s", "5m 12s", "1h 02m"]
    assert metric_text("mse", 24.6) == "24.60" and metric_text("ssim", 0.94536, 0.0012) == "0.9454 ± 0.0012"
    assert metric_text("mse", 0.31084) == "0.3108"  # TaxiBJ-scale values keep 4 significant digits


def test_metric_direction_and_label_come_from_the_definition():
    """Records' metrics_meta first, then the registered MetricDef; never a guess from the name."""
    from stbench.metrics import metric_def
    from stbench.report.cells import label, metric_label
    from stbench.report.tables import higher_is_better

    assert label("rel_l2") == metric_def("rel_l2").label == "rel. L2"  # a records' meta without a label
    assert label("rel_l2", {"rel_l2": {"label": "relL2"}}) == "relL2"
    assert higher_is_better("ssim_dr1", {}) is True and higher_is_better("mse", {}) is False
    assert higher_is_better("mse", {"mse": {"higher_is_better": True}}) is True  # as the records state it
    assert higher_is_better("ssim_unregistered_xyz", {}) is False and label("ssim_unregistered_xyz") == \
        "SSIM_UNREGISTERED_XYZ"  # known to nobody: lower is better, as metric_def assumes for a bare function
    assert metric_label("psnr", True) == "PSNR↑"


def test_training_curves_keep_train_loss_and_val_mse_apart(report):
    """The plot drew the teacher-forced training objective and the validation MSE on one shared 'loss' axis."""
    from stbench.report.plots import _training_curves

    res, _ = report
    lb = next(b for b in res.boards if b.key == ("mmnist", "quick"))
    fig, note = _training_curves(lb)
    assert note is None
    ax_train, ax_val = [ax for ax in fig.axes if ax.get_title()]
    assert "training objective" in ax_train.get_ylabel() and "MSE per frame" in ax_val.get_ylabel()
    assert not ax_train.get_shared_y_axes().joined(ax_train, ax_val)
    # the validation panel plots val_mse (the test metric's units), e.g. tau seed 0: mse 20 -> val_mse 40 / epoch
    ys = {tuple(np.round(line.get_ydata(), 6)) for line in ax_val.get_lines()}
    assert any(y[0] == pytest.approx(2 * 21.0) for y in ys)  # tau: mean of seeds' 2 * mse at epoch 1


def test_wide_log_axis_labels_only_2x_and_5x_minor_ticks():
    """With twenty-odd models the FLOPs axis spans decades: 3G/4G/... minor labels would collide."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from stbench.report.plots import _si_ticks

    ax = Figure().add_subplot()
    ax.set_xscale("log")
    ax.set_xlim(3e9, 6e11)
    _si_ticks(ax.xaxis)
    fmt = ax.xaxis.get_minor_formatter()
    assert fmt(2e10) == "20G" and fmt(5e10) == "50G"
    assert fmt(3e10) == "" and fmt(4e11) == ""
    ax.set_xlim(1.2e10, 8e10)  # within a decade every minor tick may be labelled
    assert fmt(3e10) == "30G"


def test_many_models_fit_their_figures(tmp_path):
    """With the whole zoo (20+ models) the training-curve legend ran off the bottom of the figure and the
    example strip's longest row labels off its left edge."""
    import matplotlib as mpl

    from stbench.report.plots import RC, _examples, _training_curves

    quick = tmp_path / "records" / "mmnist" / "quick"
    names = [f"model_with_a_long_name_{k:02d}" for k in range(22)]
    for k, name in enumerate(names):
        write_record(tmp_path, make_record(name, mse=20.0 + k, examples=f"{name}__seed0_examples.npz"))
        write_examples(quick / f"{name}__seed0_examples.npz", 0)
    res = build_report(tmp_path, tmp_path / "out", formats=["md"], plots=False, baselines_dir=tmp_path)
    lb = next(b for b in res.boards if b.key == ("mmnist", "quick"))
    with mpl.rc_context(RC):  # as make_plots draws them
        figs = _training_curves(lb)[0], _examples(lb)[0]
    for fig in figs:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        fx0, fy0, fx1, fy1 = fig.bbox.extents
        parts = [*fig.legends, *fig.axes]
        for part in parts:
            x0, y0, x1, y1 = part.get_tightbbox(renderer).extents
            assert x0 >= fx0 - 1 and y0 >= fy0 - 1 and x1 <= fx1 + 1 and y1 <= fy1 + 1, type(part).__name__
    assert [t.get_text() for t in figs[0].legends[0].get_texts()] == names


def test_training_precisions_that_differ_are_named_and_mixed_seeds_warned(tmp_path):
    for model, seed, prec in (("tau", 0, "bf16"), ("tau", 1, "fp32"), ("simvp", 0, "fp32"), ("simvp", 1, "fp32")):
        rec = make_record(model, seed=seed, mse=30.0 + seed)
        rec["env"]["precision"] = rec["profile"]["precision"] = prec
        write_record(tmp_path, rec)
    res = build_report(tmp_path, tmp_path / "out", formats=["md"], plots=False, baselines_dir=tmp_path)
    (lb,) = res.boards
    (note,) = [n for n in lb.notes if n.startswith("Training precision")]
    assert "bf16: tau; fp32: simvp, tau" in note and "tau (seed 0 bf16, seed 1 fp32)" in note
    assert any("average seeds trained in different precisions (tau)" in w for w in res.warnings)
    # one precision everywhere: nothing said
    for seed in (0, 1):
        rec = make_record("tau", seed=seed)
        write_record(tmp_path, rec)
    res = build_report(tmp_path, tmp_path / "out2", formats=["md"], plots=False, baselines_dir=tmp_path)
    assert not [n for n in res.boards[0].notes if n.startswith("Training precision")]
    assert not [w for w in res.warnings if "precisions" in w]
