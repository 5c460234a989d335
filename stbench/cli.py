"""Command-line interface: a thin layer over the Python API.

    stbench run --models tau,predrnn --dataset mmnist            # train + evaluate + profile
    stbench sweep --models tau,simvp --budgets samples=2e3,2e4    # the models x budgets x seeds grid
    stbench tune --models tau --grid lr=1e-3,3e-3                 # trials selected on validation, then seeds
    stbench report                                               # leaderboards + plots from records
    stbench list models|temporal|encoders|decoders|datasets|metrics
    stbench profile --models tau,simvp --dataset mmnist           # params, FLOPs, throughput only
    stbench eval --checkpoint w.pth --model tau --from openstl    # a checkpoint -> an 'evaluated' record
    stbench predict --checkpoint run.safetensors --input x.npy --out pred.npy   # a kept model on your arrays
    stbench status --results results                             # one line per grid cell
    stbench data check --dataset taxibj --data-root data/         # a dataset's standard files
    stbench recipe --model tau --preset quick --explain           # the resolved recipe, each key's source

Heavy modules are imported inside each subcommand. Errors a user can fix are printed as one line
(no traceback unless --debug) with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from stbench.errors import StbenchError, UserError
from stbench.recipes import COMPILE_MODES, DEFAULT_PRESET, MEMORY_FORMATS, PRECISIONS, PRESETS

EXIT_USAGE = 2


def _console(stderr: bool = False):
    from stbench.console import make_console

    return make_console(stderr=stderr)


# ---------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------
def _load_plugins(specs: Sequence[str] | None) -> None:
    from stbench.registry import load_entry_points, load_plugin

    load_entry_points()
    for spec in specs or []:
        load_plugin(spec)


def expand_models(spec: str) -> list[str]:
    """Comma list with wildcards -> validated model names (``tau``, ``tau@patch``, a temporal module).

    Wildcards follow :func:`stbench.registry.match_names` (tiny test variants only when the pattern says
    ``tiny``), exactly as :func:`stbench.list_models` and ``stbench list models``.
    """
    import stbench

    names: list[str] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if any(c in item for c in "*?["):
            hits = stbench.list_models(item)
            if not hits:
                raise UserError(f"--models pattern '{item}' matches no model; see `stbench list models`")
            names += hits
        else:
            stbench.resolve_model_name(item)  # raises with "did you mean"
            names.append(item)
    if not names:
        raise UserError("--models is empty; give a comma list such as --models tau,predrnn")
    return list(dict.fromkeys(names))


def _one_of(names: Sequence[str]) -> str:
    """A closed set of values for an option's help (checked later, with a one-line error)."""
    return " | ".join(names)


def _fmt_num(x: float | None, unit: str = "") -> str:
    if x is None:
        return "-"
    for div, suf in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.2f}{suf}{unit}"
    return f"{x:.3g}{unit}"


# ---------------------------------------------------------------------------------------------
# list
# ---------------------------------------------------------------------------------------------
def _model_rows(pattern: str | None) -> list[dict[str, Any]]:
    import torch

    import stbench
    from stbench.records import family_of
    from stbench.registry import MODELS

    rows = []
    for name in MODELS.names(pattern):
        e = MODELS.entry(name)
        with torch.device("meta"):  # build without allocating or initialising weights
            m = stbench.create_model(name)
        rows.append({
            "name": name, "family": family_of(m.recurrent),
            "encoder": m.names["encoder"], "temporal": m.names["temporal"], "decoder": m.names["decoder"],
            "params": sum(p.numel() for p in m.parameters()), "tiny": bool(e.meta.get("tiny")),
            "source": e.source, "paper": e.meta.get("paper", ""),
        })
    return rows


