"""kth / kth40: OpenSTL's frame layout and backward clip scan, person splits, bad files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stbench.data import check as C
from stbench.data import get_dataset
from stbench.data import kth as K
from stbench.errors import DataError

PERSONS = ("01", "02", "16", "17")


def _write(root, frames=8, size=16, skip=None):
    for a, action in enumerate(K.ACTIONS):
        for p in PERSONS:
            d = root / "kth" / action / f"person{p}_{action}_d1_uncomp"
            d.mkdir(parents=True)
            for f in range(1, frames + 1):
                if skip and (action, p, f) == skip:
                    continue
                value = 10 * a + 60 * (p == "17") + f  # constant frames: JPEG keeps them exactly
                rgb = np.full((size, size, 3), value, np.uint8)
                Image.fromarray(rgb).save(d / f"image_{f:04d}.jpg", quality=95)


def test_clip_scan_by_hand():
    # one walking-type dir of 8 frames and one running-type dir of 8 frames, clips of 4
    marks = [1] * 8 + [2] * 8
    numbers = list(range(1, 9)) * 2
    actions = ["boxing"] * 8 + ["running"] * 8
    # scanning from the end: running 13..15 -> jump 3 -> start 9 ... boxing: starts 4 and 0
    assert K.clip_starts(marks, numbers, actions, 4) == [12, 9, 4, 0]
    numbers[3] = 30  # a gap at a clip end breaks it (OpenSTL compares first and last numbers only)
    assert K.clip_starts(marks, numbers, actions, 4) == [12, 9, 4]


def test_layout_splits_and_values(tmp_path):
    _write(tmp_path)
    ds = get_dataset("kth", data_root=str(tmp_path), t_in=2, t_out=2, image_size=16)
    # per person dir 2 clips (both kinds of action, 8 frames, clips of 4); 6 actions
    # train = persons 01, 02 (of 01-15); val = person 16; test = 17
    assert (ds.num_samples("train"), ds.num_samples("val"), ds.num_samples("test")) == (24, 12, 12)
    test = ds.read("test", 0, 12)
    assert test.shape == (12, 4, 1, 16, 16) and test.dtype == np.float32
    # first clip found: the last frames of the last action (running), person 17
    expected = (10 * 5 + 60 + np.arange(5, 9)) / 255
    np.testing.assert_allclose(test[0, :, 0, 0, 0], expected, atol=1e-7)
    small = get_dataset("kth", data_root=str(tmp_path), t_in=2, t_out=2, image_size=8).read("val", 0, 1)
    assert small.shape == (1, 4, 1, 8, 8) and np.ptp(small[0, 0]) == 0  # resized, constant kept
    assert get_dataset("kth40").spec.t_out == 40 and get_dataset("kth").spec.in_shape == (10, 1, 128, 128)


def test_bad_files(tmp_path):
    _write(tmp_path, frames=5)
    bad = tmp_path / "kth" / "walking" / "person02_walking_d1_uncomp" / "image_0001.jpg"
    bad.write_bytes(b"not a jpeg")
    rows = C.check("kth", tmp_path)
    assert sum(r[1] != "ok" for r in rows) == 1 and str(bad) in [r[0] for r in rows if r[1] != "ok"]
    ds = get_dataset("kth", data_root=str(tmp_path), t_in=2, t_out=2, image_size=16)
    assert ds.num_samples("test") == 6  # a bad training frame does not concern the test persons
    with pytest.raises(DataError, match="image_0001.jpg") as exc:
        ds.num_samples("train")
    assert "\n" not in str(exc.value)
    (tmp_path / "kth" / "running").rename(tmp_path / "kth" / "running_x")
    assert ("missing" in {r[1] for r in C.check("kth", tmp_path)})
    assert C.check("kth", tmp_path / "nowhere")[0][1] == "missing"


def test_lpips_is_offline_only(monkeypatch, tmp_path):
    from stbench import metrics_extra as M

    monkeypatch.setattr("torch.hub.get_dir", lambda: str(tmp_path / "hub"))  # no weights there
    msg = M.lpips_available()
    assert msg is not None and "never downloaded" in msg and "\n" not in msg
    with pytest.raises(DataError, match="LPIPS needs"):
        get_dataset("kth", lpips=True)
    assert "lpips" not in get_dataset("kth").spec.metrics
