"""torch.compile of the training step and the evaluation forward (``--compile off|on|auto|step|cell``, issue 28).

What is compiled: the training step's forward + model loss (:class:`TrainStep`; the backward goes through
AOTAutograd, the optimizer update stays eager) and the evaluation forward (:class:`EvalForward`). Backend
inductor, ``dynamic=False``; on CUDA mode ``reduce-overhead`` (CUDA graphs: the recurrent time loop is
replayed as one graph instead of hundreds of small launches), on CPU inductor's default mode.

Two regions (:data:`REGIONS`): ``step``, the whole training step as one graph (a recurrent model's time loop
unrolled into it: minutes of compile on a CPU for 19 steps of a four-layer stack), and ``cell``, a recurrent
module's one-time-step function (:meth:`RecurrentTemporal.step <stbench.models.base.RecurrentTemporal.step>`:
every layer's cell and the head) compiled once and replayed at each time step while the loop stays in Python
(a few graphs: the first step's fp32 input, the later steps' autocast ones, train and eval). The fusion that
pays is the gate arithmetic inside a step, which both regions get; ``cell`` compiles in a fraction of the time.
On a CPU recurrent models use ``cell``, parallel ones ``step`` (:func:`default_region`); on CUDA every model uses
``step`` (CUDA graphs replay the whole loop, the remedy for a launch-bound time loop).

- ``off`` (the default): eager, as before.
- ``on``: both compiled, in the default region; ``step`` / ``cell``: both compiled, in that region (``cell`` for
  a model without a recurrent module is ``step``). Measured on an AMX CPU (benchmarks/README.md, section 10),
  ``step`` gives the faster compiled step and ``cell`` the much shorter compile: ``cell`` finishes the runs of a
  few thousand sequences sooner, ``step`` the long ones.
- ``auto``: :func:`choose_compile` times eager and compiled training steps on a copy of the model at the
  run's batch and precision, and compiles the training step when ``compile seconds + steps x compiled step``
  is below ``steps x eager step`` for the run's number of optimizer steps (its budget plan), in the default
  region. A parallel model's evaluation forward stays eager under ``auto`` (its compile costs about as much as
  the training step's and a run spends most of its time training); a recurrent model compiled per time step
  compiles its evaluation steps too (a few seconds more); ``on`` compiles both.

Shapes: training batches all have the run's batch size (the loop drops the last partial batch), so one graph
serves the run. In the ``step`` region an evaluation's last partial batch, and any other batch whose size differs
from the first one seen, runs eager: no recompile per size, and the count of such batches is kept
(``eager_batches``). In the ``cell`` region a new batch size is one more small graph (seconds).

Models that do not compile are declared in :data:`NOT_COMPILING` (one list, here) with the reason; they run
eager and the run says so in one line. An undeclared model whose compile raises falls back the same way,
with the error in that line and in the record (``compile_choice.fallback``).

Scheduled sampling: the random mask is drawn outside the compiled region (the loop's generator) and enters
as a tensor input, so every step reuses the graph; nothing random is drawn inside.
"""

from __future__ import annotations

import copy
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from stbench.recipes import COMPILE_MODES  # noqa: F401  (the choices are the recipe's)

# model name -> {region (or "any") -> why it runs eager when compiled in that region} (measured with torch 2.13,
# inductor, CPU)
NOT_COMPILING: dict[str, dict[str, str]] = {
    # compiles at the smoke size, but at the quick size (2 + 2 levels of 2 Swin blocks, 19 steps) inductor stops
    # after minutes with "RecursionError: maximum recursion depth exceeded" (benchmarks/README section 10); one
    # time step (the cell region, the CPU default) compiles (170 s at the quick size on an AMX Xeon)
    "swinlstm": {"step": "inductor (torch 2.13) hits its recursion limit on the unrolled 19-step Swin-LSTM graph "
                         "at the quick size and above; --compile cell compiles one time step"},
}

BACKEND = "inductor"  # tests use "aot_eager" (same tracing and AOTAutograd, no code generation) to stay fast
REGIONS = ("step", "cell")  # what one graph covers: the whole training step, or one time step of a recurrent module