def cmd_list(args: argparse.Namespace) -> int:
    from stbench.records import family_of
    from stbench.registry import DATASETS, DECODERS, ENCODERS, METRICS, PLUGIN_ERRORS, TEMPORAL

    what = args.what
    if what == "models":
        rows = _model_rows(args.pattern)
        cols = ["name", "family", "encoder", "temporal", "params", "source", "paper"]
    elif what == "temporal":
        rows = [{"name": e.name, "kind": family_of(e.obj.recurrent), "source": e.source,
                 "class": f"{e.obj.__module__}.{e.obj.__qualname__}"}
                for e in TEMPORAL.entries() if not args.pattern or e.name in TEMPORAL.names(args.pattern)]
        cols = ["name", "kind", "source", "class"]
    elif what in ("encoders", "decoders"):
        reg = ENCODERS if what == "encoders" else DECODERS
        other = DECODERS if what == "encoders" else ENCODERS
        rows = [{"name": e.name, "source": e.source, "paired_" + ("decoder" if what == "encoders" else "encoder"):
                 e.name in other, "class": f"{e.obj.__module__}.{e.obj.__qualname__}"}
                for e in reg.entries() if not args.pattern or e.name in reg.names(args.pattern)]
        cols = list(rows[0]) if rows else ["name"]
    elif what == "datasets":
        from stbench.data import get_spec

        rows = []
        for e in DATASETS.entries():
            s = get_spec(e.name)
            rows.append({"name": e.name, "in_shape": list(s.in_shape), "t_out": s.t_out, "scale": list(s.scale),
                         "metrics": list(s.metrics), "sizes": dict(s.sizes), "source": e.source,
                         "description": s.description})
        cols = ["name", "in_shape", "t_out", "scale", "metrics", "sizes", "source"]
    else:  # metrics
        from stbench.metrics import metric_def

        rows = [{**metric_def(e.name).as_meta(), "name": e.name, "source": e.source} for e in METRICS.entries()]
        cols = ["name", "label", "higher_is_better", "per_frame", "source", "convention"]

    if args.format == "json":
        print(json.dumps(rows, indent=2, default=str))
    else:
        from rich.table import Table

        t = Table(title=f"stbench {what}", show_lines=False)
        for c in cols:
            t.add_column(c, overflow="fold")
        for r in rows:
            t.add_row(*[_cell(c, r.get(c)) for c in cols])
        con = _console()
        con.print(t)
        for r in rows:
            if r.get("description"):
                con.print(f"[bold]{r['name']}[/bold]: {r['description']}")
        if PLUGIN_ERRORS:
            for label, err in PLUGIN_ERRORS.items():
                con.print(f"[red]plugin {label} failed to load: {err}[/red]")
    return 0


def _cell(col: str, v: Any) -> str:
    if col == "params" and isinstance(v, int):
        return _fmt_num(v)
    if isinstance(v, (list, tuple)):
        return "x".join(map(str, v)) if col == "in_shape" else ", ".join(map(str, v))
    if isinstance(v, dict):
        return ", ".join(f"{k} {x}" for k, x in v.items())
    return "" if v is None else str(v)


# ---------------------------------------------------------------------------------------------
# profile
# ---------------------------------------------------------------------------------------------
def cmd_profile(args: argparse.Namespace) -> int:
    from stbench.profile import Measure, ProfileOptions, profile_models
    from stbench.records import family_of

    models = expand_models(args.models)
    if args.preset is None and args.format != "json":
        _console(stderr=True).print(f"No --preset given: profiling the '{DEFAULT_PRESET}' architecture, as `stbench "
                                    "run` trains it (--preset paper for the published sizes)", style="dim")
    args.preset = args.preset or DEFAULT_PRESET
    opts = ProfileOptions(dataset=args.dataset, preset=args.preset, device=args.device, precision=args.precision,
                          memory_format=args.memory_format, threads=args.threads, compile=args.compile,
                          measure=Measure(batch=args.batch, warmup=args.warmup, reps=args.reps, budget_s=args.budget,
                                          train=not args.no_train, flops=not args.no_flops,
                                          published_fps=args.published_fps))
    results = []
    for r in profile_models(models, opts):
        results.append(r.as_dict())
        if r.compile and args.format != "json":
            _console(stderr=True).print(f"compile {r.model}: " + ", ".join(f"{k} {r.compile.get(k)}" for k in (
                "eager_step_ms", "compiled_step_ms", "compile_s", "break_even_steps", "steps", "train", "reason")),
                style="dim")
        if args.format != "json":
            cands = r.candidates_step_ms
            _console(stderr=True).print(f"profiled {r.model}" + (f": {r.precision} {r.memory_format} (training step "
                                        f"ms of the candidates: {', '.join(f'{k} {v:.0f}' for k, v in cands.items())})"
                                        if cands else ""), style="dim")
    if args.format == "json":
        print(json.dumps(results, indent=2))
        return 0
    from rich.table import Table

    t = Table(title=f"stbench profile — {args.dataset} ({args.preset} architecture), batch {args.batch}, "
                    f"{results[0]['device'] if results else ''}")
    for c in ("model", "family", "precision", "params", "FLOPs/sample", "infer seq/s (median [min, max] n)",
              "train step ms (median [min, max] n)", "peak mem MB", "MFU", "published-protocol FPS"):
        t.add_column(c, justify="left" if c in ("model", "family", "precision") else "right")
    for r in results:
        t.add_row(
            r["model"], family_of(r["recurrent"]), f"{r['precision']} {r['memory_format']}",
            _fmt_num(r["params"]), _fmt_num(r["flops"]),
            f"{r['infer_seq_per_s']:.1f} [{r['infer_seq_per_s_min']:.1f}, {r['infer_seq_per_s_max']:.1f}] "
            f"{r['infer_reps']}",
            "-" if r["train_step_ms"] is None else
            f"{r['train_step_ms']:.1f} [{r['train_step_ms_min']:.1f}, {r['train_step_ms_max']:.1f}] {r['train_reps']}",
            "-" if r["peak_mem_mb"] is None else f"{r['peak_mem_mb']:.0f}",
            "-" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%",
            "-" if r["published_fps"] is None else f"{r['published_fps']:.1f}",
        )
    con = _console()
    con.print(t)
    con.print("FLOPs: fvcore, one sample, eval mode (MAC = 1 flop), recurrent models over the full unroll. "
              f"Throughput / step: warm-up + synchronised median over n repetitions (at most --reps, none started "
              f"after --budget {args.budget:g} s). Precision: the fastest measured training step among the "
              "candidates (--precision / --memory-format force one). MFU: training FLOP/s over a "
              "matmul peak measured here. Published-protocol FPS (batch 100, 100 reps, no warm-up) only "
              "with --published-fps.", style="dim")
    return 0


