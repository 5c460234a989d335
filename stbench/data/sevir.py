"""``sevir``: SEVIR VIL precipitation nowcasting (Veillette et al., NeurIPS 2020) in its published layout, with
the protocol of Earthformer (Gao et al., NeurIPS 2022), and the contingency scores of nowcasting (CSI, POD, FAR,
HSS at six VIL thresholds, CSI-M), pooled over the test set.

Layout (SEVIR's): ``<data_root>/CATALOG.csv`` (one row per event and image type: ``id, file_name, file_index,
img_type, time_utc, ..., pct_missing``) and ``<data_root>/data/<file_name>``, e.g.
``data/vil/2019/SEVIR_VIL_STORMEVENTS_2019_0101_0630.h5``, each HDF5 file holding ``id`` (N,) and ``vil``
(N, 384, 384, 49) uint8: 49 frames 5 minutes apart per event (``<data_root>/sevir/CATALOG.csv`` is found too).
h5py is an optional extra: ``pip install 'stbench[sevir]'``. A split opens only the files holding its events
(the catalog is read whole): the test split, e.g. for ``stbench eval``, needs no file of the training events.
Files of another frame size (H, W) are read as they are (the published files are 384 x 384; the tests write small
ones).

Protocol (facts from Earthformer's public loader, ``earthformer/datasets/sevir/sevir_dataloader.py`` and
``sevir_torch_wrap.py``, and its ``scripts/cuboid_transformer/sevir/cfg_sevir.yaml``; docs/protocol.md cites them):

- events: the catalog's ``vil`` rows with ``pct_missing == 0`` (its default catalog filter; a catalog without
  that column keeps every row), ids that appear more than once dropped (a known SEVIR duplicate), in id order;
- splits by ``time_utc``: train ``t <= 2019-01-01``, val ``2019-01-01 < t <= 2019-06-01``, test
  ``t > 2019-06-01`` (its ``train_val_split_date`` / ``train_test_split_date``, start and end open);
- samples: windows of ``seq_len = 25`` frames every ``stride = 12`` frames of each event, i.e. starts 0, 12, 24
  (3 per event), the first 13 frames the input and the next 12 the target (65 min -> 60 min);
- values: VIL / 255 on [0, 1] (its ``rescale_method='01'``); metrics threshold ``value * 255 >= t``.

Option ``downsample=d`` (``--set data.downsample=4``: 96 x 96) averages d x d blocks (as Earthformer's
``downsample_dict`` does with ``avg_pool2d``) so a CPU can train in minutes; the record's dataset params say so,
and the published numbers are at ``downsample=1``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from stbench.data.check import raise_on_bad
from stbench.data.spec import Dataset, DatasetSpec
from stbench.errors import DataError, RecipeError
from stbench.metrics import register_pooled_metric
from stbench.registry import DATASETS

INSTALL_HINT = "reading SEVIR needs h5py; fix: pip install h5py (or pip install 'stbench[sevir]')"
RAW_FRAMES = 49  # frames per event, 5 minutes apart
FRAME_SIZE = 384  # published frames are 384 x 384 (1 km pixels)
TRAIN_VAL_SPLIT = "2019-01-01"  # Earthformer cfg_sevir.yaml train_val_split_date
TRAIN_TEST_SPLIT = "2019-06-01"  # Earthformer cfg_sevir.yaml train_test_split_date
CATALOG_COLUMNS = ("id", "file_name", "file_index", "img_type", "time_utc")


def _h5() -> Any:
    try:
        import h5py
    except ImportError:
        raise DataError(INSTALL_HINT) from None
    return h5py


def sevir_root(data_root: str | Path) -> Path:
    root = Path(data_root)
    return root / "sevir" if not (root / "CATALOG.csv").is_file() and (root / "sevir" / "CATALOG.csv").is_file() \
        else root


def events(data_root: str | Path) -> Any:
    """The catalog's VIL rows without missing data (a DataFrame with ``id, file_name, file_index, time_utc``)."""
    import pandas as pd

    path = sevir_root(data_root) / "CATALOG.csv"
    cat = pd.read_csv(path, low_memory=False)
    missing = [c for c in CATALOG_COLUMNS if c not in cat.columns]
    if missing:
        raise DataError(f"{path}: no column(s) {', '.join(missing)}; a SEVIR catalog has {', '.join(CATALOG_COLUMNS)}")
    cat["time_utc"] = pd.to_datetime(cat["time_utc"])
    if "pct_missing" in cat.columns:
        cat = cat[cat["pct_missing"] == 0]
    return cat[cat["img_type"] == "vil"].reset_index(drop=True)