def default_region(model: torch.nn.Module, device: torch.device | None = None) -> str:
    """``cell`` for a recurrent model on a CPU (its time step compiles in seconds, the unrolled loop in minutes),
    else ``step`` (on CUDA: CUDA graphs over the whole step)."""
    on_cuda = device is not None and device.type == "cuda"
    return "cell" if getattr(model, "recurrent", False) and not on_cuda else "step"


def region_of(asked: str, model: torch.nn.Module, device: torch.device | None = None) -> str:
    """The region ``--compile asked`` compiles ``model`` in: the one it names (``cell`` only where there is a
    time step, i.e. the default without CUDA), else the default."""
    if asked == "step":
        return "step"
    return default_region(model, None if asked == "cell" else device)


def check_mode(name: str | None) -> str:
    """``None`` -> ``off``; an unknown name raises ValueError naming the choices."""
    name = name or "off"
    if name not in COMPILE_MODES:
        raise ValueError(f"unknown compile mode '{name}'; choose one of {', '.join(COMPILE_MODES)}")
    return name


def not_compiling_reason(model_name: str | None, region: str = "step") -> str | None:
    """Why the model ``model_name`` runs eager when compiled in ``region`` (its :data:`NOT_COMPILING` entry), or
    None."""
    if not model_name:
        return None
    entry = NOT_COMPILING.get(model_name) or NOT_COMPILING.get(model_name.split("@")[0]) or {}
    return entry.get(region) or entry.get("any")


def _mode(backend: str, device: torch.device, region: str) -> str | None:
    """torch.compile's mode for ``backend`` in ``region``: CUDA graphs replay one whole step; a cell's outputs
    feed its next call, so the cell runs plain inductor."""
    return torch_mode(device) if backend == "inductor" and region == "step" else None


def torch_mode(device: torch.device) -> str | None:
    """torch.compile's mode: CUDA graphs on CUDA, inductor's default elsewhere."""
    return "reduce-overhead" if device.type == "cuda" else None


# Dynamo keeps its graphs on the code object of the compiled function: every model of a grid (and the train / eval
# flavours) is one more entry on TrainStep._fn's, and past the limit (8 by default) it would run eager silently.
# Copies of one architecture share an entry (parameters are graph inputs): auto's measured compile serves the run.
RECOMPILE_LIMIT = 256  # the cell region adds a few graphs per model (input dtypes, train / eval, batch sizes)
# auto does not compile at all when the whole run takes less than this eagerly (the smallest compile of a zoo
# model's training step took longer than this on CPU: minutes at smoke size on 2 cores)
MIN_COMPILE_S = 20.0


def _compile(fn: Callable, device: torch.device, backend: str | None, region: str = "step") -> Callable:
    backend = backend or BACKEND
    dcfg = torch._dynamo.config
    if hasattr(dcfg, "recompile_limit"):
        dcfg.recompile_limit = max(dcfg.recompile_limit, RECOMPILE_LIMIT)
    return torch.compile(fn, dynamic=False, backend=backend, mode=_mode(backend, device, region))


class _Compiled:
    """Eager or compiled ``self._fn``: the compiled one for the first batch size seen, eager for other sizes;
    a compile that raises on the first call falls back to eager for good, with one line."""

    def __init__(self, compiled: bool, device: torch.device, *, backend: str | None = None, name: str = "",
                 say: Callable[[str], None] | None = None) -> None:
        self.device, self.name, self.say = device, name, say or print
        self.compiled = _compile(self._fn, device, backend) if compiled else None
        self.batch: int | None = None
        self.eager_batches = 0  # batches of another size than the compiled one, run eager
        self.compile_s: float | None = None  # wall seconds of the first compiled call (a backward compiles later)
        self.fallback: str | None = None
        self.graph_breaks = 0  # kinds of Dynamo graph break in the first compiled call (each splits the graph)

    def _fn(self, *args: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, *args: Any) -> Any:
        n = args[0].shape[0]
        if self.compiled is None:
            return self._fn(*args)
        if self.batch is None:
            self.batch = n
        if n != self.batch:
            self.eager_batches += 1
            return self._fn(*args)
        if self.device.type == "cuda" and torch_mode(self.device) == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()  # the previous step's outputs are consumed by now
        if self.compile_s is not None:
            return self.compiled(*args)
        return _first_call(self, self._fn, args)


