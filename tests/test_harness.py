"""End-to-end tests of `stbench run` through the CLI (smoke preset, tiny shapes, CPU)."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
REC_KEYS = {"schema_version", "run_id", "status", "reason", "kind", "model", "dataset", "preset", "seed", "family",
            "encoder", "temporal", "decoder", "metrics", "per_frame", "per_sequence", "metrics_meta", "convention",
            "val", "history", "profile", "examples", "checkpoint", "source", "config", "env", "timing"}


FAULT_CLI = str(Path(__file__).with_name("fault_cli.py"))


def cli(*args, env=None, cwd=None, faults=None):
    """`stbench <args>` in a subprocess; ``faults`` ({"kill_after_epoch": 2, ...}) go through tests/fault_cli.py."""
    cmd = [sys.executable, "-m", "stbench", *args] if not faults else \
        [sys.executable, FAULT_CLI, *(f"{k}={v}" for k, v in faults.items()), "--", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env or ENV, cwd=cwd)


def rec(out, model, preset="smoke", seed=0):
    return json.loads((Path(out) / "records" / "mmnist" / preset / f"{model}__seed{seed}.json").read_text())


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("res")
    r = cli("run", "--models", "tau,predrnn", "--preset", "smoke", "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    return out, r


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_smoke_run_writes_complete_records(smoke_run):
    out, r = smoke_run
    assert "stbench run" in r.stdout and "completed" in r.stdout  # the summary table
    for model, family, enc in (("tau", "parallel", "simvp"), ("predrnn", "recurrent", "patch")):
        d = rec(out, model)
        assert REC_KEYS <= set(d), REC_KEYS - set(d)
        assert d["status"] == "completed" and d["reason"] is None and d["kind"] == "model"
        assert d["family"] == family and d["encoder"] == enc and d["temporal"] == model
        assert d["schema_version"] == 2 and d["preset"] == "smoke" and d["seed"] == 0
        assert d["checkpoint"] is None and d["source"] is None
        assert set(d["metrics"]) >= {"mse", "mae", "ssim", "psnr"}
        assert all(len(d["per_frame"][k]) == 10 for k in ("mse", "mae", "ssim", "psnr"))
        assert d["metrics_meta"]["mse"]["higher_is_better"] is False
        assert d["metrics_meta"]["ssim"]["higher_is_better"] is True
        assert "data_range" in d["convention"]
        assert len(d["history"]) == d["config"]["epochs"] == 2
        assert {"train_loss", "val_loss", "val_mse", "lr", "epoch_s"} <= set(d["history"][0])
        val = [h["val_mse"] for h in d["history"]]
        assert d["val"]["best_epoch"] == 1 + val.index(min(val)) and d["val"]["metrics"]["mse"] == min(val)
        # per-sequence test metrics beside the record: one value per test sequence, averaging to the metric
        with np.load(Path(out) / "records/mmnist/smoke" / d["per_sequence"]["file"]) as z:
            assert set(z.files) == set(d["metrics"]) and len(z["mse"]) == d["per_sequence"]["n"] == 8
            assert abs(z["mse"].mean() - d["metrics"]["mse"]) <= 1e-9 * d["metrics"]["mse"]
        p = d["profile"]
        assert p["params"] > 0 and p["flops"] > 0 and p["infer_seq_per_s"] > 0 and p["train_step_ms"] > 0
        assert p["device"] and p["precision"] == "fp32"
        # inference throughput at one batch for every model (comparable), training step at the run's batch
        assert p["infer_batch"] == 16 and p["train_batch"] == d["config"]["batch_size"] == 4
        assert d["env"]["torch"] and d["env"]["python"] and "git_commit" in d["env"]
        assert d["timing"]["finished_at"] and d["timing"]["train_s"] > 0
        assert (Path(out) / "records/mmnist/smoke" / d["examples"]["file"]).is_file()
        mode = (Path(out) / f"records/mmnist/smoke/{model}__seed0.json").stat().st_mode & 0o777
        assert mode == 0o666 & ~_umask(), oct(mode)  # an ordinary file, not mkstemp's 0600
        assert not (Path(out) / "checkpoints/mmnist/smoke" / f"{model}__seed0.pt").exists()
    for floor in ("copy_last", "zeros"):
        d = rec(out, floor)
        assert d["kind"] == "floor" and d["status"] == "completed" and d["metrics"]["mse"] > 0


def test_report_round_trip_fills_every_column(smoke_run, tmp_path):
    """The report built from exactly the records `stbench run` wrote: every column those records can fill
    is filled (a reader/writer drift such as a renamed profile key shows up here as an empty column)."""
    import stbench
    from stbench.report import build_report
    from stbench.report.cells import DASH, grid

    out, _ = smoke_run
    recs = {r.model: r for r in stbench.load_records(out)}  # the public API reads the same RunRecords
    assert {k: r.kind for k, r in recs.items()} == {"tau": "model", "predrnn": "model", "copy_last": "floor",
                                                     "zeros": "floor"}
    assert recs["tau"].metrics["mse"] == rec(out, "tau")["metrics"]["mse"]
    res = build_report(Path(out), tmp_path / "rep", ["md", "csv"], plots=False)
    (lb,) = res.boards
    assert lb.key == ("mmnist", "smoke") and set(lb.table["model"]) == {"tau", "predrnn", "copy_last", "zeros"}
    g = grid(lb)
    # not fillable by a single-seed smoke run: nothing (std is shown only for n > 1; published only on `paper`)
    for row, floor in zip(g.rows, g.floor):
        for col, cell in zip(g.columns, row):
            if floor and col.key in ("rank", "arch", "params", "flops", "throughput", "train_s", "mse_diff", "samples",
                                                        "pflops", "tuning"):
                continue  # floors have no architecture or cost
            assert cell.text and cell.text != DASH, (col.key, [c.text for c in row])
    models = lb.runs[lb.runs["kind"] == "model"]
    for col in ("params", "flops", "infer_seq_per_s", "infer_batch", "train_s", "total_s", "epochs", "device_name",
                "precision", "examples_file", "per_sequence_file", "convention", "flops_convention"):
        assert models[col].notna().all(), col
    assert lb.convention and "data_range" in lb.convention  # shown from the records, not today's text
    md = (tmp_path / "rep" / "leaderboard_mmnist_smoke.md").read_text()
    assert lb.convention in md.replace("\\", "")  # Markdown escapes * and _


def test_completed_runs_are_skipped_unless_forced(smoke_run):
    out, _ = smoke_run
    path = Path(out) / "records/mmnist/smoke/tau__seed0.json"
    before = path.read_bytes()
    r = cli("run", "--models", "tau", "--preset", "smoke", "--out", str(out))
    assert r.returncode == 0 and "already completed" in r.stdout
    assert path.read_bytes() == before


def test_kill_and_resume_equals_uninterrupted(tmp_path):
    args = ["run", "--models", "tau", "--preset", "smoke", "--epochs", "4", "--no-profile"]
    a, b = tmp_path / "a", tmp_path / "b"
    r = cli(*args, "--out", str(a))
    assert r.returncode == 0, r.stderr
    killed = cli(*args, "--out", str(b), faults={"kill_after_epoch": 2})
    assert killed.returncode == -9  # SIGKILL right after epoch 2's checkpoint
    part = rec(b, "tau")
    assert part["status"] == "running" and len(part["history"]) == 2  # the record survived intact
    r = cli(*args, "--out", str(b))
    assert r.returncode == 2 and "--resume" in r.stderr  # refuses to silently start over
    r = cli(*args, "--out", str(b), "--resume")
    assert r.returncode == 0, r.stderr
    ra, rb = rec(a, "tau"), rec(b, "tau")
    assert rb["status"] == "completed" and len(rb["history"]) == 4
    assert ra["metrics"] == rb["metrics"]
    assert [h["train_loss"] for h in ra["history"]] == [h["train_loss"] for h in rb["history"]]

    # Ctrl-C in the middle of epoch 3 (after its 2nd batch): checkpointed there, resumed there
    c = tmp_path / "c"
    r = cli(*args, "--out", str(c), faults={"interrupt_at": "3,2"})
    assert r.returncode == 130 and "--resume" in r.stderr
    part = rec(c, "tau")
    assert part["status"] == "interrupted" and len(part["history"]) == 2
    r = cli(*args, "--out", str(c), "--resume")
    assert r.returncode == 0, r.stderr
    rc = rec(c, "tau")
    assert rc["metrics"] == ra["metrics"]
    assert [h["train_loss"] for h in rc["history"]] == [h["train_loss"] for h in ra["history"]]

    # a real SIGINT inside the forward pass of epoch 3's 2nd batch (smoke: 4 batches per epoch): BatchNorm saw
    # that batch, the optimizer did not; resumed, every number equals the uninterrupted run's (issue 24)
    d = tmp_path / "d"
    r = cli(*args, "--out", str(d), faults={"sigint_at_forward": 10})
    assert r.returncode == 130 and "--resume" in r.stderr, r.stderr
    r = cli(*args, "--out", str(d), "--resume")
    assert r.returncode == 0, r.stderr
    rd = rec(d, "tau")
    assert rd["metrics"] == ra["metrics"] and rd["history"][-1]["val_mse"] == ra["history"][-1]["val_mse"]


def _sha(p):
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


@pytest.mark.parametrize("args, needle", [
    (["--models", "tua"], "did you mean 'tau'"),
    (["--models", "tau", "--dataset", "mnistt"], "unknown dataset 'mnistt'"),
    (["--models", "tau", "--preset", "fast"], "unknown preset 'fast'"),
    (["--models", "tau", "--set", "epochs"], "malformed override 'epochs'"),
    (["--models", "tau", "--shard", "3/2"], "bad --shard '3/2'"),
    (["--models", "tau", "--set", "model.hid_X=3"], "does not take hid_X"),
    (["--models", "tau", "--data-root", "/nonexistent-stbench-dir"], "nonexistent-stbench-dir"),
])
def test_bad_input_one_line_error(smoke_run, args, needle):
    out, _ = smoke_run
    before = _sha(Path(out) / "records/mmnist/smoke/tau__seed0.json")
    r = cli("run", "--preset", "smoke", "--out", str(out), "--force", *args) if "--preset" not in args else \
        cli("run", "--out", str(out), "--force", *args)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("stbench: error:"), r.stderr
    assert needle in lines[0]
    assert "Traceback" not in r.stderr
    assert _sha(Path(out) / "records/mmnist/smoke/tau__seed0.json") == before


def test_unwritable_output_and_corrupt_checkpoint(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = cli("run", "--models", "tau", "--preset", "smoke", "--out", str(blocker / "sub"))
    assert r.returncode == 2 and "cannot write to output directory" in r.stderr and "--out" in r.stderr
    ck = tmp_path / "res/checkpoints/mmnist/smoke/tau__seed0.pt"
    ck.parent.mkdir(parents=True)
    ck.write_bytes(b"not a checkpoint")
    r = cli("run", "--models", "tau", "--preset", "smoke", "--out", str(tmp_path / "res"), "--resume")
    assert r.returncode == 2 and "checkpoint" in r.stderr and "unreadable" in r.stderr
    assert "Traceback" not in r.stderr


def test_nan_loss_fails_that_run_only(tmp_path):
    r = cli("run", "--models", "tau,simvp", "--preset", "smoke", "--out", str(tmp_path), "--no-profile",
            faults={"nan_model": "tau"})
    assert r.returncode == 1
    bad, good = rec(tmp_path, "tau"), rec(tmp_path, "simvp")
    assert bad["status"] == "failed" and "non-finite loss" in bad["reason"]
    assert good["status"] == "completed"


def test_ddp_two_processes_on_cpu(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "stbench", "run", "--models", "tau", "--preset", "smoke", "--out", str(tmp_path), "--no-profile"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(ENV, MASTER_ADDR="127.0.0.1"), timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    d = rec(tmp_path, "tau")
    assert d["status"] == "completed" and d["config"]["world_size"] == 2


def test_shards_split_the_grid(tmp_path):
    for i in (0, 1):
        r = cli("run", "--models", "tau,simvp", "--preset", "smoke", "--out", str(tmp_path), "--no-profile",
                "--shard", f"{i}/2")
        assert r.returncode == 0, r.stderr
        assert "shard" in r.stdout
    assert rec(tmp_path, "tau")["status"] == rec(tmp_path, "simvp")["status"] == "completed"


def test_data_root_runs_on_the_standard_files(tmp_path):
    import gzip

    import numpy as np

    rng = np.random.default_rng(0)
    digits = (rng.random((40, 28, 28)) > 0.7).astype(np.uint8) * 255
    header = np.array([2051, 40, 28, 28], dtype=">u4").tobytes()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + digits.tobytes()))
    seq = rng.integers(0, 256, (20, 12, 64, 64), dtype=np.uint8)  # time axis first, as published
    np.save(tmp_path / "mnist_test_seq.npy", seq)
    out = tmp_path / "res"
    r = cli("run", "--models", "tau", "--preset", "smoke", "--out", str(out), "--no-profile",
            "--data-root", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert rec(out, "tau")["config"]["data_root"] == str(tmp_path)
    # the copy-last floor, computed here from the file itself (the smoke preset tests 8 sequences)
    s = seq[:, :8].transpose(1, 0, 2, 3).astype(np.float64) / 255  # (B, 20, H, W)
    want = np.mean(np.sum((s[:, 9:10] - s[:, 10:]) ** 2, axis=(2, 3)))
    assert abs(rec(out, "copy_last")["metrics"]["mse"] - want) < 1e-6 * want


def test_plugin_metric_added_with_metrics_flag(tmp_path):
    """`--metrics +name` adds a registered plugin metric to the run's records and to the leaderboard."""
    plug = tmp_path / "mymetric.py"
    plug.write_text(
        "from stbench.metrics import register_metric\n"
        "@register_metric('rmse_test', label='RMSE', higher_is_better=False,\n"
        "                 convention='sqrt of the per-frame mean squared error')\n"
        "def rmse_test(pred, true):\n"
        "    return ((pred - true) ** 2).mean(dim=(2, 3, 4)).sqrt()\n")
    out = tmp_path / "res"
    r = cli("run", "--models", "tau", "--preset", "smoke", "--out", str(out), "--no-profile", "--plugin", str(plug),
            "--metrics", "+rmse_test,+ssim_dr1")
    assert r.returncode == 0, r.stderr
    for name in ("tau", "copy_last"):
        d = rec(out, name)
        assert {"rmse_test", "ssim_dr1"} <= set(d["metrics"]) and d["metrics_meta"]["rmse_test"]["label"] == "RMSE"
    # hand check on the floor: per frame sqrt(SSE / (C*H*W)) <= sqrt of the mean, by Jensen; and > 0
    fl = rec(out, "copy_last")["metrics"]
    assert 0 < fl["rmse_test"] <= (fl["mse"] / 4096) ** 0.5
    r = cli("report", "--results", str(out), "--format", "md", "--plugin", str(plug))
    assert r.returncode == 0, r.stderr
    md = (out / "report" / "leaderboard_mmnist_smoke.md").read_text()
    assert "RMSE↓" in md and "SSIM dr=1↑" in md
