"""``taxibj``: TaxiBJ crowd flows (Zhang et al., AAAI 2017) in OpenSTL's file and normalisation.

File: ``<data_root>/taxibj/dataset.npz`` (or ``<data_root>/dataset.npz``) with ``X_train``,
``Y_train``, ``X_test``, ``Y_test``, each ``(N, 4, 2, 32, 32)`` float (in-flow / out-flow channels)
on [-1, 1]. As OpenSTL's loader: values are mapped to [0, 1] by ``(x + 1) / 2``, a sample is
``X`` (4 input frames) followed by ``Y`` (4 target frames), 4 -> 4.

Splits: ``test`` is ``X_test`` / ``Y_test``, and scoring it loads only those two arrays (``np.load`` of a ``.npz``
reads one array per key): a file holding only ``X_test`` / ``Y_test`` serves ``stbench eval``; ``train`` / ``val``
ask for ``X_train`` / ``Y_train`` when they are first read. OpenSTL validates on the test set; here ``val`` is
carved from the END of the training arrays: the last ``val_fraction`` (default 10%) of the training
samples, after dropping a gap of ``T_in + T_out - 1`` samples between train and val, so that no
val window shares a time step with a train window (the samples are sliding windows in time order
in the published file). ``train`` is what precedes the gap. Metrics as Moving MNIST (per-frame sums
on [0, 1], SSIM, PSNR), which is how the published TaxiBJ table reports them.
"""

from __future__ import annotations

import functools
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from stbench.data.check import raise_on_bad
from stbench.data.spec import Dataset, DatasetSpec
from stbench.errors import DataError, RecipeError
from stbench.registry import DATASETS

KEYS = ("X_train", "Y_train", "X_test", "Y_test")
FRAME = (2, 32, 32)
T_IN = T_OUT = 4
RANGE = (-1.0, 1.0)
RANGE_TOL = 1e-4  # float rounding of the published file


def find(data_root: str | Path) -> Path:
    root = Path(data_root)
    for p in (root / "taxibj" / "dataset.npz", root / "dataset.npz"):
        if p.is_file():
            return p
    raise DataError(f"{root / 'taxibj' / 'dataset.npz'}: missing; fix: put TaxiBJ's dataset.npz (OpenSTL layout) "
                    "there or pass the right --data-root")


SPLIT_KEYS = {"train": ("X_train", "Y_train"), "val": ("X_train", "Y_train"), "test": ("X_test", "Y_test")}


def check_rows(data_root: str | Path, splits: tuple[str, ...] = ("train", "val", "test")) -> list[tuple[str, str, str]]:
    """``(file, status, detail)`` rows for ``stbench data check``: status ok / missing / wrong shape /
    wrong dtype / out of range; only the arrays of ``splits`` are read."""
    keys = [k for k in KEYS if any(k in SPLIT_KEYS[s] for s in splits)]
    try:
        path = find(data_root)
    except DataError:
        return [(str(Path(data_root) / "taxibj" / "dataset.npz"), "missing", "expected OpenSTL's TaxiBJ dataset.npz")]
    unreadable = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)
    try:
        npz = np.load(path)  # allow_pickle=False: an object array is refused, never unpickled
    except unreadable as exc:
        return [(str(path), "wrong dtype", f"not a readable .npz ({type(exc).__name__}: {exc or 'empty file'})")]
    rows = []
    with npz:
        for key in keys:
            name = f"{path}:{key}"
            if key not in npz.files:
                rows.append((name, "missing", f"array {key} not in the file"))
                continue
            try:
                a = npz[key]
            except unreadable as exc:
                what = "an object array (pickled Python objects)" if "allow_pickle" in str(exc) else \
                    f"unreadable ({type(exc).__name__})"
                rows.append((name, "wrong dtype", f"{what}, expected float (N, 4, 2, 32, 32)"))
                continue
            if a.ndim != 5 or a.shape[1] != 4 or a.shape[2:] != FRAME:
                rows.append((name, "wrong shape", f"{a.shape}, expected (N, 4, 2, 32, 32)"))
            elif not np.issubdtype(a.dtype, np.floating):
                rows.append((name, "wrong dtype", f"{a.dtype}, expected float"))
            elif a.shape[0] == 0:
                rows.append((name, "wrong shape", "0 samples, expected at least one"))
            elif not np.isfinite(a).all():
                rows.append((name, "out of range", f"{int((~np.isfinite(a)).sum())} non-finite values (NaN / Inf)"))
            elif not (RANGE[0] - RANGE_TOL <= a.min() and a.max() <= RANGE[1] + RANGE_TOL):
                rows.append((name, "out of range", f"values in [{a.min():.4g}, {a.max():.4g}], expected [-1, 1]"))
            else:
                rows.append((name, "ok", f"{a.shape} {a.dtype}"))
        if all(r[1] == "ok" for r in rows):
            for s in sorted({k.partition("_")[2] for k in keys}):
                nx, ny = npz[f"X_{s}"].shape[0], npz[f"Y_{s}"].shape[0]
                if nx != ny:
                    rows.append((f"{path}:X_{s}/Y_{s}", "wrong shape", f"{nx} inputs but {ny} targets"))
    return rows


