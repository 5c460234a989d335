"""Numeric precision, memory layout and device helpers shared by training and profiling.

A :class:`Precision` is a dtype policy plus a memory layout:

- ``fp32``: no autocast. ``bf16``: autocast to bfloat16 (CPUs with native bf16, i.e. AVX512-BF16 or
  AMX, and CUDA devices that support it). ``fp16``: CUDA autocast with a gradient scaler.
- layout ``nchw`` (contiguous) or ``channels_last``. Which one is faster depends on the machine:
  in fp32 on a 2-core AMD EPYC, channels_last trained the SimVP family 1.4x faster with AVX-512 and
  up to 28% slower with AVX2 only (benchmarks/README.md). The maths is the same either way.

``auto`` (precision or layout) is decided by measurement: :func:`choose_precision` times a few
optimizer steps of every candidate the device supports (fp32 / bf16 x NCHW / channels_last on CPU;
bf16 / fp16 AMP x both layouts on CUDA), each on a copy of the model at the run's batch, and keeps
the fastest unless it is not clearly faster (:func:`pick`: within :data:`TIE` of the fastest, the plainer
candidate trains, so that a rerun on the same machine makes the same choice). A forced precision or layout
narrows the candidates; a single candidate is not timed.
Without a measurement (a forced precision and no layout), :func:`default_memory_format` applies.
"""

from __future__ import annotations

import contextlib
import copy
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from stbench.errors import UserError
from stbench.recipes import MEMORY_FORMATS, PRECISIONS, setting  # noqa: F401  (the choices are the recipe's)


@lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """Native bf16 on this CPU (oneDNN's check; False under ONEDNN_MAX_CPU_ISA=AVX2)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # noqa: BLE001 - older builds without the op
        return False


def cpu_capability() -> str:
    """ATen's CPU kernel level: ``AVX512``, ``AVX2``, ``DEFAULT`` ... (ATEN_CPU_CAPABILITY lowers it)."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # noqa: BLE001 - older builds
        return "unknown"


