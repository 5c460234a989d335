"""Recurrent vs parallel cost as the forecast horizon and the resolution grow.

    python benchmarks/scaling.py --quick                 # quick-preset sizes, batch 4: minutes on a 2-core CPU
    python benchmarks/scaling.py --arch paper --batch 8  # published sizes (slow on a CPU)
    python benchmarks/scaling.py --models tau,mymodule --plugin my_plugin.py

For every model, T_in = 10 and two sweeps at a fixed batch: T_out in ``--t-out`` (10, 20, 40) at
64 x 64, and resolution in ``--res`` (64, 128) at T_out = 10 (Moving MNIST frames, 1 channel). Each
point is one :func:`stbench.profile.profile_model` call (the same timing code as ``stbench profile``):
inference latency of one batch (eval mode, no_grad; warm-up, then the median of ``--reps``), training
step time (forward + loss + backward + Adam step; median), and peak memory of the training step
(CUDA: ``max_memory_allocated``; CPU: the sampled increase of the process's resident memory).
Recurrent models train with the published scheduled-sampling mask at iteration 0 (all true frames)
and are unrolled over T_in + T_out - 1 steps; parallel models roll out their T_in -> T_in map.

Architectures: ``--arch quick`` builds each model at its ``quick`` preset size (its registry entry, then
baselines/mmnist.toml), ``--arch paper`` at the published size and ``--arch smoke`` at the tiny ``smoke``
size (a pipeline check, not a measurement); all with the data shape of each sweep point.
Runs on CPU and, when present, on CUDA (``--devices``). Writes under results/benchmarks/:
``scaling_<env>.csv`` (one row per model x point, with device, torch version, threads, and the CPU
load during the measurement) and ``scaling_<env>_tout.png`` / ``scaling_<env>_res.png``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import OKABE_ITO, RESULTS, SEED_MODELS, configure_threads, env_info, env_slug, least_disturbed  # noqa: E402

FIELDS = ["model", "family", "arch", "t_in", "t_out", "resolution", "batch", "precision", "params",
          "infer_ms", "infer_ms_min", "infer_ms_max", "train_step_ms", "peak_mem_mb", "peak_mem_kind",
          "device", "torch", "threads", "cpu_isa", "loadavg_1m", "cpu_stall", "seconds"]


def build(model: str, arch: str, t_out: int, res: int):
    """The model at the ``arch`` preset's size with T_out frames of res x res (data overrides of the recipe)."""
    from stbench.recipes import load_recipe

    recipe = load_recipe("mmnist", model, arch, sets=[f"data.t_out={t_out}", f"data.image_size={res}"])
    return recipe.build_model()


def points(t_outs: list[int], resolutions: list[int]) -> list[tuple[int, int]]:
    """(t_out, res): the T_out sweep at the first resolution, the resolution sweep at the first T_out."""
    pts = [(t, resolutions[0]) for t in t_outs] + [(t_outs[0], r) for r in resolutions[1:]]
    return list(dict.fromkeys(pts))


def measure_point(model_name: str, args: argparse.Namespace, device: torch.device, t_out: int, res: int) -> dict:
    from stbench.precision import make_precision
    from stbench.profile import profile_model

    model = build(model_name, args.arch, t_out, res)
    prec = make_precision(args.precision, device, model=model)

    def run():
        torch.manual_seed(0)
        return profile_model(model, name=model_name, device=device, precision=prec, batch=args.batch,
                             warmup=args.warmup, reps=args.reps, train=True, flops=False, mfu=False)

    t0 = time.perf_counter()
    r, load = least_disturbed(run, args.retries, args.max_stall)
    row = {
        "model": model_name, "family": "recurrent" if r.recurrent else "parallel", "arch": args.arch,
        "t_in": r.in_shape[0], "t_out": t_out, "resolution": res, "batch": args.batch, "precision": r.precision,
        "params": r.params,
        "infer_ms": 1e3 * args.batch / r.infer_seq_per_s,
        "infer_ms_min": 1e3 * args.batch / r.infer_seq_per_s_max,
        "infer_ms_max": 1e3 * args.batch / r.infer_seq_per_s_min,
        "train_step_ms": r.train_step_ms, "peak_mem_mb": r.peak_mem_mb, "peak_mem_kind": r.peak_mem_kind,
        **env_info(device), **load, "seconds": round(time.perf_counter() - t0, 1),
    }
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