def _first_call(c: Any, eager: Callable, args: tuple) -> Any:
    """The first call of ``c.compiled`` (a :class:`_Compiled` or :class:`CellStep`): timed into ``c.compile_s``,
    its graph breaks counted and said; a compile that raises leaves ``c.compiled`` None and ``eager`` runs."""
    t0 = time.perf_counter()
    breaks = _graph_breaks()
    try:
        out = c.compiled(*args)
    except Exception as exc:  # noqa: BLE001 - an undeclared model that does not compile: eager, said once
        c.fallback = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        c.say(f"compile: {c.name} did not compile ({c.fallback}); running eager")
        c.compiled = None
        return eager(*args)
    c.compile_s = time.perf_counter() - t0
    new = {k: v - breaks.get(k, 0) for k, v in _graph_breaks().items() if v > breaks.get(k, 0)}
    c.graph_breaks = len(new)  # distinct reasons: Dynamo counts one break again when it restarts a trace
    if new:  # allowed, never silent: each break leaves a piece to Python between two graphs
        first = next(iter(new)).strip().splitlines()[0][:160]
        c.say(f"compile: {c.name} compiled with graph breaks ({c.graph_breaks} kind(s)), e.g. {first}")
    return out


def _graph_breaks() -> dict[str, int]:
    from torch._dynamo.utils import counters

    return dict(counters["graph_break"])


class TrainStep(_Compiled):
    """``(x, y, mask) -> (loss, parts)``: the model's forward (through ``fwd``, e.g. its DDP wrapper) and
    :meth:`STModel.loss`, under the caller's autocast."""

    def __init__(self, fwd: torch.nn.Module, raw: torch.nn.Module, compiled: bool, device: torch.device,
                 **kw: Any) -> None:
        self.fwd, self.raw = fwd, raw
        super().__init__(compiled, device, **kw)

    def _fn(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, dict]:
        out = self.fwd(x, y, sampling_mask=mask)
        return self.raw.loss(out, x, y)


class EvalForward(_Compiled):
    """``x -> pred``: the test-time forward (no targets, no mask)."""

    def __init__(self, model: torch.nn.Module, compiled: bool, device: torch.device, **kw: Any) -> None:
        self.model = model
        super().__init__(compiled, device, **kw)

    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).pred


def _one_step(module: torch.nn.Module, x: torch.Tensor, state: Any) -> Any:
    return module.step(x, state)


class CellStep:
    """The ``cell`` region: ``(module, x, state) -> module.step(x, state)`` compiled (inductor's default mode,
    ``dynamic=False``: a graph per input signature, kept by Dynamo on :func:`_one_step`'s code and shared by every
    copy of one architecture). Registered in :data:`stbench.models.base.STEP_RUNNERS` for each recurrent module
    of a model by :func:`enable`; ``train`` / ``eval`` say which forwards (with / without autograd) use it. A
    compile that raises runs eager from then on, with one line."""

    def __init__(self, *, train: bool, eval: bool, device: torch.device, backend: str | None = None,
                 name: str = "", say: Callable[[str], None] | None = None) -> None:
        self.train, self.eval, self.name, self.say = train, eval, name, say or print
        self.compiled = _compile(_one_step, device, backend, region="cell")
        self.compile_s: float | None = None  # wall seconds of the first compiled call (its forward graph)
        self.fallback: str | None = None
        self.graph_breaks = 0

    def __call__(self, module: torch.nn.Module, x: torch.Tensor, state: Any) -> Any:
        if self.compiled is None or not (self.train if torch.is_grad_enabled() else self.eval):
            return module.step(x, state)
        if self.compile_s is not None:
            return self.compiled(module, x, state)
        return _first_call(self, _one_step, (module, x, state))


def recurrent_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    from stbench.models.base import RecurrentTemporal

    return [m for m in model.modules() if isinstance(m, RecurrentTemporal)]


def _register_cells(model: torch.nn.Module, cell: CellStep | None) -> None:
    from stbench.models.base import STEP_RUNNERS

    for m in recurrent_modules(model):
        if cell is None:
            STEP_RUNNERS.pop(m, None)
        else:
            STEP_RUNNERS[m] = cell