# ---------------------------------------------------------------------------------------------
# run / report
# ---------------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from stbench.runner import RunOptions, run_grid

    opts = RunOptions.from_args(args, expand_models(args.models))
    if args.launcher != "local":
        return _launch(args, opts)
    return run_grid(opts)


def _launch(args: argparse.Namespace, opts: Any) -> int:
    """``--launcher slurm|submitit-local``: one job per (model, seed) cell, see stbench/launch/slurm.py."""
    from stbench.launch.slurm import Grid, Launch, submit_grid
    from stbench.preflight import check_launch
    from stbench.runner import budget_dir_of

    if opts.shard != (0, 1):
        raise UserError("--shard and --launcher slurm both split the grid; use one of them")
    check_launch(opts)  # every cell's values, before a manifest is written or a job submitted
    grid = Grid(opts.models, opts.seeds, opts.dataset, opts.preset, opts.out, opts.force,
                folder_of=lambda m, _: budget_dir_of(opts, m))  # --budget B: the cells' records folder
    return submit_grid(args.argv, grid, Launch.from_args(args, job=main, echo=_console().print))


def cmd_tune(args: argparse.Namespace) -> int:
    """``stbench tune``: see stbench/tune.py. With a launcher, one job per model (its trials, then its seeds)."""
    from stbench.runner import RunOptions
    from stbench.tune import TuneOptions, parse_space, settings, tune

    opts = TuneOptions(RunOptions.from_args(args, expand_models(args.models)), parse_space(args.grid), args.trials)
    settings(opts.space, opts.trials)  # a range without --trials, --trials 0: refused before anything runs
    if args.launcher == "local":
        return tune(opts)
    from stbench.launch.slurm import Launch, cell_argv, submit_models

    seeds = ",".join(map(str, opts.run.seeds))
    argvs = {m: [*cell_argv(args.argv, m, 0)[:-5], "--models", m, "--seeds", seeds, "--resume"]
             for m in opts.run.models}
    return submit_models(argvs, f"stbench-tune-{opts.run.dataset}", opts.run.out,
                         Launch.from_args(args, job=main, echo=_console().print))


def cmd_sweep(args: argparse.Namespace) -> int:
    """``stbench sweep``: see stbench/sweep.py. With a launcher, one job per (model, budget, seed) cell."""
    from stbench.runner import RunOptions, budget_dir_of
    from stbench.sweep import budget_options, parse_budgets, sweep

    if args.budget:
        raise UserError("stbench sweep takes --budgets (a list); --budget is for stbench run")
    budgets = parse_budgets(args.budgets)
    opts = RunOptions.from_args(args, expand_models(args.models))
    if args.launcher == "local":
        return sweep(opts, budgets)
    from stbench.launch.slurm import Grid, Launch, submit_grid

    if opts.shard != (0, 1):
        raise UserError("--shard and --launcher slurm both split the grid; use one of them")
    grid = Grid(opts.models, opts.seeds, opts.dataset, opts.preset, opts.out, opts.force, budgets=budgets,
                folder_of=lambda m, b: budget_dir_of(budget_options(opts, b), m))
    return submit_grid(args.argv, grid, Launch.from_args(args, job=main, echo=_console().print))


