"""human: Human3.6M layout (train.txt/test.txt + every 5th JPEG frame), RGB order, subject val split, bad files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stbench.data import check as C
from stbench.data import get_dataset
from stbench.errors import DataError


def _write(root, size=16):
    h = root / "human"
    (h / "images").mkdir(parents=True)
    lines = {"train.txt": ["images/S1_Walking.1_,1", "images/S1_Walking.1_,41", "images/S8_Eating.2_,1"],
             "test.txt": ["images/S11_Walking.3_,6"]}
    for name, ls in lines.items():
        (h / name).write_text("\n".join(ls) + "\n")
        for line in ls:
            prefix, begin = line.split(",")
            for t in range(8):
                j = int(begin) + 5 * t
                rgb = np.zeros((size, size, 3), np.uint8)
                rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, (j % 50) * 4, 10  # R, G (frame code), B
                Image.fromarray(rgb).save(h / f"{prefix}{j:06d}.jpg", quality=100)


def test_layout_rgb_and_splits(tmp_path):
    _write(tmp_path)
    ds = get_dataset("human", data_root=str(tmp_path), image_size=16)
    assert (ds.num_samples("train"), ds.num_samples("val"), ds.num_samples("test")) == (2, 1, 1)
    x = ds.read("test", 0, 1)
    assert x.shape == (1, 8, 3, 16, 16)
    assert abs(x[0, 0, 0].mean() - 200 / 255) < 3 / 255 and abs(x[0, 0, 2].mean() - 10 / 255) < 3 / 255  # RGB
    frames = 6 + 5 * np.arange(8)  # every 5th frame from the listed begin
    np.testing.assert_allclose(x[0, :, 1].mean(axis=(1, 2)), (frames % 50) * 4 / 255, atol=3 / 255)
    big = get_dataset("human", data_root=str(tmp_path), image_size=32).read("val", 0, 1)
    assert big.shape == (1, 8, 3, 32, 32)  # resized
    assert get_dataset("human").spec.in_shape == (4, 3, 256, 256)


def test_bad_files(tmp_path):
    _write(tmp_path)
    missing = tmp_path / "human" / "images" / "S8_Eating.2_000036.jpg"
    missing.unlink()
    rows = C.check("human", tmp_path)
    assert [r for r in rows if r[1] != "ok"] == [(str(missing), "missing", "frame of a listed clip")]
    ds = get_dataset("human", data_root=str(tmp_path), image_size=16)
    assert ds.num_samples("test") == 1  # a training frame does not concern the test split
    with pytest.raises(DataError, match="missing") as exc:
        ds.num_samples("val")
    assert "\n" not in str(exc.value)
    (tmp_path / "human" / "test.txt").unlink()
    assert "missing" in {r[1] for r in C.check("human", tmp_path)}
