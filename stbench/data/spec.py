"""The dataset contract: one :class:`DatasetSpec` per dataset variant, and the :class:`Dataset` base
class that turns "read sequences ``[start, stop)`` of a split" into sharded float batches.

A dataset subclass implements two things; batching, DDP sharding, ``limit`` and the uint8 -> float
conversion are shared (here, once)::

    @DATASETS.register("mydata")
    class MyData(Dataset):
        def __init__(self, *, data_root=None, seed=0, t_out=10):
            super().__init__(data_root=data_root, seed=seed, t_out=t_out)
            self.spec = DatasetSpec("mydata", in_shape=(10, 1, 32, 32), t_out=t_out, ...)

        def num_samples(self, split): ...
        def read(self, split, start, stop, *, epoch=0):   # -> (n, T_in + T_out, C, H, W)
            ...                                            #    uint8 (divided by 255) or float32

Splits: ``train`` (may be regenerated per epoch; deterministic in (seed, epoch), so a resumed run
sees the same data), ``val`` (fixed; never built from test data) and ``test`` (fixed).

Sharding under DDP (``rank`` of ``world_size``): every rank gets a contiguous, disjoint block of the
first ``limit`` sequences. On ``train`` all blocks have the same size (the remainder, fewer than
``world_size`` sequences, is dropped) so every rank runs the same number of steps; on ``val`` /
``test`` the blocks cover every sequence and differ in size by at most one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from stbench.registry import DATASETS

# the video metrics a dataset is scored on unless its spec says otherwise (and the leaderboard's first columns);
# owned here, not by stbench.metrics (which re-exports it), because a dataset imports without torch
DEFAULT_METRICS: tuple[str, ...] = ("mse", "mae", "ssim", "psnr")

if TYPE_CHECKING:  # pragma: no cover
    from torch import Tensor

SPLITS = ("train", "val", "test")


class LazyContext(dict):
    """A ``metric_context`` filled on first look by ``fill()`` (e.g. weather's training mean / std and climatology:
    read from the training files, or given by a model card through :meth:`Dataset.set_statistics`), so building a
    dataset, or scoring its test split with statistics from elsewhere, opens no training file. Otherwise a dict."""

    def __init__(self, *args: Any, fill: Any = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._fill = fill

    def _load(self) -> None:
        if self._fill is not None:
            fill, self._fill = self._fill, None
            try:
                super().update(fill())
            except BaseException:
                self._fill = fill  # asked again, it tries again (and says again what is missing)
                raise

    def __getitem__(self, key: Any) -> Any:
        self._load()
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._load()
        return super().get(key, default)

    def __contains__(self, key: Any) -> bool:
        self._load()
        return super().__contains__(key)

    def __iter__(self) -> Any:
        self._load()
        return super().__iter__()

    def __len__(self) -> int:
        self._load()
        return super().__len__()

    def keys(self) -> Any:
        self._load()
        return super().keys()

    def items(self) -> Any:
        self._load()
        return super().items()

    def values(self) -> Any:
        self._load()
        return super().values()

    def copy(self) -> dict[str, Any]:
        self._load()
        return dict(super().items())

    def __eq__(self, other: Any) -> bool:
        self._load()
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return super().__repr__() if self._fill is None else "LazyContext(<not read yet>)"


def encode_array(a: Any) -> dict[str, Any]:
    """A small float array as JSON: ``{"dtype": "float32", "shape": [...], "base64": little-endian bytes}`` (a model
    card's climatology: 32 x 64 float32 per channel, about 11 kB of text)."""
    import base64

    a = np.ascontiguousarray(np.asarray(a, dtype="<f4"))
    return {"dtype": "float32", "shape": list(a.shape), "base64": base64.b64encode(a.tobytes()).decode("ascii")}


def decode_array(d: dict[str, Any]) -> np.ndarray:
    """The inverse of :func:`encode_array` (float64, as the statistics are computed)."""
    import base64

    raw = np.frombuffer(base64.b64decode(d["base64"]), dtype="<f4")
    return raw.reshape([int(n) for n in d["shape"]]).astype(np.float64)


@dataclass(frozen=True)
class DatasetSpec:
    """Everything a model, trainer or leaderboard needs to know about one dataset variant."""

    name: str
    in_shape: tuple[int, int, int, int]  # (T_in, C, H, W)
    t_out: int
    scale: tuple[float, float] = (0.0, 1.0)  # value range of inputs and targets
    metrics: tuple[str, ...] = DEFAULT_METRICS
    description: str = ""
    sizes: dict[str, int] = field(default_factory=dict)  # split -> number of sequences
    params: dict[str, Any] = field(default_factory=dict)  # the variant's configuration
    #: facts some metrics need (``MetricDef.needs``), e.g. weather's training ``std`` per channel; they travel
    #: with the dataset into evaluation, so two datasets in one process never share them
    metric_context: dict[str, Any] = field(default_factory=dict)

    @property
    def t_in(self) -> int:
        return self.in_shape[0]

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return self.in_shape[1:]  # (C, H, W)

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        return (self.t_out, *self.in_shape[1:])  # (T_out, C, H, W)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (for run records)."""
        d = asdict(self)
        d["in_shape"], d["scale"], d["metrics"] = list(self.in_shape), list(self.scale), list(self.metrics)
        return d


class Dataset:
    """Base class of every dataset. Constructing one is cheap: files are read on first use."""

    spec: DatasetSpec
    #: sequences produced per :meth:`read` call while batching (rounded to a multiple of the batch size)
    chunk_sequences: ClassVar[int] = 128

    def __init__(self, *, data_root: str | None = None, seed: int = 0, **variant: Any) -> None:
        self.data_root = None if data_root is None else str(data_root)
        self.seed = int(seed)
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.variant = dict(variant)

    # -- to implement --------------------------------------------------------------------------
    def num_samples(self, split: str) -> int:
        """Number of sequences in ``split`` (one epoch for ``train``)."""
        raise NotImplementedError

    def read(self, split: str, start: int, stop: int, *, epoch: int = 0) -> np.ndarray:
        """Sequences ``[start, stop)`` of ``split`` as ``(n, T_in + T_out, C, H, W)``: uint8 (mapped to
        [0, 1] by /255) or float32 already on ``spec.scale``."""
        raise NotImplementedError

    def set_statistics(self, norm: dict[str, Any]) -> None:
        """Use the training statistics in ``norm`` (a model card's ``normalisation``, :mod:`stbench.weights`)
        instead of reading the training files: ``stbench eval`` of a kept model reads only its test split.
        Default: nothing to take (a dataset whose values need no training statistics)."""

    def horizon_options(self, options: dict[str, Any], t_out: int) -> dict[str, Any]:
        """The data options (``options`` made this dataset) of the SAME test sequences continued to ``t_out``
        predicted frames, for ``stbench eval --t-out`` (:mod:`stbench.horizon`): the same inputs and, up to the
        shorter horizon, the same targets. Default: the variant with ``t_out`` changed (a generated dataset whose
        sequence ``i`` does not depend on its length, e.g. Moving MNIST); a dataset of windows overrides it."""
        return {**options, "t_out": int(t_out)}

    # -- shared ----------------------------------------------------------------------------------
    def check_split(self, split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split '{split}' of dataset '{self.spec.name}'; "
                             f"choose one of {', '.join(SPLITS)}")

    def check_range(self, split: str, start: int, stop: int) -> None:
        """IndexError unless sequences ``[start, stop)`` lie in ``split`` (for :meth:`read`)."""
        n = self.num_samples(split)
        if not 0 <= start <= stop <= n:
            raise IndexError(f"{self.spec.name} {split}: sequences [{start}, {stop}) out of range [0, {n})")

    def shard(self, split: str, *, rank: int = 0, world_size: int = 1, limit: int | None = None) -> range:
        """The sequence indices of ``split`` that ``rank`` of ``world_size`` reads (a contiguous block)."""
        self.check_split(split)
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        n = self.num_samples(split)
        if limit is not None:
            if int(limit) < 1:
                raise ValueError(f"limit must be a positive number of sequences, got {limit}")
            n = min(n, int(limit))
        if split == "train":  # equal blocks: every rank takes the same number of optimiser steps
            per = n // world_size
            return range(rank * per, (rank + 1) * per)
        return range(rank * n // world_size, (rank + 1) * n // world_size)

    def num_batches(self, split: str, batch_size: int, *, rank: int = 0, world_size: int = 1,
                    limit: int | None = None, drop_last: bool | None = None) -> int:
        """How many batches :meth:`batches` yields with the same arguments (on ``train`` the same on
        every rank; elsewhere rank 0 has the most)."""
        _check_batch_size(batch_size)
        n = len(self.shard(split, rank=rank, world_size=world_size, limit=limit))
        drop = (split == "train") if drop_last is None else drop_last
        return n // batch_size if drop else math.ceil(n / batch_size)

    def batches(self, split: str, batch_size: int, *, epoch: int = 0, rank: int = 0, world_size: int = 1,
                limit: int | None = None, drop_last: bool | None = None) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield ``(inputs (B, T_in, C, H, W), targets (B, T_out, C, H, W))`` float32 CPU tensors.

        ``drop_last`` defaults to True on ``train`` (full batches only) and False elsewhere (every
        sequence is evaluated). ``epoch`` selects the training data of that epoch; val and test ignore it.
        """
        _check_batch_size(batch_size)  # arguments are checked now, not at the first next()
        idx = self.shard(split, rank=rank, world_size=world_size, limit=limit)
        drop = (split == "train") if drop_last is None else drop_last
        stop = idx.start + (len(idx) // batch_size) * batch_size if drop else idx.stop
        return self._iter_batches(split, idx.start, stop, int(batch_size), epoch)

    def _iter_batches(self, split: str, start: int, stop: int, batch_size: int,
                      epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        import torch

        t_in = self.spec.t_in
        chunk = max(1, self.chunk_sequences // batch_size) * batch_size
        for c0 in range(start, stop, chunk):
            c1 = min(c0 + chunk, stop)
            block = self.read(split, c0, c1, epoch=epoch)  # (n, T, C, H, W)
            for b0 in range(0, c1 - c0, batch_size):
                seq = block[b0:b0 + batch_size]
                # new contiguous float32 arrays (single-threaded numpy: never competes with the model's
                # torch threads); uint8 / 255 is rounded exactly as torch's division would round it
                if seq.dtype == np.uint8:
                    x = np.divide(seq[:, :t_in], np.float32(255.0), dtype=np.float32)
                    y = np.divide(seq[:, t_in:], np.float32(255.0), dtype=np.float32)
                else:
                    x = np.array(seq[:, :t_in], dtype=np.float32, order="C")
                    y = np.array(seq[:, t_in:], dtype=np.float32, order="C")
                yield torch.from_numpy(x), torch.from_numpy(y)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.spec.params.items())
        return f"{type(self).__name__}({opts})"


def _check_batch_size(batch_size: int) -> None:
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


if DATASETS.base is None:  # the registry lives below this module; datasets must subclass Dataset
    DATASETS.base = Dataset