def cmd_status(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stbench.status import grid_status, summary

    results = Path(args.results)
    if not (results / "records").is_dir() and not (results / "grid").is_dir():
        raise UserError(f"no records under '{results}'; point --results at the --out of a run")
    cells = grid_status(results)
    for c in cells:
        print(c.line())
    print(f"{len(cells)} cells: {summary(cells)}")
    return 0


# -- data (datasets' standard files) ---------------------------------------------------------------
def cmd_recipe(args: argparse.Namespace) -> int:
    from stbench.recipes import show

    print(show(args.dataset, args.model, args.preset, args.set, explain_keys=args.explain,
               as_json=args.format == "json"))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    """``stbench data check``: one line per expected file, exit 1 if any is not ok."""
    from stbench.data.check import check, format_rows

    rows = check(args.dataset, args.data_root)
    if args.format == "json":
        print(json.dumps([{"file": f, "status": st, "detail": d} for f, st, d in rows], indent=2))
    else:
        print(format_rows(rows))
    bad = sum(st != "ok" for _, st, _ in rows)
    if args.format != "json":
        print(f"{len(rows) - bad} ok, {bad} not ok" + ("" if not bad else " - fix these before `stbench run`"))
    return 1 if bad else 0


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stbench.report import FORMATS, EmptyResultsError, build_report

    formats = ([f.strip() for f in args.format.split(",") if f.strip()] if args.format is not None
               else [f for f in FORMATS if f != "site"])
    bad = sorted(set(formats) - set(FORMATS))
    if bad:
        raise UserError(f"unknown report format(s) {', '.join(bad)}; choose from {','.join(FORMATS)}")
    try:
        res = build_report(Path(args.results), Path(args.out) if args.out else None, formats, console=_console(),
                           val_target=args.val_target)
    except EmptyResultsError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:  # a full disk, a read-only folder: the file named, in one line
        raise UserError(f"cannot write {exc.filename or 'the report'} ({exc.strerror or exc}); free space or "
                        "choose another --out") from None
    if res.files:
        _console().print(f"wrote {len(res.files)} files under {res.out_dir}", style="dim")
    return 0


# ---------------------------------------------------------------------------------------------
# eval (stbench.evaluate)
# ---------------------------------------------------------------------------------------------
def cmd_eval(args: argparse.Namespace) -> int:
    from stbench.evaluate import EvalOptions, evaluate_checkpoint

    if args.t_out is not None:  # a kept model rolled out past its trained horizon (stbench/horizon.py)
        return _eval_horizon(args)
    opts = EvalOptions(dataset=args.dataset, data_root=args.data_root, source=args.source, config=args.config,
                       out=args.out, device=args.device, precision=args.precision, test_size=args.test_size,
                       batch_size=args.batch_size, profile=not args.no_profile, rollout=args.rollout, force=args.force,
                       compile=args.compile)
    rec = evaluate_checkpoint(args.checkpoint, args.model, opts, console=_console())
    if rec.status == "failed":  # recorded with its reason; the command fails like a failed run
        print(f"stbench: error: {rec.reason}", file=sys.stderr)
        return 1
    return 0


def _eval_horizon(args: argparse.Namespace) -> int:
    from stbench.horizon import evaluate_horizon

    if args.model or args.config or args.source != "stbench" or args.rollout:
        raise UserError("--t-out scores a kept model as its card describes it: drop --model / --config / --from / "
                        "--rollout")
    rec = evaluate_horizon(args.checkpoint, args.t_out, out=args.out, data_root=args.data_root, device=args.device,
                           precision=args.precision, test_size=args.test_size, batch_size=args.batch_size,
                           console=_console(), force=bool(getattr(args, "force", False)))
    if rec.status == "failed":
        print(f"stbench: error: {rec.reason}", file=sys.stderr)
        return 1
    return 0


def _add_eval_parser(command: Any) -> None:
    ev = command("eval", cmd_eval, "evaluate a checkpoint (stbench's or OpenSTL's) on the test split; writes an "
                 "'evaluated' record",
                 "stbench eval --checkpoint mmnist_tau_one_ep2000.pth --model tau --from openstl --data-root data/",
                 "stbench eval --checkpoint w.pth --model gsta --from openstl --config "
                 "configs/mmnist/simvp/SimVP_gSTA.py",
                 "stbench eval --checkpoint my_tau.pt --model tau   # stbench weights, paper sizes",
                 "stbench eval --checkpoint results/records/mmnist/quick/tau__seed0.safetensors  # card: no --model",
                 "stbench eval --checkpoint results/records/mmnist/quick/tau__seed0.safetensors --t-out 30  # roll out")
    ev.add_argument("--checkpoint", required=True,
                    help="weights file: .pth/.ckpt/.pt (loaded with weights_only=True) or a .safetensors that "
                         "stbench run kept, with its .card.json beside it")
    ev.add_argument("--model", default=None,
                    help="the stbench model the weights are for (e.g. tau, predrnn); a .safetensors' card names it "
                         "(then --model, if given, must agree)")
    ev.add_argument("--dataset", default=None, help="default: the card's dataset, else mmnist")
    ev.add_argument("--data-root", default=None, help="directory with the standard data files")
    ev.add_argument("--from", dest="source", default="stbench", choices=["stbench", "openstl", "predformer"],
                    help="whose checkpoint it is (default: stbench)")
    ev.add_argument("--config", default=None, metavar="CFG.py",
                    help="OpenSTL config file (read by ast, never executed); default: the model's paper config")
    ev.add_argument("--out", default="results", help="output directory for records (default: results)")
    ev.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    ev.add_argument("--precision", default="fp32", help=f"{_one_of(PRECISIONS)} (default: fp32)")
    ev.add_argument("--test-size", type=int, default=None, help="evaluate on the first N test sequences")
    _add_compile_option(ev)
    ev.add_argument("--batch-size", type=int, default=None, help="evaluation batch (default: the preset's)")
    ev.add_argument("--rollout", default=None, choices=["frame", "latent"],
                    help="parallel models, T_out > T_in: frame (published, default) or latent roll-out")
    ev.add_argument("--no-profile", action="store_true", help="skip the cost profile in the record")
    ev.add_argument("--t-out", type=int, default=None, metavar="N",
                    help="a kept model (.safetensors + card) rolled out to N frames on its test set continued to N "
                         "frames: error per lead time, a leaderboard of its own per horizon (docs/protocol.md)")
    ev.add_argument("--force", action="store_true", help="replace a completed evaluation of the same weights")


# ---------------------------------------------------------------------------------------------
# predict (stbench.inference)
# ---------------------------------------------------------------------------------------------
def cmd_predict(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stbench.inference import predict, read_input, write_output

    if Path(args.out).suffix.lower() not in (".npy", ".npz"):
        raise UserError(f"--out {args.out}: write .npy or .npz (array 'pred')")
    x = read_input(args.input)
    pred = predict(args.checkpoint, x, t_out=args.t_out, batch_size=args.batch_size, device=args.device,
                   model=args.model)
    path = write_output(args.out, pred)
    _console(stderr=True).print(f"wrote {path}: {tuple(pred.shape)} float32 predicted frames", style="dim")
    return 0


def _add_predict_parser(command: Any) -> None:
    pr = command("predict", cmd_predict, "run a kept model (.safetensors + model card) on your own arrays",
                 "stbench predict --checkpoint results/records/mmnist/quick/tau__seed0.safetensors --input x.npy "
                 "--out pred.npy",
                 "stbench predict --checkpoint tau__seed0.safetensors --input clips.npz:test --t-out 30 --out p.npz",
                 "stbench predict --checkpoint w.safetensors --input t2m.nc:t2m --out pred.npy   # NetCDF: xarray")
    pr.add_argument("--checkpoint", required=True, help="a .safetensors kept by stbench run (its .card.json beside it)")
    pr.add_argument("--input", required=True, metavar="FILE[:KEY]",
                    help="(N, T, C, H, W) or (T, C, H, W): x.npy, x.npz[:array], x.nc[:var,...] (NetCDF, xarray); "
                         "in the dataset's raw units (the card's normalisation is applied and undone)")
    pr.add_argument("--out", required=True, help="pred.npy or pred.npz (array 'pred'), float32 (N, t_out, C, H, W)")
    pr.add_argument("--t-out", type=int, default=None,
                    help="frames to predict (default: the trained horizon; longer ones are rolled out as in eval)")
    pr.add_argument("--model", default=None, help="optional: must be the card's model")
    pr.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto (default: cpu)")
    pr.add_argument("--batch-size", type=int, default=16, help="sequences per forward pass (default 16)")


def _add_compile_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compile", default=None, choices=COMPILE_MODES,
                   help="torch.compile the training step and evaluation forward: off (default); on (a recurrent "
                        "model on a CPU compiles one time step, replayed; others the whole step); step / cell (on, "
                        "in that region: step compiles longer, runs faster); auto (measured: compiled when that "
                        "finishes the run sooner, compile time counted)")


def _add_run_options(r: argparse.ArgumentParser) -> None:
    """The options of `run`, shared by `tune` (and every command that trains a grid)."""
    r.add_argument("--models", required=True, help="comma list; wildcards; model@encoder swaps the codec")
    r.add_argument("--dataset", default="mmnist")
    r.add_argument("--preset", default=None, help=f"{_one_of(PRESETS)} (default: {DEFAULT_PRESET})")
    r.add_argument("--seed", type=int, default=None, help="one seed (default 0)")
    r.add_argument("--seeds", default=None, help="comma list of seeds, e.g. 0,1,2")
    r.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    r.add_argument("--precision", default=None, help=f"{_one_of(PRECISIONS)} (default: the preset's)")
    r.add_argument("--metrics", default=None, metavar="+NAME,...",
                   help="add registered metrics (e.g. a plugin's) to the dataset's own: --metrics +ssim_dr1")
    r.add_argument("--memory-format", default=None, choices=MEMORY_FORMATS,
                   help="tensor layout (default: measured with --precision auto, else the device's default)")
    _add_compile_option(r)
    r.add_argument("--out", default="results", help="output directory for records (default: results)")
    r.add_argument("--resume", action="store_true", help="continue unfinished runs from their checkpoints")
    r.add_argument("--force", action="store_true", help="re-run runs whose record is already completed")
    r.add_argument("--shard", default=None, help="i/n: run the i-th of n slices of the models x seeds grid")
    r.add_argument("--data-root", default=None, help="directory with the standard data files")
    r.add_argument("--budget", default=None, metavar="KIND=VALUE",
                   help="training budget: samples=N (sequences seen), flops=X (3 x training-forward FLOPs x "
                        "sequences) or seconds=S (wall clock here); default: the preset's (docs/protocol.md)")
    r.add_argument("--epochs", type=int, default=None, help="train this many epochs instead of the preset's budget")
    r.add_argument("--batch-size", type=int, default=None)
    r.add_argument("--lr", type=float, default=None)
    r.add_argument("--accum-steps", type=int, default=None, help="gradient accumulation steps")
    r.add_argument("--clip-grad", type=float, default=None, help="max gradient norm (0 = off)")
    r.add_argument("--train-size", type=int, default=None)
    r.add_argument("--val-size", type=int, default=None)
    r.add_argument("--test-size", type=int, default=None)
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any recipe key, e.g. --set model.hid_T=256 --set sampling.stop_iter=100")
    r.add_argument("--no-profile", action="store_true", help="skip the cost profile in the record")
    r.add_argument("--no-weights", action="store_true",
                   help="do not keep the trained weights (<record>.safetensors + <record>.card.json)")
    r.add_argument("--logger", default=None, metavar="NAMES",
                   help="training logs, a comma list of csv,tensorboard,mlflow: per-step loss / lr / throughput, "
                        "per-epoch validation, test metrics and the recipe as hparams, under <out>/logs "
                        "(mlflow: MLFLOW_TRACKING_URI if set)")
    r.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    lg = r.add_argument_group("launching the grid elsewhere (see `stbench status`)")
    lg.add_argument("--launcher", choices=["local", "slurm", "submitit-local"], default="local",
                    help="local: run here (default); slurm: one Slurm job per (model, seed) cell via submitit; "
                         "submitit-local: the same path with local processes (to test a sweep)")
    lg.add_argument("--slurm-partition", default=None)
    lg.add_argument("--slurm-gpus-per-node", type=int, default=0)
    lg.add_argument("--slurm-time", default="24:00:00", help="per-cell wall time, HH:MM:SS or D-HH:MM:SS")
    lg.add_argument("--slurm-mem", default=None, help="per-cell memory, e.g. 32G")
    lg.add_argument("--slurm-cpus-per-task", type=int, default=None)
    lg.add_argument("--slurm-array-parallelism", type=int, default=64, help="at most this many cells at once")
    lg.add_argument("--slurm-extra", action="append", default=[], metavar="KEY=VALUE",
                    help="any other sbatch option, e.g. --slurm-extra account=myproj (repeatable)")
    lg.add_argument("--wait", action="store_true", help="wait for the submitted cells and exit 1 if any failed")


def _add_grid_parsers(command: Any) -> None:
    """``run``, ``tune`` and ``sweep``: the commands that train a grid (with the options of `run`)."""
    r = command("run", cmd_run, "train + evaluate + profile; one record per (model, dataset, preset, seed)",
                "stbench run --models tau,predrnn --dataset mmnist --preset quick",
                "stbench run --models 'tau*,convlstm@simvp' --seeds 0,1,2 --epochs 3",
                "torchrun --nproc-per-node 2 -m stbench run --models tau --preset quick",
                "stbench run --models tau,simvp --shard 1/2   # second of two workers")
    _add_run_options(r)
    tu = command("tune", cmd_tune, "the same tuning effort for every model: trials selected on validation, then seeds",
                 "stbench tune --models tau,predrnn --preset quick --grid lr=1e-3,3e-3,1e-2 --seeds 0,1",
                 "stbench tune --models 'tau,convlstm' --grid lr=1e-4:1e-2 --grid batch_size=4,8 --trials 6")
    _add_run_options(tu)
    tu.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2|KEY=LO:HI",
                    help="a recipe key and its values (any key, e.g. lr, batch_size, model.hid_T); repeat for more "
                         "keys; every combination is a trial, or with --trials K, K settings drawn once")
    tu.add_argument("--trials", type=int, default=None, help="a fixed random search: K settings, the same for every "
                                                              "model (LO:HI ranges are drawn log-uniformly)")

    sw = command("sweep", cmd_sweep, "the models x budgets x seeds grid (compute study): one run per cell",
                 "stbench sweep --models 'simvp,tau,convlstm,predrnn' --budgets samples=2e3,6e3,2e4 --seeds 0,1",
                 "stbench sweep --models tau,predrnn --preset paper --budgets flops=1e15,1e16 --launcher slurm "
                 "--slurm-gpus-per-node 1")
    _add_run_options(sw)
    sw.add_argument("--budgets", required=True, metavar="KIND=V1,V2,...",
                    help="training budgets, e.g. samples=2e3,6e3,2e4 or flops=1e15,1e16 (an item without KIND= "
                         "takes the previous one's); each is a --budget of stbench run (docs/protocol.md)")


