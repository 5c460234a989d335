"""Recipe resolution: registry entry -> baselines/<dataset>.toml -> CLI; plugins without a TOML line;
one eval batch size rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from stbench.errors import RecipeError
from stbench.models.base import RecurrentTemporal
from stbench.recipes import eval_batch_size, load_recipe
from stbench.registry import MODELS, TEMPORAL, load_plugin

PLUGIN = '''
from stbench.models.recurrent import ConvLSTM
from stbench.registry import TEMPORAL

@TEMPORAL.register("myrnn_test", presets={
    "quick": {"epochs": 3, "lr": 4e-3, "model": {"num_hidden": [12, 12], "filter_size": 3}},
    "smoke": {"lr": 2e-3, "model": {"num_hidden": [4], "filter_size": 3}}},
    schedule={"kind": "reverse", "r_sampling_step_1": 10, "r_sampling_step_2": 20, "r_exp_alpha": 5})
class MyRNN(ConvLSTM):
    pass
'''


@pytest.fixture
def plugin(tmp_path):
    path = tmp_path / "myrnn_plugin.py"
    path.write_text(PLUGIN)
    load_plugin(str(path))
    yield "myrnn_test"
    TEMPORAL.unregister("myrnn_test")


def test_plugin_without_toml_gets_its_own_sizes_and_schedule(plugin):
    r = load_recipe("mmnist", plugin, "smoke")
    assert issubclass(TEMPORAL.get(plugin), RecurrentTemporal)
    assert r.config["model"] == {"num_hidden": [4], "filter_size": 3} and r.config["lr"] == 2e-3
    assert r.config["budget"] == "samples=32" and r.config["batch_size"] == 4  # the dataset's [presets.smoke]
    assert r.config["sampling"]["kind"] == "reverse" and r.config["sampling"]["r_sampling_step_2"] == 20
    model = r.build_model()
    assert model.hparams["num_hidden"] == [4] and model.names["encoder"] == "simvp"
    q = load_recipe("mmnist", plugin, "quick", overrides={"epochs": 1}, sets=["model.filter_size=5", "lr=1e-4"])
    assert q.config["epochs"] == 1 and q.config["lr"] == 1e-4  # CLI wins
    assert q.config["model"]["num_hidden"] == [12, 12] and q.config["model_overrides"] == {"filter_size": 5}
    # a recipe's own sampling table wins over the registered schedule
    s = load_recipe("mmnist", plugin, "smoke", sets=["sampling.kind=teacher"])
    assert s.config["sampling"]["kind"] == "teacher"


def test_order_registry_then_toml_then_cli(tmp_path, monkeypatch):
    (tmp_path / "toy.toml").write_text(
        "[presets.quick]\nepochs = 7\nbatch_size = 16\nlr = 9.0\n"
        "[models.tau.quick]\nbatch_size = 2\nmodel = { N_T = 3 }\n")
    monkeypatch.setenv("STBENCH_BASELINES", str(tmp_path))
    cfg = load_recipe("toy", "tau", "quick").config
    entry = MODELS.entry("tau").meta["presets"]["quick"]
    assert cfg["lr"] == entry["lr"] == 3e-3  # the entry over the dataset's preset defaults
    assert cfg["epochs"] == 7 and cfg["batch_size"] == 2  # TOML model table over the entry
    assert cfg["model"] == {**entry["model"], "N_T": 3}  # merged key by key
    assert load_recipe("toy", "tau", "quick", overrides={"batch_size": 5}).config["batch_size"] == 5


def test_recurrent_seed_models_train_with_their_schedule():
    assert load_recipe("mmnist", "predrnn_v2", "paper").config["sampling"]["kind"] == "reverse"
    # quick schedules are relative to the run's steps (stbench.budget.resolve_sampling lays them over the budget)
    assert MODELS.entry("convlstm").meta["presets"]["quick"]["sampling"]["relative"] is True
    cfg = load_recipe("mmnist", "convlstm@simvp", "quick").config
    assert cfg["sampling"]["stop_iter"] == 0.6667 and cfg["budget"] == "samples=4000" and "epochs" not in cfg
    assert "sampling" not in load_recipe("mmnist", "tau", "quick").config


def test_dataset_without_recipe_file_is_a_one_line_error(tmp_path, monkeypatch):
    """It used to get empty presets silently and fail later as KeyError: 'epochs'."""
    from toydata import MovingSquare

    from stbench.registry import DATASETS, RegistryError

    monkeypatch.setenv("STBENCH_BASELINES", str(tmp_path))
    DATASETS.register("newdata_test", obj=MovingSquare)
    try:
        with pytest.raises(RecipeError) as err:
            load_recipe("newdata_test", "tau", "quick")
    finally:
        DATASETS.unregister("newdata_test")
    msg = str(err.value)
    assert "\n" not in msg and "no epochs for tau on newdata_test" in msg and "newdata_test.toml" in msg
    assert "--epochs" in msg
    with pytest.raises(RegistryError, match="unknown dataset 'newdata_tset'"):
        load_recipe("newdata_tset", "tau", "quick")


def test_a_plugin_dataset_ships_its_recipe_beside_its_code(tmp_path, monkeypatch):
    """A dataset stbench does not ship names its recipe file on its registry entry (relative to the registering
    module's folder), so a plugin needs no STBENCH_BASELINES; a named file that is missing is a one-line error."""
    from stbench.registry import DATASETS, load_plugin

    plug = tmp_path / "plug"
    plug.mkdir()
    (plug / "owndata_plug.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from toydata import MovingSquare\n"
        "from stbench.registry import DATASETS\n"
        "DATASETS.register('owndata_test', obj=MovingSquare, recipe='owndata.toml')\n"
        "DATASETS.register('nofile_test', obj=MovingSquare, recipe='missing.toml')\n")
    (plug / "owndata.toml").write_text('[presets.quick]\nepochs = 3\nbatch_size = 5\ntest_size = 7\n')
    load_plugin(str(plug / "owndata_plug.py"))
    try:
        cfg = load_recipe("owndata_test", "tau", "quick").config
        # the file's keys, under TAU's own quick keys (its batch 4: the registry entry's preset comes after)
        assert (cfg["epochs"], cfg["test_size"], cfg["batch_size"]) == (3, 7, 4)
        with pytest.raises(RecipeError) as err:
            load_recipe("nofile_test", "tau", "quick")
        assert "\n" not in str(err.value) and str(plug / "missing.toml") in str(err.value)
        # the shipped baselines folder still comes first for a name it has
        assert load_recipe("mmnist", "tau", "quick").config["budget"] == "samples=4000"
    finally:
        DATASETS.unregister("owndata_test")
        DATASETS.unregister("nofile_test")


def test_eval_batch_size_one_rule():
    assert eval_batch_size({"batch_size": 4}) == 4
    assert eval_batch_size({"batch_size": 4, "eval_batch_size": 100}) == 100


def test_runner_and_loop_use_the_same_eval_batch(tmp_path):
    """train.py fell back to the training batch, runner.py to 16."""
    import torch
    from toydata import MovingSquare

    import stbench
    from stbench import train as T
    from stbench.precision import make_precision
    from stbench.runner import RunOptions, _floors

    seen = []

    class Recording(MovingSquare):
        def batches(self, split, batch_size, **kw):
            seen.append((split, batch_size))
            return super().batches(split, batch_size, **kw)

    ds = Recording()
    cfg = {"epochs": 1, "batch_size": 3, "lr": 1e-3, "train_size": 3, "val_size": 6, "test_size": 6}
    model = stbench.create_model("convlstm", in_shape=(4, 1, 16, 16), t_out=4, patch_size=4, num_hidden=(4,),
                                 filter_size=3)
    cpu = torch.device("cpu")
    T.train(model, ds, cfg, device=cpu, prec=make_precision("fp32", cpu), seed=0, ckpt_path=None)
    T.test(model, ds, cfg, cpu, make_precision("fp32", cpu), metrics=("mse",))
    _floors(RunOptions(models=["x"], dataset="toy", preset="smoke", out=tmp_path), ds, cfg, None)
    assert sorted(set(seen)) == [("test", 3), ("train", 3), ("val", 3)]




def test_extends_lays_a_file_over_its_base(tmp_path, monkeypatch):
    (tmp_path / "_base.toml").write_text(
        "[presets.quick]\nbudget = \"samples=8\"\neval_batch_size = 16\ndata = { a = 1, b = 2 }\n"
        "[models.tau.quick]\nmodel = { N_T = 3 }\n")
    (tmp_path / "child.toml").write_text(
        'extends = "_base.toml"\n[presets.quick]\neval_batch_size = 2\ndata = { b = 5 }\n')
    monkeypatch.setenv("STBENCH_BASELINES", str(tmp_path))
    from stbench.recipes import resolve

    r, src = resolve("child", "tau", "quick")
    assert r.config["eval_batch_size"] == 2 and r.config["budget"] == "samples=8"
    assert r.config["data"] == {"a": 1, "b": 5}  # tables merge key by key at any depth
    assert r.config["model"]["N_T"] == 3
    assert src["budget"] == src["data.a"] == "_base.toml [presets.quick]"
    assert src["data.b"] == "child.toml [presets.quick]" and src["model.N_T"] == "_base.toml [models.tau.quick]"
    assert src["lr"].startswith("MODELS entry 'tau'")


@pytest.mark.parametrize("files, match", [
    ({"a.toml": 'extends = "b.toml"\n', "b.toml": 'extends = "a.toml"\n'}, r"cycle \(a.toml -> b.toml -> a.toml\)"),
    ({"a.toml": 'extends = "gone.toml"\n'}, r"extends 'gone.toml', which does not exist"),
    ({"a.toml": "extends = 3\n"}, r"must be a string naming a .toml file"),
])
def test_extends_errors_are_one_line_and_name_the_fix(tmp_path, monkeypatch, files, match):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    monkeypatch.setenv("STBENCH_BASELINES", str(tmp_path))
    with pytest.raises(RecipeError, match=match) as err:
        load_recipe("a", "tau", "quick")
    assert "\n" not in str(err.value)


def test_every_shipped_recipe_resolves_and_weather_and_ns2d_long_extend_a_base():
    from stbench.recipes import recipe_chain, recipe_path

    assert [p.name for p, _ in recipe_chain(recipe_path("ns2d_long"))] == ["ns2d_long.toml", "ns2d.toml"]
    assert [p.name for p, _ in recipe_chain(recipe_path("weather_t2m_5_625"))][1:] == ["_weather_5_625.toml"]
    long, short = (load_recipe(d, "tau", "quick").config for d in ("ns2d_long", "ns2d"))
    assert long["data"] == {**short["data"], "traj_frames": 50} and long["budget"] != short["budget"]


def test_recipe_command_explains_every_key(capsys):
    from stbench.cli import main

    assert main(["recipe", "--model", "convlstm", "--dataset", "mmnist", "--preset", "quick", "--explain",
                 "--set", "lr=0.5"]) == 0
    out = capsys.readouterr().out
    lines = {ln.split("=")[0].strip(): ln for ln in out.splitlines() if not ln.startswith("#")}
    assert "mmnist.toml [presets.quick]" in lines["budget"]
    assert "mmnist.toml [models.convlstm.quick]" in lines["batch_size"]
    assert "MODELS entry 'convlstm' (stbench.models.zoo_recurrent)" in lines["model.num_hidden"]
    assert "command line (--set lr=0.5)" in lines["lr"]
    assert "stbench default" in lines["min_lr"]
    assert main(["recipe", "--model", "tau", "--dataset", "mmnist", "--preset", "smoke", "--format", "json"]) == 0
    import json

    assert json.loads(capsys.readouterr().out)["config"]["budget"] == "samples=32"
    assert main(["recipe", "--model", "nosuchmodel", "--dataset", "mmnist"]) == 2
    assert "unknown model 'nosuchmodel'" in capsys.readouterr().err


def test_every_registered_model_dataset_and_preset_resolves():
    """Every dataset has smoke / quick / paper recipes for every model (The Well included): no run asks for
    --epochs or --batch-size."""
    from stbench.recipes import PRESETS
    from stbench.registry import DATASETS

    for dataset in DATASETS.names():
        for model in MODELS.names():
            for preset in PRESETS:
                cfg = load_recipe(dataset, model, preset).config
                assert (cfg.get("epochs") or cfg.get("budget")) and cfg["batch_size"] >= 1, (dataset, model, preset)
