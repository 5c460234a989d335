"""Scheduled sampling for recurrent temporal modules, implemented once (docs/protocol.md, "Recipes").

A :class:`SamplingSchedule` is keyed to the global training step and built from a recipe dict by
:func:`make_schedule`. It produces the mask that :meth:`RecurrentTemporal.forward` reads:
``mask (B, T_in + T_out - 2)`` of 0/1 floats on the device, column ``t - 1`` giving the input rule
of step ``t`` (1 = the true frame, 0 = the model's own previous prediction). Step 0 always reads
the first true frame. The training loop calls, once per iteration::

    mask = schedule.mask(global_step, B, T_in, T_out, device)
    out = model(inputs, targets, sampling_mask=mask)

and evaluates with ``model(inputs)`` (true frames for t < T_in, predictions afterwards).

Kinds (the formulas are those of the PredRNN / PredRNN-V2 papers' public code):

``teacher``  always the true frame: r_eta = eta = 1.
``free``     never the true frame after T_in: r_eta = 1, eta = 0 -- the test-time rule, the same as
             passing no mask.
``linear``   PredRNN scheduled sampling. Inputs 1 .. T_in - 1 are always true (r_eta = 1); for the
             prediction part eta(s) = max(0, start - rate * s) for s < stop_iter, then 0
             (start 1.0, rate 2e-5, stop_iter 50,000: eta(25,000) = 0.5, eta(50,000) = 0).
             The published loop is stateful and decrements eta *before* its first use, so its
             iteration s uses start - rate * (s + 1); keyed to the step, stbench starts at exactly
             1.0 (a difference of one iteration, 2e-5 in eta).
``reverse``  PredRNN-V2 reverse scheduled sampling, with s1 = r_sampling_step_1 (25,000),
             s2 = r_sampling_step_2 (50,000), alpha = r_exp_alpha (5,000). For the input part
             (steps 1 .. T_in - 1) the true-frame probability r_eta rises, for the prediction part
             eta falls:
                 s < s1:        r_eta = 0.5                              eta = 0.5
                 s1 <= s < s2:  r_eta = 1 - 0.5 * exp(-(s - s1) / alpha)  eta = 0.5 - 0.5 * (s - s1) / (s2 - s1)
                 s >= s2:       r_eta = 1                                eta = 0
             (r_eta jumps from 1 - 0.5 * exp(-5) = 0.9966 to 1 at s2, as published.)

Each mask entry is an independent Bernoulli draw: true frame iff u < p with u ~ U[0, 1), so p = 1
and p = 0 give exact ones and zeros. The draws happen on the device: no numpy, no host sync.
``draw = "batch"`` (PhyDNet's teacher forcing) instead draws ONE u per part of the mask for the
whole batch: with probability p every sample reads the true frame at every step of that part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor

KINDS = ("teacher", "free", "linear", "reverse")

@dataclass(frozen=True)
class SamplingSchedule:
    kind: str = "free"
    # linear (PredRNN)
    start: float = 1.0
    rate: float = 2e-5  # eta decrease per iteration
    stop_iter: int = 50_000  # eta = 0 from here on
    # reverse (PredRNN-V2)
    r_sampling_step_1: int = 25_000
    r_sampling_step_2: int = 50_000
    r_exp_alpha: float = 5_000.0
    draw: str = "sample"  # "sample": a draw per sample and step; "batch": one draw per batch and part

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown sampling schedule kind '{self.kind}'; choose one of {', '.join(KINDS)}")
        if self.draw not in ("sample", "batch"):
            raise ValueError(f"sampling draw must be 'sample' or 'batch', got '{self.draw}'")
        if self.kind == "reverse" and not (0 <= self.r_sampling_step_1 < self.r_sampling_step_2):
            raise ValueError("reverse schedule needs 0 <= r_sampling_step_1 < r_sampling_step_2")

    def eta(self, step: int) -> tuple[float, float]:
        """(r_eta, eta): true-frame probabilities for steps 1 .. T_in - 1 and T_in .. T_in + T_out - 2.

        Host floats from the step counter only: cheap, no device involved.
        """
        s = int(step)
        if self.kind == "teacher":
            return 1.0, 1.0
        if self.kind == "free":
            return 1.0, 0.0
        if self.kind == "linear":
            return 1.0, (max(0.0, self.start - self.rate * s) if s < self.stop_iter else 0.0)
        s1, s2 = self.r_sampling_step_1, self.r_sampling_step_2
        if s < s1:
            return 0.5, 0.5
        if s < s2:
            return 1.0 - 0.5 * math.exp(-(s - s1) / self.r_exp_alpha), 0.5 - 0.5 * (s - s1) / (s2 - s1)
        return 1.0, 0.0

    def mask(self, step: int, batch: int, t_in: int, t_out: int, device: torch.device | str | None = None,
             generator: torch.Generator | None = None) -> Tensor:
        """Mask (batch, T_in + T_out - 2) of 0/1 floats on ``device``; column t - 1 rules step t."""
        r_eta, eta = self.eta(step)
        parts = []
        for n, p in ((t_in - 1, r_eta), (t_out - 1, eta)):
            if n <= 0:
                continue
            if p >= 1.0:
                parts.append(torch.ones(batch, n, device=device))
            elif p <= 0.0:
                parts.append(torch.zeros(batch, n, device=device))
            else:
                shape = (1, 1) if self.draw == "batch" else (batch, n)
                u = torch.rand(shape, device=device, generator=generator).expand(batch, n)
                parts.append((u < p).float())
        if not parts:
            return torch.zeros(batch, 0, device=device)
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)  # (B, T_in + T_out - 2)


def default_schedule(name: str) -> dict[str, Any] | None:
    """The ``schedule`` declared on the registry entry of model or temporal module ``name``, if any."""
    from stbench.registry import MODELS, TEMPORAL

    for reg in (MODELS, TEMPORAL):
        if name in reg and reg.entry(name).meta.get("schedule"):
            return dict(reg.entry(name).meta["schedule"])
    return None


def make_schedule(cfg: dict[str, Any] | str | None = None, *, temporal: str | None = None) -> SamplingSchedule:
    """Build a schedule from a recipe dict (``{"kind": "linear", "rate": 2e-5, ...}``) or a kind name.

    ``None`` means the published ``schedule`` on the registry entry of the model or temporal module
    named by ``temporal`` (``@MODELS.register(..., schedule={...})``), or ``free`` (no scheduled
    sampling) when there is none.
    """
    if cfg is None:
        cfg = default_schedule(temporal or "") or {"kind": "free"}
    if isinstance(cfg, str):
        cfg = {"kind": cfg}
    known = {f.name for f in fields(SamplingSchedule)}
    bad = sorted(set(cfg) - known)
    if bad:
        raise ValueError(f"sampling schedule does not take {', '.join(bad)}; it accepts: {', '.join(sorted(known))}")
    return SamplingSchedule(**cfg)