def _add_report_parsers(command: Any) -> None:
    """``report``, ``list`` and ``status``: the commands that read what exists."""
    rp = command("report", cmd_report, "leaderboards and plots from run records",
                 "stbench report", "stbench report --results results --format md,csv",
                 "stbench report --format site   # interactive static site under <results>/report/site")
    rp.add_argument("--results", default="results", help="directory holding records/ (default: results)")
    rp.add_argument("--format", default=None,
                    help="comma list of formats (stbench.report.FORMATS), e.g. md,csv; site = an interactive static "
                         "site (default: every format but site)")
    rp.add_argument("--out", default=None, help="where to write files (default: <results>/report)")
    rp.add_argument("--val-target", type=float, default=None, metavar="MSE",
                    help="compute study: the validation MSE each model's time-to-target is measured to (default: the "
                         "worst model's validation MSE at the largest budget)")

    ls = command("list", cmd_list, "what is registered, plugins included",
                 "stbench list models 'tau*'", "stbench list temporal --format json")
    ls.add_argument("what", choices=["models", "temporal", "encoders", "decoders", "datasets", "metrics"])
    ls.add_argument("pattern", nargs="?", default=None, help="wildcard filter")
    ls.add_argument("--format", choices=["table", "json"], default="table")

    st = command("status", cmd_status, "one line per grid cell: queued / running / completed / failed",
                 "stbench status", "stbench status --results /shared/results")
    st.add_argument("--results", default="results", help="the --out of the runs (default: results)")


