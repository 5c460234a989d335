"""``stbench run``: the models x seeds grid of one dataset and preset -> one record per run.

Python API::

    from stbench.runner import RunOptions, run_grid
    run_grid(RunOptions(models=["tau", "predrnn"], dataset="mmnist", preset="quick"))

Under torchrun (``RANK`` set) the same command trains each run with DDP (gloo on CPU, nccl on GPU)::

    OMP_NUM_THREADS=1 torchrun --nproc-per-node 2 -m stbench run --models tau --preset smoke

Each run is isolated: a NaN/Inf loss or an exception marks that run ``failed`` with its reason and
the grid goes on; the exit code is 1 when any run failed.
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from stbench import train as T
from stbench.budget import Budget, Plan, budget_dir, budget_record, plan, resolve_sampling
from stbench.compile import choose_for_run
from stbench.console import duration, make_console
from stbench.data import get_dataset
from stbench.data.check import data_source, preflight
from stbench.errors import UserError
from stbench.loggers import RunLogs, parse_loggers
from stbench.metrics import FLOORS, MetricAccumulator, convention_for, floor_predictions, metric_def, metrics_meta
from stbench.precision import Precision, asked_for, choose_precision, resolve_device
from stbench.preflight import (
    check_data_source,
    check_device,
    check_options,
    check_resume,
    check_run,
    check_splits,
)
from stbench.profile import count_train_flops
from stbench.recipes import DEFAULT_PRESET, PRESETS, RecipeError, eval_batch_size, load_recipe
from stbench.records import (
    RunRecord,
    cell_lock,
    check_writable,
    checkpoint_path,
    env_info,
    nonfinite_metrics,
    now_iso,
    read_record,
    record_path,
)
from stbench.registry import METRICS
from stbench.scoring import cost_profile, keep_test, new_record, score_test
from stbench.weights import save_model


@dataclass
class RunOptions:
    models: list[str]
    dataset: str = "mmnist"
    preset: str = "quick"
    preset_given: bool = True
    seeds: list[int] = field(default_factory=lambda: [0])
    device: str = "auto"
    precision: str | None = None
    memory_format: str | None = None  # nchw | channels_last | auto (issue 12); None = the recipe's / default
    compile: str | None = None  # off | on | auto (issue 28, stbench/compile.py); None = the recipe's, else off
    out: Path = Path("results")
    resume: bool = False
    force: bool = False
    shard: tuple[int, int] = (0, 1)
    data_root: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    sets: list[str] = field(default_factory=list)
    profile: bool = True
    threads: int | None = None
    quiet: bool = False
    metrics: list[str] = field(default_factory=list)  # "+name": registered metrics added to the dataset's
    budget: str | None = None  # "samples=4000" | "flops=2e15" | "seconds=600"; None = the preset's (stbench.budget)
    floors: bool = True  # evaluate the copy-last / predict-zeros floors (tuning trials do not)
    evaluate_test: bool = True  # False: stop after validation (tuning trials never see the test split)
    tuning: dict[str, Any] | None = None  # `stbench tune`: the trials and the choice, kept in the record's config
    debug: bool = False  # print the traceback of a run that fails (the run is still recorded as failed)
    weights: bool = True  # keep the tested weights + model card beside the record (stbench.weights); --no-weights
    loggers: list[str] = field(default_factory=list)  # --logger csv,tensorboard,mlflow (stbench.loggers)

    @classmethod
    def from_args(cls, args: Any, models: list[str]) -> RunOptions:
        if args.seeds and args.seed is not None:
            raise UserError(f"--seed {args.seed} and --seeds {args.seeds} both given; pass one of them")
        if args.seeds:
            try:
                seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
            except ValueError:
                raise UserError(f"bad --seeds '{args.seeds}'; write a comma list of integers, e.g. 0,1,2") from None
        else:
            seeds = [args.seed if args.seed is not None else 0]
        return cls(
            models=models, dataset=args.dataset, preset=args.preset or DEFAULT_PRESET,
            preset_given=args.preset is not None,
            seeds=seeds, device=args.device, precision=args.precision,
            memory_format=getattr(args, "memory_format", None), compile=getattr(args, "compile", None),
            out=Path(args.out), resume=args.resume,
            force=args.force, shard=parse_shard(args.shard), data_root=args.data_root,
            overrides={"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                       "budget": _parse_budget(getattr(args, "budget", None)),
                       "accum_steps": args.accum_steps, "clip_grad": args.clip_grad, "train_size": args.train_size,
                       "val_size": args.val_size, "test_size": args.test_size},
            sets=list(args.set), profile=not args.no_profile, threads=args.threads,
            metrics=parse_metrics(getattr(args, "metrics", None)), debug=bool(getattr(args, "debug", False)),
            weights=not getattr(args, "no_weights", False),
            loggers=parse_loggers(getattr(args, "logger", None)),  # unknown names, missing extras: refused now
            budget=_parse_budget(getattr(args, "budget", None)),
        )


def _parse_budget(text: str | None) -> str | None:
    """A ``--budget`` value checked before anything runs (one-line error), kept as its canonical label."""
    return Budget.parse(text).label if text else None


def parse_metrics(spec: str | None) -> list[str]:
    """``--metrics +rel_l2,+rmse`` -> ["rel_l2", "rmse"]: registered metrics added to the dataset's own."""
    names = []
    for item in (s.strip() for s in (spec or "").split(",")):
        if not item:
            continue
        if not item.startswith("+"):
            raise UserError(f"bad --metrics item '{item}'; write +NAME to add a registered metric, "
                            "e.g. --metrics +ssim_dr1")
        METRICS.entry(item[1:])  # unknown -> one-line "did you mean"
        names.append(item[1:])
    return names


