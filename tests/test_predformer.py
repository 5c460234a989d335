"""PredFormer: function equivalence with its own code (fixture), published counts, weight-loading errors."""

import warnings
from pathlib import Path

import pytest
import torch

import stbench.models  # noqa: F401  (registration)
from stbench.errors import CheckpointError
from stbench.interop.predformer import from_predformer, load_predformer_checkpoint
from stbench.profile import count_flops, count_params
from stbench.registry import MODELS

FIXTURE = Path(__file__).parent / "data" / "predformer" / "predformer_tsst.pt"

# PredFormer's own model at its Moving MNIST config (fixture README; paper: 25.3M / 16.5G, 33.7M / 22.0G)
PUBLISHED = {"predformer": (25_297_728, 16_477_864_480), "predformer_quad": (33_719_104, 21_963_222_400)}


@pytest.fixture(scope="module")
def fx():
    return torch.load(FIXTURE, map_location="cpu", weights_only=True)


def _pred(model, inputs):
    with torch.no_grad():
        return model(inputs).pred


def test_fixture_equivalence(fx):
    model = from_predformer(fx["config"], fx["state_dict"])
    assert not model.training
    assert count_params(model) == fx["params"]
    err = (_pred(model, fx["inputs"].float()) - fx["pred"]).abs().max().item()
    assert err <= 1e-5, err


def test_fixture_equivalence_from_wrapped_state_dicts(fx):
    prefixed = {f"model.{k}": v for k, v in fx["state_dict"].items()}
    for sd in ({"state_dict": prefixed}, {"state_dict": fx["state_dict"]}, prefixed):
        model = from_predformer(fx["config"], sd)
        assert (_pred(model, fx["inputs"].float()) - fx["pred"]).abs().max().item() <= 1e-5


def test_load_checkpoint_file_for_eval(fx, tmp_path):
    path = tmp_path / "pf.pth"
    torch.save({"state_dict": {f"model.{k}": v for k, v in fx["state_dict"].items()}}, path)
    sizes = {k: fx["config"][k] for k in ("dim", "heads", "dim_head", "Ndepth")}
    model = load_predformer_checkpoint(path, "predformer", config=sizes)
    assert model.names["model"] == "predformer" and model.source_config["Ndepth"] == 1
    assert (_pred(model, fx["inputs"].float()) - fx["pred"]).abs().max().item() <= 1e-5
    # a parsed PredFormer config file: {"method": "PredFormer", "model_config": {...}}
    model = load_predformer_checkpoint(path, "predformer", config={"method": "PredFormer", "model_config": sizes})
    assert (_pred(model, fx["inputs"].float()) - fx["pred"]).abs().max().item() <= 1e-5


def test_missing_key_is_one_line_checkpoint_error(fx):
    sd = dict(fx["state_dict"])
    sd.pop("mlp_head.1.weight")
    with pytest.raises(CheckpointError, match="missing 1 key") as exc:
        from_predformer(fx["config"], sd)
    assert "\n" not in str(exc.value)


def test_shape_mismatch_is_one_line_checkpoint_error(fx):
    cfg = dict(fx["config"], scale_dim=2)  # SwiGLU width 64 instead of the checkpoint's 128
    with pytest.raises(CheckpointError, match="has shape") as exc:
        from_predformer(cfg, fx["state_dict"])
    assert "\n" not in str(exc.value)


def test_wrong_depth_and_model_name_are_checkpoint_errors(fx, tmp_path):
    with pytest.raises(CheckpointError, match="unexpected"):
        from_predformer(dict(fx["config"], Ndepth=0), fx["state_dict"])
    with pytest.raises(CheckpointError, match="predformer_quad"):
        load_predformer_checkpoint(fx["state_dict"], "tau")
    with pytest.raises(CheckpointError, match="not found"):
        load_predformer_checkpoint(tmp_path / "nope.pth", "predformer")


def test_long_horizon_feeds_predictions_through_the_whole_model(fx):
    # PredFormer's roll-out for after_seq > pre_seq: frames 10..19 are the model applied to frames 0..9
    m10 = from_predformer(fx["config"], fx["state_dict"])
    m25 = from_predformer(dict(fx["config"], after_seq=25), fx["state_dict"])
    x = fx["inputs"].float()
    p25 = _pred(m25, x)
    first = _pred(m10, x)
    second = _pred(m10, first)
    assert p25.shape == (1, 25, 1, 64, 64)
    assert torch.equal(p25[:, :10], first) and torch.equal(p25[:, 10:20], second)
    assert torch.equal(p25[:, 20:], _pred(m10, second)[:, :5])


