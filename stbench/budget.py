"""Training budgets: how much training a run gets, stated once and turned into a complete schedule.

A budget is one of (docs/protocol.md, "Training budgets")::

    samples=4000     sequences shown to the model in training (micro-batches x batch size x ranks)
    flops=2.5e15     training FLOPs, counted as BACKWARD_FACTOR (3) x the fvcore FLOPs of ONE training-mode
                     forward of ONE sequence x the sequences seen (forward 1x, backward 2x: the usual
                     convention of the scaling-law literature); turned into a number of sequences
    seconds=600      wall-clock training time on this device: the schedule is planned from the step time
                     measured before training, and the run also stops at the first optimizer step at which
                     the training time reaches the budget (the record says which limit ended it)

:func:`plan` turns a budget into micro-batches, epochs (the last one may be partial) and optimizer steps;
the learning-rate schedule (OneCycle / cosine length) and the scheduled-sampling schedule are then laid
over exactly those steps (:func:`resolve_sampling`), so a model trained at any budget gets a complete
schedule. Without a budget the plan is the recipe's own ``epochs`` x batches per epoch.

Every record carries ``budget = {kind, value, label, samples_seen, train_flops, train_s, device, ...}``
(:func:`budget_record`); leaderboards rank only records whose budgets are equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from stbench.errors import UserError

KINDS = ("samples", "flops", "seconds")
BACKWARD_FACTOR = 3  # training FLOPs per sequence = 3 x one training-mode forward (backward ~ 2 x forward)
# scheduled-sampling keys that count optimizer steps (stretched with the run, see resolve_sampling)
SAMPLING_STEP_KEYS = ("stop_iter", "r_sampling_step_1", "r_sampling_step_2", "r_exp_alpha")


def _compact(v: float) -> str:
    """4000.0 -> '4000', 2.5e15 -> '2.5e15', 600.0 -> '600' (labels are also file-name parts)."""
    if float(v).is_integer() and abs(v) < 1e7:
        return str(int(v))
    return f"{v:.4g}".replace("e+", "e")


@dataclass(frozen=True)
class Budget:
    kind: str
    value: float

    @classmethod
    def parse(cls, text: str | Budget) -> Budget:
        """``"samples=4e3"`` -> Budget("samples", 4000.0); one-line errors for anything else."""
        if isinstance(text, Budget):
            return text
        kind, sep, val = str(text).partition("=")
        kind = kind.strip().lower()
        hint = "write KIND=VALUE with KIND one of samples, flops, seconds, e.g. --budget samples=4000"
        if not sep or kind not in KINDS:
            raise UserError(f"bad budget '{text}'; {hint}")
        try:
            value = float(val)
        except ValueError:
            raise UserError(f"bad budget value '{val.strip()}' in '{text}'; {hint}") from None
        if not (math.isfinite(value) and value > 0):
            raise UserError(f"budget '{text}' must be a positive finite number; {hint}")
        return cls(kind, value)

    @property
    def label(self) -> str:
        return f"{self.kind}={_compact(self.value)}"


@dataclass(frozen=True)
class Plan:
    """The training a run will get: ``batches`` micro-batches in ``epochs`` epochs (the last one holding
    ``batches - (epochs - 1) * batches_per_epoch``), ``steps`` optimizer steps, ``samples`` sequences."""

    batches: int
    batches_per_epoch: int
    epochs: int
    steps: int
    samples: int
    time_limit_s: float | None = None

    def batches_in_epoch(self, epoch: int) -> int:
        """Micro-batches of (0-based) ``epoch``."""
        return max(0, min(self.batches_per_epoch, self.batches - epoch * self.batches_per_epoch))


def optimizer_steps(batches: int, batches_per_epoch: int, accum: int) -> int:
    """Optimizer steps of ``batches`` micro-batches: one per ``accum`` micro-batches, and one at the end of
    every epoch (a partial accumulation is stepped there, as the loop does)."""
    full, last = divmod(batches, batches_per_epoch)
    return full * math.ceil(batches_per_epoch / accum) + math.ceil(last / accum)


def make_plan(batches: int, *, batches_per_epoch: int, batch_size: int, accum: int = 1, world_size: int = 1,
              time_limit_s: float | None = None) -> Plan:
    batches = max(1, int(batches))
    return Plan(batches=batches, batches_per_epoch=batches_per_epoch,
                epochs=math.ceil(batches / batches_per_epoch),
                steps=optimizer_steps(batches, batches_per_epoch, accum),
                samples=batches * batch_size * world_size, time_limit_s=time_limit_s)


def plan(budget: Budget | None, *, epochs: int, batches_per_epoch: int, batch_size: int, accum: int = 1,
         world_size: int = 1, train_flops_per_seq: float | None = None, step_s: float | None = None) -> Plan:
    """The plan of a run: its recipe's ``epochs`` when ``budget`` is None, else the budget's.

    ``samples=N``: ceil(N / (batch_size x world_size)) micro-batches. ``flops=X``: X / (3 x
    ``train_flops_per_seq``) sequences, then as samples. ``seconds=S``: floor(S / ``step_s``) micro-batches
    (``step_s`` is the measured time of one micro-batch step) and a time limit of S.
    """
    kw = dict(batches_per_epoch=batches_per_epoch, batch_size=batch_size, accum=accum, world_size=world_size)
    per_batch = batch_size * world_size
    if budget is None:
        return make_plan(int(epochs) * batches_per_epoch, **kw)
    if budget.kind == "samples":
        return make_plan(math.ceil(budget.value / per_batch), **kw)
    if budget.kind == "flops":
        if not train_flops_per_seq or train_flops_per_seq <= 0:
            raise UserError("a flops budget needs the model's training FLOPs per sequence, which fvcore could not "
                            "count for this model; use --budget samples=N instead")
        samples = budget.value / (BACKWARD_FACTOR * train_flops_per_seq)
        return make_plan(max(1, math.floor(samples / per_batch)), **kw)
    if not step_s or step_s <= 0:
        raise UserError("a seconds budget needs the measured training step time; run without --no-profile")
    return make_plan(max(1, math.floor(budget.value / step_s)), time_limit_s=budget.value, **kw)


def resolve_sampling(sampling: dict[str, Any] | None, *, steps: int, recipe_steps: int) -> dict[str, Any] | None:
    """The scheduled-sampling schedule laid over a run of ``steps`` optimizer steps.

    - ``relative = true``: the step keys are FRACTIONS of the run (``stop_iter = 0.667`` -> eta reaches 0
      after two thirds of the steps; a linear ``rate`` is then start / stop_iter, so eta falls to exactly
      0 there);
    - absolute step keys (the published ones: PredRNN's stop_iter 50,000) are stretched by
      ``steps / recipe_steps``, the ratio of the run's steps to the steps the recipe was written for (its
      own epochs), so a budget that halves the training halves the schedule. A run at its recipe's own
      length keeps the published numbers exactly.
    """
    if not sampling:
        return sampling
    s = dict(sampling)
    relative = bool(s.pop("relative", False))
    scale = steps if relative else steps / max(1, recipe_steps)
    if not relative and scale == 1:
        return s
    for k in SAMPLING_STEP_KEYS:
        if k in s:
            s[k] = max(1, round(float(s[k]) * scale)) if k != "r_exp_alpha" else float(s[k]) * scale
    if s.get("kind") == "linear" and "stop_iter" in s:
        if relative:
            s["rate"] = float(s.get("start", 1.0)) / s["stop_iter"]
        elif "rate" in s:
            s["rate"] = float(s["rate"]) / scale
    if s.get("kind") == "reverse" and s.get("r_sampling_step_2", 1) <= s.get("r_sampling_step_1", 0):
        s["r_sampling_step_2"] = s["r_sampling_step_1"] + 1
    return s


def budget_record(budget: Budget | None, planned: Plan, *, samples_seen: int, train_flops_per_seq: float | None,
                  train_s: float, device: str, stopped_by: str) -> dict[str, Any]:
    """The ``budget`` field of a record. Without an explicit budget the run's budget is its samples seen
    (kind ``samples``), so that every record states how much training it had in the same unit."""
    b = budget or Budget("samples", float(planned.samples))
    flops = BACKWARD_FACTOR * train_flops_per_seq * samples_seen if train_flops_per_seq else None
    return {"kind": b.kind, "value": b.value, "label": b.label, "explicit": budget is not None,
            "samples_seen": int(samples_seen), "planned_samples": int(planned.samples),
            "train_flops": flops, "train_flops_per_seq": train_flops_per_seq, "train_s": round(float(train_s), 3),
            "epochs": planned.epochs, "steps": planned.steps, "stopped_by": stopped_by, "device": device}


def budget_of(record: Any) -> dict[str, Any] | None:
    """The training budget a record states, or one derived from its recipe for records written before budgets
    existed (``derived: True``): samples = epochs x (train_size // batch_size) x batch_size, else the sequences
    its history says each epoch saw. None for floors and records that say too little."""
    if getattr(record, "kind", None) == "floor":
        return None
    if record.budget:
        return dict(record.budget)
    cfg = record.config or {}
    epochs, bs, n = cfg.get("epochs"), cfg.get("batch_size"), cfg.get("train_size")
    samples = None
    if isinstance(epochs, int) and isinstance(bs, int) and isinstance(n, int) and bs > 0:
        samples = epochs * (n // bs) * bs * int(cfg.get("world_size") or 1)
    elif record.history:
        samples = int(round(sum(h.get("samples_per_s", 0) * h.get("epoch_s", 0) for h in record.history)))
    if not samples:
        return None
    flops_seq = cfg.get("train_flops_per_seq")
    return {"kind": "samples", "value": float(samples), "label": Budget("samples", float(samples)).label,
            "samples_seen": samples, "train_flops": BACKWARD_FACTOR * flops_seq * samples if flops_seq else None,
            "derived": True}


def budget_dir(asked: str | Budget | None, own: str | Budget | None) -> str | None:
    """The folder under ``records/<dataset>/<preset>/`` (and ``checkpoints/``) of a run: None (the preset's own
    folder) without a budget asked for, or when the budget asked for is the recipe's ``own``; else the asked
    budget's label (``samples=2000``, ``flops=2.5e+15``), so runs of one model at several budgets never share a
    record. Older records (no budget asked) keep their paths."""
    if not asked:
        return None
    b = Budget.parse(asked)
    if own and Budget.parse(own) == b:
        return None
    return "".join(c if c.isalnum() or c in "._=+-" else "_" for c in b.label)
