"""Command-line interface: a thin layer over the Python API.

    stbench run --models tau,predrnn --dataset mmnist            # train + evaluate + profile
    stbench report                                               # leaderboards + plots from records
    stbench list models|temporal|encoders|decoders|datasets|metrics
    stbench profile --models tau,simvp --dataset mmnist           # params, FLOPs, throughput only

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

EXIT_USAGE = 2
EXIT_FAILED_RUN = 1


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

    Wildcards match registered models; tiny test variants only when the pattern says ``tiny``.
    """
    import fnmatch

    import stbench
    from stbench.registry import MODELS

    names: list[str] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if any(c in item for c in "*?["):
            hits = [n for n in MODELS.names() if fnmatch.fnmatchcase(n, item)
                    and ("tiny" in item or not MODELS.entry(n).meta.get("tiny"))]
            if not hits:
                raise UserError(f"--models pattern '{item}' matches no model; see `stbench list models`")
            names += hits
        else:
            stbench.resolve_model_name(item)  # raises with "did you mean"
            names.append(item)
    if not names:
        raise UserError("--models is empty; give a comma list such as --models tau,predrnn")
    return list(dict.fromkeys(names))


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
    from stbench.registry import MODELS

    rows = []
    for name in MODELS.names(pattern):
        e = MODELS.entry(name)
        with torch.device("meta"):  # build without allocating or initialising weights
            m = stbench.create_model(name)
        rows.append({
            "name": name, "family": "recurrent" if m.recurrent else "parallel",
            "encoder": m.names["encoder"], "temporal": m.names["temporal"], "decoder": m.names["decoder"],
            "params": sum(p.numel() for p in m.parameters()), "tiny": bool(e.meta.get("tiny")),
            "source": e.source, "paper": e.meta.get("paper", ""),
        })
    return rows