def _add_profile_parser(command: Any) -> None:
    """``profile``: the cost of named models (:func:`stbench.profile.profile_models`)."""
    pf = command("profile", cmd_profile, "params, FLOPs, throughput, training step, memory, MFU",
                 "stbench profile --models simvp,gsta,tau --preset paper # published",
                 "stbench profile --models convlstm,predrnn --format json --batch 4")
    pf.add_argument("--models", required=True)
    pf.add_argument("--dataset", default="mmnist")
    pf.add_argument("--preset", default=None,
                    help=f"{_one_of(PRESETS)}: architecture of this preset (default: {DEFAULT_PRESET}, as `run`; "
                         "paper = published sizes)")
    pf.add_argument("--device", default="auto")
    pf.add_argument("--precision", default=None,
                    help=f"{_one_of(PRECISIONS)} (default: the preset's, as `stbench run` uses it: paper fp32, "
                         "quick auto = the fastest measured training step)")
    pf.add_argument("--memory-format", default=None, choices=MEMORY_FORMATS,
                    help="tensor layout (default: measured with --precision auto, else the device's default)")
    _add_compile_option(pf)
    pf.add_argument("--batch", type=int, default=16)
    pf.add_argument("--warmup", type=int, default=3)
    pf.add_argument("--reps", type=int, default=10, help="at most this many timed repetitions per measurement")
    pf.add_argument("--budget", type=float, default=20.0,
                    help="seconds per measurement: no repetition starts after it (default 20; at least one runs)")
    pf.add_argument("--threads", type=int, default=None)
    pf.add_argument("--no-train", action="store_true", help="skip the training-step timing")
    pf.add_argument("--no-flops", action="store_true", help="skip fvcore FLOP counting")
    pf.add_argument("--published-fps", action="store_true",
                    help="also run the published FPS protocol (batch 100, 100 reps, no warm-up; slow on CPU)")
    pf.add_argument("--format", choices=["table", "json"], default="table")


