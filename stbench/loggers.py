"""Training logs in the tools people already use: ``stbench run --logger csv|tensorboard|mlflow`` (a comma list).

    stbench run --models tau --logger tensorboard,csv
    tensorboard --logdir results/logs/tensorboard
    stbench run --models tau --logger mlflow          # MLFLOW_TRACKING_URI, else a local store under results/logs

What each logger gets, through the training loop's hooks (:class:`stbench.train.LoopHooks`; the loop itself
knows nothing of loggers):

- per step (every ``log_every`` batches, as the progress bar): ``train/loss`` (running mean of the epoch),
  ``train/lr`` (the optimizer's learning rate after its last step) and ``train/samples_per_s``, at the global
  optimizer step;
- per epoch: every number of the record's history row (``epoch/train_loss``, ``epoch/val_mse``, ``epoch/lr`` ...);
- at the end: the test metrics (``test/<metric>``), the resolved recipe as hyper-parameters, and the status.

Where: ``<out>/logs/csv/<run id>/`` (``steps.csv``, ``epochs.csv``, ``test.csv``, ``hparams.json``) and
``<out>/logs/tensorboard/<run id>/`` (event files), the run id being the record's
(``<dataset>/<preset>/<model>__seed<seed>``, a budget folder before the model where the record has one); for
MLflow the tracking URI in ``MLFLOW_TRACKING_URI`` or else ``<out>/logs/mlruns`` (experiment
``stbench-<dataset>-<preset>``, run ``<model>__seed<seed>``). TensorBoard and MLflow are optional extras
(``pip install "stbench[tensorboard]"`` / ``"stbench[mlflow]"``); csv needs nothing.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stbench.errors import UserError

LOGGERS = ("csv", "tensorboard", "mlflow")
EXTRAS = {"tensorboard": ("torch.utils.tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}


def parse_loggers(text: str | Sequence[str] | None) -> list[str]:
    """``"tensorboard,csv"`` -> ``["tensorboard", "csv"]``, checked: an unknown name or a missing optional
    package is a one-line :class:`UserError` naming the fix, raised before anything trains."""
    if not text:
        return []
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    bad = [n for n in names if n not in LOGGERS]
    if bad:
        raise UserError(f"unknown --logger {', '.join(bad)}; choose from {','.join(LOGGERS)} (a comma list)")
    for n in names:
        if n in EXTRAS:
            module, extra = EXTRAS[n]
            try:
                __import__(module)
            except ImportError:
                raise UserError(f"--logger {n} needs {extra}; install it with: pip install \"stbench[{extra}]\"")\
                    from None
    return list(dict.fromkeys(names))


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def flat_hparams(cfg: dict[str, Any], prefix: str = "") -> dict[str, int | float | str | bool]:
    """A nested recipe as flat ``a/b`` keys with scalar values (lists and None as text): what hparams take."""
    out: dict[str, int | float | str | bool] = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_hparams(v, f"{key}/"))
        elif isinstance(v, (bool, int, float, str)):
            out[key] = v
        else:
            out[key] = json.dumps(v, default=str)
    return out


class RunLogger:
    """One logger of one run. Subclasses write; :class:`RunLogs` calls them."""

    def step(self, step: int, values: dict[str, float]) -> None: ...

    def epoch(self, epoch: int, values: dict[str, float]) -> None: ...

    def finish(self, metrics: dict[str, float], hparams: dict[str, Any], status: str) -> None: ...

    def close(self) -> None: ...


class CsvLogger(RunLogger):
    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, tuple[Any, csv.DictWriter]] = {}

    def _row(self, name: str, row: dict[str, Any]) -> None:
        if name not in self._files:
            path = self.dir / f"{name}.csv"
            new = not path.exists() or path.stat().st_size == 0  # a resumed run appends
            f = open(path, "a", newline="", encoding="utf-8")  # noqa: SIM115 - closed in close()
            w = csv.DictWriter(f, fieldnames=list(row), extrasaction="ignore")
            if new:
                w.writeheader()
            self._files[name] = (f, w)
        f, w = self._files[name]
        w.writerow(row)
        f.flush()

    def step(self, step: int, values: dict[str, float]) -> None:
        self._row("steps", {"step": step, **values})

    def epoch(self, epoch: int, values: dict[str, float]) -> None:
        self._row("epochs", {"epoch": epoch, **values})

    def finish(self, metrics: dict[str, float], hparams: dict[str, Any], status: str) -> None:
        with open(self.dir / "test.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["metric", "value"])
            w.writerows(sorted(metrics.items()))
        (self.dir / "hparams.json").write_text(json.dumps({"status": status, "hparams": hparams}, indent=1,
                                                          default=str) + "\n", encoding="utf-8")

    def close(self) -> None:
        for f, _ in self._files.values():
            f.close()
        self._files.clear()


class TensorBoardLogger(RunLogger):
    def __init__(self, run_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.w = SummaryWriter(log_dir=str(run_dir))

    def step(self, step: int, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.w.add_scalar(f"train/{k}", v, step)

    def epoch(self, epoch: int, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.w.add_scalar(f"epoch/{k}", v, epoch)

    def finish(self, metrics: dict[str, float], hparams: dict[str, Any], status: str) -> None:
        for k, v in metrics.items():
            self.w.add_scalar(f"test/{k}", v, 0)
        # run_name "." keeps the hparams in this run's folder (torch's default makes a sub-folder per call)
        self.w.add_hparams({**flat_hparams(hparams), "status": status},
                           {f"test/{k}": v for k, v in metrics.items()} or {"test/none": math.nan}, run_name=".")
        self.w.flush()

    def close(self) -> None:
        self.w.close()


class MlflowLogger(RunLogger):
    def __init__(self, tracking_uri: str, experiment: str, run_name: str, tags: dict[str, str]) -> None:
        import mlflow

        self.client = mlflow.MlflowClient(tracking_uri)
        exp = self.client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(experiment)
        self.run_id = self.client.create_run(exp_id, run_name=run_name, tags=tags).info.run_id
        self.tracking_uri = tracking_uri

    def step(self, step: int, values: dict[str, float]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(f"train/{k}", v, now, step) for k, v in values.items()])

    def epoch(self, epoch: int, values: dict[str, float]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(f"epoch/{k}", v, now, epoch) for k, v in values.items()])

    def finish(self, metrics: dict[str, float], hparams: dict[str, Any], status: str) -> None:
        import time

        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        params = [Param(k, str(v)[:6000]) for k, v in flat_hparams(hparams).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[i:i + 100])
        self.client.log_batch(self.run_id, metrics=[Metric(f"test/{k}", v, now, 0) for k, v in metrics.items()])
        self.client.set_tag(self.run_id, "stbench.status", status)
        self.client.set_terminated(self.run_id, "FINISHED" if status == "completed" else "FAILED")

    def close(self) -> None:
        pass


def mlflow_uri(out: Path) -> str:
    """``MLFLOW_TRACKING_URI`` when set, else a local file store under ``<out>/logs/mlruns``. MLflow 3 keeps its
    file store in maintenance mode behind ``MLFLOW_ALLOW_FILE_STORE``; stbench opts in for this default only."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return (Path(out).resolve() / "logs" / "mlruns").as_uri()