def cmd_list(args: argparse.Namespace) -> int:
    from stbench.registry import DATASETS, DECODERS, ENCODERS, METRICS, PLUGIN_ERRORS, TEMPORAL

    what = args.what
    if what == "models":
        rows = _model_rows(args.pattern)
        cols = ["name", "family", "encoder", "temporal", "params", "source", "paper"]
    elif what == "temporal":
        rows = [{"name": e.name, "kind": "recurrent" if e.obj.recurrent else "parallel", "source": e.source,
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
        rows = [{"name": e.name, "higher_is_better": e.meta.get("higher_is_better"), "source": e.source,
                 "convention": e.meta.get("convention", "")} for e in METRICS.entries()]
        cols = ["name", "higher_is_better", "source", "convention"]

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
    import torch

    from stbench.precision import candidates, make_precision, resolve_device
    from stbench.profile import profile_model
    from stbench.recipes import load_recipe

    models = expand_models(args.models)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    for name in models:
        recipe = load_recipe(args.dataset, name, args.preset)
        model = recipe.build_model(name)
        # the run's choice (issue 12): the preset's precision / layout unless forced; with auto, every candidate's
        # training step is timed and the fastest is profiled (without a training step: the device's default)
        want = args.precision or recipe.config.get("precision", "fp32")
        fmt = args.memory_format or recipe.config.get("memory_format")
        prec = candidates(want, fmt, device) if not args.no_train else make_precision(want, device, fmt)
        r = profile_model(model, name=name, device=device, precision=prec, batch=args.batch, warmup=args.warmup,
                          reps=args.reps, budget_s=args.budget, train=not args.no_train, flops=not args.no_flops,
                          published_fps=args.published_fps)
        results.append(r.as_dict())
        if args.format != "json":
            cands = r.candidates_step_ms
            _console(stderr=True).print(f"profiled {name}" + (f": {r.precision} {r.memory_format} (training step ms of "
                                        f"the candidates: {', '.join(f'{k} {v:.0f}' for k, v in cands.items())})"
                                        if cands else ""), style="dim")
        del model
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
            r["model"], "recurrent" if r["recurrent"] else "parallel", f"{r['precision']} {r['memory_format']}",
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
    return run_grid(opts)


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stbench.report import EmptyResultsError, build_report

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    bad = sorted(set(formats) - {"term", "md", "csv", "tex", "html"})
    if bad:
        raise UserError(f"unknown report format(s) {', '.join(bad)}; choose from term,md,csv,tex,html")
    try:
        res = build_report(Path(args.results), Path(args.out) if args.out else None, formats, console=_console())
    except EmptyResultsError as exc:
        raise UserError(str(exc)) from None
    if res.files:
        _console().print(f"wrote {len(res.files)} files under {res.out_dir}", style="dim")
    return 0


# ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="stbench",
        description="Benchmark suite for spatiotemporal predictive learning.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  stbench run --models tau,predrnn --dataset mmnist --preset quick\n"
               "  stbench report\n  stbench list temporal\n  stbench profile --models simvp,gsta,tau --dataset mmnist",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="cmd", metavar="{run,report,list,profile}")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--plugin", action="append", default=[], metavar="FILE.py|MODULE",
                        help="import a plugin that is not installed (repeatable)")
        sp.add_argument("--debug", action="store_true", help="show tracebacks")

    r = sub.add_parser("run", help="train + evaluate + profile; one record per (model, dataset, preset, seed)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  stbench run --models tau,predrnn --dataset mmnist --preset quick\n"
                              "  stbench run --models 'tau*,convlstm@simvp' --seeds 0,1,2 --epochs 3\n"
                              "  torchrun --nproc-per-node 2 -m stbench run --models tau --preset quick\n"
                              "  stbench run --models tau,simvp --shard 1/2   # second of two workers")
    r.add_argument("--models", required=True, help="comma list; wildcards; model@encoder swaps the codec")
    r.add_argument("--dataset", default="mmnist")
    r.add_argument("--preset", default=None, help="paper | quick | smoke (default: quick)")
    r.add_argument("--seed", type=int, default=None, help="one seed (default 0)")
    r.add_argument("--seeds", default=None, help="comma list of seeds, e.g. 0,1,2")
    r.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    r.add_argument("--precision", default=None, help="fp32 | bf16 | fp16 | auto (default: the preset's)")
    r.add_argument("--memory-format", default=None, choices=["nchw", "channels_last", "auto"],
                   help="tensor layout (default: measured with --precision auto, else the device's default)")
    r.add_argument("--out", default="results", help="output directory for records (default: results)")
    r.add_argument("--resume", action="store_true", help="continue unfinished runs from their checkpoints")
    r.add_argument("--force", action="store_true", help="re-run runs whose record is already completed")
    r.add_argument("--shard", default=None, help="i/n: run the i-th of n slices of the models x seeds grid")
    r.add_argument("--data-root", default=None, help="directory with the standard data files")
    r.add_argument("--epochs", type=int, default=None)
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
    r.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    common(r)
    r.set_defaults(fn=cmd_run)

    rp = sub.add_parser("report", help="leaderboards and plots from run records",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog="examples:\n  stbench report\n  stbench report --results results --format md,csv")
    rp.add_argument("--results", default="results", help="directory holding records/ (default: results)")
    rp.add_argument("--format", default="term,md,csv,tex,html", help="comma list of term,md,csv,tex,html")
    rp.add_argument("--out", default=None, help="where to write files (default: <results>/report)")
    common(rp)
    rp.set_defaults(fn=cmd_report)

    ls = sub.add_parser("list", help="what is registered, plugins included",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog="examples:\n  stbench list models 'tau*'\n  stbench list temporal --format json")
    ls.add_argument("what", choices=["models", "temporal", "encoders", "decoders", "datasets", "metrics"])
    ls.add_argument("pattern", nargs="?", default=None, help="wildcard filter")
    ls.add_argument("--format", choices=["table", "json"], default="table")
    common(ls)
    ls.set_defaults(fn=cmd_list)

    pf = sub.add_parser("profile", help="params, FLOPs, throughput, training step, memory, MFU",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog="examples:\n  stbench profile --models simvp,gsta,tau --dataset mmnist\n"
                               "  stbench profile --models convlstm,predrnn --format json --batch 4")
    pf.add_argument("--models", required=True)
    pf.add_argument("--dataset", default="mmnist")
    pf.add_argument("--preset", default="paper", help="architecture of this preset (default: paper = published)")
    pf.add_argument("--device", default="auto")
    pf.add_argument("--precision", default=None,
                    help="fp32 | bf16 | fp16 | auto (default: the preset's, as `stbench run` uses it: paper fp32, "
                         "quick auto = the fastest measured training step)")
    pf.add_argument("--memory-format", default=None, choices=["nchw", "channels_last", "auto"],
                    help="tensor layout (default: measured with --precision auto, else the device's default)")
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
    common(pf)
    pf.set_defaults(fn=cmd_profile)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "fn", None):
        parser.print_help()
        return EXIT_USAGE
    from stbench.registry import PluginError, RegistryError

    try:
        _load_plugins(getattr(args, "plugin", []))
        return int(args.fn(args) or 0)
    except KeyboardInterrupt:
        print("stbench: interrupted; the run's checkpoint is saved: continue it with --resume", file=sys.stderr)
        return 130
    except (StbenchError, RegistryError, PluginError, ValueError, TypeError, FileNotFoundError,
            PermissionError) as exc:
        if args.debug:
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"stbench: error: {msg}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
