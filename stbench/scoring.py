"""The evaluate-and-record stage that ``stbench run`` (:mod:`stbench.runner`) and ``stbench eval``
(:mod:`stbench.evaluate`) share: one way to describe a model in its record, to profile its cost, to score it
on the test split and to keep the result (metrics, per-frame values, the example strips file).

    rec = new_record(net, metric_names, model="tau", dataset="mmnist", preset="paper", seed=0, kind="model")
    rec.profile = cost_profile(copy_of_model, "tau", device, prec, train_batch=16)
    scored = score_test(model, dataset, {"eval_batch_size": 16, "test_size": None}, device, prec, metric_names)
    keep_test(rec, scored, record_path)   # rec.metrics, rec.per_frame, <record>.examples.npz

:func:`score_test` raises :class:`stbench.train.NonFiniteMetrics` when a metric is NaN / Inf; each caller records
that as a ``failed`` run with the reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stbench import train as T
from stbench.metrics import convention_for, metrics_meta
from stbench.profile import INFER_BATCH, profile_model
from stbench.records import N_EXAMPLES, RunRecord, atomic_write_npz, family_of


def new_record(net: torch.nn.Module, metrics: tuple[str, ...] | list[str], /, **fields: Any) -> RunRecord:
    """A record of the network ``net`` (family, encoder / temporal / decoder, roll-out) scored with ``metrics``
    (their conventions); ``fields`` are the record's other fields (model, dataset, preset, seed, kind, config ...)."""
    names = getattr(net, "names", {})
    return RunRecord(family=family_of(net.recurrent), encoder=names.get("encoder", "-"),
                     temporal=names.get("temporal", "-"), decoder=names.get("decoder", "-"),
                     metrics_meta=metrics_meta(metrics), convention=convention_for(metrics), rollout=net.rollout,
                     **fields)


def cost_profile(model: torch.nn.Module, name: str, device: torch.device, prec: Any, *,
                 train_batch: int | None = None) -> dict[str, Any]:
    """The record's cost profile of ``model`` (which profiling prepares and moves: pass a copy): parameters, fvcore
    FLOPs, inference throughput at :data:`~stbench.profile.INFER_BATCH` for every model (so that the throughput
    column of a leaderboard compares like with like) and, with ``train_batch``, the training step at that batch
    (it drives a run's time estimate)."""
    r = profile_model(model, name=name, device=device, precision=prec, batch=train_batch or INFER_BATCH,
                      infer_batch=INFER_BATCH, warmup=2, reps=5, train=train_batch is not None, flops=True,
                      published_fps=False)
    return r.as_dict()


@dataclass
class Scored:
    """One test-split evaluation: metric means, per-frame and per-sequence values, the example strips."""

    metrics: dict[str, Any]
    per_frame: dict[str, Any] | None
    per_sequence: dict[str, Any] | None
    examples: dict[str, np.ndarray] | None
    seconds: float


def score_test(model: torch.nn.Module, dataset: Any, cfg: dict[str, Any], device: torch.device, prec: Any,
               metrics: tuple[str, ...]) -> Scored:
    """The one evaluation of ``model`` on the test split of ``dataset`` (``cfg``'s eval batch and ``test_size``),
    the first :data:`~stbench.records.N_EXAMPLES` sequences kept as example strips."""
    t0 = time.perf_counter()
    res, examples = T.test(model, dataset, cfg, device, prec, metrics=metrics, keep=N_EXAMPLES)
    seconds = time.perf_counter() - t0
    per_sequence = res.pop("per_sequence", None)
    per_frame = res.pop("per_frame", None)
    return Scored(res, per_frame, per_sequence, examples, seconds)


def keep_test(rec: RunRecord, scored: Scored, record_path: Path) -> None:
    """``scored`` into ``rec`` (metrics, per-frame values, eval time) and its example strips into
    ``<record>.examples.npz`` beside the record."""
    rec.metrics = scored.metrics
    rec.per_frame = scored.per_frame
    rec.timing["eval_s"] = round(scored.seconds, 3)
    if scored.examples is not None:
        ex_path = Path(record_path).with_suffix(".examples.npz")
        atomic_write_npz(ex_path, scored.examples)
        rec.examples = {"file": ex_path.name, "indices": list(range(len(scored.examples["inputs"])))}
