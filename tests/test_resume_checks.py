"""Issue 24, class 4: `--resume` with a different set-up is refused in one line naming the first difference,
and no refusal touches the interrupted run's record or checkpoint (its history survives)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stbench import cli

FAULT_CLI = str(Path(__file__).with_name("fault_cli.py"))
ARGS = ["run", "--models", "tau", "--preset", "smoke", "--no-profile", "--epochs", "2"]
REC = "records/mmnist/smoke/tau__seed0.json"
CKPT = "checkpoints/mmnist/smoke/tau__seed0.pt"


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """A run SIGKILLed after epoch 1's checkpoint: a `running` record with one epoch of history."""
    out = tmp_path_factory.mktemp("killed")
    r = subprocess.run([sys.executable, FAULT_CLI, "kill_after_epoch=1", "--", *ARGS, "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == -9, r.stderr
    return out


@pytest.fixture()
def out(killed, tmp_path):
    dst = tmp_path / "res"
    shutil.copytree(killed, dst)
    return dst


def _refused(capsys, out: Path, *extra: str) -> str:
    rec, ck = (out / REC).read_bytes(), (out / CKPT).read_bytes()
    assert cli.main([*ARGS, "--out", str(out), "--resume", *extra]) == cli.EXIT_USAGE
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("stbench: error:"), err
    assert (out / REC).read_bytes() == rec and (out / CKPT).read_bytes() == ck  # history untouched
    return err[0]


def test_resume_with_another_batch_size_is_refused(out, capsys):
    line = _refused(capsys, out, "--batch-size", "8")
    assert "batch_size" in line and "4" in line and "8" in line and "--force" in line


def test_resume_with_another_architecture_is_refused(out, capsys):
    line = _refused(capsys, out, "--set", "model.hid_S=16")
    assert "model.hid_S" in line


@pytest.mark.skipif(not __import__("stbench.precision").precision.cpu_supports_bf16(), reason="no CPU bf16")
def test_resume_with_another_precision_is_refused(out, capsys):
    line = _refused(capsys, out, "--precision", "bf16")  # trained in fp32 (the smoke preset's)
    assert "fp32" in line and "--precision bf16" in line


def test_resume_from_a_bare_state_dict_is_refused(out, capsys):
    torch.save({"encoder.weight": torch.zeros(2)}, out / CKPT)
    line = _refused(capsys, out)
    assert "not an stbench training checkpoint" in line and "state dict" in line


def test_resume_with_the_same_set_up_still_continues(out):
    assert cli.main([*ARGS, "--out", str(out), "--resume"]) == 0
