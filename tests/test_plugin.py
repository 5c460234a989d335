"""The example plugin, installed as a real package, is discovered through its entry point and runs
through the CLI like a built-in."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(ROOT / "examples" / "plugin")], check=True,
                   capture_output=True, text=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), str(ROOT)]))  # this checkout's stbench
    return env


def _cli(args, env, cwd):
    return subprocess.run([sys.executable, "-m", "stbench", *args], env=env, cwd=cwd, capture_output=True, text=True)


def test_installed_plugin_is_listed_and_profiles(plugin_env, tmp_path):
    r = _cli(["list", "temporal", "--format", "json"], plugin_env, tmp_path)
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["tconv"]["kind"] == "parallel"
    assert rows["tconv"]["source"] == "plugin stbench-example-plugin"
    assert rows["tau"]["source"] == "built-in"
    r = _cli(["profile", "--models", "tconv,tconv@patch", "--preset", "smoke", "--batch", "2", "--reps", "2",
              "--warmup", "1", "--format", "json"], plugin_env, tmp_path)
    assert r.returncode == 0, r.stderr
    prof = json.loads(r.stdout)
    assert [p["model"] for p in prof] == ["tconv", "tconv@patch"]
    assert all(p["params"] > 0 and p["flops"] > 0 and p["infer_seq_per_s"] > 0 for p in prof)


def test_installed_plugin_runs_through_the_cli(plugin_env, tmp_path):
    r = _cli(["run", "--models", "tconv", "--preset", "smoke", "--out", str(tmp_path / "res"), "--no-profile"],
             plugin_env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    rec = json.loads((tmp_path / "res/records/mmnist/smoke/tconv__seed0.json").read_text())
    assert rec["status"] == "completed" and rec["temporal"] == "tconv" and rec["encoder"] == "simvp"
    # no TOML line for tconv: its own smoke sizes from its registry entry, not the SimVP codec's paper width
    hp = rec["config"]["model_hparams"]
    assert (hp["hid_S"], hp["N_S"], hp["hid_T"], hp["depth"]) == (8, 2, 16, 1)
    assert rec["config"]["epochs"] == 2  # the dataset's [presets.smoke]


def test_broken_installed_plugin_is_reported_by_name(tmp_path):
    site = tmp_path / "site"
    dist = site / "brokenplug-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[stbench.temporal]\nbroken = brokenplug_missing_module\n")
    env = dict(os.environ, PYTHONPATH=str(site))
    r = _cli(["list", "temporal"], env, tmp_path)
    assert r.returncode == 0
    assert "plugin 'broken' (brokenplug, group stbench.temporal) failed to load" in r.stderr
    assert "ModuleNotFoundError" in r.stderr