def run_metrics(spec_metrics: Any, extra: list[str]) -> tuple[str, ...]:
    """The dataset's metrics followed by the ones added with ``--metrics``."""
    return tuple(dict.fromkeys([*spec_metrics, *extra]))


def parse_shard(spec: str | None) -> tuple[int, int]:
    if not spec:
        return (0, 1)
    try:
        i, n = (int(p) for p in spec.split("/"))
    except ValueError:
        i, n = -1, 0
    if not (n >= 1 and 0 <= i < n):
        raise UserError(f"bad --shard '{spec}'; write i/n with 0 <= i < n, e.g. --shard 0/4 for the first of four")
    return (i, n)


# ---------------------------------------------------------------------------------------------
# distributed set-up (nanoGPT-style: RANK in the environment means "started by torchrun")
# ---------------------------------------------------------------------------------------------
def setup_distributed(device_name: str):
    if "RANK" not in os.environ:
        return resolve_device(device_name), T.DistInfo()
    import torch.distributed as tdist

    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))
    dev = resolve_device(device_name)
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return dev, T.DistInfo(rank, world, local)


# ---------------------------------------------------------------------------------------------
def run_grid(opts: RunOptions) -> int:
    if opts.preset not in PRESETS:
        raise RecipeError(f"unknown preset '{opts.preset}'; choose one of {', '.join(PRESETS)}")
    check_options(opts)
    check_device(opts.device)
    device, dist = setup_distributed(opts.device)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    con = make_console(quiet=opts.quiet or not dist.master)
    if not opts.preset_given:
        con.print("[bold]No --preset given: running the 'quick' preset[/bold] (paper = published recipe, "
                  "ask for it with --preset paper)")
    if opts.data_root is not None:  # bad standard files stop the run here, before anything is written
        preflight(opts.dataset, opts.data_root)
    if dist.master:
        check_writable(opts.out)
    grid = [(m, s) for m in opts.models for s in opts.seeds]
    i, n = opts.shard
    mine = grid[i::n]
    if n > 1:
        con.print(f"shard {i}/{n}: {len(mine)} of {len(grid)} runs")

    # dataset shared by every run of this command (digits / test set loaded once)
    data_cfg_recipe = load_recipe(opts.dataset, mine[0][0] if mine else opts.models[0], opts.preset,
                                  opts.overrides, opts.sets)
    data_kw = dict(data_cfg_recipe.config.get("data", {}))
    dataset = get_dataset(opts.dataset, data_root=opts.data_root, **data_kw)
    check_splits(dataset)
    for model_name in dict.fromkeys(m for m, _ in mine):  # every value checked before the first record is written
        check_run(opts, model_name, dataset.spec, device)
    # and no completed record of other data is taken for this data's (floors included); every rank reads the
    # same records, so under torchrun every rank refuses together
    source = data_source(opts.dataset, opts.data_root)
    floors = [record_path(opts.out, opts.dataset, opts.preset, k, 0) for k in FLOORS] if i == 0 else []
    for path in [*floors, *(run_paths(opts, m, s)[0] for m, s in mine)]:
        check_data_source(path, source, force=opts.force, resume=opts.resume)

    results: list[RunRecord] = []
    failed = False
    env = GridEnv(opts, dataset, device, dist, con)
    if dist.master and i == 0 and opts.floors:
        results += _floors(opts, dataset, data_cfg_recipe.config, con)
        failed |= any(r.status == "failed" for r in results)
    for model_name, seed in mine:
        # one process per cell: a second one refuses in one line (issue 24)
        with _cell_lock(run_paths(opts, model_name, seed)[0], dist):
            rec = run_one(env, model_name, seed)
        results.append(rec)
        failed |= rec.status == "failed"
    if dist.master:
        _summary(con, results, opts)
    if dist.enabled:
        import torch.distributed as tdist

        tdist.barrier()
        tdist.destroy_process_group()
    return 1 if failed else 0


