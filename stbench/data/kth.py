"""``kth`` (10 -> 20) and ``kth40`` (10 -> 40): KTH Actions (Schuldt et al., ICPR 2004) in OpenSTL's
frame layout and clip sampling.

Files: ``<data_root>/kth/<action>/<person dir>/image_NNNN.jpg`` (grey frames, stored as JPEG with
one or three identical channels), actions ``boxing``, ``handclapping``, ``handwaving``, ``walking``,
``jogging``, ``running``; person dirs named like ``person01_boxing_d1_uncomp`` (characters 6-8 are
the person id). As OpenSTL's loader (``openstl/datasets/dataloader_kth.py``, facts only):

- frames: the first channel of each image, resized to 128 x 128 with bilinear interpolation without
  antialiasing (OpenCV's ``INTER_LINEAR``; torch's ``interpolate(..., antialias=False)`` here),
  divided by 255 (float, not re-quantised);
- persons 01-16 are training, 17-25 test;
- clips of ``T_in + T_out`` consecutive frames (frame numbers from ``image_NNNN``, a gap breaks a
  clip) are found scanning each split's frame list from the END: after a clip is taken the scan
  jumps back a whole clip for boxing / handclapping / handwaving / walking and 3 frames for
  jogging / running; clips never cross a person directory.
- Difference: OpenSTL lists person directories with ``os.listdir`` (file-system order); stbench
  SORTS them, so the sample order is the same on every machine. Clip sets can differ from
  OpenSTL's only through that order (the scan's jumps start at a different end); metrics are
  means over clips, so this matters only to the sampled clip set, not to the convention.

Splits: ``test`` = persons 17-25 (as published). OpenSTL has no validation split (it validates on
test); here ``val`` = the last ``val_persons`` training persons (default 1: person 16), and
``train`` the others (01-15), so validation never sees a test person or a training person's clip.
Frames are read from disk per batch (no copy of the dataset in memory); a split's person directories are
listed and checked when it is first asked for, so persons 17-25 alone serve the test split (``stbench eval``).
Images are decoded with Pillow if installed, else scikit-image. Metrics as Moving MNIST (per-frame sums on [0, 1], SSIM,
PSNR), the published KTH convention; LPIPS when the ``lpips`` package and weights are present.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np

from stbench.data.check import raise_on_bad
from stbench.data.spec import DEFAULT_METRICS, Dataset, DatasetSpec
from stbench.errors import DataError, RecipeError
from stbench.registry import DATASETS

ACTIONS_WALK = ("boxing", "handclapping", "handwaving", "walking")  # jump a whole clip after a clip
ACTIONS_RUN = ("jogging", "running")  # jump 3 frames after a clip
ACTIONS = ACTIONS_WALK + ACTIONS_RUN
TRAIN_PERSONS = tuple(f"{i:02d}" for i in range(1, 17))
TEST_PERSONS = tuple(f"{i:02d}" for i in range(17, 26))


def read_image(path: str | Path) -> np.ndarray:
    """An image as a uint8 array (H, W) or (H, W, C): Pillow if available, else scikit-image."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is usually present
        from skimage import io

        try:
            return np.asarray(io.imread(str(path)))
        except Exception as exc:  # noqa: BLE001  (any decoder failure is a bad file)
            raise DataError(f"{path}: unreadable image ({exc}); fix: replace the file") from None
    try:
        with Image.open(path) as im:
            return np.asarray(im)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{path}: unreadable image ({exc}); fix: replace the file") from None


def grey(img: np.ndarray, path: Any = "") -> np.ndarray:
    """The first channel of a frame (OpenSTL takes channel 0), checked uint8 2-D."""
    if img.ndim == 3:
        img = img[:, :, 0]
    if img.ndim != 2:
        raise DataError(f"{path}: image of shape {img.shape}, expected (H, W) or (H, W, C)")
    if img.dtype != np.uint8:
        raise DataError(f"{path}: image dtype {img.dtype}, expected 8-bit")
    return img


def frame_number(name: str) -> int | None:
    """``image_0257.jpg`` -> 257 (OpenSTL reads characters 6-10), None if it is not a frame file."""
    if not name.startswith("image"):
        return None
    try:
        return int(name[6:10])
    except ValueError:
        return None