# ---------------------------------------------------------------------------------------------
# the hooks train.py uses: a model enabled here gets compiled steps, any other model eager ones
# ---------------------------------------------------------------------------------------------
@dataclass
class Enabled:
    train: bool
    eval: bool
    backend: str | None = None
    name: str = ""
    say: Callable[[str], None] | None = None
    region: str = "step"
    parts: list[_Compiled] = field(default_factory=list)
    cell: CellStep | None = None

    def whole(self, train: bool) -> bool:
        """Whether the training step (``train``) / evaluation forward is compiled as one graph."""
        return self.region == "step" and (self.train if train else self.eval)


_ENABLED: weakref.WeakKeyDictionary[torch.nn.Module, Enabled] = weakref.WeakKeyDictionary()


def enable(model: torch.nn.Module, *, train: bool, eval: bool, backend: str | None = None, name: str = "",
           say: Callable[[str], None] | None = None, region: str = "step", device: torch.device | None = None
           ) -> Enabled:
    """Mark ``model`` so that :func:`train_step` and :func:`eval_forward` compile its step / forward (region
    ``step``), or so that its recurrent modules run a compiled time step (region ``cell``; a model without one
    falls back to ``step``)."""
    if region not in REGIONS:
        raise ValueError(f"unknown compile region '{region}'; choose one of {', '.join(REGIONS)}")
    if region == "cell" and not recurrent_modules(model):
        region = "step"
    e = Enabled(train, eval, backend, name, say, region)
    _ENABLED[model] = e
    _register_cells(model, None)
    if region == "cell" and (train or eval):
        dev = device or next((p.device for p in model.parameters()), torch.device("cpu"))
        e.cell = CellStep(train=train, eval=eval, device=dev, backend=backend, name=name or "model", say=say)
        _register_cells(model, e.cell)
    return e


def disable(model: torch.nn.Module) -> None:
    _ENABLED.pop(model, None)
    _register_cells(model, None)


def train_step(fwd: torch.nn.Module, raw: torch.nn.Module, device: torch.device) -> TrainStep:
    """The training step of ``raw`` (called through ``fwd``), compiled if :func:`enable` asked for it."""
    e = _ENABLED.get(raw)
    s = TrainStep(fwd, raw, bool(e and e.whole(train=True)), device, **_kw(e))
    if e is not None:
        e.parts.append(s)
    return s


def eval_forward(model: torch.nn.Module, device: torch.device) -> EvalForward:
    """The evaluation forward of ``model``, compiled if :func:`enable` asked for it. Kept on the
    :class:`Enabled` entry, so that the run's evaluations share one compiled graph."""
    e = _ENABLED.get(model)
    whole = bool(e and e.whole(train=False))
    if whole:
        for p in e.parts:
            if isinstance(p, EvalForward):
                return p
    f = EvalForward(model, whole, device, **_kw(e))
    if whole:
        e.parts.append(f)
    return f


def _kw(e: Enabled | None) -> dict[str, Any]:
    return {} if e is None else {"backend": e.backend, "name": e.name or "model", "say": e.say}


