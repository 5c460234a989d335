"""`--launcher slurm` through submitit's local executor, `stbench status`, and multi-node torchrun."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stbench.launch.slurm import cell_argv, parse_mem_gb, parse_time_minutes
from stbench.status import grid_status

ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def cli(*args):
    return subprocess.run([sys.executable, "-m", "stbench", *args], capture_output=True, text=True, env=ENV,
                          timeout=600)


def test_cell_argv_replaces_grid_and_launcher_options():
    argv = ["--debug", "run", "--models", "tau,simvp", "--seeds=0,1", "--preset", "smoke", "--launcher", "slurm",
            "--slurm-extra", "account=x", "--slurm-time=01:00:00", "--wait", "--out", "res", "--set", "lr=1e-3"]
    assert cell_argv(argv, "simvp", 1) == ["--debug", "run", "--preset", "smoke", "--out", "res", "--set", "lr=1e-3",
                                           "--models", "simvp", "--seeds", "1", "--resume"]


def test_slurm_time_and_memory_parsing():
    assert parse_time_minutes("12:00:00") == 720
    assert parse_time_minutes("1-00:30:00") == 24 * 60 + 30
    assert parse_time_minutes("90") == 90
    assert parse_time_minutes("01:30") == 90
    assert parse_mem_gb("32G") == 32 and parse_mem_gb("2048M") == 2
    r = cli("run", "--models", "tau", "--launcher", "slurm", "--slurm-time", "soon")
    assert r.returncode != 0 and "bad --slurm-time 'soon'" in r.stderr and "Traceback" not in r.stderr


def test_submitit_local_runs_cells_and_resubmission_skips_them(tmp_path):
    out = tmp_path / "res"
    args = ("run", "--models", "tau,simvp", "--preset", "smoke", "--out", str(out), "--no-profile",
            "--launcher", "submitit-local", "--wait")
    r = cli(*args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "submitting 2" in r.stdout
    recs = {m: json.loads((out / "records/mmnist/smoke" / f"{m}__seed0.json").read_text()) for m in ("tau", "simvp")}
    assert all(v["status"] == "completed" for v in recs.values())
    logs = list((out / "slurm").glob("*/*_log.out"))
    assert len(logs) == 2  # two separate jobs (processes)
    manifest = json.loads((out / "grid/mmnist__smoke.json").read_text())
    assert sorted(map(tuple, manifest["cells"])) == [("simvp", 0), ("tau", 0)] and len(manifest["jobs"]) == 2
    r2 = cli(*args)
    assert r2.returncode == 0 and "2 already completed, submitting 0" in r2.stdout
    assert len(list((out / "slurm").iterdir())) == 1  # nothing new submitted
    again = json.loads((out / "grid/mmnist__smoke.json").read_text())
    assert again["cells"] == manifest["cells"] and again["jobs"] == manifest["jobs"]  # the manifest is kept


def test_status_shows_a_mixed_grid(tmp_path):
    rec_dir = tmp_path / "records/mmnist/quick"
    rec_dir.mkdir(parents=True)

    def write(model, seed, **kw):
        base = {"schema_version": 2, "kind": "model", "model": model, "dataset": "mmnist", "preset": "quick",
                "seed": seed, "family": "parallel", "config": {"epochs": 5}, "history": []}
        (rec_dir / f"{model}__seed{seed}.json").write_text(json.dumps({**base, **kw}))

    write("tau", 0, status="completed", metrics={"mse": 119.4})
    write("tau", 1, status="running", history=[{"epoch": 1}, {"epoch": 2}])
    write("predrnn", 0, status="failed", reason="NonFiniteLoss: non-finite loss at epoch 3, batch 10")
    (rec_dir / "simvp__seed0.json").write_text("{not json")
    (tmp_path / "grid").mkdir()
    (tmp_path / "grid/mmnist__quick.json").write_text(json.dumps(
        {"dataset": "mmnist", "preset": "quick", "cells": [["tau", 0], ["tau", 1], ["predrnn", 0], ["gsta", 2]],
         "jobs": {"gsta__seed2": "4242_3"}}))
    cells = {(c.model, c.seed): c for c in grid_status(tmp_path)}
    assert cells[("tau", 0)].status == "completed" and "119.4" in cells[("tau", 0)].detail
    assert cells[("tau", 1)].status == "running" and cells[("tau", 1)].detail.startswith("epoch 2/5")
    assert cells[("predrnn", 0)].status == "failed" and "non-finite loss" in cells[("predrnn", 0)].detail
    assert cells[("gsta", 2)].status == "queued" and "4242_3" in cells[("gsta", 2)].detail
    assert cells[("simvp__seed0", None)].status == "unreadable"
    r = cli("status", "--results", str(tmp_path))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 6 and lines[-1] == "5 cells: 1 unreadable, 1 failed, 1 running, 1 queued, 1 completed"
    assert [ln.split()[5] for ln in lines[:-1]] == ["unreadable", "failed", "running", "queued", "completed"]


def test_status_without_records_is_one_line_error(tmp_path):
    r = cli("status", "--results", str(tmp_path / "nothing"))
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "point --results at the --out" in r.stderr


@pytest.mark.parametrize("nnodes", [1])
def test_torchrun_rendezvous_two_processes(tmp_path, nnodes):
    """The multi-node command of the README (c10d rendezvous), with both processes on this machine."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nnodes={nnodes}", "--nproc-per-node=2",
           "--rdzv-backend=c10d", "--rdzv-endpoint=127.0.0.1:0", "--rdzv-id=stbench-test",
           "-m", "stbench", "run", "--models", "tau", "--preset", "smoke", "--out", str(tmp_path), "--no-profile"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    d = json.loads((Path(tmp_path) / "records/mmnist/smoke/tau__seed0.json").read_text())
    assert d["status"] == "completed" and d["config"]["world_size"] == 2


def test_gpu_check_dry_run_on_cpu(tmp_path):
    """benchmarks/gpu_check.sh end to end on CPU at smoke sizes: every phase runs and writes its CSV."""
    root = Path(__file__).resolve().parents[1]
    env = dict(ENV, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    r = subprocess.run(["bash", str(root / "benchmarks/gpu_check.sh"), "--dry", "--out", str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "== scaling: ok" in r.stdout
    import csv

    prof = list(csv.DictReader(open(next(tmp_path.glob("profile_cpu-*_dry.csv")))))
    assert {row["model"] for row in prof} == {"tau", "predrnn"}  # at their smoke sizes
    assert all(row["status"] == "ok" and float(row["published_protocol_fps"]) > 0 for row in prof)
    quick = list(csv.DictReader(open(next(tmp_path.glob("quick_cpu-*_dry.csv")))))
    assert [row["status"] for row in quick] == ["completed", "completed"]
    assert list(tmp_path.glob("scaling_cpu-*.csv"))
    comp = json.loads(next(tmp_path.glob("compile_step_cpu-*_smoke.json")).read_text())  # eager vs compiled
    assert [(r["model"], r["status"]) for r in comp["rows"]] == [("tau", "ok"), ("predrnn", "ok")]
