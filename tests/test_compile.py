"""``--compile`` (stbench/compile.py): compiled and eager training steps and evaluations agree, the choice is made
and recorded as documented, and a model that does not compile runs eager with one line.

The default run traces with the ``aot_eager`` backend (Dynamo + AOTAutograd, as inductor gets them, without the
C++ code generation that takes minutes per model on 2 cores); ``-m slow`` compiles every zoo model with inductor."""

import copy
import json

import pytest
import torch

import stbench.compile as C
from stbench.models.sampling import make_schedule
from stbench.precision import Precision
from stbench.registry import MODELS

PUBLISHED_MODELS = [n for n in MODELS.names() if not MODELS.entry(n).meta.get("tiny")
                    and MODELS.entry(n).source == "built-in"]
FAST = ["simvp", "convlstm"]  # one parallel, one recurrent (scheduled sampling) model in the default run
CPU = torch.device("cpu")
FP32 = Precision("fp32", CPU, "nchw")
# fp32, same maths reordered by fusion: losses and metrics agree to this relative tolerance
RTOL, ATOL = 1e-4, 1e-6


def _smoke(name):
    from stbench.recipes import load_recipe

    torch.manual_seed(0)
    return load_recipe("mmnist", name, "smoke").build_model(name)


def _batch(m, b=2):
    g = torch.Generator().manual_seed(1)
    t_in, c, h, w = m.in_shape
    x, y = torch.rand(b, t_in, c, h, w, generator=g), torch.rand(b, m.t_out, c, h, w, generator=g)
    mask = make_schedule("linear").mask(0, b, t_in, m.t_out, "cpu", generator=g) if m.recurrent else None
    return x, y, mask


def compare(name, backend, region="step"):
    """Loss, gradients and evaluation metrics of ``name`` at smoke size, eager vs compiled with ``backend`` (the
    whole step as one graph, or ``region`` cell: a recurrent model's time step). Random layers are compared on the
    same draws (``fallback_random``); in a run, compiled code draws its own."""
    from stbench.metrics import MetricAccumulator

    m = _smoke(name)
    x, y, mask = _batch(m)
    results = []
    for compiled in (False, True):
        mc = copy.deepcopy(m)
        step, _ = C.compiled_part(mc, True, CPU, backend, region) if compiled else (C.TrainStep(mc, mc, False, CPU),
                                                                                    None)
        torch.manual_seed(123)  # stochastic layers (SwinLSTM's drop-path) draw the same numbers in both
        with torch._inductor.config.patch(fallback_random=True):  # inductor: eager's RNG, not its own stream
            loss, _ = step(x, y, mask)
        loss.backward()
        grads = [p.grad.clone() for p in mc.parameters() if p.grad is not None]
        mc.eval()
        fwd, _ = C.compiled_part(mc, False, CPU, backend, region) if compiled else (C.EvalForward(mc, False, CPU), None)
        with torch.no_grad():
            acc = MetricAccumulator(metrics=("mse", "mae", "ssim"))
            acc.update(fwd(x), y)
        results.append((loss.detach(), grads, {k: acc.result()[k] for k in ("mse", "mae", "ssim")}))
    (l0, g0, r0), (l1, g1, r1) = results
    torch.testing.assert_close(l1, l0, rtol=RTOL, atol=ATOL)
    # gradients: relative L2 per tensor within 1%: a gradient summed over the batch can nearly cancel, which
    # magnifies the reordering in relative terms (inductor gave one SimVP tensor 0.15%)
    for a, b in zip(g1, g0):
        assert float((a - b).norm()) <= 1e-2 * float(b.norm()) + 1e-6, float((a - b).norm() / b.norm())
    for k in r0:
        assert r1[k] == pytest.approx(r0[k], rel=RTOL, abs=ATOL), k


@pytest.mark.parametrize("name", FAST)
def test_compiled_matches_eager_fast(name):
    compare(name, "aot_eager")


RECURRENT = [n for n in PUBLISHED_MODELS if MODELS.entry(n).meta.get("family") == "recurrent"]