# ---------------------------------------------------------------------------------------------
# the choice of a run: off / on / auto (measured)
# ---------------------------------------------------------------------------------------------
@dataclass
class CompileChoice:
    """What ``--compile`` resolved to for one run, and (``auto``) what was measured."""

    asked: str  # off | on | auto
    train: bool  # the training step is compiled
    eval: bool  # the evaluation forward is compiled
    measured: bool = False
    reason: str = ""
    steps: int | None = None  # optimizer steps of the run (its plan)
    eager_step_ms: float | None = None
    compiled_step_ms: float | None = None
    compile_s: float | None = None
    mode: str | None = None  # torch.compile mode (reduce-overhead on CUDA)
    cost_s: float = 0.0  # seconds the measurement took
    backend: str = BACKEND
    what: str = "training step"  # what was measured: the training step, or (stbench eval) the evaluation forward
    region: str = "step"  # step: one graph per training step / forward; cell: one per recurrent time step

    def as_dict(self) -> dict[str, Any]:
        d = {"asked": self.asked, "train": self.train, "eval": self.eval, "measured": self.measured,
             "reason": self.reason, "backend": self.backend, "mode": self.mode, "dynamic": False,
             "torch": torch.__version__, "what": self.what, "region": self.region}
        if self.measured:
            d.update(steps=self.steps, eager_step_ms=_r(self.eager_step_ms), compiled_step_ms=_r(self.compiled_step_ms),
                     compile_s=_r(self.compile_s), est_eager_s=_r(self.est_eager_s),
                     est_compiled_s=_r(self.est_compiled_s), cost_s=_r(self.cost_s),
                     break_even_steps=_r(self.break_even_steps))
        return d

    @property
    def break_even_steps(self) -> float | None:
        """Steps after which the compiled run is ahead (None: compiled is not faster per step)."""
        if self.compiled_step_ms is None or self.eager_step_ms is None or self.compile_s is None:
            return None
        gain = (self.eager_step_ms - self.compiled_step_ms) / 1e3
        return self.compile_s / gain if gain > 0 else None

    @property
    def est_eager_s(self) -> float | None:
        if self.eager_step_ms is None or self.steps is None:
            return None
        return self.steps * self.eager_step_ms / 1e3

    @property
    def est_compiled_s(self) -> float | None:
        if self.compiled_step_ms is None or self.steps is None or self.compile_s is None:
            return None
        return self.compile_s + self.steps * self.compiled_step_ms / 1e3

    def line(self) -> str:
        """One line for the console."""
        per = " per time step" if self.region == "cell" else ""
        if not self.measured:
            done = f"compiled{per}" if self.train or self.eval else "eager"
            return f"compile {self.asked}: {done} ({self.reason})"
        if self.compiled_step_ms is None:
            return f"compile auto: eager ({self.reason})"
        pick = f"compiled {self.what}{per}" if self.train or self.eval else "eager"
        unit = self.what.split()[-1]
        return (f"compile auto: {pick}; {self.what} eager {self.eager_step_ms:.0f} ms, compiled "
                f"{self.compiled_step_ms:.0f} ms + {self.compile_s:.0f} s compile -> {self.steps} {unit}s take "
                f"~{self.est_eager_s:.0f} s eager vs ~{self.est_compiled_s:.0f} s compiled "
                f"(measured in {self.cost_s:.0f} s)")


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def _resolve(model: torch.nn.Module, asked: str | None, device: torch.device, backend: str | None,
             model_name: str) -> tuple[str, str, str, str | None, str | None]:
    """(mode asked, backend, region, torch.compile mode, why the model is declared not to compile there or None)."""
    asked, backend = check_mode(asked), backend or BACKEND
    region = region_of(asked, model, device)
    return asked, backend, region, _mode(backend, device, region), not_compiling_reason(model_name, region)


def choose_compile(model: torch.nn.Module, asked: str | None, *, prec: Any, batch: int, steps: int | None,
                   device: torch.device, model_name: str = "", reps: int = 3,
                   backend: str | None = None) -> CompileChoice:
    """Resolve ``--compile`` for one run of ``model`` (``steps`` optimizer steps at ``batch``, precision
    ``prec``). ``auto`` times a copy of the model; ``model`` and the global RNG are untouched."""
    asked, backend, region, mode, why = _resolve(model, asked, device, backend, model_name)
    if asked == "off":
        return CompileChoice("off", False, False, reason="the default", mode=mode, backend=backend, region=region)
    if why:
        return CompileChoice(asked, False, False, reason=f"{model_name} is declared not to compile: {why}", mode=mode,
                             backend=backend, region=region)
    if asked != "auto":  # on, step, cell
        return CompileChoice(asked, True, True, reason="forced", mode=mode, backend=backend, region=region)
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        eager, compiled, compile_s, err = measure_step(model, prec=prec, batch=batch, device=device, reps=reps,
                                                       backend=backend, steps=steps, region=region)
    c = CompileChoice("auto", False, False, measured=True, steps=None if steps is None else int(steps),
                      eager_step_ms=eager * 1e3, mode=mode, cost_s=time.perf_counter() - t0, backend=backend,
                      region=region)
    if compiled is None and not err:
        c.reason = f"the run takes ~{steps * eager:.0f} s eager, less than a compile ({MIN_COMPILE_S:.0f} s or more)"
        return c
    if err:
        c.reason = f"did not compile: {err}"
        return c
    c.compiled_step_ms, c.compile_s = compiled * 1e3, compile_s
    if steps is None:
        c.reason = "measured only: the run's length is not known"
        return c
    c.train = c.est_compiled_s < c.est_eager_s
    c.eval = c.train and region == "cell"  # a cell's eval graphs compile in seconds; a whole forward's in minutes
    c.reason = "faster over the run" if c.train else "compile time not repaid over the run"
    return c


