"""Issue 24, class 3: completed records are never silently overwritten or confused.

- a record's identity includes its data: built-in data vs `--data-root` files (and their content fingerprint);
- an evaluation's identity includes its weights' sha256: `runA/best.pt` and `runB/best.pt` are two records;
- one process per cell: a second one refuses in one line; a lock left by a dead process is taken over.
"""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from stbench import cli
from stbench.errors import UserError
from stbench.records import RunRecord, cell_lock, record_path

RUN = ["run", "--models", "tau", "--preset", "smoke", "--no-profile", "--epochs", "1"]


def _one_line(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("stbench: error:"), err
    return err[0]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _lock(path, pid: int, host: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(), "since": "2026-01-01T00:00:00"}))


# -- the lock --------------------------------------------------------------------------------------
def test_cell_lock_refuses_a_live_holder_and_takes_over_a_dead_one(tmp_path):
    rec = tmp_path / "r" / "tau__seed0.json"
    with cell_lock(rec):
        assert rec.with_suffix(".lock").is_file()
        with pytest.raises(UserError, match="being written by process"):  # even this same process: no re-entry
            with cell_lock(rec):
                pass
    assert not rec.with_suffix(".lock").exists()  # released
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _lock(rec.with_suffix(".lock"), sleeper.pid)
        with pytest.raises(UserError, match=f"process {sleeper.pid} on "):
            with cell_lock(rec):
                pass
    finally:
        sleeper.kill()
        sleeper.wait()
    _lock(rec.with_suffix(".lock"), 1, host="some-other-node")  # another host: its pid cannot be checked here
    with pytest.raises(UserError, match="some-other-node"):
        with cell_lock(rec):
            pass
    _lock(rec.with_suffix(".lock"), _dead_pid())  # stale: its process is gone (SIGKILL)
    with cell_lock(rec):
        assert json.loads(rec.with_suffix(".lock").read_text())["pid"] != 1
    assert not rec.with_suffix(".lock").exists()


def test_second_process_on_a_cell_refuses_in_one_line(tmp_path, capsys):
    out = tmp_path / "res"
    rpath = record_path(out, "mmnist", "smoke", "tau", 0)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _lock(rpath.with_suffix(".lock"), sleeper.pid)
        assert cli.main([*RUN, "--out", str(out)]) == cli.EXIT_USAGE
        line = _one_line(capsys)
        assert "tau__seed0.json is being written by process" in line and "wait for it" in line
        assert not rpath.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


# -- the data source -------------------------------------------------------------------------------
def _standard_files(root, seed=0):
    rng = np.random.default_rng(seed)
    digits = (rng.random((40, 28, 28)) > 0.7).astype(np.uint8) * 255
    header = np.array([2051, 40, 28, 28], dtype=">u4").tobytes()
    (root / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + digits.tobytes()))
    np.save(root / "mnist_test_seq.npy", rng.integers(0, 256, (20, 12, 64, 64), dtype=np.uint8))


def _completed(out, model="tau", config=None) -> bytes:
    rec = RunRecord(model=model, dataset="mmnist", preset="smoke", seed=0, status="completed",
                    kind="floor" if model in ("copy_last", "zeros") else "model", metrics={"mse": 1.0},
                    config=config or {"data_root": None})
    return rec.write(out).read_bytes()


def test_completed_run_on_other_data_is_not_taken_for_this_one(tmp_path, capsys):
    """A folder holding the built-in-digit run of tau: a run with --data-root used to say "already completed"
    and show the other data's metrics. Now it refuses before anything is written, naming both sources."""
    from stbench.data.check import data_source

    root = tmp_path / "data"
    root.mkdir()
    _standard_files(root)
    out = tmp_path / "res"
    before = _completed(out)
    assert cli.main([*RUN, "--out", str(out), "--data-root", str(root)]) == cli.EXIT_USAGE
    line = _one_line(capsys)
    assert "built-in data" in line and str(root.resolve()) in line and "--force" in line
    assert record_path(out, "mmnist", "smoke", "tau", 0).read_bytes() == before
    assert not record_path(out, "mmnist", "smoke", "copy_last", 0).exists()  # refused before the floors
    # the same root with other file contents is other data too (its content fingerprint)
    src = dict(data_source("mmnist", str(root)))
    out2 = tmp_path / "res2"
    _completed(out2, config={"data_root": str(root), "data_source": src})
    _standard_files(root, seed=1)
    data_source.cache_clear()
    assert data_source("mmnist", str(root))["fingerprint"] != src["fingerprint"]
    assert cli.main([*RUN, "--out", str(out2), "--data-root", str(root)]) == cli.EXIT_USAGE
    assert src["fingerprint"] in _one_line(capsys)


def test_floor_of_other_data_is_not_reused(tmp_path, capsys):
    out = tmp_path / "res"
    _completed(out, model="copy_last", config={"data_root": "/some/where/else"})
    assert cli.main([*RUN, "--out", str(out)]) == cli.EXIT_USAGE
    assert "copy_last__seed0.json holds a run on the files under /some/where/else" in _one_line(capsys)


# -- evaluations -----------------------------------------------------------------------------------
def test_two_checkpoints_with_one_name_are_two_records_and_two_rows(tmp_path, monkeypatch, capsys):
    from test_interop_openstl import TINY_TAU_CONFIG, _fixture

    from stbench.report import build_report

    monkeypatch.chdir(tmp_path)
    fx = _fixture("tau")
    (tmp_path / "tiny_tau.py").write_text(TINY_TAU_CONFIG)
    for run, scale in (("runA", 1.0), ("runB", 0.5)):
        (tmp_path / run).mkdir()
        torch.save({f"model.{k}": v * scale if v.is_floating_point() else v for k, v in fx["state_dict"].items()},
                   tmp_path / run / "best.pt")
    out = tmp_path / "res"

    def ev(run, *extra):
        return cli.main(["eval", "--checkpoint", str(tmp_path / run / "best.pt"), "--model", "tau", "--from",
                         "openstl", "--config", str(tmp_path / "tiny_tau.py"), "--test-size", "2", "--no-profile",
                         "--out", str(out), *extra])

    assert ev("runA") == 0 and ev("runB") == 0
    recs = sorted((out / "records/mmnist/custom").glob("tau__evaluated_best-*.json"))
    assert len(recs) == 2
    a, b = (json.loads(p.read_text()) for p in recs)
    assert a["checkpoint"]["sha256"] != b["checkpoint"]["sha256"] and a["metrics"] != b["metrics"]
    # evaluated again: the completed record is kept (byte for byte) unless --force
    before = recs[0].read_bytes()
    capsys.readouterr()
    assert ev("runA") == 0 and ev("runB") == 0 and recs[0].read_bytes() == before
    assert "already evaluated" in capsys.readouterr().out
    assert ev("runA", "--force") == 0
    rep = build_report(out, tmp_path / "rep", ["csv"], plots=False)
    (lb,) = rep.boards
    labels = set(lb.runs["checkpoint"])
    assert len(labels) == 2 and all("best.pt" in x and "sha256" in x for x in labels), labels
    assert not any("duplicate" in w for w in rep.warnings), rep.warnings