@pytest.mark.parametrize("name", ["convlstm", "predrnn_v2", "mau"])
def test_compiled_time_step_matches_eager(name):
    """The cell region: ConvLSTM, PredRNN.V2 (an auxiliary loss out of every step), MAU (a window of past states)."""
    compare(name, "aot_eager", region="cell")


@pytest.mark.slow
@pytest.mark.parametrize("name", RECURRENT)
def test_every_recurrent_zoo_model_compiles_per_time_step_like_eager(name):
    compare(name, "inductor", region="cell")


def test_the_cell_region_replays_one_graph_at_every_time_step():
    """Every time step of the loop runs a compiled graph, and a handful of graphs serve all of them (the first
    step's input and state differ from the later ones'), across steps with new sampling masks; without autograd
    (eval) only when eval is enabled."""
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    m = _smoke("convlstm")
    graphs, calls = CompileCounter(), []

    def backend(gm, inputs):
        graphs(gm, inputs)
        return lambda *a: (calls.append(1), gm(*a))[1]

    e = C.enable(m, train=True, eval=False, region="cell", backend=backend, say=pytest.fail)
    assert e.region == "cell" and not e.whole(train=True)
    step = C.train_step(m, m, CPU)
    assert step.compiled is None  # the loop stays eager; its time steps are compiled
    for seed in range(2):
        x, y, _ = _batch(m)
        mask = make_schedule("linear").mask(seed, 2, m.in_shape[0], m.t_out, "cpu",
                                            generator=torch.Generator().manual_seed(seed))
        step(x, y, mask)[0].backward()
    n_steps = m.in_shape[0] + m.t_out - 1
    assert len(calls) == 2 * n_steps and 1 <= graphs.frame_count <= 2 and e.cell.graph_breaks == 0
    with torch.no_grad():
        m.eval()(x)
    assert len(calls) == 2 * n_steps  # eval not enabled: eager
    C.disable(m)
    step(x, y, mask)
    assert len(calls) == 2 * n_steps


def test_a_parallel_model_has_no_cell_region():
    m = _smoke("simvp")
    assert C.default_region(m) == "step" and C.default_region(_smoke("convlstm")) == "cell"
    assert C.enable(m, train=True, eval=False, region="cell", backend="aot_eager").region == "step"
    C.disable(m)
    with pytest.raises(ValueError, match="choose one of step, cell"):
        C.enable(m, train=True, eval=False, region="loop")


def test_auto_measures_a_recurrent_model_per_time_step(monkeypatch):
    monkeypatch.setattr(C, "MIN_COMPILE_S", 0.0)
    c = C.choose_compile(_smoke("convlstm"), "auto", prec=FP32, batch=2, steps=10**6, device=CPU, reps=1,
                         model_name="convlstm", backend="aot_eager")
    d = c.as_dict()
    assert d["region"] == "cell" and d["compile_s"] is not None and c.train == (d["compiled_step_ms"] <
                                                                                 d["eager_step_ms"])
    assert c.eval == c.train and ("per time step" in c.line()) == c.train


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in PUBLISHED_MODELS if not C.not_compiling_reason(n)])
def test_every_zoo_model_compiles_like_eager(name):
    """Inductor, every published model at smoke size (minutes per model on 2 CPU cores)."""
    compare(name, "inductor")


def test_declared_models_are_registered_names():
    assert set(C.NOT_COMPILING) <= set(MODELS.names()), "NOT_COMPILING names a model the registry does not have"
    assert all(set(v) <= {*C.REGIONS, "any"} for v in C.NOT_COMPILING.values())


def test_a_model_declared_for_one_region_compiles_in_the_other():
    m = _smoke("swinlstm")
    kw = dict(prec=FP32, batch=2, steps=10, device=CPU, model_name="swinlstm")
    step, cell = C.choose_compile(m, "step", **kw), C.choose_compile(m, "on", **kw)
    assert not step.train and "declared not to compile" in step.line() and "--compile cell" in step.line()
    assert cell.region == "cell" and cell.train


