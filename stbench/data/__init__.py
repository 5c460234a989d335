"""Datasets: specs, the shared batching/sharding contract and the built-in datasets.

    from stbench.data import get_dataset
    ds = get_dataset("mmnist", t_out=20)              # embedded real digits, no download
    ds = get_dataset("mmnist", data_root="data/")     # the standard files, published protocol
    for x, y in ds.batches("train", 16, epoch=0):     # (16, 10, 1, 64, 64), (16, 20, 1, 64, 64)
        ...

The registry imports its files lazily (:mod:`stbench.builtin_index`), so ``get_dataset("mmnist")``
imports only the file that registers ``mmnist``. A new built-in dataset is a new file here, named in
``stbench/builtin_index.py``. Third-party datasets subclass :class:`Dataset` and register with
``@DATASETS.register("name")``; a dataset read from standard files names its file checker there too,
``@DATASETS.register("name", check="module:function")`` (see :mod:`stbench.data.check`), and has its recipes
in ``baselines/<name>.toml``.
"""

from __future__ import annotations

import inspect
from typing import Any

from stbench.data.digits import DataError
from stbench.data.mmnist import MovingMNIST, Trajectories
from stbench.data.spec import SPLITS, Dataset, DatasetSpec
from stbench.errors import DatasetArgumentError
from stbench.registry import DATASETS

__all__ = ["DataError", "Dataset", "DatasetSpec", "MovingMNIST", "SPLITS", "Trajectories", "get_dataset",
           "get_spec", "list_datasets"]


def list_datasets(pattern: str | None = None) -> list[str]:
    """Registered dataset names (plugins included), optionally filtered by wildcards."""
    return DATASETS.names(pattern)


def get_dataset(name: str, **cfg: Any) -> Dataset:
    """Build a dataset by registered name. ``None``-valued options are dropped (so an unset CLI flag
    cannot break a dataset that does not take it); an option the dataset does not take is an error
    naming the options it does take."""
    factory = DATASETS.get(name)  # unknown name: RegistryError with "did you mean"
    kw = {k: v for k, v in cfg.items() if v is not None}
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        params = {}
    if params and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kw) - set(params))
        if unknown:
            takes = ", ".join(p for p in params if p != "self")
            raise DatasetArgumentError(f"dataset '{name}' does not take option(s) {', '.join(unknown)}; it takes: "
                                       f"{takes}")
    return factory(**kw)


def get_spec(name: str, **cfg: Any) -> DatasetSpec:
    """The spec of a dataset variant (construction is cheap: no data is read)."""
    return get_dataset(name, **cfg).spec
