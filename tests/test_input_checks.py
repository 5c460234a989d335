"""Issue 24, class 7: every argument and recipe value is checked before anything is written.

Each bad value ends `stbench run` / `stbench eval` with exit 2 and one line that names the value and the fix,
and the output folder stays empty (no floor record, no checkpoint, no log). In-process, no training."""

from __future__ import annotations

import pytest
import torch

from stbench import cli

RUN = ["run", "--models", "tau", "--preset", "smoke", "--no-profile"]


def _refused(capsys, argv: list[str], out, needle: str) -> str:
    rc = cli.main(argv)
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.strip()]
    assert rc == cli.EXIT_USAGE, (rc, err)
    assert len(err) == 1 and err[0].startswith("stbench: error:"), err
    assert needle in err[0], err[0]
    written = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert not written, written  # nothing written before the refusal
    return err[0]


@pytest.mark.parametrize("extra, needle", [
    (["--batch-size", "0"], "--batch-size 0"),
    (["--batch-size", "-4"], "--batch-size -4"),
    (["--lr", "-1"], "--lr -1"),
    (["--lr", "nan"], "--lr nan"),
    (["--epochs", "0"], "--epochs 0"),
    (["--train-size", "0"], "--train-size 0"),
    (["--val-size", "0"], "--val-size 0"),
    (["--test-size", "0"], "--test-size 0"),
    (["--accum-steps", "0"], "--accum-steps 0"),
    (["--clip-grad", "-1"], "--clip-grad -1"),
    (["--set", "batch_size=0"], "batch_size 0"),
    (["--set", "lr=-0.1"], "lr -0.1"),
    (["--precision", "fp8"], "unknown precision 'fp8'"),
    (["--set", "model.nosuch=3"], "does not take nosuch"),
    (["--seed", "3", "--seeds", "0,1"], "--seed 3 and --seeds 0,1"),
    (["--device", "tpu"], "--device tpu"),
    (["--threads", "0"], "--threads 0"),
])
def test_bad_run_input_is_refused_before_anything_is_written(tmp_path, capsys, extra, needle):
    out = tmp_path / "res"
    _refused(capsys, [*RUN, "--out", str(out), *extra], out, needle)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "res"
    _refused(capsys, [*RUN, "--out", str(out), "--device", "cuda"], out, "--device cpu")


@pytest.mark.parametrize("extra, needle", [
    (["--test-size", "-5"], "--test-size -5"),
    (["--test-size", "0"], "--test-size 0"),
    (["--batch-size", "0"], "--batch-size 0"),
    (["--device", "tpu"], "--device tpu"),
])
def test_bad_eval_input_is_refused_before_anything_is_read_or_written(tmp_path, capsys, extra, needle):
    out = tmp_path / "res"
    ck = tmp_path / "w.pt"
    torch.save({"x": torch.zeros(1)}, ck)
    _refused(capsys, ["eval", "--checkpoint", str(ck), "--model", "tau", "--out", str(out), "--no-profile", *extra],
             out, needle)


@pytest.mark.parametrize("extra, needle", [
    (["--batch-size", "0"], "--batch-size 0"),
    (["--set", "model.nosuch=3"], "does not take nosuch"),
    (["--precision", "fp8"], "unknown precision 'fp8'"),
])
def test_bad_input_is_refused_before_a_grid_is_submitted(tmp_path, capsys, extra, needle):
    out = tmp_path / "res"
    _refused(capsys, [*RUN, "--out", str(out), "--launcher", "submitit-local", *extra], out, needle)
