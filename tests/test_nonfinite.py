"""Issue 24, class 2: a result that is not finite is never "completed", and one such record never breaks the
report of a whole results folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from stbench import cli
from stbench import train as T
from stbench.records import RunRecord

METRICS = ("mse", "mae", "ssim", "psnr")


def _one_error_line(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.strip()]
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_eval_of_overflowing_weights_is_failed_with_exit_1(tmp_path, capsys):
    """The readout scaled by 1e36: predictions overflow to inf (test MSE inf)."""
    from stbench.recipes import load_recipe

    torch.manual_seed(0)
    sd = load_recipe("mmnist", "tau", "paper").build_model("tau").state_dict()
    sd["decoder.readout.weight"] *= 1e36
    torch.save(sd, tmp_path / "big.pt")
    out = tmp_path / "res"
    rc = cli.main(["eval", "--checkpoint", str(tmp_path / "big.pt"), "--model", "tau", "--out", str(out),
                   "--test-size", "2", "--batch-size", "2", "--no-profile"])
    assert rc == 1
    line = _one_error_line(capsys)
    assert "non-finite" in line and "mse" in line, line
    (path,) = (out / "records/mmnist/paper").glob("tau__evaluated_big*.json")
    d = json.loads(path.read_text())
    assert d["status"] == "failed" and "non-finite test metrics" in d["reason"] and d["metrics"] is None


def test_run_with_non_finite_test_metrics_is_failed(tmp_path, monkeypatch, capsys):
    """Training is fine but the test evaluation gives inf (as a model that overflows only on the test split
    would): the run is `failed` with the reason, exit 1, and no completed record claims inf."""
    real = T.evaluate

    def overflowing_test(*args, **kw):
        res, ex = real(*args, **kw)
        if kw.get("per_sequence"):  # the test split (validation asks for no per-sequence values)
            res["mse"] = math.inf
        return res, ex

    monkeypatch.setattr(T, "evaluate", overflowing_test)
    rc = cli.main(["run", "--models", "tau", "--preset", "smoke", "--epochs", "1", "--no-profile",
                   "--out", str(tmp_path)])
    assert rc == 1
    d = json.loads((tmp_path / "records/mmnist/smoke/tau__seed0.json").read_text())
    assert d["status"] == "failed" and "non-finite test metrics" in d["reason"] and "mse" in d["reason"]
    assert d["metrics"] is None


def test_non_finite_validation_fails_the_run(tmp_path):
    """A model whose validation MSE is NaN used to be "completed" with the last weights (NaN never beats the
    best so far, so nothing was ever selected)."""
    from toydata import T_IN, T_OUT, MovingSquare

    import stbench
    from stbench.precision import make_precision

    torch.manual_seed(0)
    model = stbench.create_model("convlstm", in_shape=(T_IN, 1, 16, 16), t_out=T_OUT, patch_size=2,
                                 num_hidden=(8,), filter_size=3)

    def poison(epoch, batch):  # after the last step of every epoch: weights NaN, so validation is NaN
        if batch == 2:
            with torch.no_grad():
                next(model.parameters()).fill_(math.nan)

    cfg = {"epochs": 1, "batch_size": 8, "optimizer": "adam", "scheduler": "onecycle", "lr": 1e-3,
           "sampling": {"kind": "teacher"}, "train_size": 16}
    with pytest.raises(T.NonFiniteMetrics, match="non-finite validation metrics at epoch 1"):
        cpu = torch.device("cpu")
        T.train(model, MovingSquare(), cfg, device=cpu, prec=make_precision("fp32", cpu), seed=0, ckpt_path=None,
                hooks=T.LoopHooks(after_update=poison))


def _record(model: str, mse: float, kind: str = "model") -> RunRecord:
    from stbench.metrics import metrics_meta

    vals = {"mse": mse, "mae": 300.0, "ssim": 0.5, "psnr": 15.0}
    per_frame = {k: [v] * 10 for k, v in vals.items()}
    prof = None if kind == "floor" else {"params": 1e5, "flops": 1e8, "infer_seq_per_s": 100.0, "infer_batch": 16,
                                         "train_step_ms": 10.0, "device": "cpu", "precision": "fp32"}
    return RunRecord(model=model, dataset="mmnist", preset="smoke", seed=0, kind=kind, status="completed",
                     family="floor" if kind == "floor" else "parallel", metrics=vals, per_frame=per_frame,
                     metrics_meta=metrics_meta(METRICS), profile=prof, config={"epochs": 2})


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_report_skips_a_non_finite_record_and_names_it(tmp_path, bad):
    from stbench.report import build_report

    res = tmp_path / "res"
    for rec in (_record("tau", 500.0), _record("simvp", 600.0), _record("predrnn", bad),
                _record("copy_last", 900.0, kind="floor")):
        rec.write(res)
    out = build_report(res, tmp_path / "rep", ["md", "csv"], plots=True)
    warn = [w for w in out.warnings if "predrnn" in w]
    assert warn and "non-finite" in warn[0], out.warnings
    (lb,) = out.boards
    assert set(lb.runs["model"]) == {"tau", "simvp", "copy_last"}  # ranked: only the finite ones
    assert "predrnn" in set(lb.unfinished["model"])  # listed under the table with its reason
    assert any(Path(f).suffix == ".png" for f in out.files)
    num = lb.table.select_dtypes("number").to_numpy(float)
    assert not np.isinf(num).any()
    md = (tmp_path / "rep" / "leaderboard_mmnist_smoke.md").read_text()
    assert "non-finite test metrics" in md  # the reason, beside predrnn under the table
