"""sevir: tiny files in SEVIR's published layout (CATALOG.csv + data/vil/<year>/*.h5 holding id and vil (N, H, W, 49)
uint8); Earthformer's catalog filters, split by date and 25-frame windows every 12 frames; /255 and the optional
block-mean downsampling; `stbench data check`. Skipped without h5py."""

from __future__ import annotations

import numpy as np
import pytest

h5py = pytest.importorskip("h5py", reason="h5py is not installed (pip install 'stbench[sevir]')")

from stbench.data import check as C  # noqa: E402
from stbench.data import get_dataset  # noqa: E402
from stbench.errors import DataError  # noqa: E402

HW = 8
# (id, time_utc, file, file_index, pct_missing): file "a" = vil/2018/..., "b" = vil/2019/...
EVENTS = [
    ("S0002", "2018-07-01 10:00:00", "a", 0, 0.0),    # train
    ("S0001", "2019-01-01 00:00:00", "a", 1, 0.0),    # train: the bound itself (t <= 2019-01-01) ; id order first
    ("S0003", "2019-03-02 12:00:00", "b", 0, 0.0),    # val
    ("S0004", "2019-06-01 00:00:00", "b", 1, 0.0),    # val (t <= 2019-06-01)
    ("S0005", "2019-08-15 18:30:00", "b", 2, 0.0),    # test
    ("S0006", "2019-09-01 01:00:00", "b", 3, 0.0),    # test
    ("S0007", "2019-09-02 01:00:00", "b", 4, 12.5),   # dropped: pct_missing > 0
    ("S0008", "2019-09-03 01:00:00", "b", 5, 0.0),    # dropped: listed twice below
]
FILES = {"a": "vil/2018/SEVIR_VIL_STORMEVENTS_2018_0101_0630.h5",
         "b": "vil/2019/SEVIR_VIL_RANDOMEVENTS_2019_0101_0630.h5"}


def _vil(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, HW, HW, 49), dtype=np.uint8)


def _write(root, vil_dtype=np.uint8):
    data = {"a": _vil(2, 0), "b": _vil(6, 1).astype(vil_dtype)}
    for k, name in FILES.items():
        p = root / "data" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(p, "w") as f:
            f["id"] = np.array([e[0] for e in EVENTS if e[2] == k], dtype="S5")
            f["vil"] = data[k]
    rows = ["id,file_name,file_index,img_type,time_utc,minute_offsets,event_type,pct_missing"]
    for i, t, k, idx, miss in EVENTS:
        rows.append(f"{i},{FILES[k]},{idx},vil,{t},-120:-115,Hail,{miss}")
    rows.append(f"S0008,{FILES['b']},5,vil,2019-09-03 01:00:00,-120:-115,Hail,0.0")  # duplicate id
    rows.append("S0003,ir069/2019/x.h5,0,ir069,2019-03-02 12:00:00,-120:-115,Hail,0.0")  # another image type
    (root / "CATALOG.csv").write_text("\n".join(rows) + "\n")
    return data


def test_split_by_date_windows_and_values(tmp_path):
    data = _write(tmp_path)
    ds = get_dataset("sevir", data_root=str(tmp_path))
    assert ds.spec.in_shape == (13, 1, HW, HW) and ds.spec.t_out == 12
    # 3 windows of 25 frames per event (starts 0, 12, 24); 2 events in each split after the filters
    assert [ds.num_samples(s) for s in ("train", "val", "test")] == [6, 6, 6]
    x = ds.read("train", 0, 6)  # uint8: the base class maps it to [0, 1] by / 255
    assert x.dtype == np.uint8 and x.shape == (6, 25, 1, HW, HW)
    first = data["a"][1]  # id order: S0001 (file a, index 1) before S0002
    for w in range(3):
        np.testing.assert_array_equal(x[w, :, 0], np.moveaxis(first[:, :, 12 * w:12 * w + 25], -1, 0))
    np.testing.assert_array_equal(x[3, :, 0], np.moveaxis(data["a"][0][:, :, :25], -1, 0))
    t = ds.read("test", 4, 5)  # S0006 (file b, index 3), window 1
    np.testing.assert_array_equal(t[0, :, 0], np.moveaxis(data["b"][3][:, :, 12:37], -1, 0))
    v = ds.read("val", 5, 6)  # S0004 at the val/test bound belongs to val
    np.testing.assert_array_equal(v[0, :, 0], np.moveaxis(data["b"][1][:, :, 24:49], -1, 0))
    xb, yb = next(ds.batches("test", 6))
    assert xb.shape == (6, 13, 1, HW, HW) and yb.shape == (6, 12, 1, HW, HW)
    np.testing.assert_allclose(xb[0, 0, 0].numpy(), data["b"][2][:, :, 0] / 255.0, rtol=0, atol=1e-7)
    assert float(xb.max()) <= 1.0 and ds.spec.metrics[:3] == ("mse", "mae", "csi_m")


def test_downsample_averages_blocks(tmp_path):
    data = _write(tmp_path)
    ds = get_dataset("sevir", data_root=str(tmp_path), downsample=4)
    assert ds.spec.in_shape == (13, 1, 2, 2) and ds.spec.params["downsample"] == 4
    x = ds.read("test", 0, 1)  # S0005 (file b, index 2), window 0
    ev = data["b"][2].astype(np.float64)
    np.testing.assert_allclose(x[0, 3, 0, 1, 0], ev[4:8, 0:4, 3].mean() / 255, rtol=0, atol=1e-6)
    with pytest.raises(DataError, match="downsample=3"):
        get_dataset("sevir", data_root=str(tmp_path), downsample=3)
    assert get_dataset("sevir", downsample=4).spec.in_shape == (13, 1, 96, 96)  # no files: the published 384


def test_data_check_rows_and_bad_files(tmp_path, capsys):
    _write(tmp_path)
    rows = C.check("sevir", tmp_path)
    assert all(s == "ok" for _, s, _ in rows) and any("[test]" in f for f, _, _ in rows)
    from stbench.cli import main

    assert main(["data", "check", "--dataset", "sevir", "--data-root", str(tmp_path)]) == 0
    assert "vil" in capsys.readouterr().out
    (tmp_path / "data" / FILES["a"]).unlink()  # the train file is gone
    rows = C.check("sevir", tmp_path)
    assert ("missing" in {s for _, s, _ in rows})
    ds = get_dataset("sevir", data_root=str(tmp_path))
    assert ds.num_samples("test") == 6  # the test events' file is there
    with pytest.raises(DataError, match="missing"):
        ds.num_samples("train")
    bad = tmp_path / "bad"
    _write(bad, vil_dtype=np.int16)
    assert any(s == "wrong dtype" for _, s, _ in C.check("sevir", bad))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert C.check("sevir", empty)[0][1] == "missing"
    with pytest.raises(DataError, match="--data-root"):
        get_dataset("sevir").num_samples("test")


def test_missing_h5py_is_one_line(tmp_path, monkeypatch):
    import sys

    _write(tmp_path)
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now raises ImportError
    with pytest.raises(DataError, match="pip install h5py") as exc:
        get_dataset("sevir", data_root=str(tmp_path))
    assert "\n" not in str(exc.value)
