"""``human``: Human3.6M frames (Ionescu et al., TPAMI 2014) in OpenSTL's layout, 4 -> 4, RGB 256 x 256.

Files: ``<data_root>/human/train.txt`` and ``test.txt``, one clip per line ``<prefix>,<begin>[,...]`` (the test
split needs only ``test.txt`` and its frames: ``stbench eval`` reads nothing of the training list);
frame ``j`` of a clip is the JPEG ``<data_root>/human/<prefix><j as 6 digits>.jpg`` (e.g.
``images/S11_Walking.60457274_001621.jpg``), ``j = begin, begin + 5, ...`` (every 5th frame), 8 frames.
As OpenSTL's loader (``openstl/datasets/dataloader_human.py``, facts only): frames not 256 px high
are resized (bicubic; OpenCV's ``INTER_CUBIC`` there, torch's bicubic without antialias here), /255.

Differences, stated: frames are RGB (OpenSTL reads with OpenCV and so feeds BGR; MSE / MAE / SSIM /
PSNR do not depend on channel order, LPIPS does, and expects RGB). No training augmentation
(OpenSTL crops 256 px from 292 px frames and rotates at random in training). The target is frames
4..7 (OpenSTL slices ``[aft_seq_length:]``, the same when T_in = T_out = 4). OpenSTL validates on
test; here ``val`` is the training clips of one subject (``val_subject``, default ``S8``; the
subject is the ``S<n>_`` in the prefix) and ``train`` the other training clips; ``test`` = test.txt.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np

from stbench.data.check import raise_on_bad
from stbench.data.kth import _metrics, read_image
from stbench.data.spec import Dataset, DatasetSpec
from stbench.errors import DataError
from stbench.registry import DATASETS

STEP = 5
_SUBJECT = re.compile(r"(?:^|/)(S\d+)_")


def parse_list(path: Path) -> list[tuple[str, int]]:
    clips = []
    for k, line in enumerate(path.read_text().splitlines()):
        if not line.strip():
            continue
        parts = line.strip().split(",")
        try:
            clips.append((parts[0], int(parts[1])))
        except (IndexError, ValueError):
            raise DataError(f"{path}:{k + 1}: expected '<prefix>,<begin frame>', got {line.strip()[:60]!r}") from None
    return clips


def frame_path(root: Path, prefix: str, j: int) -> Path:
    return root / f"{prefix}{j:06d}.jpg"


def check_rows(data_root: str | Path, frames: int = 8, image_size: int = 256,
               splits: tuple[str, ...] = ("train", "val", "test")) -> list[tuple[str, str, str]]:
    """Rows for the index files of ``splits`` (train / val: train.txt, test: test.txt) and the first and last frame
    of every clip they list (all frames would be slow on 2.5 million files)."""
    root = Path(data_root) / "human"
    rows = []
    for name in [n for n, serves in (("train.txt", ("train", "val")), ("test.txt", ("test",)))
                 if set(serves) & set(splits)]:
        lst = root / name
        if not lst.is_file():
            rows.append((str(lst), "missing", "index file of clips '<prefix>,<begin>'"))
            continue
        try:
            clips = parse_list(lst)
        except DataError as exc:
            rows.append((str(lst), "wrong shape", str(exc).split(": ", 2)[-1]))
            continue
        if not clips:  # an empty split trains or tests on nothing
            rows.append((str(lst), "wrong shape", "0 clips listed, expected at least one '<prefix>,<begin>' line"))
            continue
        rows.append((str(lst), "ok", f"{len(clips)} clips"))
        for prefix, begin in clips:
            for j in (begin, begin + (frames - 1) * STEP):
                p = frame_path(root, prefix, j)
                if not p.is_file():
                    rows.append((str(p), "missing", "frame of a listed clip"))
                    continue
                try:
                    img = read_image(p)
                except DataError as exc:
                    rows.append((str(p), "wrong dtype", str(exc).split(": ", 1)[-1]))
                    continue
                if img.dtype != np.uint8:
                    rows.append((str(p), "wrong dtype", f"{img.dtype}, expected 8-bit RGB"))
                elif img.ndim != 3 or img.shape[2] != 3:
                    rows.append((str(p), "wrong shape", f"{img.shape}, expected (H, W, 3) RGB"))
    return rows


@DATASETS.register("human", check="stbench.data.human:check_rows")
class Human36M(Dataset):
    """Human3.6M ``(B, 4, 3, 256, 256)`` -> ``(B, 4, 3, 256, 256)`` RGB on [0, 1] (see module doc)."""

    def __init__(self, *, data_root: str | None = None, seed: int = 0, t_in: int = 4, t_out: int = 4,
                 image_size: int = 256, val_subject: str = "S8", lpips: bool = False) -> None:
        params = dict(t_in=int(t_in), t_out=int(t_out), image_size=int(image_size), val_subject=str(val_subject),
                      step=STEP, channels="RGB")
        super().__init__(data_root=data_root, seed=seed, **params)
        self.frames = params["t_in"] + params["t_out"]
        self.size = params["image_size"]
        self.root = None if data_root is None else Path(data_root) / "human"
        self.clips: dict[str, list[tuple[str, int]]] = {}
        self.spec = DatasetSpec(
            name="human", in_shape=(params["t_in"], 3, self.size, self.size), t_out=params["t_out"],
            scale=(0.0, 1.0), metrics=_metrics(bool(lpips)),
            description=f"Human3.6M RGB {self.size}x{self.size}, every 5th frame, {params['t_in']} -> "
                        f"{params['t_out']}; val = training subject {val_subject}, test = test.txt",
            sizes={}, params=params,  # a split's list is read when it is first asked for: test alone needs test.txt
        )

    def _open(self, split: str) -> None:
        """Check ``split``'s index file and frames (bad ones stop here, before training) and list its clips."""
        raise_on_bad(check_rows(self.root.parent, self.frames, self.size, (split,)))
        if split == "test":
            self.clips["test"] = parse_list(self.root / "test.txt")
        else:
            vs = self.variant["val_subject"]
            train = parse_list(self.root / "train.txt")
            subj = [(_SUBJECT.search(p) or [None, None])[1] for p, _ in train]
            self.clips["train"] = [c for c, s in zip(train, subj) if s != vs]
            self.clips["val"] = [c for c, s in zip(train, subj) if s == vs]
            if not self.clips[split]:
                raise DataError(f"{self.root}: no {split} clips (val = training clips of subject {vs}); "
                                "fix: --set data.val_subject=S<n> with a subject of train.txt")
        self.spec.sizes.update({s: len(c) for s, c in self.clips.items()})

    def num_samples(self, split: str) -> int:
        self.check_split(split)
        if self.root is None:
            raise DataError("human reads Human3.6M frames and train.txt/test.txt; fix: pass --data-root DIR "
                            "(the directory holding human/)")
        if split not in self.spec.sizes:
            self._open(split)
        return self.spec.sizes[split]

    @functools.cached_property
    def _resize(self):
        import torch
        import torch.nn.functional as F

        def resize(img: np.ndarray) -> np.ndarray:  # (H, W, 3) uint8 -> (size, size, 3) float
            t = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)[None]
            t = F.interpolate(t, size=(self.size, self.size), mode="bicubic", align_corners=False)
            return t[0].permute(1, 2, 0).numpy()

        return resize

    def read(self, split: str, start: int, stop: int, *, epoch: int = 0) -> np.ndarray:
        self.check_range(split, start, stop)
        out = np.empty((stop - start, self.frames, 3, self.size, self.size), np.float32)
        for k, (prefix, begin) in enumerate(self.clips[split][start:stop]):
            for t in range(self.frames):
                img = read_image(frame_path(self.root, prefix, begin + t * STEP))
                if img.ndim != 3 or img.shape[2] != 3:
                    raise DataError(f"{frame_path(self.root, prefix, begin + t * STEP)}: shape {img.shape}, "
                                    "expected (H, W, 3) RGB")
                frame = img.astype(np.float32) if img.shape[0] == self.size else self._resize(img)
                out[k, t] = frame.transpose(2, 0, 1) / np.float32(255.0)
        return out


