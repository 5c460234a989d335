"""Issue 26, horizon extrapolation: `stbench eval --t-out N` rolls a kept 10 -> 10 model out to N frames on its
test set continued to N frames; its metrics equal a roll-out and metrics computed here by hand, the record says the
horizon, and the report gives the roll-outs a board and a section of their own."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from stbench.data import get_dataset
from stbench.metrics import compute
from stbench.recipes import load_recipe

T_LONG = 15


def _continued(name: str, t_out: int):
    opts = dict(load_recipe(name, "simvp", "smoke").config.get("data", {}))
    short = get_dataset(name, **opts)
    return short, get_dataset(name, **short.horizon_options(opts, t_out))


@pytest.mark.parametrize("name", ["mmnist", "ns2d"])
def test_the_continued_test_set_keeps_every_sequence(name, tmp_path, monkeypatch):
    monkeypatch.setenv("STBENCH_CACHE", str(tmp_path))
    short, long = _continued(name, T_LONG)
    assert long.num_samples("test") == short.num_samples("test") and long.spec.t_out == T_LONG
    n = min(short.num_samples("test"), 64)
    a, b = short.read("test", 0, n), long.read("test", 0, n)  # (n, 10 + 10, ...), (n, 10 + 15, ...)
    assert b.shape[1] == a.shape[1] + T_LONG - short.spec.t_out
    np.testing.assert_array_equal(b[:, : a.shape[1]], a)  # same inputs, the first 10 targets unchanged


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    from stbench.cli import main

    out = tmp_path_factory.mktemp("horizon")
    assert main(["run", "--models", "simvp,convlstm", "--preset", "smoke", "--out", str(out), "--no-profile",
                 "--test-size", "6"]) == 0
    return out


def _by_hand(net, card, model: str) -> dict:
    """The roll-out without stbench.rollout: parallel, the model's own 10 frames fed back as the next inputs;
    recurrent, the same weights in a model built for 15 frames."""
    opts = {**card["config"].get("data", {}), "t_out": T_LONG}
    ds = get_dataset("mmnist", **opts)
    preds, ys = [], []
    with torch.no_grad():
        for x, y in ds.batches("test", 4, limit=card["config"]["test_size"]):
            if model == "simvp":
                first = net(x).pred  # (B, 10, C, H, W)
                pred = torch.cat([first, net(first).pred[:, : T_LONG - 10]], dim=1)
            else:
                from stbench.recipes import Recipe

                long = Recipe("mmnist", model, "smoke", dict(card["config"])).build_model(
                    model, spec=SimpleNamespace(in_shape=tuple(card["in_shape"]), t_out=T_LONG))
                long.load_state_dict(net.state_dict())
                pred = long.eval()(x).pred
            preds.append(pred)
            ys.append(y)
    return compute(torch.cat(preds), torch.cat(ys), metrics=("mse", "mae", "ssim", "psnr"))


@pytest.mark.parametrize("model", ["simvp", "convlstm"])
def test_eval_t_out_equals_a_rollout_by_hand(kept, model):
    from stbench.cli import main
    from stbench.weights import load_model

    weights = kept / "records/mmnist/smoke" / f"{model}__seed0.safetensors"
    assert main(["eval", "--checkpoint", str(weights), "--t-out", str(T_LONG), "--out", str(kept)]) == 0
    (path,) = (kept / "records/mmnist/smoke").glob(f"{model}__evaluated_*__t{T_LONG}.json")
    rec = json.loads(path.read_text())
    assert rec["horizon"]["t_out"] == T_LONG and rec["horizon"]["trained_t_out"] == 10
    assert rec["kind"] == "evaluated" and rec["seed"] == 0 and rec["budget"]["label"] == "samples=32"
    net, card = load_model(weights)
    want = _by_hand(net.eval(), card, model)
    for m in ("mse", "mae", "ssim", "psnr"):
        assert rec["metrics"][m] == pytest.approx(want[m], rel=1e-5)
        assert rec["per_frame"][m] == pytest.approx(want["per_frame"][m], rel=1e-5)
    with np.load(path.parent / rec["horizon"]["frames_file"]) as z:
        frames = z["mse"]  # (sequences, lead times)
    assert frames.shape == (6, T_LONG)
    np.testing.assert_allclose(frames.mean(axis=0), rec["per_frame"]["mse"], rtol=1e-6)


def test_the_report_gives_rollouts_a_board_and_a_section(kept, tmp_path):
    from stbench.cli import main
    from stbench.report import build_report

    for model in ("simvp", "convlstm"):
        main(["eval", "--checkpoint", str(kept / "records/mmnist/smoke" / f"{model}__seed0.safetensors"),
              "--t-out", str(T_LONG), "--out", str(kept)])
    res = build_report(kept, tmp_path, formats=["md", "html"])
    keys = {lb.key: lb for lb in res.boards}
    assert ("mmnist", "smoke") in keys and ("mmnist", "smoke", f"t{T_LONG}") in keys
    trained, rolled = keys["mmnist", "smoke"], keys["mmnist", "smoke", f"t{T_LONG}"]
    assert set(rolled.table["model"]) == {"simvp", "convlstm"}  # no floor, no trained row
    assert "evaluated" not in set(trained.table["kind"])
    assert rolled.trained_t_out == 10 and "rolled out to 15 frames (trained 10)" in rolled.title
    md = (tmp_path / f"extrapolation_{rolled.slug}.md").read_text()
    assert "MSE lead 1-10" in md and "MSE lead 11-15" in md
    assert (tmp_path / "plots" / f"extrapolation_{rolled.slug}.svg").is_file()
    assert "Horizon extrapolation" in (tmp_path / "report.html").read_text()


def test_t_out_needs_a_kept_model(tmp_path):
    from stbench.cli import main

    bad = tmp_path / "w.pth"
    bad.write_bytes(b"")
    assert main(["eval", "--checkpoint", str(bad), "--t-out", "30"]) == 2