@contextlib.contextmanager
def _cell_lock(record: Path, dist: Any) -> Any:
    """The cell's lock (records.cell_lock), taken by rank 0; under torchrun its refusal reaches every rank."""
    if not dist.enabled:
        with cell_lock(record):
            yield
        return
    import torch.distributed as tdist

    with contextlib.ExitStack() as stack:
        box: list[str | None] = [None]
        if dist.master:
            try:
                stack.enter_context(cell_lock(record))
            except UserError as exc:
                box[0] = str(exc)
        tdist.broadcast_object_list(box, src=0)
        if box[0]:
            raise UserError(box[0])
        yield


def _floors(opts: RunOptions, dataset: Any, cfg: dict[str, Any], con: Any) -> list[RunRecord]:
    """Copy-last-frame and predict-zeros, evaluated on the same test set the same way."""
    out = []
    spec = dataset.spec
    names = run_metrics(spec.metrics, opts.metrics)
    for kind in FLOORS:
        old = read_record(record_path(opts.out, opts.dataset, opts.preset, kind, 0))
        if old and old.status == "completed" and not opts.force and set(names) <= set(old.metrics or {}):
            out.append(old)
            continue
        t0 = time.perf_counter()
        acc = MetricAccumulator(metrics=names, keep_sequences=True, context=spec.metric_context)
        for x, y in dataset.batches("test", eval_batch_size(cfg), limit=cfg.get("test_size")):
            acc.update(floor_predictions(kind, x, spec.t_out), y)
        res = acc.result()
        rec = RunRecord(model=kind, dataset=opts.dataset, preset=opts.preset, seed=0, kind="floor",
                        status="completed", family="floor", metrics={k: v for k, v in res.items() if k != "per_frame"},
                        per_frame=res["per_frame"], metrics_meta=metrics_meta(names), convention=convention_for(names),
                        config={"test_size": cfg.get("test_size"), "data": cfg.get("data", {}),
                                "data_source": dict(data_source(opts.dataset, opts.data_root))},
                        env=env_info(torch.device("cpu"), "fp32"))
        rec.timing.update(finished_at=now_iso(), eval_s=round(time.perf_counter() - t0, 3))
        bad = nonfinite_metrics(rec.metrics, rec.per_frame)
        if bad:  # a floor is computed from the data alone: NaN / Inf in the test targets
            rec.status, rec.metrics, rec.per_frame = "failed", None, None
            rec.reason = (f"non-finite test metrics: {', '.join(bad[:4])}; the test split holds NaN / Inf values "
                          "(run `stbench data check`)")
            con.print(f"[red]floor {kind} failed: {rec.reason}[/red]")
        rec.write(opts.out, per_sequence=acc.sequences() if not bad else None)
        out.append(rec)
    return out


