"""THE training / evaluation loop, shared by every model (recurrent and parallel alike).

Per-model behaviour comes through hooks, never through copies of the loop:
- the model's ``loss(out, inputs, targets)`` (MSE, + DDR for TAU, + PredRNN.V2's decoupling loss);
- for recurrent temporal modules, a scheduled-sampling mask from the recipe's ``sampling`` schedule,
  keyed to the global optimizer step.

Adam/AdamW + OneCycle (stepped per optimizer step), optional gradient clipping, gradient
accumulation, bf16/fp16 autocast, DDP when launched by torchrun, a checkpoint after every epoch and
on Ctrl-C, exact resume, model selection on the validation split (never the test set).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from stbench.errors import CheckpointError
from stbench.precision import Precision, synchronize
from stbench.records import atomic_write_bytes

# Fault injection for the resume / failure-isolation tests (documented in tests/test_harness.py):
# kill the process with SIGKILL right after the checkpoint of this epoch; make this model's loss NaN.
_KILL_AFTER_EPOCH = int(os.environ.get("STBENCH_TEST_KILL_AFTER_EPOCH", "0") or 0)
_NAN_MODEL = os.environ.get("STBENCH_TEST_NAN_MODEL", "")
# ... and raise KeyboardInterrupt (as Ctrl-C would) after batch B of epoch E: "E,B" (1-based)
_INTERRUPT_AT = tuple(int(v) for v in os.environ.get("STBENCH_TEST_INTERRUPT_AT", "").split(",") if v)


class NonFiniteLoss(RuntimeError):
    pass


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def master(self) -> bool:
        return self.rank == 0


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    global_step: int = 0  # optimizer steps taken
    best_val: float = math.inf
    best_epoch: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)
    train_s: float = 0.0
    batch_in_epoch: int = 0  # > 0 only in a checkpoint written on Ctrl-C in the middle of an epoch
    partial: dict[str, Any] | None = None  # that epoch's running sums at the interruption


def _to(batch: tuple[torch.Tensor, torch.Tensor], device: torch.device, prec: Precision):
    x, y = batch
    nb = device.type == "cuda"
    x = x.to(device, non_blocking=nb)
    y = y.to(device, non_blocking=nb)
    return x, y


def make_optimizer(model: nn.Module, cfg: dict[str, Any]) -> torch.optim.Optimizer:
    name = str(cfg.get("optimizer", "adam")).lower()
    lr, wd = float(cfg["lr"]), float(cfg.get("weight_decay", 0.0))
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    raise ValueError(f"unknown optimizer '{name}' in the recipe; use adam or adamw")


def make_scheduler(opt: torch.optim.Optimizer, cfg: dict[str, Any], total_steps: int):
    name = str(cfg.get("scheduler", "onecycle")).lower()
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=float(cfg["lr"]), total_steps=max(1, total_steps),
                                                   final_div_factor=float(cfg.get("final_div_factor", 1e4)))
    if name in ("none", "constant"):
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    raise ValueError(f"unknown scheduler '{name}' in the recipe; use onecycle or none")


# ---------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterator, device: torch.device, prec: Precision,
             metrics: tuple[str, ...] = ("mse", "mae", "ssim", "psnr"), keep: int = 0,
             on_batch: Callable[[], None] | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
    """Metrics of ``model`` over ``batches`` in the published convention; the model never sees targets.

    ``keep`` > 0 also returns the first ``keep`` sequences (inputs, targets, preds) as uint8 arrays.
    """
    from stbench.metrics import MetricAccumulator

    was = model.training
    model.eval()
    acc = MetricAccumulator(metrics=metrics)
    kept: dict[str, list[np.ndarray]] = {"inputs": [], "targets": [], "preds": []}
    n_kept = 0
    for batch in batches:
        x, y = _to(batch, device, prec)
        with prec.autocast():
            pred = model(x).pred
        pred = pred.float()
        acc.update(pred, y)
        if n_kept < keep:
            k = min(keep - n_kept, x.shape[0])
            for key, t in (("inputs", x), ("targets", y), ("preds", pred)):
                kept[key].append((t[:k].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy())
            n_kept += k
        if on_batch:
            on_batch()
    model.train(was)
    examples = {k: np.concatenate(v) for k, v in kept.items()} if n_kept else None
    return acc.result(), examples


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------
def save_checkpoint(path: Path, *, model: nn.Module, opt, sched, scaler, state: TrainState,
                    best_state: dict[str, torch.Tensor] | None, gen: torch.Generator, meta: dict[str, Any],
                    rng: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
    """``rng`` = (cpu state, generator state) to store instead of the current ones (mid-epoch snapshot)."""
    import io

    payload = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "scaler": scaler.state_dict(),
        "state": {"epoch": state.epoch, "global_step": state.global_step, "best_val": state.best_val,
                  "best_epoch": state.best_epoch, "history": state.history, "train_s": state.train_s,
                  "batch_in_epoch": state.batch_in_epoch, "partial": state.partial},
        "best_model": best_state,
        "rng_cpu": rng[0] if rng else torch.get_rng_state(),
        "rng_gen": rng[1] if rng else gen.get_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "meta": meta,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user problem
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(exc).__name__}); delete it, or re-run without --resume "
            "and with --force to start over"
        ) from None


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------
@dataclass
class LoopHooks:
    """Callbacks the runner uses for progress display and record updates (all optional)."""

    on_start: Callable[[int, int], None] | None = None  # (epochs, batches per epoch)
    on_step: Callable[[int, float | None, float], None] | None = None  # (batch idx, loss or None, samples/s)
    on_epoch: Callable[[dict[str, Any]], None] | None = None  # history row
    on_eval_batch: Callable[[], None] | None = None


def train(
    model: nn.Module,
    dataset: Any,
    cfg: dict[str, Any],
    *,
    device: torch.device,
    prec: Precision,
    seed: int,
    ckpt_path: Path | None,
    resume: dict[str, Any] | None = None,
    dist: DistInfo | None = None,
    hooks: LoopHooks | None = None,
    log_every: int = 10,
) -> tuple[nn.Module, TrainState]:
    """Train ``model`` (an STModel already on ``device``) by recipe ``cfg``; returns the model with
    the best-validation weights loaded, and the final state. Raises NonFiniteLoss on NaN/Inf."""
    from stbench.models.sampling import make_schedule

    dist = dist or DistInfo()
    hooks = hooks or LoopHooks()
    raw = model
    ddp = None
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ddp = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    fwd = ddp if ddp is not None else raw

    epochs = int(cfg["epochs"])
    bs = int(cfg["batch_size"])
    accum = max(1, int(cfg.get("accum_steps", 1)))
    clip = float(cfg.get("clip_grad", 0.0) or 0.0)
    train_limit = cfg.get("train_size")
    n_batches = dataset.num_batches("train", bs, world_size=dist.world_size, limit=train_limit)
    if n_batches < 1:
        raise ValueError(f"train split has fewer than one batch of {bs}; lower --batch-size or raise --train-size")
    steps_per_epoch = math.ceil(n_batches / accum)
    opt = make_optimizer(raw, cfg)
    sched = make_scheduler(opt, cfg, epochs * steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type, enabled=prec.needs_scaler())
    schedule = make_schedule(cfg.get("sampling")) if raw.recurrent else None
    gen = torch.Generator(device=device).manual_seed(10_000 + seed * 100 + dist.rank)
    t_in, t_out = raw.in_shape[0], raw.t_out

    state = TrainState()
    best_state: dict[str, torch.Tensor] | None = None
    if resume is not None:
        raw.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
        scaler.load_state_dict(resume["scaler"])
        s = resume["state"]
        state = TrainState(s["epoch"], s["global_step"], s["best_val"], s["best_epoch"], list(s["history"]),
                           s.get("train_s", 0.0), s.get("batch_in_epoch", 0), s.get("partial"))
        best_state = resume.get("best_model")
        torch.set_rng_state(resume["rng_cpu"])
        gen.set_state(resume["rng_gen"])
        if resume.get("rng_cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(resume["rng_cuda"])

    def checkpoint(rng: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        if ckpt_path is not None and dist.master:
            save_checkpoint(ckpt_path, model=raw, opt=opt, sched=sched, scaler=scaler, state=state,
                            best_state=best_state, gen=gen, meta={"seed": seed, "cfg": cfg}, rng=rng)

    # Ctrl-C in the middle of an epoch: the state after the last completed optimizer step is saved
    # (model and optimizer are exactly that state unless the interrupt lands inside the update itself)
    snap: dict[str, Any] | None = None
    in_update = False

    if hooks.on_start:
        hooks.on_start(epochs, n_batches)
    val_limit = cfg.get("val_size")
    metric_names = tuple(cfg.get("val_metrics", ("mse",)))
    try:
        for epoch in range(state.epoch, epochs):
            fwd.train()
            t0 = time.perf_counter()
            loss_sum = torch.zeros((), device=device)
            finite = torch.ones((), dtype=torch.bool, device=device)
            n_seen, skip = 0, 0
            if state.batch_in_epoch:  # resuming inside this epoch
                skip, part = state.batch_in_epoch, state.partial or {}
                loss_sum += part.get("loss_sum", 0.0)
                finite &= bool(part.get("finite", True))
                n_seen = int(part.get("n_seen", 0))
                t0 -= float(part.get("elapsed", 0.0))
                state.batch_in_epoch, state.partial = 0, None
            snap = None
            opt.zero_grad(set_to_none=True)
            batches = dataset.batches("train", bs, epoch=epoch, rank=dist.rank, world_size=dist.world_size,
                                      limit=train_limit, drop_last=True)
            for i, batch in enumerate(itertools.islice(batches, skip, None), start=skip):
                x, y = _to(batch, device, prec)
                mask = None
                if schedule is not None:
                    mask = schedule.mask(state.global_step, x.shape[0], t_in, t_out, device, generator=gen)
                micro_last = (i + 1) % accum == 0 or i + 1 == n_batches
                sync_ctx = ddp.no_sync() if (ddp is not None and not micro_last) else contextlib.nullcontext()
                with sync_ctx:
                    with prec.autocast():
                        out = fwd(x, y, sampling_mask=mask)
                        loss, _parts = raw.loss(out, x, y)
                        if _NAN_MODEL and raw.names.get("model") == _NAN_MODEL:
                            loss = loss * float("nan")
                    scaler.scale(loss / accum).backward()
                ld = loss.detach()
                loss_sum += ld
                finite &= torch.isfinite(ld)
                n_seen += x.shape[0]
                if micro_last:
                    in_update = True
                    if clip > 0:
                        scaler.unscale_(opt)
                        torch.nn.utils.clip_grad_norm_(raw.parameters(), clip)
                    scaler.step(opt)
                    scaler.update()
                    opt.zero_grad(set_to_none=True)
                    sched.step()
                    state.global_step += 1
                    in_update = False
                    snap = {"epoch": epoch, "batches": i + 1, "rng": (torch.get_rng_state(), gen.get_state()),
                            "loss_sum": loss_sum.clone(), "finite": finite.clone(), "n_seen": n_seen, "t0": t0}
                    if _INTERRUPT_AT == (epoch + 1, i + 1):
                        raise KeyboardInterrupt
                if (i + 1) % log_every == 0 or i + 1 == n_batches:
                    if not bool(finite):  # host sync only every log_every batches
                        raise NonFiniteLoss(f"non-finite loss at epoch {epoch + 1}, batch {i + 1}")
                    if hooks.on_step:
                        el = time.perf_counter() - t0
                        hooks.on_step(i + 1, float(loss_sum) / (i + 1), n_seen * dist.world_size / max(el, 1e-9))
            synchronize(device)
            epoch_s = time.perf_counter() - t0
            state.train_s += epoch_s
            train_loss = float(loss_sum) / max(1, n_batches)
            row: dict[str, Any] = {"epoch": epoch + 1, "train_loss": train_loss,
                                   "lr": opt.param_groups[0]["lr"], "epoch_s": round(epoch_s, 3),
                                   "samples_per_s": round(n_seen * dist.world_size / max(epoch_s, 1e-9), 2)}
            if dist.master:
                vres, _ = evaluate(raw, dataset.batches("val", int(cfg.get("eval_batch_size", bs)), limit=val_limit),
                                   device, prec, metrics=metric_names, on_batch=hooks.on_eval_batch)
                # val_loss: the training objective's main term (per-pixel MSE) on the validation split
                C, H, W = raw.in_shape[1:]
                row["val_mse"] = vres["mse"]
                row["val_loss"] = vres["mse"] / (C * H * W)
                if vres["mse"] < state.best_val:
                    state.best_val, state.best_epoch = vres["mse"], epoch + 1
                    best_state = {k: v.detach().to("cpu", copy=True) for k, v in raw.state_dict().items()}
            state.history.append(row)
            state.epoch = epoch + 1
            checkpoint()
            if hooks.on_epoch:
                hooks.on_epoch(row)
            if _KILL_AFTER_EPOCH == state.epoch:
                os.kill(os.getpid(), signal.SIGKILL)
            if dist.enabled:
                torch.distributed.barrier()
    except KeyboardInterrupt:
        # the last epoch boundary is already checkpointed; a snapshot taken after the last optimizer step
        # of the current epoch is finer, unless the interrupt hit the update itself or DDP is running
        if snap is not None and not in_update and not dist.enabled and snap["epoch"] == state.epoch:
            state.batch_in_epoch = snap["batches"]
            state.partial = {"loss_sum": float(snap["loss_sum"]), "finite": bool(snap["finite"]),
                             "n_seen": snap["n_seen"], "elapsed": time.perf_counter() - snap["t0"]}
            checkpoint(rng=snap["rng"])
        raise
    if best_state is not None:
        raw.load_state_dict(best_state)
    return raw, state