@DATASETS.register("taxibj", check="stbench.data.taxibj:check_rows")
class TaxiBJ(Dataset):
    """TaxiBJ ``(B, 4, 2, 32, 32)`` -> ``(B, 4, 2, 32, 32)`` on [0, 1] (see module doc)."""

    def __init__(self, *, data_root: str | None = None, seed: int = 0, val_fraction: float = 0.1) -> None:
        if not 0.0 < float(val_fraction) < 0.5:
            raise RecipeError(f"taxibj: data.val_fraction {val_fraction} is out of range; it must be in (0, 0.5), "
                              "e.g. --set data.val_fraction=0.1")
        super().__init__(data_root=data_root, seed=seed, val_fraction=float(val_fraction))
        self.gap = T_IN + T_OUT - 1
        self.ranges: dict[str, tuple[int, int]] = {}
        self.path: Path | None = None
        if data_root is not None:  # without it: the spec only (model building); reading asks for --data-root
            self.path = find(data_root)  # the arrays of a split are checked when that split is first asked for
        self.spec = DatasetSpec(
            name="taxibj", in_shape=(T_IN, *FRAME), t_out=T_OUT, scale=(0.0, 1.0),
            description="TaxiBJ in/out flows 2x32x32, 4 -> 4, (x+1)/2 as OpenSTL; val = end of the training "
                        f"arrays ({val_fraction:.0%}, after a {self.gap}-sample gap), never test",
            sizes={},  # filled per split as it is first asked for (scoring test never opens the training arrays)
            params={"val_fraction": float(val_fraction), "gap": self.gap},
        )

    @functools.cached_property
    def _arrays(self) -> dict[str, Any]:  # key -> array, loaded on first use (np.load of an .npz is lazy per key)
        return {}

    def _array(self, key: str) -> np.ndarray:
        if key not in self._arrays:
            with np.load(self.path) as npz:
                self._arrays[key] = npz[key]
        return self._arrays[key]

    def _open(self, split: str) -> None:
        """Check ``split``'s arrays (bad ones stop here, before any training or writing) and size the split."""
        if split in self.ranges:
            return
        raise_on_bad(check_rows(self.data_root, (split,)))
        if split == "test":
            self.ranges["test"] = (0, _rows(self.path, "X_test"))
        else:
            n_train = _rows(self.path, "X_train")
            n_val = max(1, int(round(n_train * self.variant["val_fraction"])))
            n_fit = n_train - n_val - self.gap
            if n_fit < 1:
                raise DataError(f"{self.path}: only {n_train} training samples, too few to carve a validation split")
            self.ranges.update(train=(0, n_fit), val=(n_train - n_val, n_train))
        self.spec.sizes.update({k: b - a for k, (a, b) in self.ranges.items()})

    def num_samples(self, split: str) -> int:
        self.check_split(split)
        if self.path is None:
            raise DataError("taxibj reads the standard file taxibj/dataset.npz; fix: pass --data-root DIR "
                            "(the directory holding taxibj/)")
        self._open(split)
        return self.spec.sizes[split]

    def read(self, split: str, start: int, stop: int, *, epoch: int = 0) -> np.ndarray:
        self.check_range(split, start, stop)
        a0 = self.ranges[split][0]
        src = "test" if split == "test" else "train"
        x = self._array(f"X_{src}")[a0 + start:a0 + stop]
        y = self._array(f"Y_{src}")[a0 + start:a0 + stop]
        seq = np.concatenate([x, y], axis=1).astype(np.float32)  # (n, 8, 2, 32, 32)
        seq += 1.0
        seq *= 0.5
        return seq


def _rows(path: Path, key: str) -> int:
    """Number of samples of one array, from its .npy header alone (the array itself is not read)."""
    with zipfile.ZipFile(path) as z, z.open(f"{key}.npy") as f:
        fmt = np.lib.format
        major, _ = fmt.read_magic(f)
        shape = (fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0)(f)[0]
    return int(shape[0])