def budget_dir_of(opts: RunOptions, model_name: str) -> str | None:
    """The records sub-folder of ``model_name``'s runs under ``opts`` (:func:`stbench.budget.budget_dir`): set only
    when ``--budget`` asks for a budget other than the recipe's own."""
    if not opts.budget:
        return None
    own = load_recipe(opts.dataset, model_name, opts.preset, {**opts.overrides, "budget": None}, opts.sets)
    return budget_dir(opts.budget, own.config.get("budget"))


def run_paths(opts: RunOptions, model_name: str, seed: int) -> tuple[Path, Path]:
    """(record, checkpoint) of one (model, seed) run of ``opts``: what run, sweep, tune, the launchers and
    status look for."""
    sub = budget_dir_of(opts, model_name)
    return (record_path(opts.out, opts.dataset, opts.preset, model_name, seed, budget_dir=sub),
            checkpoint_path(opts.out, opts.dataset, opts.preset, model_name, seed, budget_dir=sub))


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run, raised after its record was written ``interrupted``; ``checkpoint`` is the file that
    ``--resume`` continues from, or None when none was saved (the CLI says so only when there is one)."""

    def __init__(self, checkpoint: Path | None) -> None:
        super().__init__()
        self.checkpoint = checkpoint


@dataclass
class GridEnv:
    """What every run of one ``stbench run`` command shares: its options, the dataset (loaded once), the device,
    the torchrun ranks and the console."""

    opts: RunOptions
    dataset: Any
    device: torch.device
    dist: Any
    con: Any


@dataclass
class _Run:
    """One (model, seed) run being prepared and trained."""

    model_name: str
    seed: int
    rpath: Path
    cpath: Path
    old: RunRecord | None  # its record so far (rank 0)
    resume_ckpt: dict[str, Any] | None  # the checkpoint it continues from (--resume)
    source: dict[str, Any]  # the data it runs on (stbench.data.check.data_source): part of the record's identity
    recipe: Any = None
    model: Any = None
    prec: Any = None
    rec: RunRecord | None = None
    metrics: tuple[str, ...] = ()
    logs: RunLogs = field(default_factory=lambda: RunLogs([]))  # --logger: opened when training starts

    @property
    def cfg(self) -> dict[str, Any]:
        return self.recipe.config


def run_one(env: GridEnv, model_name: str, seed: int) -> RunRecord:
    """One (model, seed) run; never raises for a model failure (records it instead). Stages: find what is done
    (:func:`_start`), build the model, its precision and its record (:func:`_prepare`), then profile, plan, train,
    test and record (:func:`_execute`)."""
    run = _start(env, model_name, seed)
    if isinstance(run, RunRecord):
        return run  # already completed
    _prepare(env, run)
    return _execute(env, run)


def _start(env: GridEnv, model_name: str, seed: int) -> _Run | RunRecord:
    """The run's completed record (nothing to do), or the run with the checkpoint it resumes from."""
    opts, con = env.opts, env.con
    rpath, cpath = run_paths(opts, model_name, seed)
    old = read_record(rpath) if env.dist.master else None
    source = dict(data_source(opts.dataset, opts.data_root))
    check_data_source(rpath, source, force=opts.force, resume=opts.resume)
    if old and old.status == "completed" and not opts.force:
        con.print(f"[dim]{model_name} seed {seed}: already completed ({rpath}); --force re-runs it[/dim]")
        return old
    resume_ckpt = None
    if cpath.exists():
        if opts.resume:
            resume_ckpt = T.load_checkpoint(cpath)
        elif not opts.force:
            raise UserError(f"{model_name} seed {seed} has an unfinished run with a checkpoint ({cpath}); "
                            "pass --resume to continue it or --force to start over")
    return _Run(model_name, seed, rpath, cpath, old, resume_ckpt, source)