# ---------------------------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------------------------
def plot(rows: list[dict], sweep: str, path: Path) -> None:
    """Three panels (inference latency, training step, peak memory) against T_out or resolution.
    Parallel models: solid lines, circles; recurrent: dashed lines, squares. Up to 8 models share one
    row of panels (Okabe-Ito colours); more (the whole zoo) get one row per family, the same y range
    down each column so that the families compare, and a legend per row beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator, ScalarFormatter

    xkey, fixed_key = ("t_out", "resolution") if sweep == "tout" else ("resolution", "t_out")
    fixed = min(int(r[fixed_key]) for r in rows)
    sel = [r for r in rows if int(r[fixed_key]) == fixed]
    models = list(dict.fromkeys(r["model"] for r in sel))
    family = {r["model"]: r["family"] for r in sel}
    groups = [models] if len(models) <= 8 else \
        [[m for m in models if family[m] == f] for f in ("parallel", "recurrent")]
    groups = [g for g in groups if g]
    panels = [("infer_ms", "inference latency per batch (ms)"), ("train_step_ms", "training step (ms)"),
              ("peak_mem_mb", "peak memory of a training step (MiB)")]
    wide = len(groups) > 1
    fig, axes = plt.subplots(len(groups), 3, figsize=(18 if wide else 15, 4.8 * len(groups)), squeeze=False,
                             sharey="col", constrained_layout=True)
    xs_all = sorted({int(r[xkey]) for r in sel})
    for row_axes, group in zip(axes, groups):
        colours = OKABE_ITO if len(group) <= len(OKABE_ITO) else \
            [plt.get_cmap("tab20")(i % 20) for i in range(len(group))]
        for ax, (key, label) in zip(row_axes, panels):
            for i, m in enumerate(group):
                pts = sorted((int(r[xkey]), float(r[key])) for r in sel
                             if r["model"] == m and r[key] not in ("", None))
                pts = [(x, y) for x, y in pts if y > 0]
                if not pts:
                    continue
                rec = family[m] == "recurrent"
                ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colours[i % len(colours)],
                        linestyle="--" if rec else "-", marker="s" if rec else "o", markersize=5 if wide else 6,
                        linewidth=1.6 if wide else 2, label=f"{m} ({'recurrent' if rec else 'parallel'})")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.xaxis.set_major_locator(FixedLocator(xs_all))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "235" else ""))
            ax.set_xlabel("T_out (frames predicted)" if sweep == "tout" else "resolution (H = W, px)")
            ax.set_ylabel(label)
            ax.grid(True, which="both", alpha=0.3)
        if wide:
            row_axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                                title=f"{family[group[0]]} models", title_fontsize=9)
        else:
            row_axes[0].legend(fontsize=9, loc="best")
    r0 = sel[0]
    what = f"T_in = {r0['t_in']}, " + (f"{fixed} x {fixed} px" if sweep == "tout" else f"T_out = {fixed}")
    fig.suptitle(f"Cost vs {'forecast horizon' if sweep == 'tout' else 'resolution'} — {what}, batch {r0['batch']}, "
                 f"{r0['arch']} sizes, {r0['precision']}\n{r0['device'].rsplit(' (', 1)[0]}, torch {r0['torch']}, "
                 f"{r0['threads']} threads", fontsize=11)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def select_models(spec: str) -> list[str]:
    """``--models``: names, ``+name`` (added to the seed models), or a family keyword resolved from the
    registry (``all`` / ``recurrent`` / ``parallel``: every built-in published model, the zoo included)."""
    from stbench.registry import MODELS

    out: list[str] = []
    for item in (m.strip() for m in spec.split(",")):
        if not item:
            continue
        if item.startswith("+"):
            out += [*SEED_MODELS, item[1:]]
        elif item in ("all", "recurrent", "parallel"):
            out += [n for n in MODELS.names() if not MODELS.entry(n).meta.get("tiny")
                    and MODELS.entry(n).source == "built-in"
                    and item in ("all", MODELS.entry(n).meta.get("family"))]
        else:
            out.append(item)
    return list(dict.fromkeys(out))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(SEED_MODELS),
                    help="comma list; seed models by default; '+name' adds to the seeds (e.g. +tau@patch); "
                         "'all', 'recurrent', 'parallel': every registered published model (of that family)")
    ap.add_argument("--plugin", action="append", default=[], help="import a plugin file or module (repeatable)")
    ap.add_argument("--arch", choices=("paper", "quick", "smoke"), default="quick")
    ap.add_argument("--quick", action="store_true", help="quick sizes, batch 4, few repetitions: minutes on a CPU")
    ap.add_argument("--t-out", default="10,20,40")
    ap.add_argument("--res", default="64,128")
    ap.add_argument("--batch", type=int, default=None, help="fixed batch (default 8; 4 with --quick)")
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--precision", default="fp32", help="fp32 (default), bf16, fp16 (CUDA) or auto")
    ap.add_argument("--devices", default="auto", help="comma list; auto = cpu, plus cuda when present")
    ap.add_argument("--threads", type=int, default=2, help="torch threads on CPU (0 = torch's default)")
    ap.add_argument("--retries", type=int, default=1, help="re-measure a point measured under high CPU stall")
    ap.add_argument("--max-stall", type=float, default=0.5, help="CPU stall share above which to re-measure")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--replot", type=Path, default=None, help="only redraw the plots of an existing CSV")
    args = ap.parse_args(argv)
    if args.replot:
        with open(args.replot) as f:
            rows = list(csv.DictReader(f))
        for sweep in ("tout", "res"):
            plot(rows, sweep, args.replot.with_name(f"{args.replot.stem}_{sweep}.png"))
        return 0
    if args.quick:
        args.arch = "quick"
    args.batch = args.batch or (4 if args.quick else 8)
    args.warmup = args.warmup if args.warmup is not None else (2 if args.quick else 3)
    args.reps = args.reps or (5 if args.quick else 10)
    configure_threads(args.threads)

    from stbench.registry import load_entry_points, load_plugin

    load_entry_points()
    for spec in args.plugin:
        load_plugin(spec)
    models = select_models(args.models)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.devices == "auto" else \
        [d.strip() for d in args.devices.split(",")]
    t_outs = [int(t) for t in args.t_out.split(",")]
    resolutions = [int(r) for r in args.res.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)

    for dev_name in devices:
        device = torch.device(dev_name)
        stem = f"scaling_{env_slug(device)}" + ("" if args.arch == "quick" else f"_{args.arch}")
        csv_path = args.out / f"{stem}.csv"
        rows: list[dict] = []
        with open(csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            w.writeheader()
            for m in models:
                for t_out, res in points(t_outs, resolutions):
                    row = measure_point(m, args, device, t_out, res)
                    rows.append(row)
                    w.writerow({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()})
                    f.flush()
                    print(f"[{dev_name}] {m:12s} T_out={t_out:3d} {res:4d}px  infer {row['infer_ms']:9.1f} ms  "
                          f"train {row['train_step_ms']:9.1f} ms  mem {row['peak_mem_mb']:8.1f} MiB  "
                          f"load {row['loadavg_1m']:.2f} stall {row['cpu_stall']:.2f}  ({row['seconds']} s)",
                          flush=True)
        for sweep in ("tout", "res"):
            plot(rows, sweep, args.out / f"{stem}_{sweep}.png")
        print(f"wrote {csv_path} and {stem}_tout.png / {stem}_res.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
