"""Cost of a model: parameters, FLOPs, throughput, training-step time, peak memory, MFU.

What is counted (stated because numbers are only comparable under one convention):
- ``params``: all parameters (trainable or not).
- ``flops``: fvcore ``FlopCountAnalysis`` total for ONE sample in eval mode, as the published tables
  count it: one multiply-accumulate = one flop, element-wise ops not counted. Recurrent models are
  traced through the full T_in + T_out - 1 step unroll with the test-time input rule.
- Every timing is bounded: ``warmup`` untimed repetitions (fewer once half of ``budget_s`` is used, at
  least one), then at most ``reps`` timed ones with device synchronisation, and no new repetition once the
  measurement (warm-up included) has used ``budget_s`` seconds (at least one timed repetition). The
  number of repetitions obtained is recorded beside each figure (``infer_reps``, ``train_reps``), with
  the spread (min / max).
- ``infer_seq_per_s``: sequences per second of the eval-mode forward at ``infer_batch`` (default
  ``batch``); median over the repetitions (min / max beside it).
- ``published_fps``: the published protocol, kept separately: batch 100 (10 at >= 128 px), 100
  repetitions, no warm-up, total time; only when asked (slow on a CPU), and also cut at ``budget_s``
  (``published_fps_reps`` says how many of the 100 ran).
- ``train_step_ms``: median time of forward + loss + backward + optimizer step at ``batch``. Given several
  candidate precisions / layouts (``--precision auto``), their steps are timed interleaved within the
  same budget and the fastest (best step; ties within 3% go to the plainer one, as in a run) is the one
  profiled; ``candidates_step_ms`` keeps them all.
- ``peak_mem_mb``: CUDA: ``max_memory_allocated`` during the first timed training step (optimizer
  state already allocated). CPU: the peak increase of the process's resident memory during that step,
  sampled every millisecond, after freed heap memory is returned to the OS (glibc ``malloc_trim``;
  elsewhere the figure can read low). The other timed steps run without the sampler, and only they make
  ``train_step_ms`` (the probed step counts only when the budget allowed no other).
- ``mfu``: achieved FLOP/s of the training step (3 x forward, 2 flops per multiply-accumulate)
  over a dense-matmul peak measured in the same process, device and dtype (the faster of
  ``torch.matmul`` and, on CPU, the same product as a oneDNN 1x1 convolution).
"""

from __future__ import annotations

import contextlib
import logging
import statistics
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from stbench.compile import profile_compile
from stbench.precision import Precision, device_name, pick, run_precision, spread, synchronize, time_steps
from stbench.preflight import check_device
from stbench.recipes import load_recipe


@dataclass
class ProfileResult:
    model: str
    params: int
    flops: int | None
    infer_seq_per_s: float
    infer_seq_per_s_min: float
    infer_seq_per_s_max: float
    infer_batch: int
    infer_reps: int
    train_step_ms: float | None
    train_step_ms_min: float | None
    train_step_ms_max: float | None
    train_reps: int
    train_batch: int
    peak_mem_mb: float | None
    peak_mem_kind: str
    achieved_tflops: float | None
    matmul_peak_tflops: float | None
    mfu: float | None
    published_fps: float | None
    published_fps_reps: int | None
    device: str
    precision: str
    memory_format: str
    candidates_step_ms: dict[str, float] | None
    budget_s: float
    in_shape: list[int]
    t_out: int
    recurrent: bool
    flops_convention: str = "fvcore, 1 sample, eval mode, MAC = 1 flop"
    compile: dict[str, Any] | None = None  # `--compile on|auto`: eager vs compiled training step (stbench.compile)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


INFER_BATCH = 16  # the batch of every recorded inference throughput (run and eval), whatever a recipe trains with