def _prepare(env: GridEnv, run: _Run) -> None:
    """The run's recipe, model (seeded), precision and first record; a checkpoint of another recipe or
    architecture is refused here, before anything is written."""
    opts, dist = env.opts, env.dist
    run.recipe = load_recipe(opts.dataset, run.model_name, opts.preset, opts.overrides, opts.sets)
    cfg = run.cfg
    run.metrics = run_metrics(env.dataset.spec.metrics, opts.metrics)
    torch.manual_seed(run.seed * 1000 + dist.rank)
    run.model = run.recipe.build_model(run.model_name, spec=env.dataset.spec)  # shapes read from the run's data
    if run.resume_ckpt is not None:
        check_resume(run.resume_ckpt, run.cpath, cfg, run.model, flags=opts.overrides, derived=PLAN_KEYS,
                     precision=opts.precision)
    run.prec = _choose_precision(opts, cfg, run.model, env.device, dist, env.con,
                                 run.old if run.resume_ckpt is not None else None)
    run.rec = new_record(run.model, run.metrics, model=run.model_name, dataset=opts.dataset, preset=opts.preset,
                         seed=run.seed, kind="model" if opts.evaluate_test else "trial",
                         config={**cfg, "model_hparams": getattr(run.model, "hparams", {}), "seed": run.seed,
                                 "budget_dir": budget_dir_of(opts, run.model_name), "device": str(env.device),
                                 "world_size": dist.world_size, "data_root": opts.data_root,
                                 **({"tuning": opts.tuning} if opts.tuning else {})},
                         env=env_info(env.device, run.prec.name))
    run.rec.config["data_source"] = run.source
    if run.resume_ckpt is not None and run.old is not None:
        run.rec.timing["started_at"] = run.old.timing.get("started_at", run.rec.timing["started_at"])


def _execute(env: GridEnv, run: _Run) -> RunRecord:
    """Profile, plan, train, test; the record written after every epoch and at the end, the run's failure
    (NaN / Inf, an exception) recorded instead of raised; Ctrl-C records ``interrupted`` and is raised again."""
    opts, dist, con, rec = env.opts, env.dist, env.con, run.rec
    t_start = time.perf_counter()
    per_sequence = None

    def write(per_sequence: dict[str, Any] | None = None) -> None:
        if dist.master:
            rec.write(opts.out, per_sequence)

    try:
        if opts.profile and dist.master:
            m = run.recipe.build_model(run.model_name, spec=env.dataset.spec)  # a fresh copy: profiling prepares it
            rec.profile = cost_profile(m, run.model_name, env.device, run.prec, train_batch=int(run.cfg["batch_size"]))
            del m
        _plan_training(rec, run.cfg, run.model, env.dataset, dist,
                       resume=run.old if run.resume_ckpt is not None else None)
        if run.resume_ckpt is None:
            write()
        model = run.prec.prepare(run.model)
        rec.config["compile_choice"] = choose_for_run(  # in the record only: --resume compares the recipe, not this
            model, opts.compile, run.cfg, prec=run.prec, device=env.device, model_name=run.model_name, dist=dist,
            old=run.old.config if run.resume_ckpt is not None and run.old is not None else None,
            say=lambda line: con.print(line, markup=False, highlight=False))  # an error text may hold [brackets]
        if dist.master and rec.profile and rec.profile.get("train_step_ms"):
            step_ms, label = rec.profile["train_step_ms"], run.prec.label
            cc = rec.config["compile_choice"]
            if cc.get("train") and cc.get("compiled_step_ms") and cc.get("eager_step_ms"):  # auto chose compiled:
                step_ms, label = step_ms * cc["compiled_step_ms"] / cc["eager_step_ms"], label + ", compiled"
            _estimate(con, step_ms, run.cfg, opts.preset, label)  # the measurement's graph serves the run
        model, state = _train(env, run, model, write)
        rec.timing["train_s"] = round(state.train_s, 3)
        _record_budget(rec, run.cfg, state, dist, env.device)
        if dist.master:
            best = next((h for h in state.history if h["epoch"] == state.best_epoch), None)
            rec.val = {"best_epoch": state.best_epoch, "metrics": {"mse": best["val_mse"]} if best else None}
            if opts.evaluate_test:  # `stbench tune` trials stop at validation: the test split never selects
                per_sequence = _test_and_keep(env, run, model)
            rec.status = "completed"
    except (T.NonFiniteLoss, T.NonFiniteMetrics) as exc:
        rec.status, rec.reason = "failed", str(exc)
    except KeyboardInterrupt as exc:
        rec.status, rec.reason = "interrupted", "Ctrl-C; continue with --resume"
        _finish(rec, t_start)
        write()
        run.logs.finish(rec)
        raise RunInterrupted(run.cpath if run.cpath.exists() else None) from exc  # saying where to resume
    except T.CheckpointError:
        raise  # a user problem for the CLI, not a model failure
    except Exception as exc:  # noqa: BLE001 - isolate this run's failure from the others
        rec.status, rec.reason = "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if opts.debug:
            traceback.print_exc()
    _finish(rec, t_start)
    write(per_sequence if rec.status == "completed" else None)
    run.logs.finish(rec)
    if rec.status == "completed" and dist.master and run.cpath.exists():
        run.cpath.unlink()  # the record now holds the result; the checkpoint was only for resuming
    if rec.status == "failed":
        con.print(f"[red]{run.model_name} seed {run.seed} failed: {rec.reason}[/red]")
    return rec


