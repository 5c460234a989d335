"""`stbench run --logger csv|tensorboard|mlflow`: what each logger wrote, read back with its own reader
(csv; TensorBoard's EventAccumulator; MLflow's client on the local store). TensorBoard and MLflow are optional
extras: their tests are skipped, with the reason, where the package is missing."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from stbench.errors import UserError
from stbench.loggers import RunLogs, flat_hparams, mlflow_uri, parse_loggers
from stbench.train import LoopHooks


def _rec(**kw):
    base = dict(model="tau", dataset="mmnist", preset="smoke", seed=0, family="parallel", history=[],
                run_id="mmnist/smoke/tau__seed0",
                status="completed", metrics={"mse": 100.0, "ssim": 0.5},
                config={"epochs": 2, "lr": 1e-3, "model": {"hid_S": 8}, "plan": {"steps": 4}})
    return SimpleNamespace(**{**base, **kw})


def _drive(logs: RunLogs, calls: list) -> None:
    """The loop's side: 2 epochs x 2 batches, each batch one real optimizer step with a changing lr."""
    hooks = logs.hooks(LoopHooks(on_step=lambda *a: calls.append(a)))
    w = torch.nn.Parameter(torch.ones(1))
    opt = torch.optim.SGD([w], lr=0.1)
    hooks.on_start(2, 2)
    for epoch in (1, 2):
        for batch in (1, 2):
            opt.param_groups[0]["lr"] = 0.1 / (2 * (epoch - 1) + batch)
            (w * 2).sum().backward()
            opt.step()
            hooks.on_step(batch, 1.0 / epoch, 50.0)
        hooks.on_epoch({"epoch": epoch, "train_loss": 1.0 / epoch, "val_mse": 200.0 / epoch, "lr": 0.01,
                        "note": "not a number"})


def test_parse_loggers():
    assert parse_loggers("csv, csv,CSV") == ["csv"] and parse_loggers(None) == []
    with pytest.raises(UserError, match="unknown --logger wandb; choose from csv,tensorboard,mlflow"):
        parse_loggers("csv,wandb")


