"""THE training / evaluation loop, shared by every model (recurrent and parallel alike).

Read it top-down in :func:`train`: :meth:`_Loop.restore` (a checkpoint, if resuming), then per epoch
:meth:`_Loop.one_epoch` (the optimizer steps) and :meth:`_Loop.validate_and_select` (validation
split, keep the best weights), a checkpoint; at the end the best weights are loaded back and the
runner calls :func:`test` once on the test split.

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
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from stbench.budget import make_plan
from stbench.compile import eval_forward, train_step
from stbench.errors import CheckpointError
from stbench.metrics import DEFAULT_METRICS, MetricAccumulator, frame_values
from stbench.precision import Precision, synchronize
from stbench.recipes import eval_batch_size, setting
from stbench.records import atomic_write_bytes


class NonFiniteLoss(RuntimeError):
    pass


class NonFiniteMetrics(RuntimeError):
    """Validation or test metrics that are NaN / Inf: the run fails with this reason, it is never completed."""


def check_finite(res: dict[str, Any], what: str) -> None:
    """Raise :class:`NonFiniteMetrics` naming the metrics of ``res`` (an :func:`evaluate` result) that are not
    finite; ``what`` says which ("test metrics", "validation metrics at epoch 3")."""
    from stbench.records import nonfinite_metrics

    bad = nonfinite_metrics({k: v for k, v in res.items() if k not in ("per_frame", "per_sequence")},
                            res.get("per_frame"))
    if bad:
        raise NonFiniteMetrics(f"non-finite {what}: {', '.join(bad[:4])}; the model's predictions overflow "
                               "or are NaN (its weights, or NaN / Inf in the data: run `stbench data check`)")


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
    batches_done: int = 0  # micro-batches trained on (each of batch_size sequences per rank)
    stopped_by: str = "plan"  # "plan" (all planned batches) or "time" (a seconds budget ran out first)


def _to(batch: tuple[torch.Tensor, torch.Tensor], device: torch.device):
    x, y = batch
    nb = device.type == "cuda"
    x = x.to(device, non_blocking=nb)
    y = y.to(device, non_blocking=nb)
    return x, y


def make_optimizer(model: nn.Module, cfg: dict[str, Any]) -> torch.optim.Optimizer:
    name = str(setting(cfg, "optimizer")).lower()
    lr, wd = float(cfg["lr"]), float(setting(cfg, "weight_decay"))
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    raise ValueError(f"unknown optimizer '{name}' in the recipe; use adam or adamw")


def make_scheduler(opt: torch.optim.Optimizer, cfg: dict[str, Any], total_steps: int):
    name = str(setting(cfg, "scheduler")).lower()
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=float(cfg["lr"]), total_steps=max(1, total_steps),
                                                   final_div_factor=float(setting(cfg, "final_div_factor")))
    if name in ("none", "constant"):
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    if name == "cosine":
        return cosine_scheduler(opt, cfg, total_steps)
    raise ValueError(f"unknown scheduler '{name}' in the recipe; use onecycle, cosine or none")


def cosine_lr(epoch: int, *, lr: float, epochs: int, min_lr: float = 1e-6, warmup_lr: float = 1e-5,
              warmup_epochs: int = 0) -> float:
    """The learning rate of (0-based) ``epoch`` under OpenSTL's ``sched = 'cosine'``: timm's CosineLRScheduler
    with ``t_initial = epochs``, ``t_in_epochs=True``, one cycle, no warm-up prefix, stepped at the start of
    every epoch. Warm-up epochs ramp linearly from ``warmup_lr``; the cosine runs over ALL epochs (warm-up
    included), from ``lr`` at epoch 0 to ``min_lr`` at epoch ``epochs``."""
    if epoch < warmup_epochs:
        return warmup_lr + epoch * (lr - warmup_lr) / warmup_epochs
    if epoch >= epochs:
        return min_lr
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * epoch / epochs))


def cosine_scheduler(opt: torch.optim.Optimizer, cfg: dict[str, Any], total_steps: int):
    """Per-epoch cosine (:func:`cosine_lr`) as a ``LambdaLR`` stepped per optimizer step: the lr is constant
    within an epoch. Recipe keys: ``min_lr``, ``warmup_lr``, ``warmup_epochs`` (defaults: OpenSTL's, in
    ``stbench.recipes.DEFAULTS``). Its state is the step count, so a resumed run continues the same lr sequence."""
    epochs = max(1, int(cfg["epochs"]))
    per_epoch = max(1, total_steps // epochs)
    kw = dict(lr=float(cfg["lr"]), epochs=epochs, min_lr=float(setting(cfg, "min_lr")),
              warmup_lr=float(setting(cfg, "warmup_lr")), warmup_epochs=int(setting(cfg, "warmup_epochs")))
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: cosine_lr(step // per_epoch, **kw) / kw["lr"])


# ---------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterator, device: torch.device, prec: Precision,
             metrics: tuple[str, ...] = DEFAULT_METRICS, keep: int = 0,
             on_batch: Callable[[], None] | None = None,
             per_sequence: bool = False,
             context: dict[str, Any] | None = None,
             forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
             frames: bool = False) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
    """Metrics of ``model`` over ``batches`` in the published convention; the model never sees targets.

    ``keep`` > 0 also returns the first ``keep`` sequences (inputs, targets, preds) as uint8 arrays;
    ``per_sequence`` adds ``res["per_sequence"] = {metric: (N,) array}`` (each sequence's mean over frames);
    ``context`` is the dataset's ``spec.metric_context`` (e.g. weather's std for the de-normalised metrics);
    ``forward`` (``x -> pred``) replaces the model's own evaluation forward (a roll-out to more frames);
    ``frames`` adds ``res["frames"] = {metric: (N, T) array}``, each sequence's value at each predicted frame
    (:func:`stbench.metrics.frame_values`; pooled metrics have none).
    """

    was = model.training
    model.eval()
    acc = MetricAccumulator(metrics=metrics, keep_sequences=per_sequence, context=context)
    kept: dict[str, list[np.ndarray]] = {"inputs": [], "targets": [], "preds": []}
    n_kept = 0
    per_frame_values: dict[str, list[np.ndarray]] = {}
    # model(x).pred by default; compiled when the run enabled it (stbench.compile)
    forward = forward or eval_forward(model, device)
    for batch in batches:
        x, y = _to(batch, device)
        with prec.autocast():
            pred = forward(x)
        pred = pred.float()
        acc.update(pred, y)
        if frames:
            for m, v in frame_values(pred, y, metrics, context).items():
                per_frame_values.setdefault(m, []).append(v)
        if n_kept < keep:
            k = min(keep - n_kept, x.shape[0])
            for key, t in (("inputs", x), ("targets", y), ("preds", pred)):
                kept[key].append((t[:k].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy())
            n_kept += k
        if on_batch:
            on_batch()
    model.train(was)
    examples = {k: np.concatenate(v) for k, v in kept.items()} if n_kept else None
    res = acc.result()
    if per_sequence:
        res["per_sequence"] = acc.sequences()
    if frames:
        res["frames"] = {m: np.concatenate(v) for m, v in per_frame_values.items()}
    return res, examples


def test(model: nn.Module, dataset: Any, cfg: dict[str, Any], device: torch.device, prec: Precision, *,
         metrics: tuple[str, ...], keep: int = 0) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
    """The one evaluation on the test split (after training, with the selected weights), per-sequence values kept;
    raises :class:`NonFiniteMetrics` when a metric is NaN / Inf."""
    res, examples = evaluate(model, dataset.batches("test", eval_batch_size(cfg), limit=cfg.get("test_size")), device,
                             prec, metrics=metrics, keep=keep, per_sequence=True, context=dataset.spec.metric_context)
    check_finite(res, "test metrics")
    return res, examples


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------
def save_checkpoint(path: Path, *, model: nn.Module, opt, sched, scaler, state: TrainState,
                    best_state: dict[str, torch.Tensor] | None, gen: torch.Generator, meta: dict[str, Any],
                    rng: tuple[torch.Tensor, ...] | None = None) -> None:
    """``rng`` = (cpu state, generator state[, cuda states]) to store instead of the current ones (mid-epoch
    snapshot)."""
    import io

    payload = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "scaler": scaler.state_dict(),
        "state": {"epoch": state.epoch, "global_step": state.global_step, "best_val": state.best_val,
                  "best_epoch": state.best_epoch, "history": state.history, "train_s": state.train_s,
                  "batch_in_epoch": state.batch_in_epoch, "partial": state.partial,
                  "batches_done": state.batches_done, "stopped_by": state.stopped_by},
        "best_model": best_state,
        "rng_cpu": rng[0] if rng else torch.get_rng_state(),
        "rng_gen": rng[1] if rng else gen.get_state(),
        "rng_cuda": rng[2] if rng and len(rng) > 2 else
        torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
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
    """Callbacks into the loop, all optional. The runner sets the first three (progress display, record
    updates); tests set the others to inspect the loop or inject faults (tests/fault_cli.py)."""

    on_start: Callable[[int, int], None] | None = None  # (epochs, batches per epoch)
    on_step: Callable[[int, float | None, float], None] | None = None  # (batch idx, loss or None, samples/s)
    on_epoch: Callable[[dict[str, Any]], None] | None = None  # history row
    on_eval_batch: Callable[[], None] | None = None
    on_loss: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None  # may replace a batch's loss
    before_update: Callable[[nn.Module], None] | None = None  # grads final (unscaled, clipped), before opt.step
    after_update: Callable[[int, int], None] | None = None  # (epoch, batch), 1-based, after an optimizer step
    after_checkpoint: Callable[[int], None] | None = None  # epoch, 1-based, after its checkpoint is written
    after_validate: Callable[[int, nn.Module], None] | None = None  # epoch, the model just validated

    def merged(self, other: LoopHooks) -> LoopHooks:
        """These hooks, with ``other``'s wherever it sets one and these do not."""
        return LoopHooks(**{k: getattr(self, k) or getattr(other, k) for k in self.__dataclass_fields__})