def measure_step(model: torch.nn.Module, *, prec: Any, batch: int, device: torch.device, reps: int = 3,
                 backend: str | None = None, steps: int | None = None,
                 region: str = "step") -> tuple[float, float | None, float | None, str | None]:
    """(eager s/step, compiled s/step, compile s, error) of one optimizer step (forward + loss + backward +
    Adam) of a copy of ``model`` under ``prec`` at ``batch``: one eager warm-up, then the best of ``reps``
    eager steps; the first compiled step's wall time (less one compiled step) is the compile time, then
    the best of ``reps`` compiled steps. Best-of: interference on a shared machine only ever adds time.
    Nothing is compiled (compiled and compile s None) when ``steps`` eager steps take under MIN_COMPILE_S.
    ``region``: what one graph covers (:data:`REGIONS`)."""
    from stbench.precision import StepBench, synchronize

    bench = StepBench(model, batch, device)  # the same random batch and sampling mask the precision choice uses
    m = prec.prepare(copy.deepcopy(model)).train()
    opt = torch.optim.Adam(m.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=prec.needs_scaler())

    def step(fn: Callable) -> float:
        synchronize(device)
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with prec.autocast():
            loss, _ = fn(bench.x, bench.y, bench.mask)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        synchronize(device)
        return time.perf_counter() - t

    eager_fn = TrainStep(m, m, False, device)
    step(eager_fn)
    eager = min(step(eager_fn) for _ in range(max(1, reps)))
    if steps is not None and steps * eager < MIN_COMPILE_S:
        return eager, None, None, None
    compiled_fn, part = compiled_part(m, True, device, backend, region)
    first = step(compiled_fn)
    if part.fallback:
        return eager, None, None, part.fallback
    compiled = min(step(compiled_fn) for _ in range(max(1, reps)))
    disable(m)
    return eager, compiled, max(0.0, first - compiled), None


def compiled_part(m: torch.nn.Module, train: bool, device: torch.device, backend: str | None,
                  region: str) -> tuple[Callable, Any]:
    """(the training step (``train``) / evaluation forward of ``m`` compiled in ``region``, the part that
    compiles: the :class:`TrainStep` / :class:`EvalForward` itself, or the :class:`CellStep` of ``m``)."""
    quiet = {"backend": backend, "say": lambda s: None}
    if region == "cell" and recurrent_modules(m):
        e = enable(m, train=train, eval=not train, region="cell", device=device, **quiet)
        return (TrainStep(m, m, False, device) if train else EvalForward(m, False, device)), e.cell
    f = TrainStep(m, m, True, device, **quiet) if train else EvalForward(m, True, device, **quiet)
    return f, f


def choose_for_run(model: torch.nn.Module, asked: str | None, cfg: dict[str, Any], *, prec: Any,
                   device: torch.device, model_name: str, dist: Any, old: dict[str, Any] | None = None,
                   say: Callable[[str], None] = print) -> dict[str, Any]:
    """The runner's hook: resolve ``--compile`` (else the recipe's ``compile``, else off) for one run, say it
    in one line unless off, :func:`enable` ``model`` accordingly and return the record's ``compile_choice``.
    ``--resume`` keeps the first choice (``old``, the record's config); under DDP rank 0 decides for all."""
    choice = (old or {}).get("compile_choice")
    if not choice and dist.master:
        try:
            c = choose_compile(model, asked or cfg.get("compile"), prec=prec, batch=int(cfg["batch_size"]),
                               steps=int((cfg.get("plan") or {}).get("steps") or 1), device=device,
                               model_name=model_name)
        except ValueError as exc:  # an unknown mode name is the user's to fix
            from stbench.errors import UserError

            raise UserError(str(exc).splitlines()[0]) from None
        choice = c.as_dict()
        if c.asked != "off":
            say(c.line())
    if dist.enabled:
        import torch.distributed as tdist

        box = [choice]
        tdist.broadcast_object_list(box, src=0)
        choice = box[0]
    enable(model, train=bool(choice["train"]), eval=bool(choice["eval"]), name=model_name, say=say,
           region=choice.get("region", "step"), device=device)  # records before regions: the whole step
    return choice


