"""Kept models (issue 29, items 4-5): a run's safetensors + model card, `stbench eval` / `stbench predict` on them.

The references are independent of the code under test: the model is rebuilt with the tests' own builder
(conftest.smoke_model) and the weights read with safetensors directly; predictions are its plain forward, a block
roll-out and a recurrent time loop written here, and the eval scores a formula applied to the test file itself.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import smoke_model
from safetensors.torch import load_file

import stbench
from stbench.cli import main

ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
SMOKE = Path("records/mmnist/smoke")


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    """`stbench run` of one parallel and one recurrent model at the smoke preset: their records, weights, cards."""
    out = tmp_path_factory.mktemp("kept")
    r = subprocess.run([sys.executable, "-m", "stbench", "run", "--models", "tau,convlstm", "--preset", "smoke",
                        "--out", str(out), "--no-profile"], capture_output=True, text=True, env=ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    return out / SMOKE


def reference(name: str, weights: Path) -> torch.nn.Module:
    """The model rebuilt by the tests' own builder, its weights read with safetensors directly."""
    m = smoke_model(name)
    m.load_state_dict(load_file(str(weights)))
    return m.eval()


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stbench: error: "), err
    return err[0]


def frames(n: int = 3, t: int = 10, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, t, 1, 64, 64), dtype=np.float32)  # (N, T, C, H, W) in [0, 1)


# ---------------------------------------------------------------------------------------------
def test_run_keeps_weights_and_card(kept):
    for name in ("tau", "convlstm"):
        rec = json.loads((kept / f"{name}__seed0.json").read_text())
        wfile, card = kept / f"{name}__seed0.safetensors", json.loads((kept / f"{name}__seed0.card.json").read_text())
        assert card["weights"]["file"] == wfile.name
        assert card["weights"]["sha256"] == hashlib.sha256(wfile.read_bytes()).hexdigest()
        assert card["weights"]["bytes"] == wfile.stat().st_size
        # the tensors of the model the card describes, by name and shape (built here independently)
        tensors = load_file(str(wfile))
        want = smoke_model(name).state_dict()
        assert {k: tuple(v.shape) for k, v in tensors.items()} == {k: tuple(v.shape) for k, v in want.items()}
        assert (card["model"], card["preset"], card["seed"], card["family"]) == (name, "smoke", 0, rec["family"])
        assert card["in_shape"] == [10, 1, 64, 64] and card["t_out"] == 10 and card["rollout"] == rec["rollout"]
        assert card["config"] == rec["config"] and card["model_hparams"] == rec["config"]["model_hparams"]
        assert card["dataset"]["name"] == "mmnist" and card["dataset"]["scale"] == [0.0, 1.0]
        assert card["normalisation"]["kind"] == "identity"
        assert card["budget"] == rec.get("budget")
        assert card["test"]["metrics"] == rec["metrics"] and card["test"]["n_sequences"] == 8
        for m, v in rec["metrics"].items():  # 95% bootstrap intervals of the per-sequence mean bracket the mean
            lo, hi = card["test"]["intervals"][m]
            assert lo <= v <= hi, (m, lo, v, hi)
        assert card["cost"]["params"] == sum(v.numel() for v in smoke_model(name).parameters())
        assert card["stbench"]["version"] == stbench.__version__ == rec["env"]["stbench"]
        assert card["stbench"]["git_commit"] == rec["env"]["git_commit"]
        assert not (kept.parents[2] / "checkpoints/mmnist/smoke" / f"{name}__seed0.pt").exists()


def test_eval_scores_the_kept_weights_from_the_card_alone(kept, tmp_path):
    """No --model, --dataset or --config: the card gives them; the score is the run's own test score."""
    assert main(["eval", "--checkpoint", str(kept / "tau__seed0.safetensors"), "--out", str(tmp_path),
                 "--no-profile"]) == 0
    ev = json.loads(next((tmp_path / SMOKE).glob("tau__evaluated_tau__seed0-*.json")).read_text())
    run = json.loads((kept / "tau__seed0.json").read_text())
    assert ev["kind"] == "evaluated" and ev["model"] == "tau" and ev["preset"] == "smoke"
    assert ev["config"]["epochs"] == run["config"]["epochs"]  # the card's recipe: matched to its published row
    assert ev["checkpoint"]["sha256"] == hashlib.sha256((kept / "tau__seed0.safetensors").read_bytes()).hexdigest()
    for m, v in run["metrics"].items():
        assert ev["metrics"][m] == pytest.approx(v, rel=1e-6), m


