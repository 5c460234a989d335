import pytest

import stbench
from stbench.models.base import ParallelTemporal
from stbench.registry import MODELS, TEMPORAL, PluginError, Registry, RegistryError, load_plugin


def test_builtins_found_through_the_builtin_index():
    names = TEMPORAL.names()
    assert {"incepu", "gsta", "tau"} <= set(names)
    assert TEMPORAL.entry("tau").source == "built-in"
    assert {"simvp", "gsta", "tau", "convlstm", "predrnn"} <= set(MODELS.names())
    # tests build a model at its smoke preset sizes (tests/conftest.py:smoke_model): no built-in tiny twins
    assert not [n for n in MODELS.names() if MODELS.entry(n).meta.get("tiny")]


def test_every_builtin_builder_states_its_keywords():
    """A built-in model's builder is no opaque ``**kw``: its signature lists the codec / shape keywords of
    ``named`` and the published sizes (which the built model carries unless overridden)."""
    import inspect

    for name in MODELS.names():
        if MODELS.entry(name).source != "built-in":
            continue
        params = inspect.signature(MODELS.get(name)).parameters
        assert {"encoder", "decoder", "in_shape", "t_out", "recipe_defaults"} <= set(params), name
        sizes = {k: p.default for k, p in params.items() if k not in
                 {"encoder", "decoder", "in_shape", "t_out", "recipe_defaults", "overrides"}}
        assert sizes, f"{name}: no published sizes in its signature"
    tau = inspect.signature(MODELS.get("tau")).parameters
    assert (tau["hid_S"].default, tau["N_T"].default, tau["ddr_alpha"].default) == (64, 8, 0.1)  # TAU paper


def test_unknown_name_suggests_and_lists():
    with pytest.raises(RegistryError) as ei:
        stbench.create_model("tua")
    msg = str(ei.value)
    assert "unknown model 'tua'" in msg and "did you mean 'tau'" in msg and "Available:" in msg
    assert "\n" not in msg


def test_duplicate_name_refused():
    reg = Registry("thing", "stbench.things")

    @reg.register("a")
    class A:
        pass

    with pytest.raises(RegistryError, match="duplicate thing name 'a'"):
        reg.register("a", obj=type("B", (), {}))
    reg.register("a", obj=A)  # the same object again is not a duplicate


def test_base_class_checked():
    reg = Registry("temporal module", "x", base=ParallelTemporal)
    with pytest.raises(TypeError, match="must subclass ParallelTemporal"):
        reg.register("bad", obj=type("Bad", (), {}))


@pytest.fixture
def tau_tiny():
    """A tiny test variant (``tiny=True`` on its entry, as a plugin may declare one): no built-in has any."""
    MODELS.register("tau_tiny", obj=lambda **kw: stbench.create_model("tau", **kw), family="parallel", tiny=True)
    yield
    MODELS.unregister("tau_tiny")


def test_one_wildcard_rule_for_api_run_and_list(capsys, tau_tiny):
    """Before: list_models("tau*") included tau_tiny while `run --models 'tau*'` did not."""
    from stbench.cli import _model_rows, expand_models

    assert stbench.list_models("tau*") == ["tau"] == expand_models("tau*")
    assert [r["name"] for r in _model_rows("tau*")] == ["tau"]
    assert stbench.list_models("tau*tiny") == ["tau_tiny"] == expand_models("tau*tiny")
    assert stbench.list_models("tau_tiny,gsta") == ["tau_tiny", "gsta"]  # a plain name is itself
    assert "tau_tiny" in stbench.list_models("tau*", include_tiny=True)
    assert "tau_tiny" in stbench.list_models() and "tau_tiny" not in stbench.list_models(include_tiny=False)


def test_plugin_file_registers_and_broken_plugin_is_named(tmp_path):
    good = tmp_path / "myplug.py"
    good.write_text(
        "from stbench.models.base import ParallelTemporal\n"
        "from stbench.registry import TEMPORAL\n"
        "@TEMPORAL.register('ident_test')\n"
        "class Ident(ParallelTemporal):\n"
        "    def __init__(self, *, in_shape, t_out):\n"
        "        super().__init__()\n"
        "    def forward(self, z):\n"
        "        return z\n"
    )
    load_plugin(str(good))
    try:
        e = TEMPORAL.entry("ident_test")
        assert e.source == f"plugin {good}"
        m = stbench.create_model("ident_test", in_shape=(4, 1, 16, 16), t_out=4, hid_S=4, N_S=2)
        assert m.names["temporal"] == "ident_test" and not m.recurrent
    finally:
        TEMPORAL.unregister("ident_test")
    bad = tmp_path / "broken.py"
    bad.write_text("import not_a_real_module_xyz\n")
    with pytest.raises(PluginError, match="plugin '.*broken.py' failed to load: ModuleNotFoundError"):
        load_plugin(str(bad))
    with pytest.raises(PluginError, match="no such file"):
        load_plugin(str(tmp_path / "missing.py"))


def test_lazy_entry_imports_on_first_use(tmp_path, monkeypatch):
    import sys

    (tmp_path / "lazy_mod_xyz.py").write_text("class Thing:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("thing", "stbench.things")
    reg.register("thing", obj="lazy_mod_xyz:Thing", paper="a lazy one")
    reg.register("broken", obj="lazy_mod_missing_xyz:Thing")
    assert reg.names() == ["broken", "thing"] and reg._entries["thing"].meta["paper"] == "a lazy one"
    assert "lazy_mod_xyz" not in sys.modules  # listed without importing
    cls = reg.get("thing")
    assert cls.__name__ == "Thing" and "lazy_mod_xyz" in sys.modules
    with pytest.raises(PluginError, match="thing 'broken' .* cannot be imported: ModuleNotFoundError"):
        reg.get("broken")


def test_metric_registers_in_one_call_and_runs_everywhere():
    import torch

    from stbench.metrics import MetricAccumulator, metric_def, metrics_meta, register_metric
    from stbench.registry import METRICS

    @register_metric("max_abs_test", label="MaxAbs", higher_is_better=False, convention="max |pred - true| per frame")
    def max_abs(pred, true):
        return (pred - true).abs().amax(dim=(2, 3, 4))

    try:
        d = metric_def("max_abs_test")
        assert (d.label, d.higher_is_better, d.per_frame) == ("MaxAbs", False, True)
        assert metrics_meta(["mse", "max_abs_test"])["max_abs_test"]["convention"] == "max |pred - true| per frame"
        p, t = torch.zeros(2, 3, 1, 4, 4), torch.zeros(2, 3, 1, 4, 4)
        t[0, 1, 0, 2, 2] = 0.5  # hand value: 0.5 in one frame of six -> mean 0.5 / 6
        acc = MetricAccumulator(("mse", "max_abs_test"), keep_sequences=True)
        acc.update(p, t)
        r = acc.result()
        assert r["max_abs_test"] == pytest.approx(0.5 / 6) and r["per_frame"]["max_abs_test"][1] == 0.25
        assert list(acc.sequences()["max_abs_test"]) == pytest.approx([0.5 / 3, 0.0])
    finally:
        METRICS.unregister("max_abs_test")
