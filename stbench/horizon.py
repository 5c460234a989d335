"""Horizon extrapolation: a kept model scored beyond the horizon it was trained for.

    stbench eval --checkpoint results/records/mmnist/quick/tau__seed0.safetensors --t-out 30

The model (``.safetensors`` + model card, :mod:`stbench.weights`) is rolled out to ``t_out`` frames by
:func:`stbench.rollout.rollout`: a parallel model feeds its predicted frames back through the whole model in blocks
of T_in (``rollout = "frame"``, as published), a recurrent model keeps stepping on its own predictions. The test
set is the card's test set CONTINUED (:meth:`stbench.data.spec.Dataset.horizon_options`): the same sequences,
the same inputs and, up to the trained horizon, the same targets; Moving MNIST generates the longer sequences
from the same test digits and stream (the standard ``mnist_test_seq.npy`` holds only 20 frames, so a horizon past
10 -> 10 needs the generated test set: no ``--data-root``), ``ns2d`` solves the same test trajectories longer so
every window keeps its start.

One record of kind ``evaluated`` with ``horizon = {t_in, t_out, trained_t_out, test_set, frames_file}`` is written
beside the card's record (``<model>__evaluated_<weights>__t<N>.json``, budget folder included). It carries the
card's seed and training budget, so ``stbench report`` puts the roll-outs of one budget in ONE leaderboard of
their own per horizon (never ranked with the trained 10 -> 10 rows) and aggregates seeds as for trained runs.
Beside it, ``<record>.frames.npz`` holds every test sequence's value at every lead time (``{metric: (N, t_out)}``,
the numbers the overall metrics average) for the per-lead-time intervals of :mod:`stbench.report.extrapolation`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stbench.errors import UserError

FRAMES_SUFFIX = ".frames.npz"


def continued_test_set(card: dict[str, Any], t_out: int, data_root: str | None) -> Any:
    """The card's dataset variant with its test sequences continued to ``t_out`` predicted frames, with the card's
    training statistics (no training file is read)."""
    from stbench.data import get_dataset

    name, options = card["dataset"]["name"], dict((card.get("config") or {}).get("data") or {})
    trained = get_dataset(name, data_root=data_root, **options)
    try:
        ds = get_dataset(name, data_root=data_root, **trained.horizon_options(options, t_out))
        ds.set_statistics(card.get("normalisation") or {})  # e.g. weather's: the test years alone are read
        return ds
    except (ValueError, OSError) as exc:
        raise UserError(f"{name} cannot continue its test sequences to {t_out} frames: "
                        f"{str(exc).splitlines()[0]}" + ("; drop --data-root to score on the generated test set"
                                                         if data_root else "")) from None


def score(net: torch.nn.Module, ds: Any, t_out: int, *, device: torch.device, prec: Any, batch_size: int,
          limit: int | None) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(metrics with ``per_frame``, per-sequence values, per-sequence per-lead-time values) of ``net`` rolled out to
    ``t_out`` frames over the test split, in the published convention (:class:`stbench.metrics.MetricAccumulator`)."""
    from stbench.rollout import rollout
    from stbench.train import evaluate

    # (B, T_in, C, H, W) -> (B, t_out, C, H, W), scored against the continued test set's t_out frames
    res, _ = evaluate(net, ds.batches("test", batch_size, limit=limit), device, prec, metrics=tuple(ds.spec.metrics),
                      per_sequence=True, context=ds.spec.metric_context, forward=lambda x: rollout(net, x, t_out),
                      frames=True)
    return res, res.pop("per_sequence"), res.pop("frames")