def split_events(ev: Any, split: str) -> Any:
    """The events of ``split``, in id order: rows in the split's dates, then ids listed more than once dropped (a
    known SEVIR duplicate; Earthformer's loader drops them after its date filter, as here)."""
    import pandas as pd

    t, a, b = ev["time_utc"], pd.Timestamp(TRAIN_VAL_SPLIT), pd.Timestamp(TRAIN_TEST_SPLIT)
    mask = {"train": t <= a, "val": (t > a) & (t <= b), "test": t > b}[split]
    sel = ev[mask]
    sel = sel[sel.groupby("id")["id"].transform("size") == 1]
    return sel.sort_values("id", kind="stable").reset_index(drop=True)


def check_rows(data_root: str | Path,
               splits: tuple[str, ...] = ("train", "val", "test")) -> list[tuple[str, str, str]]:
    """Rows for ``stbench data check``: the catalog; every VIL file it names for the events of ``splits`` (readable,
    ``vil`` (N, H, W, 49) uint8, every ``file_index`` in range; uint8 is finite by type); one row per split (events
    between its dates). Files holding only other splits' events are not opened."""
    root = sevir_root(data_root)
    cat = root / "CATALOG.csv"
    if not cat.is_file():
        return [(str(cat), "missing", "SEVIR catalog (CATALOG.csv, with data/vil/<year>/*.h5 beside it)")]
    try:
        ev = events(root)
    except (DataError, ValueError, OSError) as exc:
        return [(str(cat), "wrong shape", " ".join(str(exc).split())[:160])]
    rows = [(str(cat), "ok", f"{len(ev)} VIL rows without missing data")]
    h5py = _h5()
    sizes: set[tuple[int, int]] = set()
    if tuple(splits) != ("train", "val", "test"):
        import pandas as pd

        ev = pd.concat([split_events(ev, s) for s in splits])
    for name, idx in ev.groupby("file_name", sort=True)["file_index"]:
        p = root / "data" / name
        if not p.is_file():
            rows.append((str(p), "missing", "a VIL file named by the catalog"))
            continue
        try:
            with h5py.File(p, "r") as f:
                if "vil" not in f:
                    rows.append((str(p), "missing", "no dataset 'vil'"))
                    continue
                v = f["vil"]
                if v.ndim != 4 or v.shape[3] != RAW_FRAMES:
                    rows.append((str(p), "wrong shape", f"vil {v.shape}, expected (N, H, W, {RAW_FRAMES})"))
                elif v.dtype != np.uint8:
                    rows.append((str(p), "wrong dtype", f"vil {v.dtype}, expected uint8"))
                elif int(idx.max()) >= v.shape[0] or int(idx.min()) < 0:
                    rows.append((str(p), "out of range", f"catalog file_index up to {int(idx.max())}, "
                                                         f"the file holds {v.shape[0]} events"))
                else:
                    sizes.add(tuple(v.shape[1:3]))
                    rows.append((str(p), "ok", f"vil {v.shape} uint8, {len(idx)} events used"))
        except OSError as exc:
            rows.append((str(p), "wrong dtype", f"not a readable HDF5 file ({' '.join(str(exc).split())[:80]})"))
    if len(sizes) > 1:
        rows.append((str(root / "data" / "vil"), "wrong shape", f"frames of several sizes {sorted(sizes)}"))
    bounds = {"train": f"<= {TRAIN_VAL_SPLIT}", "val": f"{TRAIN_VAL_SPLIT} .. {TRAIN_TEST_SPLIT}",
              "test": f"> {TRAIN_TEST_SPLIT}"}
    for split in splits:
        n = len(split_events(ev, split))
        rows.append((f"{cat} [{split}]", "ok" if n else "out of range",
                     f"{n} events with time_utc {bounds[split]}" if n else f"no event with time_utc {bounds[split]}"))
    return rows


