"""Numeric precision and device helpers shared by training and profiling.

``fp32`` is the reference (channels_last on CPU, NCHW on CUDA). ``bf16``: autocast to bfloat16 plus
channels_last memory format (on CPUs with AVX512-BF16 / AMX this trains conv nets several times
faster). ``fp16``: CUDA autocast with a gradient scaler. ``auto``: bf16 on a CPU that supports it,
bf16 on CUDA devices that support it (else fp16), fp32 otherwise.
"""

from __future__ import annotations

import contextlib
import platform
from dataclasses import dataclass
from functools import lru_cache

import torch

PRECISIONS = ("fp32", "bf16", "fp16", "auto")


@lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # noqa: BLE001 - older builds without the op
        return False


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
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision '{name}'; choose one of {', '.join(PRECISIONS)}")
    if name != "auto":
        if device.type == "cpu" and name == "fp16":
            raise ValueError("fp16 autocast is for CUDA; on CPU use --precision bf16 or fp32")
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_supports_bf16() else "fp32"


@dataclass(frozen=True)
class Precision:
    name: str  # fp32 | bf16 | fp16 (resolved)
    device: torch.device

    @property
    def dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    @property
    def channels_last(self) -> bool:
        # On CPU, channels_last in fp32 too: oneDNN computes convolutions in a blocked layout, and NCHW
        # tensors are reordered into it and back around every convolution (the SimVP quick model spent
        # more time in those reorders than in its convolutions; see benchmarks/README.md). The maths
        # is unchanged. CUDA fp32 keeps NCHW.
        return self.name != "fp32" or self.device.type == "cpu"

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def needs_scaler(self) -> bool:
        return self.name == "fp16"

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        model = model.to(self.device)
        if self.channels_last:
            model = to_channels_last(model)
        return model


def to_channels_last(model: torch.nn.Module) -> torch.nn.Module:
    """``model.to(memory_format=channels_last)`` for the 4-D tensors only: torch refuses that call outright
    when a model holds a 5-D weight (a Conv3d, as in MMVP); those keep their layout."""
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            if t.dim() == 4:
                t.data = t.data.contiguous(memory_format=torch.channels_last)
    return model


def make_precision(name: str, device: torch.device) -> Precision:
    return Precision(resolve_precision(name, device), device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@lru_cache(maxsize=4)
def device_name(device_type: str = "cpu", index: int = 0) -> str:
    if device_type == "cuda":
        return torch.cuda.get_device_name(index)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
            else:
                name = platform.processor() or platform.machine()
    except OSError:
        name = platform.processor() or platform.machine()
    return f"{name} ({torch.get_num_threads()} threads)"