def _train(env: GridEnv, run: _Run, model: Any, write: Any) -> tuple[Any, Any]:
    """The training loop with its progress bars, per-epoch records and ``--logger`` logs (``run.logs``)."""
    rec, dist = run.rec, env.dist
    with _Progress(env.con, f"{run.model_name} s{run.seed}") as prog:
        def on_epoch(row: dict[str, Any]) -> None:
            rec.history.append(row)
            write()
            prog.epoch_done(row)

        hooks = T.LoopHooks(on_start=prog.start, on_step=prog.step, on_epoch=on_epoch)
        if run.resume_ckpt is not None:
            rec.history = list(run.resume_ckpt["state"]["history"])
            prog.resumed(run.resume_ckpt["state"]["epoch"])
        run.logs = RunLogs.open(env.opts.loggers if dist.master else [], env.opts.out, rec)
        return T.train(model, env.dataset, run.cfg, device=env.device, prec=run.prec, seed=run.seed,
                       ckpt_path=run.cpath, resume=run.resume_ckpt, dist=dist, hooks=run.logs.hooks(hooks))


def _test_and_keep(env: GridEnv, run: _Run, model: Any) -> dict[str, Any] | None:
    """The one test-split evaluation of the selected weights into the record (:mod:`stbench.scoring`, as
    ``stbench eval``), the example strips and (unless ``--no-weights``) the kept weights; returns the
    per-sequence values."""
    scored = score_test(model, env.dataset, run.cfg, env.device, run.prec, run.metrics)
    keep_test(run.rec, scored, run.rpath)
    if env.opts.weights:  # the tested (best-validation) weights and their model card, beside the record
        save_model(model, run.rec, env.dataset.spec, run.rpath, scored.per_sequence)
    return scored.per_sequence


# ---------------------------------------------------------------------------------------------
# the training budget of a run (docs/protocol.md, "Training budgets"): planned before training, recorded after
# ---------------------------------------------------------------------------------------------
PLAN_KEYS = ("epochs", "train_batches", "time_limit_s", "sampling", "train_flops_per_seq", "plan")