@DATASETS.register("sevir", check="stbench.data.sevir:check_rows")
class Sevir(Dataset):
    """SEVIR VIL, 13 -> 12 frames at 5 min, Earthformer's split by date (see :mod:`stbench.data.sevir`)."""

    def __init__(self, *, data_root: str | None = None, seed: int = 0, t_in: int = 13, t_out: int = 12,
                 stride: int = 12, downsample: int = 1) -> None:
        params = dict(t_in=int(t_in), t_out=int(t_out), stride=int(stride), downsample=int(downsample),
                      train=f"<= {TRAIN_VAL_SPLIT}", val=f"{TRAIN_VAL_SPLIT} .. {TRAIN_TEST_SPLIT}",
                      test=f"> {TRAIN_TEST_SPLIT}")
        super().__init__(data_root=data_root, seed=seed, **params)
        self.frames, self.stride, self.down = params["t_in"] + params["t_out"], params["stride"], params["downsample"]
        if min(params["t_in"], params["t_out"], self.stride, self.down) < 1 or self.frames > RAW_FRAMES:
            raise RecipeError(f"sevir: need t_in, t_out, stride, downsample >= 1 and t_in + t_out <= {RAW_FRAMES}")
        self.windows = 1 + (RAW_FRAMES - self.frames) // self.stride  # per event (3 for 25 frames, stride 12)
        self.split_events: dict[str, Any] = {}
        hw = (FRAME_SIZE, FRAME_SIZE)
        self.checked: set[str] = set()  # the splits whose files are checked (when a split is first asked for)
        if data_root is not None:
            self.root = sevir_root(data_root)
            if not (self.root / "CATALOG.csv").is_file():
                raise_on_bad(check_rows(data_root, ()))  # the catalog row: missing
            ev = events(self.root)
            self.split_events = {s: split_events(ev, s) for s in ("train", "val", "test")}  # the catalog alone
            hw = self._frame_size()
        if hw[0] % self.down or hw[1] % self.down:
            raise DataError(f"sevir: frames of {hw[0]} x {hw[1]} pixels do not divide by downsample={self.down}")
        self.hw = (hw[0] // self.down, hw[1] // self.down)
        self.spec = DatasetSpec(
            name="sevir", in_shape=(params["t_in"], 1, *self.hw), t_out=params["t_out"], scale=(0.0, 1.0),
            metrics=("mse", "mae", "csi_m", *(f"csi_{t}" for t in THRESHOLDS)),
            description=f"SEVIR VIL / 255, {params['t_in']} -> {params['t_out']} frames at 5 min, "
                        f"{self.hw[0]}x{self.hw[1]}" + (f" (downsampled {self.down}x)" if self.down > 1 else "")
                        + f"; Earthformer's split by date (val from {TRAIN_VAL_SPLIT}, test from {TRAIN_TEST_SPLIT})",
            sizes={s: len(e) * self.windows for s, e in self.split_events.items()}, params=params,
        )

    def _frame_size(self) -> tuple[int, int]:
        """(H, W) of the VIL frames, from the header of the first file present of a test event (else of any event):
        scoring the test split opens no file of the training events."""
        names = [*self.split_events["test"]["file_name"], *(n for s in ("train", "val")
                                                            for n in self.split_events[s]["file_name"])]
        for name in names:
            if (self.root / "data" / name).is_file():
                try:
                    with _h5().File(self.root / "data" / name, "r") as f:
                        return tuple(int(v) for v in f["vil"].shape[1:3])
                except (OSError, KeyError):
                    break  # a bad file: said in one line when its split is checked
        return (FRAME_SIZE, FRAME_SIZE)

    def num_samples(self, split: str) -> int:
        self.check_split(split)
        if self.data_root is None:
            raise DataError("sevir reads SEVIR's CATALOG.csv and data/vil/ HDF5 files; fix: pass --data-root DIR")
        if split not in self.checked:  # bad files of the split stop here, before any training or writing
            raise_on_bad(check_rows(self.root, (split,)))
            self.checked.add(split)
        return len(self.split_events[split]) * self.windows

    @functools.lru_cache(maxsize=16)  # noqa: B019
    def _file(self, name: str) -> Any:
        return _h5().File(self.root / "data" / name, "r")

    def read(self, split: str, start: int, stop: int, *, epoch: int = 0) -> np.ndarray:
        self.check_range(split, start, stop)
        ev = self.split_events[split]
        H, W = self.hw
        out = np.empty((stop - start, self.frames, 1, H, W), np.uint8 if self.down == 1 else np.float32)
        k = 0
        for e in range(start // self.windows, (stop - 1) // self.windows + 1):  # each event read once
            ws = [w for w in range(self.windows) if start <= e * self.windows + w < stop]
            row = ev.iloc[e]
            a, b = ws[0] * self.stride, ws[-1] * self.stride + self.frames
            vil = self._file(row["file_name"])["vil"][int(row["file_index"]), :, :, a:b]  # (H, W, frames) uint8
            for w in ws:
                s = w * self.stride - a
                seq = np.moveaxis(vil[:, :, s:s + self.frames], -1, 0)  # (T, H, W)
                if self.down > 1:  # mean of d x d blocks, on the 0..255 scale, then / 255
                    d = self.down
                    seq = seq.reshape(self.frames, H, d, W, d).mean(axis=(2, 4), dtype=np.float64) / 255.0
                out[k, :, 0] = seq
                k += 1
        return out




# -- contingency scores, pooled over the test set (any dataset on [0, 1]) -----------------------------------------
#: VIL thresholds on the 0-255 scale (Earthformer's threshold_list; the SEVIR nowcasting benchmark's)
THRESHOLDS = (16, 74, 133, 160, 181, 219)
_K = 4  # counts per threshold: hits a, false alarms b, misses c, correct negatives d


def contingency(pred: Any, true: Any) -> Any:
    """Per-frame counts ``(B, T, 4 * len(THRESHOLDS))``: for each threshold t (in order) the hits a, false alarms
    b, misses c and correct negatives d over C*H*W, an event being ``value * 255 >= t`` (prediction not clipped;
    a NaN pixel is no event)."""
    import torch

    B, T = pred.shape[:2]
    p, y = pred.reshape(B, T, -1) * 255, true.reshape(B, T, -1) * 255  # (B, T, C*H*W) on the 0-255 scale
    n = p.shape[-1]
    out = []
    for t in THRESHOLDS:
        pe, te = p >= t, y >= t
        a = (pe & te).sum(dim=-1)
        pn, tn = pe.sum(dim=-1), te.sum(dim=-1)
        out += [a, pn - a, tn - a, n - pn - tn + a]  # a, b, c, d
    return torch.stack(out, dim=-1).to(torch.float64 if pred.device.type != "mps" else torch.float32)


def _counts(s: Any, t: int) -> tuple[Any, Any, Any, Any]:
    i = THRESHOLDS.index(t) * _K
    return s[..., i], s[..., i + 1], s[..., i + 2], s[..., i + 3]


def _div(num: Any, den: Any) -> Any:
    """num / den, and 0 where den == 0 (0/0: no event to score). Finite by convention, as Earthformer's eps in
    every denominator makes it; a NaN in a record means a broken run to stbench, never an empty contingency table."""
    import torch

    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.zeros_like(num))


def csi_of(s: Any, t: int) -> Any:
    a, b, c, _ = _counts(s, t)
    return _div(a, a + b + c)


def pod_of(s: Any, t: int) -> Any:
    a, _, c, _ = _counts(s, t)
    return _div(a, a + c)


def far_of(s: Any, t: int) -> Any:
    a, b, _, _ = _counts(s, t)
    return _div(b, a + b)


def hss_of(s: Any, t: int) -> Any:
    a, b, c, d = _counts(s, t)
    return _div(2 * (a * d - b * c), (a + c) * (c + d) + (a + b) * (b + d))


_POOLED = ("event: value*255 >= {t} (prediction and target); counts pooled over every pixel of the test set, one "
           "ratio at the end (per lead time for the curve), 0 if 0/0")
_SCORES = {
    "csi": ("CSI", True, csi_of, "a / (a + b + c)"),
    "pod": ("POD", True, pod_of, "a / (a + c)"),
    "far": ("FAR", False, far_of, "b / (a + b)"),
    "hss": ("HSS", True, hss_of, "2 (ad - bc) / ((a + c)(c + d) + (a + b)(b + d)), d = correct negatives"),
}
for _t in THRESHOLDS:
    for _k, (_lab, _hib, _fn, _formula) in _SCORES.items():
        register_pooled_metric(f"{_k}_{_t}", group="contingency", counts=contingency,
                               ratio=functools.partial(_fn, t=_t), label=f"{_lab}-{_t}", higher_is_better=_hib,
                               convention=f"{_lab} = {_formula}; " + _POOLED.format(t=_t))


def csi_m_of(s: Any) -> Any:
    import torch

    return torch.stack([csi_of(s, t) for t in THRESHOLDS]).mean(dim=0)


register_pooled_metric("csi_m", group="contingency", counts=contingency, ratio=csi_m_of, label="CSI-M",
                       higher_is_better=True,
                       convention="mean of the pooled CSI at VIL thresholds " + ", ".join(map(str, THRESHOLDS))
                       + " (each a / (a + b + c) over every pixel of the test set, 0 if 0/0)")