def resolve_device(name: str | None) -> torch.device:
    """``auto``/None -> cuda if available else cpu; a bad name raises ValueError with the fix."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"bad --device '{name}': {exc}; use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name} asked for CUDA but none is available here; use --device cpu")
    return dev


def resolve_precision(name: str, device: torch.device) -> str:
    """A precision name without measuring: ``auto`` -> bf16 where native (CPU) / supported (CUDA), fp16 on
    other CUDA devices, fp32 otherwise. :func:`choose_precision` measures instead."""
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision '{name}'; choose one of {', '.join(PRECISIONS)}")
    if name != "auto":
        if device.type == "cpu" and name == "fp16":
            raise ValueError("fp16 autocast is for CUDA; on CPU use --precision bf16 or fp32")
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_supports_bf16() else "fp32"


def check_memory_format(name: str | None) -> str | None:
    if name is not None and name not in MEMORY_FORMATS:
        raise ValueError(f"unknown memory format '{name}'; choose one of {', '.join(MEMORY_FORMATS)}")
    return name


def default_memory_format(precision: str, device: torch.device) -> str:
    """The layout when none is forced or measured: channels_last for autocast (bf16 / fp16) and for fp32
    on AVX-512 CPUs (oneDNN's blocked convolutions avoid reorders); NCHW for fp32 on CUDA and on CPUs
    whose ATen kernels are AVX2 or lower, where channels_last measured slower."""
    if precision != "fp32":
        return "channels_last"
    if device.type == "cpu" and cpu_capability().startswith("AVX512"):
        return "channels_last"
    return "nchw"


@dataclass(frozen=True)
class Precision:
    name: str  # fp32 | bf16 | fp16 (resolved)
    device: torch.device
    memory_format: str | None = None  # nchw | channels_last; None -> default_memory_format()

    def __post_init__(self) -> None:
        if self.memory_format is None:
            object.__setattr__(self, "memory_format", default_memory_format(self.name, self.device))
        if self.memory_format not in ("nchw", "channels_last"):
            raise ValueError(f"unknown memory format '{self.memory_format}'; choose nchw or channels_last")

    @property
    def label(self) -> str:
        """E.g. ``fp32 nchw`` or ``bf16 channels_last``."""
        return f"{self.name} {self.memory_format}"

    @property
    def dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    @property
    def channels_last(self) -> bool:
        return self.memory_format == "channels_last"

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def needs_scaler(self) -> bool:
        return self.name == "fp16"

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.channels_last and not supports_channels_last(model):
            name = getattr(model, "names", {}).get("model", type(model).__name__)
            raise UserError(f"model '{name}' {nchw_only_reason(model)}; use --memory-format nchw (or auto)")
        model = model.to(self.device)
        return to_memory_format(model, torch.channels_last if self.channels_last else torch.contiguous_format)


def nchw_only_reason(model: torch.nn.Module) -> str | None:
    """Why ``model`` must run NCHW (a module's ``channels_last_unsupported`` text), or None."""
    for m in model.modules():
        reason = getattr(m, "channels_last_unsupported", None)
        if reason:
            return str(reason)
    return None


def supports_channels_last(model: torch.nn.Module | None) -> bool:
    return model is None or nchw_only_reason(model) is None


def layout_for(model: torch.nn.Module | None, memory_format: str | None) -> str | None:
    """``memory_format`` as asked, except that an unforced one (None / ``auto``) is NCHW for a ``model``
    that cannot run channels_last."""
    return "nchw" if memory_format in (None, "auto") and not supports_channels_last(model) else memory_format


def to_memory_format(model: torch.nn.Module, fmt: torch.memory_format) -> torch.nn.Module:
    """``model.to(memory_format=fmt)`` for the 4-D tensors only: torch refuses that call outright when a
    model holds a 5-D weight (a Conv3d, as in MMVP and E3D-LSTM); those keep their layout."""
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            if t.dim() == 4:
                t.data = t.data.contiguous(memory_format=fmt)
    return model


def make_precision(name: str, device: torch.device, memory_format: str | None = None,
                   model: torch.nn.Module | None = None) -> Precision:
    """Without measuring: ``auto`` precision as :func:`resolve_precision`, ``auto``/None layout as
    :func:`default_memory_format` (NCHW for a ``model`` that cannot run channels_last)."""
    mf = layout_for(model, check_memory_format(memory_format))
    return Precision(resolve_precision(name, device), device, None if mf == "auto" else mf)


# ---------------------------------------------------------------------------------------------
# measured choice
# ---------------------------------------------------------------------------------------------
def candidates(precision: str, memory_format: str | None, device: torch.device,
               model: torch.nn.Module | None = None) -> list[Precision]:
    """The (precision, layout) pairs ``choose_precision`` times: what the device supports, narrowed by
    a forced precision and / or layout. ``memory_format`` None with a forced precision = its default.
    A ``model`` that cannot run channels_last gets NCHW candidates only."""
    memory_format = layout_for(model, memory_format)
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}'; choose one of {', '.join(PRECISIONS)}")
    check_memory_format(memory_format)
    if precision == "auto":
        if device.type == "cuda":
            names = ["bf16", "fp16"] if torch.cuda.is_bf16_supported() else ["fp16"]
        else:
            names = ["fp32", "bf16"] if cpu_supports_bf16() else ["fp32"]
    else:
        names = [resolve_precision(precision, device)]
    if memory_format in ("nchw", "channels_last"):
        formats = [memory_format]
    elif memory_format == "auto" or precision == "auto":
        formats = ["nchw", "channels_last"]
    else:
        formats = [None]  # forced precision, no layout asked for: its default, not measured
    return [Precision(n, device, f) for n in names for f in formats]


def asked_for(cfg: dict[str, Any], precision: str | None = None,
              memory_format: str | None = None) -> tuple[str, str | None]:
    """(precision, layout) names a run of recipe ``cfg`` asks for: the recipe's (precision ``fp32`` when it sets
    none: :data:`stbench.recipes.DEFAULTS`) unless ``precision`` / ``memory_format`` (the command line) force one."""
    return precision or setting(cfg, "precision"), memory_format or cfg.get("memory_format")


def run_precision(model: torch.nn.Module, cfg: dict[str, Any], device: torch.device, precision: str | None = None,
                  memory_format: str | None = None, *, measured: bool = True) -> Precision | list[Precision]:
    """The precision a run of recipe ``cfg`` uses (issue 12, :func:`asked_for`). ``measured``: the candidates to
    time (:func:`candidates`), else the choice without measuring (:func:`make_precision`). An unknown name is the
    user's to fix (one line)."""
    want, fmt = asked_for(cfg, precision, memory_format)
    try:
        return candidates(want, fmt, device, model) if measured else make_precision(want, device, fmt, model)
    except ValueError as exc:
        raise UserError(str(exc).splitlines()[0]) from None


class StepBench:
    """Copies of a model (one per layout, shared by the precisions of that layout), each with its Adam and a
    fixed random batch; ``step(prec)`` takes one optimizer step (forward + model loss + backward + Adam)."""

    def __init__(self, model: torch.nn.Module, batch: int, device: torch.device) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(batch, *model.in_shape, generator=g).to(device)
        self.y = torch.rand(batch, model.t_out, *model.in_shape[1:], generator=g).to(device)
        self.mask = None
        if model.recurrent:  # teacher forcing, every step reads the true frame: a training schedule's first step
            steps = max(model.in_shape[0] - 1, 0) + max(model.t_out - 1, 0)  # models.sampling's mask layout
            self.mask = torch.ones(batch, steps, device=device)
        self.model, self.copies, self.scalers = model, {}, {}

    def _copy(self, prec: Precision) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        if prec.memory_format not in self.copies:
            m = prec.prepare(copy.deepcopy(self.model)).train()
            self.copies[prec.memory_format] = (m, torch.optim.Adam(m.parameters(), lr=1e-4))
        return self.copies[prec.memory_format]

    def step(self, prec: Precision) -> float:
        m, opt = self._copy(prec)
        scaler = self.scalers.setdefault(prec.label, torch.amp.GradScaler(prec.device.type,
                                                                          enabled=prec.needs_scaler()))
        synchronize(prec.device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with prec.autocast():
            out = m(self.x, self.y, sampling_mask=self.mask)
            loss, _ = m.loss(out, self.x, self.y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        synchronize(prec.device)
        return time.perf_counter() - t0


def time_steps(model: torch.nn.Module, precs: list[Precision], batch: int, *, warmup: int = 1, reps: int = 3,
               budget_s: float = 20.0, around: Callable[[Precision], Any] | None = None,
               after_warmup: Callable[[], None] | None = None) -> dict[str, list[float]]:
    """Seconds of each timed optimizer step of a copy of ``model`` under each of ``precs``, interleaved
    (round r times every candidate once, so a change in the machine's load hits them alike): ``warmup``
    untimed rounds (at least one when ``around`` is given: optimizer state is allocated outside it; no new
    one after half of ``budget_s``), then up to ``reps`` timed rounds, no new round once ``budget_s`` is
    used (at least one). ``around(prec)`` is a
    context manager entered around each candidate's first timed step only (the profiler's memory probe:
    its sampling thread could slow the steps it watches: the profiler drops that round's times)."""
    bench = StepBench(model, batch, precs[0].device)
    t_start = time.perf_counter()
    for i in range(max(warmup, 1 if around else 0)):
        if i and time.perf_counter() - t_start >= budget_s / 2:
            break  # slow steps: one warm-up round is enough, the budget is for timing
        for p in precs:
            bench.step(p)
    if after_warmup:
        after_warmup()
    times: dict[str, list[float]] = {p.label: [] for p in precs}
    for r in range(max(1, reps)):
        if r and time.perf_counter() - t_start >= budget_s:
            break
        for p in precs[r % len(precs):] + precs[:r % len(precs)]:  # rotate the order: no fixed position bias
            with around(p) if around and r == 0 else contextlib.nullcontext():  # a probe may cost time: once
                times[p.label].append(bench.step(p))
    return times


@dataclass
class Choice:
    """What ``choose_precision`` measured: step time (best of ``reps``) per candidate, and the pick."""

    precision: Precision
    measured: bool
    batch: int
    step_ms: dict[str, float]  # label -> best step time in ms
    reps: dict[str, int]
    cost_s: float

    def as_dict(self) -> dict[str, Any]:
        return {"choice": self.precision.label, "precision": self.precision.name,
                "memory_format": self.precision.memory_format, "measured": self.measured, "batch": self.batch,
                "candidates_step_ms": {k: round(v, 2) for k, v in self.step_ms.items()}, "reps": dict(self.reps),
                "cost_s": round(self.cost_s, 2)}

    def line(self) -> str:
        """One line for the console."""
        if not self.measured:
            return f"precision {self.precision.label} (forced, not measured)"
        best = self.step_ms[self.precision.label]
        others = ", ".join(f"{k} {v:.0f}" for k, v in self.step_ms.items() if k != self.precision.label)
        n = min(self.reps.values())
        tie = "" if best == min(self.step_ms.values()) else f", a tie (within {TIE:.0%} of the fastest): the plainer"
        return (f"precision auto: {self.precision.label}, {best:.0f} ms/step{tie} (others ms/step: {others}); "
                f"best of {n} step{'s' if n > 1 else ''} each at batch {self.batch}, measured in {self.cost_s:.1f} s")


TIE = 0.03  # steps within 3% of each other are a tie: two timings of one candidate differ by about as much


def pick(cands: list[Precision], best_ms: dict[str, float]) -> Precision:
    """The candidate to train with, given each one's best step time (ms): the fastest, unless another is within
    :data:`TIE` of it; then, among those tied, the plainest: the earlier precision in ``cands`` (fp32 before
    bf16 on CPU, bf16 before fp16 on CUDA: fewer rounding steps, no loss scaling), then the device's default
    layout for it (:func:`default_memory_format`), then the faster. Without the tie rule a rerun of the same
    seed could flip between two layouts that measured within noise, and its numbers then move by more than
    the rerun of a fixed layout does."""
    fastest = min(best_ms[c.label] for c in cands)
    tied = [c for c in cands if best_ms[c.label] <= fastest * (1 + TIE)]
    order = list(dict.fromkeys(c.name for c in cands))
    return min(tied, key=lambda c: (order.index(c.name), c.memory_format != default_memory_format(c.name, c.device),
                                    best_ms[c.label]))


def choose_precision(model: torch.nn.Module, batch: int, device: torch.device, precision: str = "auto",
                     memory_format: str | None = None, *, warmup: int = 1, reps: int = 3,
                     budget_s: float = 20.0) -> Choice:
    """Time up to ``reps`` interleaved optimizer steps (after ``warmup``; no new round after ``budget_s``) of
    a copy of ``model`` under each candidate and return the fastest (best step; :func:`pick` breaks ties).
    ``model`` and the global RNG are untouched."""
    cands = candidates(precision, memory_format, device, model)
    if len(cands) == 1:
        return Choice(cands[0], False, batch, {}, {}, 0.0)
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        times = time_steps(model, cands, batch, warmup=warmup, reps=reps, budget_s=budget_s)
    best = {k: min(v) * 1e3 for k, v in times.items()}  # best of: interference only ever adds time
    reps_got = {k: len(v) for k, v in times.items()}
    return Choice(pick(cands, best), True, batch, best, reps_got, time.perf_counter() - t0)


def spread(times: list[float]) -> tuple[float, float, float]:
    """(median, min, max)."""
    return statistics.median(times), min(times), max(times)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpuinfo_field(key: str) -> str | None:
    """The value of the first /proc/cpuinfo line starting with ``key`` (``model name``, ``flags``), or None."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


@lru_cache(maxsize=4)
def device_name(device_type: str = "cpu", index: int = 0) -> str:
    if device_type == "cuda":
        return torch.cuda.get_device_name(index)
    name = cpuinfo_field("model name") or platform.processor() or platform.machine()
    # the ATen kernel level too: two VMs both called "AMD EPYC" were an AVX-512 and an AVX2-only CPU, whose
    # times must not be compared as one device's
    return f"{name} ({torch.get_num_threads()} threads, {cpu_capability()})"