def _add_data_parser(command: Any) -> None:
    """``data check``: a dataset's standard files."""
    dp = command("data", cmd_data, "check a dataset's standard files",
                 "stbench data check --dataset taxibj --data-root data/",
                 "stbench data check --dataset kth --data-root data/ --format json")
    dp.add_argument("action", choices=["check"])
    dp.add_argument("--dataset", required=True)
    dp.add_argument("--data-root", required=True, help="directory with the standard data files")
    dp.add_argument("--format", choices=["table", "json"], default="table")


def _add_recipe_parser(command: Any) -> None:
    """``recipe``: what a run would train with, and where each key came from."""
    rc = command("recipe", cmd_recipe, "the resolved recipe of one run; --explain names the source of every key",
                 "stbench recipe --model tau --dataset mmnist --preset quick --explain",
                 "stbench recipe --model convlstm --dataset kth --preset paper --set epochs=3 --format json")
    rc.add_argument("--model", required=True)
    rc.add_argument("--dataset", default="mmnist")
    rc.add_argument("--preset", default=DEFAULT_PRESET, help=_one_of(PRESETS))
    rc.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an override, as `stbench run`'s")
    rc.add_argument("--explain", action="store_true", help="the source of every key (file and table, registry, CLI)")
    rc.add_argument("--format", choices=["toml", "json"], default="toml")


# ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="stbench",
        description="Benchmark suite for spatiotemporal predictive learning.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  stbench run --models tau,predrnn --dataset mmnist --preset quick\n"
               "  stbench report\n  stbench list temporal\n  stbench profile --models simvp,gsta,tau --preset paper",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="cmd", metavar="{run,sweep,tune,report,list,profile,eval,predict,status,data,recipe}")

    commands: list[argparse.ArgumentParser] = []

    def command(name: str, fn: Any, help: str, *examples: str) -> argparse.ArgumentParser:
        """The subcommand ``name``, run by ``fn``, with its help line and examples (the options every subcommand
        has are added after its own, below)."""
        sp = sub.add_parser(name, help=help, formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="examples:\n" + "\n".join(f"  {e}" for e in examples))
        sp.set_defaults(fn=fn)
        commands.append(sp)
        return sp

    _add_grid_parsers(command)  # run, tune, sweep
    _add_report_parsers(command)  # report, list, status
    _add_profile_parser(command)
    _add_eval_parser(command)
    _add_predict_parser(command)
    _add_data_parser(command)
    _add_recipe_parser(command)

    for sp in commands:  # after each subcommand's own options, as their help lists them
        sp.add_argument("--plugin", action="append", default=[], metavar="FILE.py|MODULE",
                        help="import a plugin that is not installed (repeatable)")
        # SUPPRESS: a subcommand's --debug sets the flag, its absence does not reset `stbench --debug run`
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # the launcher re-issues this command per grid cell
    if not getattr(args, "fn", None):
        parser.print_help()
        return EXIT_USAGE
    from stbench.registry import PluginError, RegistryError

    try:
        _load_plugins(getattr(args, "plugin", []))
        return int(args.fn(args) or 0)
    except KeyboardInterrupt as exc:  # a run that saved a checkpoint says where (stbench.runner.RunInterrupted)
        ckpt = getattr(exc, "checkpoint", None)
        print("stbench: interrupted" + (f"; the run's checkpoint is saved ({ckpt}): continue it with --resume"
                                        if ckpt else ""), file=sys.stderr)
        return 130
    except (StbenchError, RegistryError, PluginError) as exc:  # the user's to fix; anything else is a bug
        if getattr(args, "debug", False):
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"stbench: error: {msg}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