def test_scheduled_sampling_masks_reuse_one_graph():
    """A new random mask every step is a new input, not a new graph; an odd batch size runs eager."""
    from torch._dynamo.testing import CompileCounterWithBackend

    torch._dynamo.reset()
    m = _smoke("convlstm")
    counter = CompileCounterWithBackend("aot_eager")
    step = C.TrainStep(m, m, True, CPU, backend=counter, say=pytest.fail)
    for seed in range(3):
        x, y, _ = _batch(m)
        g = torch.Generator().manual_seed(seed)
        mask = make_schedule("linear").mask(seed, 2, m.in_shape[0], m.t_out, "cpu", generator=g)
        step(x, y, mask)[0].backward()
    assert counter.frame_count == 1 and step.graph_breaks == 0
    x, y, mask = _batch(m, b=1)  # another size: eager, no recompile
    step(x, y, mask)
    assert counter.frame_count == 1 and step.eager_batches == 1


def test_copies_of_one_model_share_one_graph():
    """auto measures on a copy; the run's model then reuses that graph instead of compiling again."""
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    m = _smoke("simvp")
    x, y, mask = _batch(m)
    counter = CompileCounter()
    for _ in range(3):
        mc = copy.deepcopy(m)
        C.TrainStep(mc, mc, True, CPU, backend=counter, say=pytest.fail)(x, y, mask)
    assert counter.frame_count == 1


def test_eval_partial_batch_runs_eager():
    torch._dynamo.reset()
    from torch._dynamo.testing import CompileCounterWithBackend

    m = _smoke("simvp").eval()
    counter = CompileCounterWithBackend("aot_eager")
    fwd = C.EvalForward(m, True, CPU, backend=counter, say=pytest.fail)
    with torch.no_grad():
        for b in (3, 3, 1):
            fwd(_batch(m, b)[0])
    assert (counter.frame_count, fwd.batch, fwd.eager_batches) == (1, 3, 1)


def test_a_compile_error_falls_back_with_one_line():
    def broken(gm, inputs):
        raise RuntimeError("no code for this op")

    torch._dynamo.reset()
    m = _smoke("simvp")
    lines = []
    step = C.TrainStep(m, m, True, CPU, backend=broken, name="simvp", say=lines.append)
    x, y, mask = _batch(m)
    loss, _ = step(x, y, mask)
    assert torch.isfinite(loss) and step.compiled is None and len(lines) == 1
    assert lines[0].startswith("compile: simvp did not compile") and "running eager" in lines[0]


def test_graph_breaks_are_said():
    from stbench.models.base import ModelOutput

    class Breaks(torch.nn.Module):
        def forward(self, x):
            torch._dynamo.graph_break()
            return ModelOutput(pred=x * 2)

    torch._dynamo.reset()
    lines = []
    f = C.EvalForward(Breaks(), True, CPU, backend="eager", name="breaks", say=lines.append)
    f(torch.ones(2, 3))
    assert f.graph_breaks == 1 and len(lines) == 1 and "breaks compiled with graph breaks (1 kind(s))" in lines[0]


def test_choice_off_on_declared_and_unknown(monkeypatch):
    m = _smoke("simvp")
    kw = dict(prec=FP32, batch=2, steps=10, device=CPU, model_name="simvp")
    off = C.choose_compile(m, None, **kw)
    assert (off.asked, off.train, off.eval, off.measured) == ("off", False, False, False)
    on = C.choose_compile(m, "on", **kw)
    assert (on.train, on.eval) == (True, True)
    monkeypatch.setitem(C.NOT_COMPILING, "simvp", {"any": "a test reason"})
    declared = C.choose_compile(m, "on", **kw)
    assert not declared.train and "declared not to compile: a test reason" in declared.line()
    with pytest.raises(ValueError, match="choose one of off, on, auto"):
        C.choose_compile(m, "yes", **kw)


def test_auto_does_not_compile_for_a_run_shorter_than_a_compile(monkeypatch):
    monkeypatch.setattr(C, "MIN_COMPILE_S", 1e9)
    c = C.choose_compile(_smoke("simvp"), "auto", prec=FP32, batch=2, steps=3, device=CPU, reps=1,
                         backend=lambda gm, inputs: pytest.fail("compiled"))
    assert c.measured and not c.train and c.compile_s is None and "less than a compile" in c.line()