def evaluate_horizon(checkpoint: str | Path, t_out: int, *, out: str | Path = "results", data_root: str | None = None,
                     device: str = "auto", precision: str = "fp32", test_size: int | None = None,
                     batch_size: int | None = None, console: Any = None, force: bool = False) -> Any:
    """Roll the kept model ``checkpoint`` out to ``t_out`` frames on its continued test set; write and return the
    ``evaluated`` record (see the module docstring). A completed one is returned as it is unless ``force``."""
    from stbench.precision import make_precision, resolve_device
    from stbench.records import atomic_write_npz, check_writable, env_info, nonfinite_metrics, now_iso, read_record
    from stbench.weights import check_normalisation, is_card_weights, load_model

    if not is_card_weights(checkpoint):
        raise UserError("--t-out scores a kept model: pass the .safetensors that stbench run kept (its .card.json "
                        "beside it)")
    if int(t_out) < 1:
        raise UserError(f"--t-out {t_out}: give a number of frames >= 1")
    t0, started = time.perf_counter(), now_iso()
    net, card = load_model(checkpoint)
    ds = continued_test_set(card, int(t_out), data_root)
    check_normalisation(card.get("normalisation"), ds.spec)
    check_writable(Path(out))
    old = read_record(_record(net, card, ds, int(t_out), {}, {}, [], env={}, config={}).path(Path(out)))
    if old is not None and old.status == "completed" and not force:  # resumable: a study re-runs its evals
        if console is not None:
            console.print(f"[dim]{old.model} seed {old.seed} at {t_out} frames: already evaluated; --force replaces "
                          "it[/dim]")
        return old
    dev = resolve_device(device)
    prec = make_precision(precision, dev, model=net)
    cfg = dict(card.get("config") or {})
    limit = test_size if test_size is not None else cfg.get("test_size")
    bs = int(batch_size or cfg.get("eval_batch_size") or cfg.get("batch_size") or 16)
    res, per_sequence, frames = score(prec.prepare(net.to(dev)), ds, int(t_out), device=dev, prec=prec,
                                      batch_size=bs, limit=limit)
    per_frame = res.pop("per_frame")
    bad = nonfinite_metrics(res, per_frame)
    rec = _record(net, card, ds, int(t_out), res, per_frame, bad, env=env_info(dev, prec.name),
                  config={"test_size": limit, "eval_batch_size": bs, "data_root": data_root,
                          "card": Path(checkpoint).with_suffix(".card.json").name})
    rpath = rec.path(Path(out))
    rec.run_id = f"{rec.dataset}/{rec.preset}/{rpath.stem}"
    if not bad:
        fpath = rpath.with_name(rpath.name.removesuffix(".json") + FRAMES_SUFFIX)
        atomic_write_npz(fpath, frames)
        rec.horizon["frames_file"] = fpath.name
    rec.timing.update(started_at=started, finished_at=now_iso(), eval_s=round(time.perf_counter() - t0, 3),
                      total_s=round(time.perf_counter() - t0, 3))
    rec.write(Path(out), per_sequence=None if bad else per_sequence)
    if console is not None and not bad:
        console.print(f"{rec.model} rolled out to {t_out} frames (trained {card['t_out']}, rollout {rec.rollout}): "
                      + ", ".join(f"{k.upper()} {v:.4g}" for k, v in res.items()) + f"  -> {rpath}")
    return rec


def _record(net: torch.nn.Module, card: dict[str, Any], ds: Any, t_out: int, res: dict[str, Any],
            per_frame: dict[str, Any], bad: list[str], *, env: dict[str, Any], config: dict[str, Any]) -> Any:
    """The ``evaluated`` record of a roll-out of ``net``: the card's model, seed and budget; the horizon; the
    metrics."""
    from stbench.scoring import new_record

    cfg = dict(card.get("config") or {})
    return new_record(
        net, ds.spec.metrics,
        model=card["model"], dataset=card["dataset"]["name"], preset=card["preset"], seed=int(card.get("seed") or 0),
        kind="evaluated", status="failed" if bad else "completed",
        reason=f"non-finite metrics rolled out to {t_out} frames: {', '.join(bad[:4])}" if bad else None,
        metrics=None if bad else res, per_frame=None if bad else per_frame,
        checkpoint={"file": card["weights"]["file"], "sha256": card["weights"]["sha256"], "source": "stbench"},
        source="stbench", budget=card.get("budget"), env=env,
        horizon={"t_in": int(ds.spec.t_in), "t_out": t_out, "trained_t_out": int(card["t_out"]),
                 "test_set": f"{ds.spec.description}; the trained test set continued "
                             f"({type(ds).__name__}.horizon_options)", "frames_file": None},
        config={"budget_dir": cfg.get("budget_dir"), "data": dict(ds.variant), "t_out": t_out, **config,
                "source_config": cfg})