def measure_forward(model: torch.nn.Module, *, prec: Any, batch: int, device: torch.device, reps: int = 3,
                    backend: str | None = None,
                    region: str = "step") -> tuple[float, float | None, float | None, str | None]:
    """As :func:`measure_step`, for the evaluation forward (no grad) of a copy of ``model``."""
    from stbench.precision import synchronize

    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, *model.in_shape, generator=g).to(device)
    m = prec.prepare(copy.deepcopy(model)).eval()

    @torch.no_grad()
    def call(fn: Callable) -> float:
        synchronize(device)
        t = time.perf_counter()
        with prec.autocast():
            fn(x)
        synchronize(device)
        return time.perf_counter() - t

    eager_fn = EvalForward(m, False, device)
    call(eager_fn)
    eager = min(call(eager_fn) for _ in range(max(1, reps)))
    compiled_fn, part = compiled_part(m, False, device, backend, region)
    first = call(compiled_fn)
    if part.fallback:
        return eager, None, None, part.fallback
    compiled = min(call(compiled_fn) for _ in range(max(1, reps)))
    disable(m)
    return eager, compiled, max(0.0, first - compiled), None


def choose_eval_compile(model: torch.nn.Module, asked: str | None, *, prec: Any, batch: int, batches: int,
                        device: torch.device, model_name: str = "", reps: int = 3,
                        backend: str | None = None) -> CompileChoice:
    """``stbench eval``'s ``--compile``: as :func:`choose_compile`, for ``batches`` evaluation forwards at
    ``batch`` (``steps`` in the choice counts forwards here)."""
    asked, backend, region, mode, why = _resolve(model, asked, device, backend, model_name)
    if asked != "auto" or why:
        c = choose_compile(model, asked, prec=prec, batch=batch, steps=batches, device=device, model_name=model_name,
                           backend=backend)
        c.train, c.eval, c.what = False, c.train, "evaluation forward"
        return c
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        eager, compiled, compile_s, err = measure_forward(model, prec=prec, batch=batch, device=device, reps=reps,
                                                          backend=backend, region=region)
    c = CompileChoice("auto", False, False, measured=True, steps=int(batches), eager_step_ms=eager * 1e3,
                      mode=mode, cost_s=time.perf_counter() - t0, backend=backend, what="evaluation forward",
                      region=region)
    if err:
        c.reason = f"did not compile: {err}"
        return c
    c.compiled_step_ms, c.compile_s = compiled * 1e3, compile_s
    c.eval = c.est_compiled_s < c.est_eager_s
    c.reason = "faster over the evaluation" if c.eval else "compile time not repaid over the evaluation"
    return c


def steps_of(cfg: dict[str, Any]) -> int | None:
    """Optimizer steps of a recipe without its dataset: a samples budget over the batch, else epochs x
    ``train_size`` over the batch; None when neither is known (``stbench profile``)."""
    from stbench.budget import Budget

    bs = int(cfg.get("batch_size") or 1) * max(1, int(cfg.get("accum_steps") or 1))
    if cfg.get("budget"):
        b = Budget.parse(cfg["budget"])
        return max(1, int(b.value) // bs) if b.kind == "samples" else None
    if cfg.get("epochs") and cfg.get("train_size"):
        return max(1, int(cfg["epochs"]) * (int(cfg["train_size"]) // bs))
    return None


def profile_compile(model: torch.nn.Module, asked: str | None, *, prec: Any, batch: int, cfg: dict[str, Any],
                    device: torch.device, model_name: str) -> dict[str, Any] | None:
    """``stbench profile --compile on|auto``: eager vs compiled training step of the profiled precision, and
    which one finishes a run of the recipe's length sooner (auto's choice); None for ``off``."""
    if check_mode(asked) == "off":
        return None
    c = choose_compile(model, "auto", prec=prec, batch=batch, steps=steps_of(cfg), device=device,
                       model_name=model_name)
    c.asked = asked
    return c.as_dict()
