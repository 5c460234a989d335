"""OpenSTL interop: function equivalence on fixtures written by OpenSTL's own code, the frame-space
roll-out, and ``stbench eval`` (weights-only loading, ast-read configs, the ``evaluated`` record).

The fixtures (tests/data/openstl/*.pt, see its README) hold OpenSTL's config, state dict, inputs and
OpenSTL's test-time prediction; the bar is max |ours - theirs| <= 1e-5 in fp32.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import pytest
import torch
from conftest import smoke_model

import stbench
from stbench.cli import main
from stbench.errors import CheckpointError
from stbench.interop.openstl import OPENSTL_DEFAULTS, from_openstl
from stbench.interop.openstl_rnn import patch_permutation

DATA = Path(__file__).parent / "data" / "openstl"
TOL = 1e-5
FIXTURES = ["simvp", "gsta", "tau", "convlstm", "predrnn", "predrnn_v2", "simvp_tout20", "tau_tout20",
            "predrnn_tout20"]


def _fixture(name: str) -> dict:
    return torch.load(DATA / f"{name}.pt", map_location="cpu", weights_only=True)


def _pred(model: torch.nn.Module, fx: dict) -> torch.Tensor:
    with torch.no_grad():
        return model(fx["inputs"].float()).pred


# ---------------------------------------------------------------------------------------------
# function equivalence
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FIXTURES)
def test_reproduces_openstl_prediction(name):
    fx = _fixture(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvLSTM's dropped weights are reported (checked below)
        model = from_openstl(fx["method"], fx["config"], fx["state_dict"])
    assert not model.training
    pred = _pred(model, fx)
    assert pred.shape == fx["pred"].shape
    err = (pred - fx["pred"].float()).abs().max().item()
    assert err <= TOL, f"{name}: max abs error {err:.3g}"
    assert model.rollout == ("recurrent" if model.recurrent else "frame")


def test_lightning_checkpoint_form_and_case_insensitive_method():
    fx = _fixture("tau")
    ckpt = {"epoch": 3, "state_dict": {f"model.{k}": v for k, v in fx["state_dict"].items()}}
    model = from_openstl("tau", fx["config"], ckpt)
    assert (_pred(model, fx) - fx["pred"]).abs().max().item() <= TOL


@pytest.mark.parametrize("name", ["gsta", "tau"])
def test_batchnorm_running_statistics_are_mapped(name):
    # The fixtures' BatchNorm statistics are the initial (0, 1), so they alone cannot catch a wrong mapping
    # of running_mean / running_var. Give every BN random statistics and fold the change into its affine
    # weight and bias so that OpenSTL's eval-mode function is unchanged (by hand:
    # (x - m) / s * w' + b' == x / sqrt(1 + eps) * w + b with s = sqrt(v + eps), w' = w s / sqrt(1 + eps),
    # b' = b + m w / sqrt(1 + eps)); the prediction must still be OpenSTL's.
    fx = _fixture(name)
    sd = {k: v.float() if v.is_floating_point() else v for k, v in fx["state_dict"].items()}
    g = torch.Generator().manual_seed(0)
    eps = 1e-5
    for k in [k for k in sd if k.endswith(".running_mean")]:
        pre = k[: -len("running_mean")]
        m = torch.randn(sd[k].shape, generator=g)
        v = torch.rand(sd[k].shape, generator=g) * 3 + 0.2
        w, b = sd[pre + "weight"], sd[pre + "bias"]
        sd[pre + "weight"] = w * (v + eps).sqrt() / (1 + eps) ** 0.5
        sd[pre + "bias"] = b + m * w / (1 + eps) ** 0.5
        sd[k], sd[pre + "running_var"] = m, v
    model = from_openstl(fx["method"], fx["config"], sd)
    assert (_pred(model, fx) - fx["pred"]).abs().max().item() <= TOL


def test_odd_n_s_builds_one_layer_less_as_openstl():
    # OpenSTL's sampling_generator(N) = [False, True] * (N // 2): N_S = 3 builds the same 2 layers as N_S = 2
    fx = _fixture("simvp")
    model = from_openstl("SimVP", {**fx["config"], "N_S": 3}, fx["state_dict"])
    assert (_pred(model, fx) - fx["pred"]).abs().max().item() <= TOL


def test_convlstm_unused_weights_are_dropped_and_reported():
    fx = _fixture("convlstm")
    with pytest.warns(UserWarning, match="dropped 4 weight"):
        model = from_openstl("ConvLSTM", fx["config"], fx["state_dict"])
    assert model.dropped_keys == sorted(f"cell_list.{i}.{n}" for i in (0, 1)
                                        for n in ("conv_last.weight", "conv_o.0.weight"))


def test_long_horizon_needs_the_frame_rollout():
    # the latent roll-out is another function: it must NOT match OpenSTL past T_in (else the test is blind)
    fx = _fixture("tau_tout20")
    model = from_openstl(fx["method"], fx["config"], fx["state_dict"])
    model.rollout = "latent"
    pred = _pred(model, fx)
    assert (pred[:, :10] - fx["pred"][:, :10]).abs().max().item() <= TOL
    assert (pred[:, 10:] - fx["pred"][:, 10:]).abs().max().item() > 1e-2


def test_patch_permutation_matches_openstl_reshape_patch():
    # OpenSTL's reshape_patch, written out from its definition: (H/p, p, W/p, p, C) -> swap -> (H/p, W/p, p*p*C)
    C, p, H, W = 3, 2, 4, 6
    x = torch.randn(1, 1, C, H, W)
    img = x.permute(0, 1, 3, 4, 2)  # (B, T, H, W, C)
    a = img.reshape(1, 1, H // p, p, W // p, p, C).transpose(3, 4)
    theirs = a.reshape(1, 1, H // p, W // p, p * p * C).permute(0, 1, 4, 2, 3)[0]  # (T, p*p*C, H/p, W/p)
    ours = torch.nn.functional.pixel_unshuffle(x[0], p)  # (T, C*p*p, H/p, W/p)
    torch.testing.assert_close(ours, theirs[:, patch_permutation(C, p)], rtol=0, atol=0)


def test_defaults_are_openstls():
    # parser defaults (pre/aft/total, model_type, drop) + SimVP_Model keyword defaults + configs/mmnist RNN keys
    assert OPENSTL_DEFAULTS["model_type"] == "gSTA"
    assert (OPENSTL_DEFAULTS["hid_S"], OPENSTL_DEFAULTS["hid_T"], OPENSTL_DEFAULTS["N_S"],
            OPENSTL_DEFAULTS["N_T"]) == (16, 256, 4, 4)
    assert OPENSTL_DEFAULTS["mlp_ratio"] == 8.0 and OPENSTL_DEFAULTS["num_hidden"] == "128,128,128,128"


# ---------------------------------------------------------------------------------------------
# errors from from_openstl
# ---------------------------------------------------------------------------------------------
def test_unknown_method():
    fx = _fixture("tau")
    with pytest.raises(CheckpointError, match="unknown OpenSTL method 'SimVPX'"):
        from_openstl("SimVPX", fx["config"], fx["state_dict"])


def test_weights_of_another_method_name_the_keys():
    fx = _fixture("tau")
    with pytest.raises(CheckpointError, match=r"missing .* key\(s\).*unexpected"):
        from_openstl("SimVP", {**fx["config"], "model_type": "IncepU"}, fx["state_dict"])
    with pytest.raises(CheckpointError, match="missing .*cell_list.0.conv_x.0.weight"):
        from_openstl("PredRNN", _fixture("predrnn")["config"], fx["state_dict"])


def test_missing_key_and_shape_mismatch():
    fx = _fixture("predrnn")
    sd = dict(fx["state_dict"])
    del sd["cell_list.1.conv_m.0.weight"]
    with pytest.raises(CheckpointError, match="missing 1 key.*cell_list.1.conv_m.0.weight"):
        from_openstl("PredRNN", fx["config"], sd)
    with pytest.raises(CheckpointError, match=r"\(112, 16, 5, 5\) but the model expects \(224, 16, 5, 5\)"):
        from_openstl("PredRNN", {**fx["config"], "num_hidden": "32,32"}, fx["state_dict"])
    tau = _fixture("tau")
    with pytest.raises(CheckpointError, match=r"shape \(8, 1, 3, 3\) but the model expects \(16, 1, 3, 3\)"):
        from_openstl("TAU", {**tau["config"], "hid_S": 16}, tau["state_dict"])


# ---------------------------------------------------------------------------------------------
# the roll-out as OpenSTL's SimVP.forward defines it (hand composition of T_in -> T_in passes)
# ---------------------------------------------------------------------------------------------
def test_frame_rollout_is_the_published_one():
    shape = (4, 1, 16, 16)
    base = smoke_model("tau", in_shape=shape, t_out=4).eval()
    x = torch.rand(2, *shape)
    with torch.no_grad():
        one = base(x).pred
        two = base(one).pred
        for t_out, expected in ((3, one[:, :3]), (6, torch.cat([one, two[:, :2]], 1)), (8, torch.cat([one, two], 1))):
            m = smoke_model("tau", in_shape=shape, t_out=t_out).eval()
            m.load_state_dict(base.state_dict())
            assert m.rollout == "frame"
            torch.testing.assert_close(m(x).pred, expected)
    latent = smoke_model("tau", in_shape=shape, t_out=8, rollout="latent")
    assert latent.rollout == "latent" and latent.hparams["rollout"] == "latent"
    with pytest.raises(ValueError, match="rollout must be one of frame, latent"):
        latent.rollout = "pixels"


# ---------------------------------------------------------------------------------------------
# stbench eval
# ---------------------------------------------------------------------------------------------
TINY_TAU_CONFIG = """\
method = 'TAU'
model_type = 'tau'
hid_S = 8
hid_T = 32
N_S = 2
N_T = 2
spatio_kernel_enc = 3
spatio_kernel_dec = 3
alpha = 0.1
import os
side_effect = open('EXECUTED', 'w')   # must never run
"""


@pytest.fixture()
def tiny(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fx = _fixture("tau")
    (tmp_path / "tiny_tau.py").write_text(TINY_TAU_CONFIG)
    torch.save({f"model.{k}": v for k, v in fx["state_dict"].items()}, tmp_path / "tiny_tau_ep3.pth")
    return tmp_path, fx


def _eval(tmp_path, ckpt, *extra):
    return main(["eval", "--checkpoint", str(ckpt), "--model", "tau", "--from", "openstl", "--config",
                 str(tmp_path / "tiny_tau.py"), "--test-size", "2", "--out", str(tmp_path / "res"), *extra])


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("stbench: error: ") and "\n" not in err, err
    return err


def test_eval_openstl_writes_an_evaluated_record_the_report_shows(tiny, capsys):
    tmp_path, fx = tiny
    assert _eval(tmp_path, tmp_path / "tiny_tau_ep3.pth", "--no-profile") == 0
    assert not (tmp_path / "EXECUTED").exists()  # the config was parsed, not executed
    (rec_path,) = (tmp_path / "res/records/mmnist/custom").glob("tau__evaluated_tiny_tau_ep3-*.json")  # + sha256[:8]
    rec = json.loads(rec_path.read_text())
    assert rec["kind"] == "evaluated" and rec["status"] == "completed" and rec["preset"] == "custom"
    assert rec["checkpoint"]["file"] == "tiny_tau_ep3.pth" and rec["checkpoint"]["source"] == "openstl"
    import hashlib
    assert rec["checkpoint"]["sha256"] == hashlib.sha256((tmp_path / "tiny_tau_ep3.pth").read_bytes()).hexdigest()
    assert rec["rollout"] == "frame" and rec["config"]["epochs"] == 3
    assert rec["config"]["source_config"]["hid_S"] == 8 and "side_effect" not in rec["config"]["source_config"]
    assert set(rec["metrics"]) >= {"mse", "mae", "ssim", "psnr"}
    capsys.readouterr()
    assert main(["report", "--results", str(tmp_path / "res"), "--format", "md"]) == 0
    md = next((tmp_path / "res/report").glob("*.md")).read_text()
    assert "tau (evaluated: tiny\\_tau\\_ep3.pth (openstl))" in md

    # the same record as a paper-architecture evaluation of 2000-epoch weights (what the released
    # mmnist_tau_one_ep2000.pth gives): ranked beside a trained run, with the matching published row
    from stbench.report import build_report

    paper = tmp_path / "res/records/mmnist/paper"
    paper.mkdir(parents=True)
    rec.update(preset="paper", config={**rec["config"], "epochs": 2000})
    (paper / "tau__evaluated_mmnist_tau_one_ep2000.json").write_text(json.dumps(rec))
    trained = {**rec, "kind": "model", "checkpoint": None, "metrics": {**rec["metrics"], "mse": 1.0}}
    (paper / "tau__seed0.json").write_text(json.dumps(trained))
    table = build_report(tmp_path / "res", None, ["md"], console=None, plots=False).leaderboards["mmnist", "paper"]
    assert list(table["kind"]) == ["model", "evaluated"] and list(table["rank"]) == [1, 2]
    assert list(table["mse_published"]) == [pytest.approx(15.69)] * 2


@pytest.mark.parametrize("case", ["wrong_method", "missing_key", "shape_mismatch", "not_weights_only", "corrupt"])
def test_eval_errors_are_one_line_and_write_nothing(tiny, capsys, case):
    tmp_path, fx = tiny
    sd = {f"model.{k}": v for k, v in fx["state_dict"].items()}
    ckpt = tmp_path / f"{case}.pth"
    expect = {"wrong_method": "unknown OpenSTL method 'TAUX'", "missing_key": "missing 1 key",
              "shape_mismatch": "but the model expects", "not_weights_only": "not a weights-only file",
              "corrupt": "corrupt or not a PyTorch file"}[case]
    if case == "wrong_method":
        (tmp_path / "tiny_tau.py").write_text(TINY_TAU_CONFIG.replace("'TAU'", "'TAUX'"))
        torch.save(sd, ckpt)
    elif case == "missing_key":
        sd.pop("model.hid.enc.1.block.mlp.fc2.bias")
        torch.save(sd, ckpt)
    elif case == "shape_mismatch":
        sd["model.dec.readout.weight"] = torch.zeros(2, 8, 1, 1)
        torch.save(sd, ckpt)
    elif case == "not_weights_only":
        torch.save({"state_dict": sd, "args": argparse.Namespace(lr=1e-3)}, ckpt)
    else:
        torch.save(sd, ckpt)
        ckpt.write_bytes(ckpt.read_bytes()[:2000])
    assert _eval(tmp_path, ckpt) != 0
    assert expect in _one_line_error(capsys)
    assert not (tmp_path / "res").exists()
    assert not (tmp_path / "EXECUTED").exists()


@pytest.mark.slow  # a paper-size ConvLSTM on one sequence: about 15 s on a shared 2-core CPU
def test_eval_stbench_checkpoint_of_paper_architecture_sits_beside_the_published_row(tmp_path, capsys):
    # no --config: the paper architecture; --from stbench: our own state dict (random weights, 1 sequence)
    torch.manual_seed(0)
    model = stbench.create_model("convlstm")  # paper sizes
    torch.save(model.state_dict(), tmp_path / "convlstm_ep200.pt")
    out = tmp_path / "res"
    assert main(["eval", "--checkpoint", str(tmp_path / "convlstm_ep200.pt"), "--model", "convlstm",
                 "--test-size", "1", "--batch-size", "1", "--out", str(out), "--no-profile"]) == 0
    rec = json.loads(next((out / "records/mmnist/paper").glob("convlstm__evaluated_convlstm_ep200-*.json")).read_text())
    assert rec["preset"] == "paper" and rec["config"]["epochs"] == 200 and rec["rollout"] == "recurrent"
    from stbench.report import build_report

    res = build_report(out, None, ["md"], console=None)
    table = res.leaderboards["mmnist", "paper"]
    row = table[table["model"] == "convlstm"].iloc[0]
    assert row["kind"] == "evaluated" and row["mse_published"] == pytest.approx(29.80)


# ---------------------------------------------------------------------------------------------
# without --config: the stbench model's paper sizes, written in OpenSTL's keys, build the published network
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,params", [("simvp", 57_946_113), ("gsta", 46_769_665), ("tau", 44_656_001),
                                         ("convlstm", 11_675_648), ("predrnn", 23_838_720),
                                         ("predrnn_v2", 23_855_104)])
def test_paper_config_in_openstl_keys_builds_the_published_network(name, params):
    # published counts (REFERENCE.md section 6); ConvLSTM without the 4 dead conv_o OpenSTL builds (15.0M with them)
    from stbench.evaluate import openstl_config_for
    from stbench.interop import openstl_rnn, openstl_simvp
    from stbench.interop.openstl import merged_config

    method, cfg = openstl_config_for(name, "mmnist", None)
    cfg = merged_config(cfg)
    key = method.lower()
    with torch.device("meta"):
        if key in ("simvp", "tau"):
            temporal, _ = openstl_simvp.translator_for({**cfg, "model_type": "tau"} if key == "tau" else cfg)
            model = openstl_simvp.build_model(key, cfg, temporal)
        else:
            model = openstl_rnn.build_model(key, cfg)
    assert model.names["model"] == name
    assert sum(p.numel() for p in model.parameters()) == params


ROUND_TRIP = sorted(p.stem for p in DATA.glob("*.pt") if "tout20" not in p.stem)  # the dataset's horizon: 10


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_every_converted_method_is_evaluated_without_a_config(name, monkeypatch):
    # without --config, `stbench eval --from openstl` writes the paper architecture's hyper-parameters in OpenSTL's
    # keys; with the fixture's (small) architecture standing in for the paper one, those keys must rebuild
    # OpenSTL's network exactly: the same weights load and give OpenSTL's prediction
    from stbench.evaluate import PaperRecipes, load_model
    from stbench.interop.openstl import METHODS

    fx = _fixture(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = from_openstl(fx["method"], fx["config"], fx["state_dict"])
    model = small.names["model"]
    assert model in METHODS  # the one table knows every model a converter builds
    monkeypatch.setattr(PaperRecipes, "meta_model", lambda self, m: small)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net, info = load_model(Path(f"{name}.pth"), fx["state_dict"], model, "mmnist", "openstl", None)
    assert info["openstl_method"] == METHODS[model].name
    assert (_pred(net, fx) - fx["pred"].float()).abs().max().item() <= TOL


@pytest.mark.parametrize("name", ["mim", "predrnnpp", "e3dlstm", "mau", "swinlstm", "mmvp"])
def test_paper_config_in_openstl_keys_is_the_published_config(name):
    # the values of OpenSTL's configs/mmnist/<method>.py (c74deb5) for the keys that shape the network
    from stbench.evaluate import openstl_config_for

    published = {
        "mim": {"num_hidden": "128,128,128,128", "filter_size": 5, "patch_size": 4},
        "predrnnpp": {"num_hidden": "128,128,128,128", "filter_size": 5, "patch_size": 4},
        "e3dlstm": {"num_hidden": "128,128,128,128", "filter_size": 5, "patch_size": 4},
        "mau": {"num_hidden": "64,64,64,64", "filter_size": 5, "sr_size": 4, "tau": 5, "cell_mode": "normal"},
        "swinlstm": {"embed_dim": 128, "depths_downsample": "2,6", "depths_upsample": "6,2", "num_heads": "4,8",
                     "window_size": 4, "patch_size": 2},
        "mmvp": {"hid_S": 32, "hid_T": 192, "rrdb_encoder_num": 2, "rrdb_decoder_num": 2, "rrdb_enhance_num": 2,
                 "downsample_setting": "2,2,2"},
    }[name]
    _, cfg = openstl_config_for(name, "mmnist", None)
    assert {k: cfg[k] for k in published} == published


def test_eval_from_openstl_needs_no_config_for_mim(tmp_path, monkeypatch, capsys):
    # `stbench eval --from openstl --model mim` without --config (the fixture's sizes standing in for the paper's)
    from stbench.evaluate import PaperRecipes

    fx = _fixture("mim")
    small = from_openstl(fx["method"], fx["config"], fx["state_dict"])
    monkeypatch.setattr(PaperRecipes, "meta_model", lambda self, m: small)
    torch.save(fx["state_dict"], tmp_path / "mim_ep7.pth")
    out = tmp_path / "res"
    assert main(["eval", "--checkpoint", str(tmp_path / "mim_ep7.pth"), "--model", "mim", "--from", "openstl",
                 "--test-size", "1", "--batch-size", "1", "--out", str(out), "--no-profile"]) == 0
    (path,) = (out / "records/mmnist/paper").glob("mim__evaluated_mim_ep7-*.json")
    rec = json.loads(path.read_text())
    assert rec["status"] == "completed" and rec["config"]["openstl_method"] == "MIM"
    assert rec["config"]["source_config"]["num_hidden"] == "16,16" and rec["config"]["epochs"] == 7


def test_metavp_translators_plug_in_by_name():
    # the contract with stbench.interop.openstl_metavp (see the openstl_simvp docstring)
    from stbench.interop.openstl import _resolve
    from stbench.interop.openstl_simvp import SIMVP_TRANSLATORS

    ours = {"convmixer": "convmixer", "convnext": "convnext", "hornet": "hornet", "mlp": "mlpmixer",
            "moga": "moganet", "poolformer": "poolformer", "swin": "swin", "uniformer": "uniformer", "van": "van",
            "vit": "vit"}
    for model_type, temporal in ours.items():
        assert SIMVP_TRANSLATORS[model_type] == (temporal, f"stbench.interop.openstl_metavp:map_{model_type}")
        _resolve(SIMVP_TRANSLATORS[model_type][1])  # the key map exists