def test_predict_equals_the_models_own_forward(kept, tmp_path):
    wfile = kept / "tau__seed0.safetensors"
    m = reference("tau", wfile)
    x = frames()
    with torch.no_grad():
        want = m(torch.from_numpy(x)).pred.numpy()  # (3, 10, 1, 64, 64)
        # past the trained horizon: the last T_in frames in, T_in out, repeated; the last block cropped
        y1 = m(torch.from_numpy(x)).pred
        y2 = m(y1).pred
        y3 = m(y2).pred
        want25 = torch.cat([y1, y2, y3], dim=1)[:, :25].numpy()
    np.save(tmp_path / "x.npy", x)
    assert main(["predict", "--checkpoint", str(wfile), "--input", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "p.npy")]) == 0
    got = np.load(tmp_path / "p.npy")
    assert got.dtype == np.float32 and got.shape == (3, 10, 1, 64, 64)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    np.savez(tmp_path / "x.npz", other=np.zeros(3), clips=x)
    assert main(["predict", "--checkpoint", str(wfile), "--input", f"{tmp_path / 'x.npz'}:clips", "--t-out", "25",
                 "--out", str(tmp_path / "p.npz")]) == 0
    with np.load(tmp_path / "p.npz") as z:
        np.testing.assert_allclose(z["pred"], want25, rtol=0, atol=1e-5)
    # Python API: one sequence (T, C, H, W); the card's path; more frames than T_in (the last T_in are read);
    # uint8 frames (/255)
    np.testing.assert_allclose(stbench.predict(wfile, x[1]), want[1], rtol=0, atol=1e-5)
    np.testing.assert_allclose(stbench.predict(kept / "tau__seed0.card.json", x), want, rtol=0, atol=1e-5)
    longer = np.concatenate([frames(3, 4, seed=1), x], axis=1)  # (3, 14, 1, 64, 64)
    np.testing.assert_allclose(stbench.predict(str(wfile), longer), want, rtol=0, atol=1e-5)
    x8 = np.round(x * 255).astype(np.uint8)
    with torch.no_grad():
        want8 = m(torch.from_numpy(x8.astype(np.float32) / 255)).pred.numpy() * 255
    np.testing.assert_allclose(stbench.predict(wfile, x8), want8, rtol=0, atol=255e-5)
    # a model object: no card, no normalisation
    np.testing.assert_allclose(stbench.predict(m, x, t_out=25), want25, rtol=0, atol=1e-5)


def test_recurrent_predict_keeps_stepping(kept):
    """ConvLSTM past its horizon: one time loop on its own predictions (written here with the cell's step), not a
    block roll-out; its first T_out frames are the model's forward."""
    wfile = kept / "convlstm__seed0.safetensors"
    m = reference("convlstm", wfile)
    assert m.names["encoder"] == "patch" and not m.encoder.frame_feedback  # the loop below runs in latent space
    x = torch.from_numpy(frames(2))
    horizon = 25
    with torch.no_grad():
        z, skip = m.encoder(x.flatten(0, 1))
        assert skip is None
        z = z.unflatten(0, (2, 10))  # (B, T_in, C_lat, H', W')
        state = m.temporal.init_state(z[:, 0])
        outs = []
        for t in range(10 + horizon - 1):
            y, state, _ = m.temporal.step(z[:, t] if t < 10 else outs[-1], state)
            outs.append(y)
        lat = torch.stack(outs[9:], dim=1)  # (B, horizon, C_lat, H', W'): the forecast steps
        want = m.decoder(lat.flatten(0, 1), None).unflatten(0, (2, horizon)).numpy()
        first = m(x).pred.numpy()
    got = stbench.predict(wfile, x, t_out=horizon)
    assert got.shape == (2, horizon, 1, 64, 64)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got[:, :10], first, rtol=0, atol=1e-5)