@pytest.mark.parametrize("name, module", [("tensorboard", "torch.utils.tensorboard"), ("mlflow", "mlflow")])
def test_missing_extra_is_one_line_with_the_install_command(name, module, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(UserError) as exc:
        parse_loggers(name)
    assert f'pip install "stbench[{name}]"' in str(exc.value) and "\n" not in str(exc.value)


def test_flat_hparams():
    assert flat_hparams({"a": 1, "m": {"h": 8, "k": [3, 5]}, "n": None}) == {"a": 1, "m/h": 8, "m/k": "[3, 5]",
                                                                          "n": "null"}


def test_csv_logger_and_hooks_chain(tmp_path):
    calls: list = []
    logs = RunLogs.open(["csv"], tmp_path, _rec())
    _drive(logs, calls)
    logs.finish(_rec())
    assert len(calls) == 4  # the runner's own on_step still runs
    d = tmp_path / "logs" / "csv" / "mmnist" / "smoke" / "tau__seed0"
    steps = list(csv.DictReader(open(d / "steps.csv")))
    assert [int(r["step"]) for r in steps] == [1, 2, 3, 4]  # global optimizer steps across epochs
    assert [float(r["lr"]) for r in steps] == pytest.approx([0.1, 0.05, 0.1 / 3, 0.025])  # the lr each step used
    assert float(steps[0]["samples_per_s"]) == 50.0 and float(steps[2]["loss"]) == 0.5
    epochs = list(csv.DictReader(open(d / "epochs.csv")))
    assert [float(r["val_mse"]) for r in epochs] == [200.0, 100.0] and "note" not in epochs[0]
    assert dict(csv.reader(open(d / "test.csv"))) == {"metric": "value", "mse": "100.0", "ssim": "0.5"}
    hp = json.loads((d / "hparams.json").read_text())
    assert hp["status"] == "completed" and hp["hparams"]["model"] == {"hid_S": 8} and hp["hparams"]["run"]["seed"] == 0
    # the optimizer hook is gone after the run: a later optimizer step reaches no logger
    assert logs._hook is None


def test_tensorboard_logger_read_back(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install 'stbench[tensorboard]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    logs = RunLogs.open(["tensorboard"], tmp_path, _rec())
    _drive(logs, [])
    logs.finish(_rec())
    acc = EventAccumulator(str(tmp_path / "logs" / "tensorboard" / "mmnist" / "smoke" / "tau__seed0"))
    acc.Reload()
    scalars = acc.Tags()["scalars"]
    for tag in ("train/loss", "train/lr", "train/samples_per_s", "epoch/val_mse", "epoch/train_loss", "test/mse"):
        assert tag in scalars, tag
    assert [e.step for e in acc.Scalars("train/lr")] == [1, 2, 3, 4]
    assert [round(e.value, 6) for e in acc.Scalars("train/lr")] == [0.1, 0.05, round(0.1 / 3, 6), 0.025]
    assert [e.value for e in acc.Scalars("epoch/val_mse")] == [200.0, 100.0]
    assert acc.Scalars("test/mse")[0].value == 100.0
    content = acc.PluginTagToContent("hparams")
    start = next(plugin_data_pb2.HParamsPluginData.FromString(c) for t, c in content.items()
                 if t.endswith("session_start_info"))
    hp = start.session_start_info.hparams
    assert hp["lr"].number_value == 1e-3 and hp["model/hid_S"].number_value == 8 and hp["run/model"].string_value \
        == "tau" and hp["status"].string_value == "completed"


def test_mlflow_logger_read_back(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason="mlflow is not installed (pip install 'stbench[mlflow]')")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    logs = RunLogs.open(["mlflow"], tmp_path, _rec())
    _drive(logs, [])
    logs.finish(_rec())
    uri = mlflow_uri(tmp_path)
    assert uri == (tmp_path.resolve() / "logs" / "mlruns").as_uri()
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("stbench-mmnist-smoke")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.run_name == "tau__seed0" and run.info.status == "FINISHED"
    assert run.data.params["lr"] == "0.001" and run.data.params["model/hid_S"] == "8"
    assert run.data.metrics["test/mse"] == 100.0 and run.data.tags["stbench.family"] == "parallel"
    lrs = client.get_metric_history(run.info.run_id, "train/lr")
    assert [(m.step, round(m.value, 6)) for m in lrs] == [(1, 0.1), (2, 0.05), (3, round(0.1 / 3, 6)), (4, 0.025)]
    assert [m.value for m in client.get_metric_history(run.info.run_id, "epoch/val_mse")] == [200.0, 100.0]


def test_run_with_loggers_end_to_end(tmp_path, monkeypatch):
    """`stbench run --logger csv,tensorboard` on a smoke run: the loop's real steps and epochs, read back."""
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install 'stbench[tensorboard]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from stbench.cli import main

    rc = main(["run", "--models", "tau", "--preset", "smoke", "--budget", "samples=24", "--out", str(tmp_path),
               "--no-profile", "--no-weights", "--test-size", "4", "--precision", "fp32",
               "--logger", "csv,tensorboard"])
    assert rc == 0
    (path,) = (tmp_path / "records").rglob("tau__seed0.json")  # a budget asked for may add a folder
    rec = json.loads(path.read_text())
    d = Path(tmp_path) / "logs" / "csv" / rec["run_id"]  # the logs sit where the record's id says
    epochs = list(csv.DictReader(open(d / "epochs.csv")))
    assert [float(r["val_mse"]) for r in epochs] == pytest.approx([h["val_mse"] for h in rec["history"]])
    steps = list(csv.DictReader(open(d / "steps.csv")))
    assert int(steps[-1]["step"]) == rec["budget"]["steps"] and all(float(r["lr"]) > 0 for r in steps)
    test = dict(csv.reader(open(d / "test.csv")))
    assert float(test["mse"]) == pytest.approx(rec["metrics"]["mse"])
    acc = EventAccumulator(str(tmp_path / "logs" / "tensorboard" / rec["run_id"]))
    acc.Reload()
    assert acc.Scalars("test/mse")[0].value == pytest.approx(rec["metrics"]["mse"], rel=1e-6)
    assert len(acc.Scalars("epoch/val_mse")) == len(rec["history"])