class _Forecast(nn.Module):
    """Wraps an STModel so tracers see tensor outputs: the forecast, and the auxiliary loss where the
    model computes one at test time (PredRNN.V2's decoupling loss; the published forward returns it,
    so its adapter convolutions are counted as published)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        out = self.model(x)
        return out.pred if out.aux_loss is None else (out.pred, out.aux_loss)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@contextlib.contextmanager
def _quiet_fvcore():
    """fvcore's deprecation notes, tracer warnings and unsupported-operator chatter stay hidden."""
    loggers = [logging.getLogger(n) for n in ("fvcore", "fvcore.nn.jit_analysis", "iopath")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def _fvcore_total(model: nn.Module, wrapper: nn.Module, inputs: tuple[torch.Tensor, ...], training: bool) -> int:
    """fvcore's FLOP total of ``wrapper(*inputs)`` with ``model`` in training or eval mode (restored after)."""
    with _quiet_fvcore():
        from fvcore.nn import FlopCountAnalysis

        was_training = model.training
        model.train(training)
        try:
            fca = FlopCountAnalysis(wrapper, inputs)
            fca.unsupported_ops_warnings(False)
            fca.uncalled_modules_warnings(False)
            with torch.no_grad():
                return int(fca.total())
        finally:
            model.train(was_training)


def count_flops(model: nn.Module) -> int:
    """fvcore FLOPs of one sample in eval mode (published convention)."""
    x = torch.zeros(1, *model.in_shape, device=next(model.parameters()).device)
    return _fvcore_total(model, _Forecast(model), (x,), training=False)


class _TrainForecast(nn.Module):
    """A training-mode forward for tracers: targets given, and for recurrent modules a teacher-forcing mask
    (every input step reads the true frame, so a codec model also encodes the true frames, as in training)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        mask = None
        if self.model.recurrent:
            mask = torch.ones(x.shape[0], x.shape[1] + y.shape[1] - 2, device=x.device)
        out = self.model(x, y, sampling_mask=mask)
        return out.pred if out.aux_loss is None else (out.pred, out.aux_loss)


def count_train_flops(model: nn.Module) -> int:
    """fvcore FLOPs of ONE training-mode forward of ONE sequence (targets given, teacher forcing for recurrent
    modules); the training-FLOPs convention of :mod:`stbench.budget` multiplies it by 3 (forward + backward)."""
    dev = next(model.parameters()).device
    x = torch.zeros(1, *model.in_shape, device=dev)
    y = torch.zeros(1, model.t_out, *model.in_shape[1:], device=dev)
    return _fvcore_total(model, _TrainForecast(model), (x, y), training=True)


def _timed(fn, device: torch.device, warmup: int, reps: int, budget_s: float | None = None) -> list[float]:
    """Seconds of up to ``reps`` timed calls after ``warmup`` untimed ones; no new call once ``budget_s``
    (warm-up included) is used, but at least one timed call."""
    t_start = time.perf_counter()
    for _ in range(warmup):
        fn()
        if budget_s is not None and time.perf_counter() - t_start >= budget_s / 2:
            break  # slow calls: one warm-up is enough, the budget is for timing
    synchronize(device)
    times: list[float] = []
    for _ in range(max(1, reps)):
        if times and budget_s is not None and time.perf_counter() - t_start >= budget_s:
            break
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return times


class _RssSampler:
    """Peak resident-set increase of this process, sampled in a thread (CPU peak memory)."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss() -> int:
        try:
            with open("/proc/self/statm") as f:
                import os

                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(self.interval)

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def peak_increase_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def _release_free_heap() -> None:
    """Return freed heap memory to the OS (glibc ``malloc_trim``), so that the resident-memory sampler
    sees the training step's activations and gradients being allocated again; a no-op elsewhere."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


_PEAK_CACHE: dict[tuple[str, str], float] = {}


def matmul_peak_flops(device: torch.device, dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    """Dense matrix-product FLOP/s on this device and dtype (2 n^3 flops per n x n product), best of
    ``reps`` and of the GEMM back-ends a model's layers use: ``torch.matmul`` (MKL / cuBLAS) and, on
    CPU, a 1x1 convolution over a channels-last input, which is the same product run by oneDNN.

    Both are needed on CPU: MKL takes a slower code path on non-Intel CPUs (on the 2-core AMD EPYC
    this was written on, fp32 matmul reaches about 200 GFLOP/s while oneDNN's convolutions reach over
    300), and a peak below what the model's own convolutions achieve would give an MFU above 1.
    """
    key = (str(device), str(dtype))
    if key not in _PEAK_CACHE:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        best = min(_timed(lambda: a @ b, device, warmup=2, reps=reps))
        if device.type == "cpu":
            # (1, n, n/64, 64) channels-last input @ (n, n, 1, 1) weight = an (n x n) @ (n x n) product
            x = torch.randn(1, n, n // 64, 64, device=device).to(dtype).contiguous(memory_format=torch.channels_last)
            w = torch.randn(n, n, 1, 1, device=device).to(dtype).contiguous(memory_format=torch.channels_last)
            with torch.no_grad():
                best = min(best, *_timed(lambda: torch.nn.functional.conv2d(x, w), device, warmup=2, reps=reps))
        _PEAK_CACHE[key] = 2 * n**3 / best
    return _PEAK_CACHE[key]


def _sample_batch(model: nn.Module, batch: int, device: torch.device, prec: Precision):
    t_in, C, H, W = model.in_shape
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, t_in, C, H, W, generator=g).to(device)
    y = torch.rand(batch, model.t_out, C, H, W, generator=g).to(device)
    return x, y


@dataclass
class Measure:
    """What :func:`profile_model` measures, and how long each measurement may take (see the module docstring)."""

    batch: int = 16  # the training step's batch (and inference's, unless infer_batch)
    infer_batch: int | None = None
    warmup: int = 3
    reps: int = 10
    budget_s: float = 20.0
    train: bool = True  # time the training step (and choose among candidate precisions)
    flops: bool = True  # count fvcore FLOPs
    published_fps: bool = False  # also run the published FPS protocol
    mfu: bool = True


def profile_model(model: nn.Module, *, name: str, device: torch.device, precision: Precision | list[Precision],
                  measure: Measure | None = None, **measure_fields: Any) -> ProfileResult:
    """Profile ``model``: counts, then the training step, then inference (and the published FPS when asked).
    ``measure`` (or its fields as keywords: ``batch=``, ``reps=`` ...) is a :class:`Measure`. ``precision`` may be
    a list of candidates (see ``stbench.precision.candidates``): their training steps are timed (interleaved, one
    budget) and the fastest is profiled; without ``train`` the first candidate is used."""
    m = measure if measure is not None else Measure(**measure_fields)
    cands = list(precision) if isinstance(precision, (list, tuple)) else [precision]
    n_params = count_params(model)
    n_flops = count_flops(model) if m.flops else None
    step = _time_training(model, cands, device, m, n_flops) if m.train else _Step(cands[0])
    prec = step.precision
    model = prec.prepare(model)
    ib, times_i = _time_inference(model, prec, device, m)
    pub_fps, pub_reps = _published_fps(model, prec, device, m.budget_s) if m.published_fps else (None, None)
    return ProfileResult(
        model=name,
        params=n_params,
        flops=n_flops,
        infer_seq_per_s=ib / statistics.median(times_i),
        infer_seq_per_s_min=ib / max(times_i),
        infer_seq_per_s_max=ib / min(times_i),
        infer_batch=ib,
        infer_reps=len(times_i),
        train_step_ms=step.ms,
        train_step_ms_min=step.ms_min,
        train_step_ms_max=step.ms_max,
        train_reps=step.reps,
        train_batch=m.batch,
        peak_mem_mb=step.peak_mb,
        peak_mem_kind="cuda max_memory_allocated" if device.type == "cuda" else "process RSS increase (sampled)",
        achieved_tflops=None if step.achieved is None else step.achieved / 1e12,
        matmul_peak_tflops=None if step.peak is None else step.peak / 1e12,
        mfu=step.mfu,
        published_fps=pub_fps,
        published_fps_reps=pub_reps,
        device=device_name(device.type, device.index or 0),
        precision=prec.name,
        memory_format=prec.memory_format,
        candidates_step_ms=step.candidates_ms,
        budget_s=m.budget_s,
        in_shape=list(model.in_shape),
        t_out=model.t_out,
        recurrent=bool(model.recurrent),
    )


@dataclass
class _Step:
    """The training-step measurement of the chosen candidate (all None when the step is not timed)."""

    precision: Precision
    ms: float | None = None
    ms_min: float | None = None
    ms_max: float | None = None
    reps: int = 0
    peak_mb: float | None = None
    candidates_ms: dict[str, float] | None = None
    achieved: float | None = None  # FLOP/s
    peak: float | None = None  # the matmul peak, FLOP/s
    mfu: float | None = None


def _time_training(model: nn.Module, cands: list[Precision], device: torch.device, m: Measure,
                   n_flops: int | None) -> _Step:
    """Every candidate's training step timed (interleaved), its peak memory probed once; the fastest is chosen
    (:func:`stbench.precision.pick`: ties within 3% go to the plainer candidate, as in a run)."""
    peaks: dict[str, float] = {}

    @contextlib.contextmanager
    def memory_probe(p: Precision):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            yield
            peaks[p.label] = max(peaks.get(p.label, 0.0), (torch.cuda.max_memory_allocated(device) - base) / 2**20)
        else:
            with _RssSampler() as s:
                yield
            peaks[p.label] = max(peaks.get(p.label, 0.0), s.peak_increase_mb)

    # at least one untimed step per candidate allocates the optimizer state before memory is measured;
    # freed heap goes back to the OS so that the sampler sees the step's activations being allocated again.
    # That first timed round (page faults after the release, the sampler's thread) is the probe's: its times are
    # dropped from the timing figures whenever a later round ran (it was 10-50% slow on a 2-core CPU)
    times = time_steps(model, cands, m.batch, warmup=max(1, m.warmup - 1),
                       reps=min(m.reps, max(3, m.reps // 2)) + 1, budget_s=m.budget_s, around=memory_probe,
                       after_warmup=_release_free_heap if device.type == "cpu" else None)
    times = {k: v[1:] if len(v) > 1 else v for k, v in times.items()}
    prec = pick(cands, {k: 1e3 * min(v) for k, v in times.items()})
    ttimes = times[prec.label]
    step_ms, step_min, step_max = (1e3 * t for t in spread(ttimes))
    step = _Step(prec, step_ms, step_min, step_max, len(ttimes), peaks.get(prec.label))
    if len(cands) > 1:
        step.candidates_ms = {k: round(1e3 * min(v), 2) for k, v in times.items()}
    if m.mfu and n_flops:
        step.achieved = 3 * 2 * n_flops * m.batch / (step_ms / 1e3)
        step.peak = matmul_peak_flops(device, prec.dtype or torch.float32)
        step.mfu = step.achieved / step.peak
    return step


def _time_inference(model: nn.Module, prec: Precision, device: torch.device, m: Measure) -> tuple[int, list[float]]:
    """(inference batch, seconds of each timed eval-mode forward) of the prepared ``model``."""
    x, _ = _sample_batch(model, m.batch, device, prec)
    ib = m.batch if m.infer_batch is None else int(m.infer_batch)
    xi = x if ib == m.batch else _sample_batch(model, ib, device, prec)[0]
    model.eval()

    def infer() -> None:
        with torch.no_grad(), prec.autocast():
            model(xi)

    return ib, _timed(infer, device, m.warmup, m.reps, m.budget_s)


def _published_fps(model: nn.Module, prec: Precision, device: torch.device, budget_s: float) -> tuple[float, int]:
    """The published FPS protocol: batch 100 (10 at >= 128 px), 100 repetitions, no warm-up, total time
    (cut at ``budget_s``); (frames per second, repetitions run)."""
    pb = 10 if model.in_shape[2] >= 128 else 100
    xp = torch.rand(pb, *model.in_shape, device=device)
    t0 = time.perf_counter()
    reps = 0
    with torch.no_grad(), prec.autocast():
        while reps < 100 and (reps == 0 or time.perf_counter() - t0 < budget_s):
            model(xp)
            reps += 1
    synchronize(device)
    return pb * reps / (time.perf_counter() - t0), reps


# ---------------------------------------------------------------------------------------------
# `stbench profile`: named models, built and run as `stbench run` would
# ---------------------------------------------------------------------------------------------
@dataclass
class ProfileOptions:
    """``stbench profile``: which architecture (dataset, preset), where, in which precision, measured how."""

    dataset: str = "mmnist"
    preset: str = "quick"
    device: str = "auto"
    precision: str | None = None  # None: the preset's, as `stbench run` uses it
    memory_format: str | None = None  # None: the preset's / the device's default
    threads: int | None = None
    measure: Measure = field(default_factory=Measure)
    compile: str | None = None  # on | auto: also time the compiled training step (None / off: not)


def profile_models(models: list[str], opts: ProfileOptions) -> Iterator[ProfileResult]:
    """Each of ``models`` at ``opts.preset``'s architecture, profiled in the precision and layout its run would use
    (:func:`stbench.precision.run_precision`: with ``auto`` and a training step, every candidate is timed and the
    fastest profiled). Every recipe is resolved before the first model is profiled."""
    device = check_device(opts.device)
    recipes = [load_recipe(opts.dataset, name, opts.preset) for name in models]
    if opts.threads:
        torch.set_num_threads(opts.threads)
    for name, recipe in zip(models, recipes):
        model = recipe.build_model(name)
        prec = run_precision(model, recipe.config, device, opts.precision, opts.memory_format,
                             measured=opts.measure.train)
        result = profile_model(model, name=name, device=device, precision=prec, measure=opts.measure)
        if opts.measure.train:
            result.compile = profile_compile(model, opts.compile, prec=Precision(result.precision, device,
                                             result.memory_format), batch=opts.measure.batch, cfg=recipe.config,
                                             device=device, model_name=name)
        yield result
        del model