def _plan_training(rec: RunRecord, cfg: dict[str, Any], model: Any, dataset: Any, dist: Any,
                   resume: RunRecord | None) -> None:
    """Set the run's length (``epochs``, ``train_batches``, ``time_limit_s``) and its scheduled-sampling
    schedule in ``cfg`` (and the record's config) from its budget; a resumed run keeps its first plan."""
    old = (resume.config if resume is not None else {}) or {}
    if old.get("train_batches"):
        cfg.update({k: old[k] for k in PLAN_KEYS if k in old})
    else:
        budget = Budget.parse(cfg["budget"]) if cfg.get("budget") else None
        try:
            flops_seq = count_train_flops(model)
        except Exception:  # noqa: BLE001 - a model fvcore cannot trace still trains; only a flops budget needs it
            flops_seq = None
        bs, accum = int(cfg["batch_size"]), max(1, int(cfg.get("accum_steps", 1)))
        per_epoch = dataset.num_batches("train", bs, world_size=dist.world_size, limit=cfg.get("train_size"))
        kw = dict(batches_per_epoch=max(1, per_epoch), batch_size=bs, accum=accum, world_size=dist.world_size)
        step_ms = (rec.profile or {}).get("train_step_ms")
        p = plan(budget, epochs=int(cfg.get("epochs") or 0), train_flops_per_seq=flops_seq,
                 step_s=step_ms / 1e3 if step_ms else None, **kw)
        recipe_steps = plan(None, epochs=int(cfg["epochs"]), **kw).steps if cfg.get("epochs") else p.steps
        cfg.update(epochs=p.epochs, train_batches=p.batches, train_flops_per_seq=flops_seq, plan=asdict(p))
        if p.time_limit_s is not None:
            cfg["time_limit_s"] = p.time_limit_s
        if cfg.get("sampling"):
            cfg["sampling"] = resolve_sampling(cfg["sampling"], steps=p.steps, recipe_steps=recipe_steps)
    rec.config.update({k: cfg[k] for k in PLAN_KEYS if k in cfg})


def _record_budget(rec: RunRecord, cfg: dict[str, Any], state: Any, dist: Any, device: torch.device) -> None:
    budget = Budget.parse(cfg["budget"]) if cfg.get("budget") else None
    bs = int(cfg["batch_size"])
    rec.budget = budget_record(budget, Plan(**cfg["plan"]), samples_seen=state.batches_done * bs * dist.world_size,
                               train_flops_per_seq=cfg.get("train_flops_per_seq"), train_s=state.train_s,
                               device=rec.env.get("device_name") or str(device), stopped_by=state.stopped_by)


# ---------------------------------------------------------------------------------------------
# precision and layout of a run (issue 12): measured when auto, reused on --resume, the same on every rank
# ---------------------------------------------------------------------------------------------
def _choose_precision(opts: RunOptions, cfg: dict[str, Any], model: Any, device: torch.device, dist: Any,
                      con: Any, old: RunRecord | None) -> Any:
    choice = None
    if dist.master:
        choice = (old.config if old is not None else {}).get("precision_choice")  # --resume keeps its choice
        if not choice:
            try:
                c = choose_precision(model, int(cfg["batch_size"]), device,
                                     *asked_for(cfg, opts.precision, opts.memory_format))
            except ValueError as exc:  # an unknown precision / layout name is the user's to fix
                raise UserError(str(exc).splitlines()[0]) from None
            choice = c.as_dict()
            if c.measured:
                con.print(f"[dim]{c.line()}[/dim]")
    if dist.enabled:
        import torch.distributed as tdist

        box = [choice]
        tdist.broadcast_object_list(box, src=0)
        choice = box[0]
    prec = Precision(choice["precision"], device, choice["memory_format"])
    cfg["precision_resolved"] = prec.name
    cfg["memory_format_resolved"] = prec.memory_format
    cfg["precision_choice"] = choice
    return prec


def _finish(rec: RunRecord, t_start: float) -> None:
    rec.timing["finished_at"] = now_iso()
    rec.timing["total_s"] = round(rec.timing.get("total_s", 0.0) + time.perf_counter() - t_start, 3)