class _Loop:
    """The state of one training run; :func:`train` drives it epoch by epoch."""

    def __init__(self, model: nn.Module, dataset: Any, cfg: dict[str, Any], *, device: torch.device,
                 prec: Precision, seed: int, ckpt_path: Path | None, dist: DistInfo, hooks: LoopHooks) -> None:
        from stbench.models.sampling import make_schedule
        self.raw, self.dataset, self.cfg, self.device, self.prec = model, dataset, cfg, device, prec
        self.seed, self.ckpt_path, self.dist, self.hooks = seed, ckpt_path, dist, hooks
        self.ddp = None
        if dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.ddp = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
        self.fwd = self.ddp if self.ddp is not None else model
        self.step_fn = train_step(self.fwd, model, device)  # forward + loss; compiled when the run enabled it
        self.bs = int(cfg["batch_size"])
        self.eval_bs = eval_batch_size(cfg)
        self.accum = max(1, int(setting(cfg, "accum_steps")))
        self.clip = float(setting(cfg, "clip_grad") or 0.0)
        self.train_limit = cfg.get("train_size")
        self.n_batches = dataset.num_batches("train", self.bs, world_size=dist.world_size, limit=self.train_limit)
        if self.n_batches < 1:
            from stbench.errors import RecipeError

            raise RecipeError(f"train split has fewer than one batch of {self.bs}; lower --batch-size or raise "
                              "--train-size")
        # the run's length: cfg["train_batches"] (set from a budget by the runner) or epochs x batches per epoch
        self.plan = make_plan(int(cfg.get("train_batches") or int(cfg["epochs"]) * self.n_batches),
                              batches_per_epoch=self.n_batches, batch_size=self.bs, accum=self.accum,
                              world_size=dist.world_size, time_limit_s=cfg.get("time_limit_s"))
        self.epochs = self.plan.epochs
        self.opt = make_optimizer(model, cfg)
        self.sched = make_scheduler(self.opt, {**cfg, "epochs": self.epochs}, self.plan.steps)
        self.scaler = torch.amp.GradScaler(device.type, enabled=prec.needs_scaler())
        self.schedule = make_schedule(cfg.get("sampling")) if model.recurrent else None
        self.gen = torch.Generator(device=device).manual_seed(10_000 + seed * 100 + dist.rank)
        self.state = TrainState()
        self.best_state: dict[str, torch.Tensor] | None = None
        # Ctrl-C in the middle of an epoch: the state after the last completed optimizer step is saved
        # (model and optimizer are exactly that state unless the interrupt lands inside the update itself)
        self.snap: dict[str, Any] | None = None
        self.in_update = False

    # -- restore ----------------------------------------------------------------------------------
    def restore(self, ckpt: dict[str, Any]) -> None:
        """Continue exactly where a checkpoint left off: weights, optimizer, scheduler, RNGs, history."""
        self.raw.load_state_dict(ckpt["model"])
        self.opt.load_state_dict(ckpt["optimizer"])
        self.sched.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        s = ckpt["state"]
        self.state = TrainState(s["epoch"], s["global_step"], s["best_val"], s["best_epoch"], list(s["history"]),
                                s.get("train_s", 0.0), s.get("batch_in_epoch", 0), s.get("partial"),
                                s.get("batches_done", 0), s.get("stopped_by", "plan"))
        self.best_state = ckpt.get("best_model")
        torch.set_rng_state(ckpt["rng_cpu"])
        self.gen.set_state(ckpt["rng_gen"])
        if ckpt.get("rng_cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["rng_cuda"])

    def checkpoint(self, rng: tuple[torch.Tensor, ...] | None = None) -> None:
        if self.ckpt_path is not None and self.dist.master:
            save_checkpoint(self.ckpt_path, model=self.raw, opt=self.opt, sched=self.sched, scaler=self.scaler,
                            state=self.state, best_state=self.best_state, gen=self.gen,
                            meta={"seed": self.seed, "cfg": self.cfg}, rng=rng)

    # -- one epoch of optimizer steps -------------------------------------------------------------
    def one_epoch(self, epoch: int, log_every: int) -> dict[str, Any]:
        """Train one epoch (0-based ``epoch``); returns its history row (without validation)."""
        st, hooks, dev = self.state, self.hooks, self.device
        self.fwd.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=dev)
        finite = torch.ones((), dtype=torch.bool, device=dev)
        n_seen, skip = 0, 0
        if st.batch_in_epoch:  # resuming inside this epoch
            skip, part = st.batch_in_epoch, st.partial or {}
            loss_sum += part.get("loss_sum", 0.0)
            finite &= bool(part.get("finite", True))
            n_seen = int(part.get("n_seen", 0))
            t0 -= float(part.get("elapsed", 0.0))
            st.batch_in_epoch, st.partial = 0, None
        self.snap = None
        self.opt.zero_grad(set_to_none=True)
        batches = self.dataset.batches("train", self.bs, epoch=epoch, rank=self.dist.rank,
                                       world_size=self.dist.world_size, limit=self.train_limit, drop_last=True)
        t_in, t_out = self.raw.in_shape[0], self.raw.t_out
        n_here = self.plan.batches_in_epoch(epoch)  # the last epoch of a budget may be partial
        limit_s = self.plan.time_limit_s
        for i, batch in enumerate(itertools.islice(batches, skip, n_here), start=skip):
            x, y = _to(batch, dev)
            mask = None
            if self.schedule is not None:
                mask = self.schedule.mask(st.global_step, x.shape[0], t_in, t_out, dev, generator=self.gen)
            last_micro = (i + 1) % self.accum == 0 or i + 1 == n_here
            no_sync = self.ddp is not None and not last_micro
            with self.ddp.no_sync() if no_sync else contextlib.nullcontext():
                with self.prec.autocast():
                    loss, _parts = self.step_fn(x, y, mask)
                    if hooks.on_loss:
                        loss = hooks.on_loss(self.raw, loss)
                self.scaler.scale(loss / self.accum).backward()
            ld = loss.detach()
            loss_sum += ld
            finite &= torch.isfinite(ld)
            n_seen += x.shape[0]
            if last_micro:
                self._update()
                st.batches_done = epoch * self.n_batches + i + 1
                # buffers too: the next forward moves BatchNorm's running stats before its step (issue 24)
                self.snap = {"epoch": epoch, "batches": i + 1, "rng": self._rng_state(),
                             "buffers": [b.detach().clone() for b in self.raw.buffers()],
                             "loss_sum": loss_sum.clone(), "finite": finite.clone(), "n_seen": n_seen, "t0": t0}
                self.in_update = False  # only now: the snapshot describes the step just taken
                if hooks.after_update:
                    hooks.after_update(epoch + 1, i + 1)
            if (i + 1) % log_every == 0 or i + 1 == n_here:
                if not bool(finite):  # host sync only every log_every batches
                    raise NonFiniteLoss(f"non-finite loss at epoch {epoch + 1}, batch {i + 1}")
                if hooks.on_step:
                    el = time.perf_counter() - t0
                    hooks.on_step(i + 1, float(loss_sum) / (i + 1), n_seen * self.dist.world_size / max(el, 1e-9))
            if limit_s is not None and last_micro:
                synchronize(dev)
                if st.train_s + time.perf_counter() - t0 >= limit_s:  # a seconds budget is spent
                    st.stopped_by = "time"
                    n_here = i + 1
                    break
        synchronize(dev)
        epoch_s = time.perf_counter() - t0
        st.train_s += epoch_s
        return {"epoch": epoch + 1, "train_loss": float(loss_sum) / max(1, n_here),
                "lr": self.opt.param_groups[0]["lr"], "epoch_s": round(epoch_s, 3),
                "samples_per_s": round(n_seen * self.dist.world_size / max(epoch_s, 1e-9), 2)}

    def _rng_state(self) -> tuple[torch.Tensor, ...]:
        """(cpu, loop generator[, cuda per device]): what the next batch's dropout and sampling mask draw from."""
        cuda = (torch.cuda.get_rng_state_all(),) if self.device.type == "cuda" else ()
        return (torch.get_rng_state(), self.gen.get_state(), *cuda)

    def _update(self) -> None:
        """One optimizer step from the accumulated gradients (unscale, clip, step, schedule); ``in_update`` stays
        set until :meth:`one_epoch` has taken the snapshot of the new state."""
        self.in_update = True
        if self.clip > 0:
            self.scaler.unscale_(self.opt)
            torch.nn.utils.clip_grad_norm_(self.raw.parameters(), self.clip)
        if self.hooks.before_update:
            self.hooks.before_update(self.raw)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.opt.zero_grad(set_to_none=True)
        self.sched.step()
        self.state.global_step += 1

    # -- validation and model selection -----------------------------------------------------------
    def validate_and_select(self, row: dict[str, Any]) -> None:
        """Validation-split MSE into ``row``; the weights become the selected ones if it is the best so far."""
        if not self.dist.master:
            return
        vres, _ = evaluate(self.raw, self.dataset.batches("val", self.eval_bs, limit=self.cfg.get("val_size")),
                           self.device, self.prec, metrics=("mse",),
                           on_batch=self.hooks.on_eval_batch, context=self.dataset.spec.metric_context)
        check_finite(vres, f"validation metrics at epoch {row['epoch']}")  # NaN would never be selected, nor noticed
        C, H, W = self.raw.in_shape[1:]
        row["val_mse"] = vres["mse"]  # the test metric's convention: per-frame SSE, test-time roll-out
        row["val_loss"] = vres["mse"] / (C * H * W)  # the same, per pixel
        if vres["mse"] < self.state.best_val:
            self.state.best_val, self.state.best_epoch = vres["mse"], row["epoch"]
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in self.raw.state_dict().items()}
        if self.hooks.after_validate:
            self.hooks.after_validate(row["epoch"], self.raw)

    def save_interrupted(self) -> None:
        """Ctrl-C: the last epoch boundary is already checkpointed; a snapshot taken after the last optimizer
        step of the current epoch is finer, unless the interrupt hit the update itself or DDP is running.

        The model is put back to that step exactly: parameters are untouched since (only the update moves
        them), buffers (BatchNorm running stats, ``num_batches_tracked``) are restored from the snapshot, as a
        later forward may have moved them; gradients of an unfinished accumulation group are not saved."""
        snap = self.snap
        if snap is not None and not self.in_update and not self.dist.enabled and snap["epoch"] == self.state.epoch:
            with torch.no_grad():
                for buf, saved in zip(self.raw.buffers(), snap["buffers"]):
                    buf.copy_(saved)
            self.state.batch_in_epoch = snap["batches"]
            self.state.partial = {"loss_sum": float(snap["loss_sum"]), "finite": bool(snap["finite"]),
                                  "n_seen": snap["n_seen"], "elapsed": time.perf_counter() - snap["t0"]}
            self.checkpoint(rng=snap["rng"])


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
    dist = dist or DistInfo()
    hooks = hooks or LoopHooks()
    loop = _Loop(model, dataset, cfg, device=device, prec=prec, seed=seed, ckpt_path=ckpt_path, dist=dist,
                 hooks=hooks)
    if resume is not None:
        loop.restore(resume)
    if hooks.on_start:
        hooks.on_start(loop.epochs, loop.n_batches)
    try:
        for epoch in range(loop.state.epoch, loop.epochs):
            if loop.state.stopped_by == "time":  # resumed after a seconds budget ran out: nothing left
                break
            row = loop.one_epoch(epoch, log_every)
            loop.validate_and_select(row)
            loop.state.history.append(row)
            loop.state.epoch = epoch + 1
            loop.checkpoint()
            if hooks.on_epoch:
                hooks.on_epoch(row)
            if hooks.after_checkpoint:
                hooks.after_checkpoint(loop.state.epoch)
            if dist.enabled:
                torch.distributed.barrier()
            if loop.state.stopped_by == "time":
                break
    except KeyboardInterrupt:
        loop.save_interrupted()
        raise
    if loop.best_state is not None:
        model.load_state_dict(loop.best_state)
    return model, loop.state