def test_patch_order_for_several_channels():
    # hand computation: PredFormer flattens a patch as (row, column, channel) and writes the head's
    # outputs as (channel, row, column)
    from stbench.models.predformer import PredFormerDecoder, PredFormerEncoder

    C, p = 2, 2
    enc = PredFormerEncoder(in_shape=(C, 4, 4), patch_size=p, dim=C * p * p)
    with torch.no_grad():
        enc.embed.weight.copy_(torch.eye(C * p * p))
        enc.embed.bias.zero_()
    x = torch.arange(C * 16, dtype=torch.float32).reshape(1, C, 4, 4)
    z, _ = enc(x)  # (1, 8, 2, 2)
    for i in range(2):
        for j in range(2):
            for r in range(p):
                for s in range(p):
                    for c in range(C):
                        assert z[0, (r * p + s) * C + c, i, j] == x[0, c, i * p + r, j * p + s]
    dec = PredFormerDecoder(latent_shape=(C * p * p, 2, 2), out_shape=(C, 4, 4), patch_size=p)
    dec.norm = torch.nn.Identity()
    with torch.no_grad():
        dec.proj.weight.copy_(torch.eye(C * p * p))
        dec.proj.bias.zero_()
    y = dec(z, None)
    for i in range(2):
        for j in range(2):
            for c in range(C):
                for r in range(p):
                    for s in range(p):
                        assert y[0, c, i * p + r, j * p + s] == z[0, (c * p + r) * p + s, i, j]


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_paper_preset_param_counts(name):
    sizes = MODELS.entry(name).meta["presets"]["paper"]["model"]
    with torch.device("meta"):
        model = MODELS.get(name)(**sizes)
    assert count_params(model) == PUBLISHED[name][0]


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_config_param_counts_through_interop(name):
    from stbench.interop.predformer import PUBLISHED_CONFIGS, build_from_config

    with torch.device("meta"):
        model = build_from_config(PUBLISHED_CONFIGS[name])
    assert count_params(model) == PUBLISHED[name][0]
    assert model.names["model"] == name


def test_paper_preset_is_the_published_recipe():
    for name in PUBLISHED:
        paper = MODELS.entry(name).meta["presets"]["paper"]
        assert (paper["optimizer"], paper["lr"], paper["weight_decay"], paper["batch_size"], paper["epochs"]) == \
            ("adamw", 1e-3, 1e-2, 16, 2000)
    assert MODELS.entry("predformer").meta["presets"]["paper"]["model"]["Ndepth"] == 6
    assert MODELS.entry("predformer_quad").meta["presets"]["paper"]["model"]["Ndepth"] == 8


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_paper_preset_fvcore_flops(name):
    sizes = MODELS.entry(name).meta["presets"]["paper"]["model"]
    assert count_flops(MODELS.get(name)(**sizes)) == PUBLISHED[name][1]


def test_smoke_preset_trains_one_step():
    sizes = MODELS.entry("predformer").meta["presets"]["smoke"]["model"]
    model = MODELS.get("predformer")(**sizes)
    x, y = torch.rand(2, 10, 1, 64, 64), torch.rand(2, 10, 1, 64, 64)
    loss, _ = model.loss(model(x), x, y)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", sorted(PUBLISHED))
@pytest.mark.parametrize("preset", ["paper", "quick", "smoke"])
def test_registry_presets_agree_with_baselines_toml(name, preset):
    from stbench.recipes import load_recipe

    cfg = load_recipe("mmnist", name, preset).config
    entry = MODELS.entry(name).meta["presets"][preset]
    assert {k: cfg.get(k) for k in entry} == entry


def test_eval_from_predformer_writes_a_record_beside_the_published_row(fx, tmp_path, monkeypatch, capsys):
    """`stbench eval --from predformer` on PredFormer's own (fixture-sized) weights -> an `evaluated`
    record; filed as a paper-size 2000-epoch evaluation it sits beside PredFormer's published row."""
    import json

    from stbench.cli import main
    from stbench.report import build_report

    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "predformer_tiny_ep7.pth"
    torch.save({"state_dict": {f"model.{k}": v for k, v in fx["state_dict"].items()},
                "model_config": dict(fx["config"])}, ckpt)
    out = tmp_path / "res"
    assert main(["eval", "--checkpoint", str(ckpt), "--model", "predformer", "--from", "predformer",
                 "--test-size", "2", "--out", str(out), "--no-profile"]) == 0
    rec = json.loads(next((out / "records/mmnist/custom").glob("predformer__evaluated_*.json")).read_text())
    assert rec["kind"] == "evaluated" and rec["status"] == "completed"
    assert rec["checkpoint"]["source"] == "predformer" and rec["config"]["source_config"]["dim"] == fx["config"]["dim"]
    assert set(rec["metrics"]) >= {"mse", "mae", "ssim", "psnr"}
    paper = out / "records/mmnist/paper"
    paper.mkdir(parents=True)
    rec.update(preset="paper", config={**rec["config"], "epochs": 2000})
    (paper / "predformer__evaluated_predformer_ep2000.json").write_text(json.dumps(rec))
    table = build_report(out, None, ["md"], console=None, plots=False).leaderboards["mmnist", "paper"]
    assert list(table["kind"]) == ["evaluated"] and list(table["mse_published"]) == [pytest.approx(12.4)]


def test_traced_einsum_form_equals_the_fused_attention():
    """fvcore counts FLOPs on a jit trace, which runs PredFormer's einsum attention; training and evaluation run
    F.scaled_dot_product_attention. Both must be one function: the traced output equals the eager one."""
    from stbench.models.predformer import Attention

    torch.manual_seed(0)
    att = Attention(dim=32, heads=4, dim_head=8).eval()
    x = torch.randn(3, 10, 32)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the qkv unpacking, fixed-size here
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.trace's own notice; fvcore traces too
        traced = torch.jit.trace(att, (x,), check_trace=False)
        assert "einsum" in str(traced.graph) and "scaled_dot_product" not in str(traced.graph)
        eager = att(x)
        manual = att.qkv(x).reshape(3, 10, 3, 4, 8).permute(2, 0, 3, 1, 4)
        w = (manual[0] @ manual[1].transpose(-1, -2) / 8 ** 0.5).softmax(-1)
        by_hand = att.proj((w @ manual[2]).transpose(1, 2).reshape(3, 10, 32))
    torch.testing.assert_close(traced(x), eager, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(eager, by_hand, rtol=1e-5, atol=1e-6)
