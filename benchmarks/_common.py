"""Helpers shared by the benchmark scripts: the environment a number came from, and how busy the CPU was.

The machines these scripts were written on share their CPU cores with other work, so every
measurement records the 1-minute load average and the share of wall time in which some task was
waiting for a CPU (Linux pressure-stall information, ``/proc/pressure/cpu``), taken over the
measurement itself. A high stall share means the figure is pessimistic; the scripts re-measure such
points (``--retries``) and keep the least disturbed run.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from stbench.precision import cpuinfo_field, device_name

RESULTS = Path(__file__).resolve().parents[1] / "results" / "benchmarks"
SEED_MODELS = ("simvp", "gsta", "tau", "convlstm", "predrnn", "predrnn_v2")
T = TypeVar("T")

# Okabe-Ito: distinguishable with the common colour-vision deficiencies
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442", "#000000")


def env_info(device: torch.device) -> dict[str, Any]:
    """Columns that say where a row was measured."""
    return {
        "device": device_name(device.type, device.index or 0),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        **({"cpu_isa": cpu_isa()} if device.type == "cpu" else {}),
    }


def cpu_isa() -> str:
    """The vector extensions the CPU itself has (from /proc/cpuinfo, whatever ATEN_CPU_CAPABILITY caps), e.g.
    ``avx2 avx512f avx512_bf16 amx_bf16``: a row measured under the AVX2 cap on an AVX-512 CPU says so."""
    flags = cpuinfo_field("flags")
    if flags is None:
        return "unknown"
    have = set(flags.split())
    return " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in have) or "none of avx2+"


def merge_rows(old: list[dict[str, Any]], new: list[dict[str, Any]],
               key: Callable[[dict[str, Any]], Any]) -> list[dict[str, Any]]:
    """An earlier run's rows with the ones measured again (same ``key``) replaced in place, new ones appended."""
    fresh = {key(r): r for r in new}
    return [fresh.pop(key(r), r) for r in old] + list(fresh.values())


def env_slug(device: torch.device) -> str:
    """File-name part naming the environment, e.g. ``cpu-amd-epyc_2t``, ``cpu-intel-xeon-amx_2t`` or
    ``cuda-nvidia-h100``."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device.index or 0)
        return "cuda-" + _slug(name)
    name = device_name("cpu").rsplit(" (", 1)[0]  # drop the "(N threads, ISA)" suffix
    name = re.sub(r"\(r\)|\(tm\)|cpu|processor|@.*$|\d+-core", "", name, flags=re.I)
    if "amx_bf16" in cpu_isa().split():  # one model name covers Xeons with and without AMX: keep their files apart
        name += " amx"
    return f"cpu-{_slug(name)}_{torch.get_num_threads()}t"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "unknown"


def _psi_cpu_total_us() -> int | None:
    try:
        with open("/proc/pressure/cpu") as f:
            return int(f.readline().split("total=")[1])
    except (OSError, IndexError, ValueError):
        return None


def measured(fn: Callable[[], T]) -> tuple[T, dict[str, float]]:
    """Run ``fn`` and return its result with the CPU load during it: ``loadavg_1m`` (at the end) and
    ``cpu_stall`` (share of wall time in which some task waited for a CPU; NaN where unavailable)."""
    s0, t0 = _psi_cpu_total_us(), time.perf_counter()
    out = fn()
    s1, dt = _psi_cpu_total_us(), time.perf_counter() - t0
    stall = float("nan") if s0 is None or s1 is None else (s1 - s0) / 1e6 / max(dt, 1e-9)
    return out, {"loadavg_1m": round(os.getloadavg()[0], 2), "cpu_stall": round(stall, 3)}


def least_disturbed(fn: Callable[[], T], retries: int, max_stall: float) -> tuple[T, dict[str, float]]:
    """Measure; while the CPU stall share exceeds ``max_stall`` re-measure (up to ``retries`` times) and
    keep the run with the lowest stall share."""
    best = measured(fn)
    for _ in range(retries):
        if not best[1]["cpu_stall"] > max_stall:  # NaN (no PSI) never retries
            break
        again = measured(fn)
        if again[1]["cpu_stall"] < best[1]["cpu_stall"]:
            best = again
    return best


# the operators that run a convolution (oneDNN's kernels and the dispatcher frames above them), forward and backward
CONVOLUTIONS = ("aten::mkldnn_convolution", "aten::convolution_backward", "mkldnn::_convolution_pointwise",
                "aten::_convolution", "aten::convolution", "aten::conv2d")


def conv_and_rest(fn: Callable[[], Any], steps: int = 1) -> dict[str, float]:
    """torch.profiler over ``steps`` calls of ``fn``: per call, self CPU ms in the convolutions, in everything
    else, and the number of forward (``aten::convolution``) and backward convolution calls."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            fn()
    avg = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in avg)
    conv = sum(e.self_cpu_time_total for e in avg if e.key in CONVOLUTIONS)
    calls = {e.key: e.count for e in avg if e.key in ("aten::convolution", "aten::convolution_backward")}
    return {"conv_ms": conv / 1e3 / steps, "other_ms": (total - conv) / 1e3 / steps,
            "conv_fwd_calls": calls.get("aten::convolution", 0) / steps,
            "conv_bwd_calls": calls.get("aten::convolution_backward", 0) / steps}


def configure_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, prec: Any, x: torch.Tensor, y: torch.Tensor,
               mask: torch.Tensor | None, forward: Callable[..., Any] | None = None) -> torch.Tensor:
    """One optimizer step of ``model`` on ``(x, y)`` under ``prec``'s autocast, as the training loop takes
    it (model loss, backward, step); returns the detached loss. ``forward(x, y, mask) -> (loss, parts)``
    replaces the model's forward + loss (e.g. a compiled ``stbench.compile.TrainStep``)."""
    opt.zero_grad(set_to_none=True)
    with prec.autocast():
        if forward is None:
            loss, _ = model.loss(model(x, y, sampling_mask=mask), x, y)
        else:
            loss, _ = forward(x, y, mask)
    loss.backward()
    opt.step()
    return loss.detach()