def _estimate(con: Any, step_ms: float, cfg: dict[str, Any], preset: str,
              label: str = "") -> None:
    p = cfg["plan"]
    total = step_ms / 1e3 * p["batches"]
    budget = f"budget {cfg['budget']}: " if cfg.get("budget") else ""
    msg = (f"estimated training time: {duration(total)} ({budget}{p['samples']} sequences, {p['batches']} steps "
           f"in {p['epochs']} epochs, at a measured {step_ms:.0f} ms/step{', ' + label if label else ''}), "
           "plus evaluation")
    con.print(("[bold yellow]" if preset == "paper" else "[dim]") + msg + ("[/bold yellow]" if preset == "paper"
                                                                            else "[/dim]"))


class _Progress:
    """rich progress bars: epochs and iterations with loss, throughput and ETA."""

    def __init__(self, con: Any, label: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.con = con
        self.label = label
        self.p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("eta"),
                          TimeRemainingColumn(), console=con, transient=False,
                          disable=con.quiet or not con.is_terminal)  # a log file gets epoch lines instead
        self.ep = self.it = None

    def __enter__(self) -> _Progress:
        self.p.__enter__()
        return self

    def __exit__(self, *a: Any) -> None:
        self.p.__exit__(*a)

    def start(self, epochs: int, batches: int) -> None:
        if self.ep is None:
            self.ep = self.p.add_task(f"{self.label} epochs", total=epochs, info="")
        self.it = self.p.add_task("  iterations", total=batches, info="")
        self._epochs, self._batches = epochs, batches

    def resumed(self, epoch: int) -> None:
        self.con.print(f"[dim]resuming {self.label} after epoch {epoch}[/dim]")
        self._resume_epoch = epoch

    def step(self, i: int, loss: float | None, sps: float) -> None:
        if self.ep is not None and getattr(self, "_resume_epoch", None):
            self.p.update(self.ep, completed=self._resume_epoch)
            self._resume_epoch = None
        self.p.update(self.it, completed=i, info=f"loss {loss:.4f} · {sps:.0f} seq/s")

    def epoch_done(self, row: dict[str, Any]) -> None:
        if not self.con.is_terminal:  # a log file gets one line per epoch instead of live bars
            self.con.print(f"{self.label} epoch {row['epoch']}: train loss {row['train_loss']:.4f}, "
                           f"val MSE {row.get('val_mse', float('nan')):.2f}, {row['epoch_s']:.0f} s, "
                           f"{row['samples_per_s']:.0f} seq/s")
        self.p.advance(self.ep)
        self.p.update(self.ep, info=f"train {row['train_loss']:.4f} · val MSE {row.get('val_mse', float('nan')):.1f}")
        # after the last epoch the epoch bar stays and the iteration bar goes
        if row["epoch"] >= self._epochs:
            self.p.remove_task(self.it)
        else:
            self.p.reset(self.it, total=self._batches)


def _summary(con: Any, results: list[RunRecord], opts: RunOptions) -> None:
    from rich.table import Table

    # the runs' own metrics (the dataset's, then --metrics), in their order; labels and directions from MetricDef
    shown = list(dict.fromkeys(k for r in results for k, v in (r.metrics or {}).items()
                               if isinstance(v, (int, float)) and not isinstance(v, bool)))
    t = Table(title=f"stbench run — {opts.dataset}, preset {opts.preset}")
    for c in ("model", "seed", "status", *(_header(metric_def(m)) for m in shown), "train", "record"):
        t.add_column(c)
    for r in results:
        m = r.metrics or {}
        t.add_row(r.model, str(r.seed) if r.kind == "model" else "-",
                  r.status + (f": {r.reason}" if r.reason else ""),
                  *(f"{m[k]:.4g}" if k in m else "-" for k in shown),
                  duration(r.timing.get("train_s", 0.0)) if r.kind == "model" else "-", str(r.path(opts.out)))
    con.print(t)
    con.print(f"[dim]metric conventions: docs/protocol.md; see `stbench report --results {opts.out}`[/dim]")


def _header(d: Any) -> str:
    return f"{d.label} {'↑' if d.higher_is_better else '↓'}"