def test_auto_counts_compile_time_against_the_run(monkeypatch):
    monkeypatch.setattr(C, "MIN_COMPILE_S", 0.0)
    m = _smoke("simvp")
    kw = dict(prec=FP32, batch=2, device=CPU, model_name="simvp", reps=1, backend="aot_eager")
    c = C.choose_compile(m, "auto", steps=5, **kw)
    d = c.as_dict()
    assert c.measured and d["steps"] == 5 and d["compile_s"] is not None and d["eager_step_ms"] > 0
    assert c.train == (d["est_compiled_s"] < d["est_eager_s"])
    assert c.line().startswith("compile auto: ") and "\n" not in c.line()
    # the same numbers over a run a million times longer: compile time no longer matters, step time decides
    c.steps = 10**6
    assert (c.est_compiled_s < c.est_eager_s) == (c.compiled_step_ms < c.eager_step_ms)


def test_steps_of_a_recipe():
    assert C.steps_of({"budget": "samples=4000", "batch_size": 4}) == 1000
    assert C.steps_of({"epochs": 2, "train_size": 100, "batch_size": 10}) == 20
    assert C.steps_of({"budget": "seconds=60", "batch_size": 4}) is None


def test_run_with_compile_on_records_the_choice(tmp_path, monkeypatch, capsys):
    """`stbench run --compile on` trains and evaluates through the compiled step (aot_eager here), says so in
    one line and keeps the choice in the record."""
    from stbench.cli import main

    monkeypatch.setattr(C, "BACKEND", "aot_eager")
    assert main(["run", "--models", "simvp", "--preset", "smoke", "--no-profile", "--no-weights", "--device", "cpu",
                 "--compile", "on", "--out", str(tmp_path)]) == 0
    assert "compile on: compiled (forced)" in capsys.readouterr().out
    rec = json.loads(next(tmp_path.rglob("simvp__seed0.json")).read_text())
    assert rec["status"] == "completed"
    on = rec["config"]["compile_choice"]
    assert (on["asked"], on["train"], on["eval"], on["backend"], on["dynamic"]) == ("on", True, True, "aot_eager",
                                                                                    False)


def test_regions_each_mode_compiles():
    rec, par = _smoke("convlstm"), _smoke("simvp")
    kw = dict(prec=FP32, batch=2, steps=10, device=CPU)
    regions = {(name, asked): C.choose_compile(m, asked, model_name=name, **kw).region
               for name, m in (("convlstm", rec), ("simvp", par)) for asked in ("on", "step", "cell")}
    assert regions == {("convlstm", "on"): "cell", ("convlstm", "step"): "step", ("convlstm", "cell"): "cell",
                       ("simvp", "on"): "step", ("simvp", "step"): "step", ("simvp", "cell"): "step"}
    assert C.default_region(rec, torch.device("cuda")) == "step"  # CUDA graphs replay the whole loop
    forced = C.choose_compile(rec, "cell", model_name="convlstm", **kw)
    assert (forced.train, forced.eval, forced.asked) == (True, True, "cell")
    assert forced.line() == "compile cell: compiled per time step (forced)"


def test_run_with_compile_cell_trains_through_compiled_time_steps(tmp_path, monkeypatch, capsys):
    """`stbench run --compile cell`: the recurrent model's time steps run compiled (counted), in training and in
    the evaluation, and the record keeps the region."""
    from stbench.cli import main

    calls = []
    real = C.CellStep.__call__

    def counted(self, module, x, state):
        calls.append(torch.is_grad_enabled() and self.compiled is not None)
        return real(self, module, x, state)

    monkeypatch.setattr(C, "BACKEND", "aot_eager")
    monkeypatch.setattr(C.CellStep, "__call__", counted)
    assert main(["run", "--models", "convlstm", "--preset", "smoke", "--no-profile", "--no-weights", "--device",
                 "cpu", "--compile", "cell", "--out", str(tmp_path)]) == 0
    assert "compile cell: compiled per time step (forced)" in capsys.readouterr().out
    rec = json.loads(next(tmp_path.rglob("convlstm__seed0.json")).read_text())
    c = rec["config"]["compile_choice"]
    assert rec["status"] == "completed" and (c["asked"], c["region"], c["train"], c["eval"]) == ("cell", "cell",
                                                                                                True, True)
    assert any(calls) and not all(calls)  # training (with autograd) and evaluation steps went through it