class RunLogs:
    """The loggers of one run, fed from the loop's hooks. Empty (no logger asked for) costs nothing."""

    def __init__(self, loggers: list[RunLogger], epochs_done: int = 0) -> None:
        self.loggers = loggers
        self.epochs_done = epochs_done  # a resumed run continues its step count
        self.batches = 0
        self.lr: float | None = None
        self._hook = None

    @classmethod
    def open(cls, names: Sequence[str], out: Path, rec: Any) -> RunLogs:
        """Loggers ``names`` for the run of record ``rec`` (run_id, model, dataset, preset, seed, history). A run's
        logs sit where its record's id says (``<dataset>/<preset>/[<budget>/]<model>__seed<s>``)."""
        where = Path(rec.run_id)
        made: list[RunLogger] = []
        for n in names:
            if n == "csv":
                made.append(CsvLogger(Path(out) / "logs" / "csv" / where))
            elif n == "tensorboard":
                made.append(TensorBoardLogger(Path(out) / "logs" / "tensorboard" / where))
            elif n == "mlflow":
                made.append(MlflowLogger(mlflow_uri(out), f"stbench-{rec.dataset}-{rec.preset}",
                                         rec.run_id.split("/", 2)[-1],
                                         {"stbench.model": rec.model, "stbench.dataset": rec.dataset,
                                          "stbench.preset": rec.preset, "stbench.seed": str(rec.seed),
                                          "stbench.family": str(rec.family)}))
        return cls(made, epochs_done=len(rec.history or []))

    def hooks(self, hooks: Any) -> Any:
        """``hooks`` (a :class:`~stbench.train.LoopHooks`) with these loggers called after its own callbacks."""
        if not self.loggers:
            return hooks
        from dataclasses import replace

        def chain(first: Callable | None, then: Callable) -> Callable:
            def both(*a: Any) -> Any:
                if first is not None:
                    first(*a)
                then(*a)
            return both

        return replace(hooks, on_start=chain(hooks.on_start, self._start), on_step=chain(hooks.on_step, self._step),
                       on_epoch=chain(hooks.on_epoch, self._epoch))

    # -- the hooks ----------------------------------------------------------------------------------
    def _start(self, epochs: int, batches: int) -> None:
        self.batches = batches
        if self._hook is None:  # the learning rate the optimizer really used: read after each of its steps
            from torch.optim.optimizer import register_optimizer_step_post_hook

            def seen(opt: Any, *_: Any) -> None:
                self.lr = float(opt.param_groups[0]["lr"])

            self._hook = register_optimizer_step_post_hook(seen)

    def _step(self, batch: int, loss: float | None, samples_per_s: float) -> None:
        values = {"samples_per_s": float(samples_per_s)}
        if _number(loss):
            values["loss"] = float(loss)
        if self.lr is not None:
            values["lr"] = self.lr
        step = self.epochs_done * self.batches + batch
        for lg in self.loggers:
            lg.step(step, values)

    def _epoch(self, row: dict[str, Any]) -> None:
        epoch = int(row.get("epoch", self.epochs_done + 1))
        self.epochs_done = epoch
        values = {k: float(v) for k, v in row.items() if k != "epoch" and _number(v)}
        for lg in self.loggers:
            lg.epoch(epoch, values)

    def finish(self, rec: Any) -> None:
        """Test metrics, the resolved recipe (``rec.config``) and the status; then close every logger."""
        metrics = {k: float(v) for k, v in (rec.metrics or {}).items() if _number(v)}
        hparams = {"run": {"model": rec.model, "dataset": rec.dataset, "preset": rec.preset, "seed": rec.seed},
                   **(rec.config or {})}  # the recipe's own "model" entry holds the model's sizes
        try:
            for lg in self.loggers:
                lg.finish(metrics, hparams, str(rec.status))
        finally:
            self.close()

    def close(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        for lg in self.loggers:
            lg.close()
        self.loggers = []