def list_frames(root: Path, persons: tuple[str, ...]) -> tuple[list[Path], list[int], list[int], list[str]]:
    """All frames of ``persons``: paths, clip-owner marks (one per person directory), frame numbers
    and action per frame, in OpenSTL's order (actions as listed, person dirs SORTED, files sorted)."""
    paths: list[Path] = []
    marks: list[int] = []
    numbers: list[int] = []
    actions: list[str] = []
    mark = 0
    for action in ACTIONS:
        adir = root / action
        if not adir.is_dir():
            raise DataError(f"{adir}: missing action directory; fix: the KTH layout is kth/<action>/<person dir>/"
                            "image_*.jpg (check with `stbench data check`)")
        for pdir in sorted(os.listdir(adir)):
            if pdir[6:8] not in persons or not (adir / pdir).is_dir():
                continue
            mark += 1
            for name in sorted(os.listdir(adir / pdir)):
                num = frame_number(name)
                if num is None:
                    continue
                paths.append(adir / pdir / name)
                marks.append(mark)
                numbers.append(num)
                actions.append(action)
    return paths, marks, numbers, actions


def clip_starts(marks: list[int], numbers: list[int], actions: list[str], seq_len: int) -> list[int]:
    """Start index (into the frame list) of every clip, OpenSTL's backward scan, in the order found."""
    starts = []
    i = len(marks) - 1
    while i >= seq_len - 1:
        j = i - seq_len + 1
        if marks[i] == marks[j] and numbers[i] - numbers[j] == seq_len - 1:
            starts.append(j)
            i -= (seq_len - 1) if actions[i] in ACTIONS_WALK else 2
        i -= 1
    return starts


class _KTH(Dataset):
    name = "kth"
    default_t_out = 20

    def __init__(self, *, data_root: str | None = None, seed: int = 0, t_in: int = 10, t_out: int | None = None,
                 image_size: int = 128, val_persons: int = 1, lpips: bool = False) -> None:
        t_out = self.default_t_out if t_out is None else int(t_out)
        if not 1 <= int(val_persons) < len(TRAIN_PERSONS):
            raise RecipeError(f"{self.name}: val_persons must be in [1, {len(TRAIN_PERSONS) - 1}], got {val_persons}")
        params = dict(t_in=int(t_in), t_out=t_out, image_size=int(image_size), val_persons=int(val_persons))
        super().__init__(data_root=data_root, seed=seed, **params)
        self.root = None if data_root is None else Path(data_root) / "kth"
        self.seq_len = params["t_in"] + t_out
        self.image_size = params["image_size"]
        n_val = params["val_persons"]
        self.persons = {"train": TRAIN_PERSONS[:-n_val], "val": TRAIN_PERSONS[-n_val:], "test": TEST_PERSONS}
        self.spec = DatasetSpec(
            name=self.name, in_shape=(params["t_in"], 1, self.image_size, self.image_size), t_out=t_out,
            scale=(0.0, 1.0), metrics=_metrics(lpips),
            description=f"KTH actions, grey {self.image_size}x{self.image_size}, {params['t_in']} -> {t_out}, "
                        f"OpenSTL clip sampling (person dirs sorted); train persons 01-{self.persons['train'][-1]}, "
                        f"val {self.persons['val'][0]}-16, test 17-25",
            sizes={}, params=params,  # a split is checked and sized when first asked for: test alone reads 17-25
        )

    @functools.lru_cache(maxsize=3)  # noqa: B019
    def _clips(self, split: str) -> tuple[list[int], list[Path]]:
        paths, marks, numbers, actions = list_frames(self.root, self.persons[split])
        return clip_starts(marks, numbers, actions, self.seq_len), paths

    def num_samples(self, split: str) -> int:
        self.check_split(split)
        if self.root is None:
            raise DataError(f"{self.name} reads the KTH frames kth/<action>/<person dir>/image_*.jpg; "
                            "fix: pass --data-root DIR (the directory holding kth/)")
        if split not in self.spec.sizes:  # bad files of the split stop here, before training
            raise_on_bad(kth_check_rows(self.root.parent, (split,)))
            n = len(self._clips(split)[0])
            if n == 0:
                raise DataError(f"{self.root}: no {split} clip of {self.seq_len} consecutive frames for persons "
                                f"{self.persons[split][0]}-{self.persons[split][-1]}; fix: check the frames with "
                                "`stbench data check`")
            self.spec.sizes[split] = n
        return self.spec.sizes[split]

    def read(self, split: str, start: int, stop: int, *, epoch: int = 0) -> np.ndarray:
        """Clips ``[start, stop)`` as ``(n, T, 1, S, S)`` float32 on [0, 1]."""
        import torch
        import torch.nn.functional as F

        self.check_range(split, start, stop)
        starts, paths = self._clips(split)
        out = np.empty((stop - start, self.seq_len, 1, self.image_size, self.image_size), np.float32)
        for k, c in enumerate(starts[start:stop]):
            frames = np.stack([grey(read_image(p), p) for p in paths[c:c + self.seq_len]]).astype(np.float32)
            if frames.shape[1:] != (self.image_size, self.image_size):
                t = F.interpolate(torch.from_numpy(frames)[:, None], size=(self.image_size, self.image_size),
                                  mode="bilinear", align_corners=False, antialias=False)
                frames = t[:, 0].numpy()
            out[k, :, 0] = frames / np.float32(255.0)
        return out