def test_zscore_normalisation_applied_and_undone(tmp_path):
    """A card with per-channel mean / std (what weather's spec carries): raw units in, raw units out; NetCDF input."""
    xr = pytest.importorskip("xarray")
    from stbench.data.spec import DatasetSpec
    from stbench.errors import DataError
    from stbench.recipes import load_recipe
    from stbench.records import RunRecord
    from stbench.weights import check_normalisation, normalisation, save_model

    model = smoke_model("tau", in_shape=(4, 2, 16, 16), t_out=4).eval()
    mean, std = (280.0, -3.0), (12.0, 0.5)
    spec = DatasetSpec("toy", in_shape=(4, 2, 16, 16), t_out=4, scale=(-4.0, 4.0),
                       metric_context={"mean": mean, "std": std, "channels": ("t", "u")})
    assert normalisation(spec)["kind"] == "zscore"
    rec = RunRecord(model="tau", dataset="mmnist", preset="smoke", seed=0, family="parallel", rollout="frame",
                    metrics={"mse": 1.0}, config={"model": load_recipe("mmnist", "tau", "smoke").model_kw})
    card = save_model(model, rec, spec, tmp_path / "toy.json")
    assert card["normalisation"]["mean"] == list(mean) and card["normalisation"]["channels"] == ["t", "u"]
    # eval scores through the dataset's own pipeline: data that normalise otherwise are refused
    check_normalisation(card["normalisation"], spec)
    other = DatasetSpec("toy", in_shape=(4, 2, 16, 16), t_out=4, metric_context={"mean": (281.0, -3.0), "std": std})
    with pytest.raises(DataError, match="trained on other data"):
        check_normalisation(card["normalisation"], other)
    raw = np.random.default_rng(2).normal(size=(6, 4, 2, 16, 16)).astype(np.float32) * 3 + np.array(
        mean, np.float32).reshape(1, 1, 2, 1, 1)  # (N, T, C, H, W) in "physical" units
    mu, sd = torch.tensor(mean).view(1, 1, 2, 1, 1), torch.tensor(std).view(1, 1, 2, 1, 1)
    with torch.no_grad():
        want = (model((torch.from_numpy(raw) - mu) / sd).pred * sd + mu).numpy()
    got = stbench.predict(tmp_path / "toy.safetensors", raw)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    # the same frames as one NetCDF sequence, variables in channel order
    seq = raw[0]  # (T=4, C=2, 16, 16)
    ds = xr.Dataset({"t": (("time", "lat", "lon"), seq[:, 0]), "u": (("time", "lat", "lon"), seq[:, 1])})
    ds.to_netcdf(tmp_path / "f.nc")
    assert main(["predict", "--checkpoint", str(tmp_path / "toy.safetensors"), "--input", f"{tmp_path / 'f.nc'}:t,u",
                 "--out", str(tmp_path / "p.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), want[0], rtol=1e-5, atol=1e-3)  # one sequence in, one out


def test_card_and_weights_must_agree(kept, tmp_path, capsys):
    shutil.copy(kept / "tau__seed0.safetensors", tmp_path / "a.safetensors")
    card = json.loads((kept / "tau__seed0.card.json").read_text())
    np.save(tmp_path / "x.npy", frames(1))
    predict = ["predict", "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "p.npy"), "--checkpoint"]
    # no card beside the weights; a card that is not an stbench card
    assert "no model card 'a.card.json'" in one_line_error(capsys, [*predict, str(tmp_path / "a.safetensors")])
    (tmp_path / "a.card.json").write_text(json.dumps({**card, "config": ["not", "a", "table"]}))
    assert "malformed" in one_line_error(capsys, [*predict, str(tmp_path / "a.safetensors")])
    # a card naming other weights (sha256)
    (tmp_path / "a.card.json").write_text(json.dumps({**card, "weights": {**card["weights"], "sha256": "0" * 64}}))
    assert "sha256" in one_line_error(capsys, [*predict, str(tmp_path / "a.safetensors")])
    # the sha256 fits but the tensors are another model's (convlstm weights under tau's card)
    shutil.copy(kept / "convlstm__seed0.safetensors", tmp_path / "b.safetensors")
    sha = hashlib.sha256((tmp_path / "b.safetensors").read_bytes()).hexdigest()
    (tmp_path / "b.card.json").write_text(json.dumps({**card, "weights": {**card["weights"], "sha256": sha}}))
    msg = one_line_error(capsys, [*predict, str(tmp_path / "b.safetensors")])
    assert "does not match its card" in msg
    assert "does not match its card" in one_line_error(capsys, ["eval", "--checkpoint", str(tmp_path / "b.safetensors"),
                                                               "--out", str(tmp_path / "o")])
    # --model / --dataset / --from must agree with the card
    w = str(kept / "tau__seed0.safetensors")
    assert "describes 'tau'" in one_line_error(capsys, [*predict, w, "--model", "convlstm"])
    assert "describes 'tau'" in one_line_error(capsys, ["eval", "--checkpoint", w, "--model", "simvp"])
    assert "trained on 'mmnist'" in one_line_error(capsys, ["eval", "--checkpoint", w, "--dataset", "taxibj"])
    assert "drop --from openstl" in one_line_error(capsys, ["eval", "--checkpoint", w, "--from", "openstl"])
    assert "--model is required" in one_line_error(capsys, ["eval", "--checkpoint", str(tmp_path / "x.npy")])
    assert not (tmp_path / "o").exists() and not (tmp_path / "p.npy").exists()


@pytest.mark.parametrize("shape,needle", [
    ((10, 64, 64), "3 axes"),
    ((2, 10, 3, 64, 64), "3 channels"),
    ((2, 10, 1, 32, 64), "frames are 32 x 64"),
    ((2, 6, 1, 64, 64), "6 frames per sequence"),
])
def test_bad_input_is_one_line(kept, tmp_path, capsys, shape, needle):
    np.save(tmp_path / "x.npy", np.zeros(shape, np.float32))
    msg = one_line_error(capsys, ["predict", "--checkpoint", str(kept / "tau__seed0.safetensors"),
                                  "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "p.npy")])
    assert needle in msg


def test_bad_files_are_one_line(kept, tmp_path, capsys):
    w = str(kept / "tau__seed0.safetensors")
    np.savez(tmp_path / "two.npz", a=frames(1), b=frames(1))
    cases = [(str(tmp_path / "missing.npy"), "p.npy", "does not exist"),
             (str(tmp_path / "two.npz"), "p.npy", "holds 2 arrays (a, b)"),
             (f"{tmp_path / 'two.npz'}:c", "p.npy", "has no array 'c'"),
             (str(tmp_path / "two.npz:a"), "p.txt", "write .npy or .npz")]
    for inp, out, needle in cases:
        msg = one_line_error(capsys, ["predict", "--checkpoint", w, "--input", inp, "--out", str(tmp_path / out)])
        assert needle in msg, msg


def test_no_weights_opt_out(tmp_path):
    assert main(["run", "--models", "convlstm", "--preset", "smoke", "--out", str(tmp_path), "--no-profile",
                 "--no-weights"]) == 0
    assert (tmp_path / SMOKE / "convlstm__seed0.json").is_file()
    assert not list((tmp_path / SMOKE).glob("*.safetensors")) and not list((tmp_path / SMOKE).glob("*.card.json"))


def test_scoring_the_test_file_needs_no_training_images(kept, tmp_path, capsys):
    """`stbench eval --data-root` with mnist_test_seq.npy alone: scored on the file (MSE computed here from the
    file and the model's forward); training data asked for only when read."""
    from stbench.data import get_dataset
    from stbench.errors import DataError

    seq = np.random.default_rng(3).integers(0, 256, (20, 6, 64, 64), dtype=np.uint8)  # (T, N, H, W), as published
    np.save(tmp_path / "mnist_test_seq.npy", seq)
    ds = get_dataset("mmnist", data_root=str(tmp_path))
    x, y = next(ds.batches("test", 6))
    np.testing.assert_array_equal(x.numpy(), seq[:10].transpose(1, 0, 2, 3)[:, :, None] / np.float32(255))
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        next(ds.batches("train", 2))
    w = kept / "tau__seed0.safetensors"
    assert main(["eval", "--checkpoint", str(w), "--data-root", str(tmp_path), "--test-size", "6",
                 "--out", str(tmp_path / "o"), "--no-profile"]) == 0
    ev = json.loads(next((tmp_path / "o" / SMOKE).glob("tau__evaluated_tau__seed0-*.json")).read_text())
    with torch.no_grad():
        pred = reference("tau", w)(torch.from_numpy(seq[:10].transpose(1, 0, 2, 3)[:, :, None] / np.float32(255)))
    true = seq[10:].transpose(1, 0, 2, 3).astype(np.float64) / 255  # (N, 10, H, W)
    want = np.mean(np.sum((pred.pred.numpy()[:, :, 0].astype(np.float64) - true) ** 2, axis=(2, 3)))
    assert ev["metrics"]["mse"] == pytest.approx(want, rel=1e-5)


def test_cards_are_not_records(kept, capsys):
    from stbench.status import grid_status

    out = kept.parents[2]
    assert sorted(r.model for r in stbench.load_records(out)) == ["convlstm", "copy_last", "tau", "zeros"]
    assert "skipped" not in capsys.readouterr().err
    cells = grid_status(out)
    assert len(cells) == 4 and {c.status for c in cells} == {"completed"}