@DATASETS.register("kth", check="stbench.data.kth:kth_check_rows")
class KTH(_KTH):
    """KTH actions 10 -> 20 (see :mod:`stbench.data.kth`)."""

    name = "kth"
    default_t_out = 20


@DATASETS.register("kth40", check="stbench.data.kth:kth_check_rows")
class KTH40(_KTH):
    """KTH actions 10 -> 40 (see :mod:`stbench.data.kth`)."""

    name = "kth40"
    default_t_out = 40


def _metrics(lpips: bool) -> tuple[str, ...]:
    """The published video metrics, plus LPIPS when asked for (``--set data.lpips=true``) and available offline."""
    if not lpips:
        return DEFAULT_METRICS
    from stbench.metrics_extra import lpips_available

    msg = lpips_available()
    if msg:
        raise DataError(msg)
    return (*DEFAULT_METRICS, "lpips")


def kth_check_rows(data_root: str | Path,
                   splits: tuple[str, ...] = ("train", "val", "test")) -> list[tuple[str, str, str]]:
    """One row per action directory and per person directory (its first frame decoded and checked); only the
    directories of ``splits``' persons (train / val: 01-16, test: 17-25) are looked at."""
    persons = set(TEST_PERSONS if "test" in splits else ()) | set(TRAIN_PERSONS if {"train", "val"} & set(splits)
                                                                    else ())
    root = Path(data_root) / "kth"
    if not root.is_dir():
        return [(str(root), "missing", "expected kth/<action>/<person dir>/image_*.jpg")]
    rows = []
    for action in ACTIONS:
        adir = root / action
        if not adir.is_dir():
            rows.append((str(adir), "missing", "action directory"))
            continue
        pdirs = sorted(d for d in os.listdir(adir) if d[6:8] in persons and (adir / d).is_dir())
        if not pdirs:
            rows.append((str(adir), "missing", f"no person directories of persons {min(persons)}-{max(persons)}"))
        for d in pdirs:
            frames = sorted(f for f in os.listdir(adir / d) if frame_number(f) is not None)
            path = adir / d
            if not frames:
                rows.append((str(path), "missing", "no image_NNNN frames"))
                continue
            try:
                img = read_image(path / frames[0])
            except DataError as exc:
                rows.append((str(path / frames[0]), "wrong dtype", str(exc).split(": ", 1)[-1]))
                continue
            if img.dtype != np.uint8:
                rows.append((str(path / frames[0]), "wrong dtype", f"{img.dtype}, expected 8-bit"))
            elif img.ndim not in (2, 3):
                rows.append((str(path / frames[0]), "wrong shape", f"{img.shape}, expected (H, W) or (H, W, C)"))
            else:
                rows.append((str(path), "ok", f"{len(frames)} frames, {img.shape[0]}x{img.shape[1]}"))
    return rows
