"""Eager vs ``torch.compile`` training step, per zoo model, at the quick preset (issue 28, ``--compile``).

    python benchmarks/compile_step.py                          # every published model, fp32 and bf16, this CPU
    python benchmarks/compile_step.py --models tau,convlstm --precisions fp32 --steps 5
    python benchmarks/compile_step.py --isa native,avx2        # also plain AVX2 (a child process per ISA)

Per model and precision: a copy of the model at its ``quick`` preset size and batch (Moving MNIST 10 -> 10 at
64 x 64), Adam, a fixed random batch and (recurrent models) the quick recipe's scheduled-sampling mask, as
``stbench run`` trains it. Variants, each on its own copy of the weights: eager in the device's default layout
for the precision (with ``--other-layout`` also eager in the other layout: ``--precision auto`` trains the faster),
and compiled in each ``--region`` (``step``: :class:`stbench.compile.TrainStep`, the whole training step as one
graph; ``cell``: a recurrent model's time step, :class:`stbench.compile.CellStep`; inductor, ``dynamic=False``).
Each compiled variant's first step, less its median step, is its ``compile_s`` (the cell region compiles first:
in-process reuse of identical kernels can only flatter the compile that comes later). Then ``--warmup`` rounds
and ``--steps`` timed rounds, each round timing every variant once in rotating order, so that a drift in the
machine's speed hits them alike (runs before 2026-12-07 16:00 UTC timed eager, then compiled).
Reported: median step time and steps/s of each, the speed-up, the compile seconds, the break-even number of
steps (compile_s / time saved per step) and the estimated wall time of a quick run (``steps`` of the quick
recipe: its samples budget over its batch) eager vs compiled. Every row carries the CPU load during it
(benchmarks/_common.py): numbers taken on a shared machine are not figures to publish.

``--isa avx2`` runs the same measurement in a child process with ``ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2`` (both must be set before torch starts), i.e. a plain AVX2 CPU on an AVX-512 one.
bf16 rows are skipped (and say so) where the CPU has no native bf16 (under the AVX2 cap it never has).

Writes results/benchmarks/compile_step_<env>[_<isa>].json and .md; a model measured again replaces its rows, the
other models' rows of the earlier file stay, each with its own date.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ISA_ENV = {"native": {}, "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
           "avx512": {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}}
FIELDS = ["model", "family", "precision", "batch", "eager_ms", "compiled_ms", "speedup", "eager_steps_per_s",
          "compiled_steps_per_s", "compile_s", "break_even_steps", "run_steps", "run_eager_s",
          "run_compiled_s", "graph_breaks", "status", "isa", "cpu_capability", "loadavg_1m", "cpu_stall"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None, help="comma list (default: every published zoo model)")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--isa", default="native", help="comma list of native | avx2 | avx512 (one process each)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps of each (after warm-up)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu", help="cpu | cuda (CUDA: mode reduce-overhead, i.e. CUDA graphs)")
    ap.add_argument("--preset", default="quick", help="model sizes and batch (gpu_check --dry: smoke)")
    ap.add_argument("--backend", default="inductor", help="torch.compile backend (aot_eager: a pipeline check)")
    ap.add_argument("--other-layout", action="store_true", help="also time the eager step in the other memory "
                    "layout (the best eager choice is the faster of the two)")
    ap.add_argument("--region", default="step", help="comma list of step (the whole training step as one graph) | "
                    "cell (a recurrent model's time step, replayed; parallel models: step)")
    ap.add_argument("--out", default=None, help="output folder (default: results/benchmarks)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    isas = [s.strip() for s in args.isa.split(",") if s.strip()]
    bad = [s for s in isas if s not in ISA_ENV]
    if bad:
        ap.error(f"unknown --isa {bad}; choose from {', '.join(ISA_ENV)}")
    if args.child:
        return measure_all(args, isas[0])
    rc = 0
    for isa in isas:  # a fresh process per ISA: the caps are read once, when torch loads its kernels
        env = {**os.environ, **ISA_ENV[isa]}
        cmd = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:]), "--child", "--isa", isa]
        rc |= subprocess.run(cmd, env=env).returncode
    return rc


def measure_all(args: argparse.Namespace, isa: str) -> int:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import RESULTS, configure_threads, env_info, env_slug, measured, merge_rows

    from stbench.precision import cpu_capability, cpu_supports_bf16
    from stbench.registry import MODELS

    configure_threads(args.threads)
    device = torch.device(args.device)
    models = ([m.strip() for m in args.models.split(",") if m.strip()] if args.models else
              [n for n in MODELS.names() if not MODELS.entry(n).meta.get("tiny")
               and MODELS.entry(n).source == "built-in"])
    out = Path(args.out) if args.out else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    suffix = ("" if isa == "native" or device.type != "cpu" else f"_{isa}") + ("" if args.preset == "quick"
                                                                               else f"_{args.preset}")
    stem = f"compile_step_{env_slug(device)}{suffix}"
    meta = {**env_info(device), "isa": isa, "env": {k: os.environ.get(k) for k in ISA_ENV["avx2"]},
            "preset": args.preset, "backend": args.backend, "steps": args.steps, "warmup": args.warmup,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    kept = earlier_rows(out / f"{stem}.json")  # other models' rows of an earlier run stay (each with its date)
    rows: list[dict[str, Any]] = []
    regions = [s.strip() for s in args.region.split(",") if s.strip()]
    precisions = [s.strip() for s in args.precisions.split(",") if s.strip()]
    for name, p in ((n, p) for n in models for p in precisions):
        here = [r for r in regions if r == "step" or is_recurrent(name)]  # a parallel model has no time step
        if not here:
            continue
        base: dict[str, Any] = {"model": name, "precision": p, "isa": isa, "cpu_capability": cpu_capability(),
                                "date": meta["date"]}
        if p == "bf16" and device.type == "cpu" and not cpu_supports_bf16():
            new = [{**base, "region": r, "status": "skipped: no native bf16 on this CPU / ISA"} for r in here]
            print(f"{name} {p}: skipped (no native bf16)", flush=True)
        else:
            try:
                res, load = measured(lambda name=name, p=p, here=here: one(name, p, device, args, here))
                new = [{**base, "region": r, **res[r], **load} for r in here]
            except Exception as exc:  # noqa: BLE001 - a model that fails is a row, the sweep goes on
                new = [{**base, "region": r, "status": failed(exc)} for r in here]
        for row in new:
            rows.append(row)
            print(json.dumps(row), flush=True)
        # after every model: a sweep cut short by a time limit keeps what it measured
        write(out, stem, meta, merge_rows(kept, rows, key=lambda r: (r["model"], r["precision"],
                                                                      r.get("region", "step"))))
    print(f"wrote {out / stem}.json and .md", flush=True)
    return 0


def earlier_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of an earlier run's file (same machine kind, ISA and preset), each stamped with its run's date."""
    if not path.is_file():
        return []
    old = json.loads(path.read_text())
    return [{"date": old.get("meta", {}).get("date"), **r} for r in old.get("rows", [])]


def write(out: Path, stem: str, meta: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    (out / f"{stem}.md").write_text(markdown(meta, rows))


def is_recurrent(name: str) -> bool:
    from stbench.registry import MODELS

    return MODELS.entry(name).meta.get("family") == "recurrent"


def failed(exc: BaseException) -> str:
    return f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


def one(name: str, precision: str, device: Any, args: argparse.Namespace,
        regions: list[str]) -> dict[str, dict[str, Any]]:
    """Per region: eager vs that region compiled, every variant's steps interleaved (see the module's doc)."""
    import torch

    from stbench.budget import resolve_sampling
    from stbench.compile import TrainStep, compiled_part, steps_of
    from stbench.models.sampling import make_schedule
    from stbench.precision import make_precision, supports_channels_last, synchronize
    from stbench.recipes import load_recipe

    steps, warmup = args.steps, args.warmup
    recipe = load_recipe("mmnist", name, args.preset)
    cfg = recipe.config
    torch.manual_seed(0)
    model = recipe.build_model()
    prec = make_precision(precision, device, None, model)  # the device's default layout for this precision
    batch = int(cfg["batch_size"])
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, *model.in_shape, generator=g).to(device)
    y = torch.rand(batch, model.t_out, *model.in_shape[1:], generator=g).to(device)
    n = steps_of(cfg)
    mask = None
    if model.recurrent:  # the quick recipe's schedule at its first step: the random mask a run starts with
        sampling = resolve_sampling(cfg.get("sampling"), steps=n or 1000, recipe_steps=n or 1000)
        mask = make_schedule(sampling or "linear").mask(0, batch, model.in_shape[0], model.t_out, "cpu",
                                                        generator=g).to(device)

    def timed(fn: Any, m: torch.nn.Module, opt: torch.optim.Optimizer) -> float:
        synchronize(device)
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with prec.autocast():
            loss, _ = fn(x, y, mask)
        loss.backward()
        opt.step()
        synchronize(device)
        return time.perf_counter() - t

    common: dict[str, Any] = {"family": "recurrent" if model.recurrent else "parallel", "batch": batch}
    variants: dict[str, tuple[Any, torch.nn.Module, torch.optim.Optimizer]] = {}

    def fresh(p: Any = prec) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        m = p.prepare(copy.deepcopy(model)).train()
        return m, torch.optim.Adam(m.parameters(), lr=1e-4)

    m, opt = fresh()
    variants["eager"] = (TrainStep(m, m, False, device), m, opt)
    other = "nchw" if prec.memory_format == "channels_last" else "channels_last"
    if args.other_layout and supports_channels_last(model):  # the eager step in the other layout: --precision
        oprec = make_precision(precision, device, other, model)  # auto picks between the two
        m, opt = fresh(oprec)
        variants["eager_other"] = (TrainStep(m, m, False, device), m, opt)
    torch._dynamo.reset()
    out: dict[str, dict[str, Any]] = {}
    firsts: dict[str, float] = {}
    parts: dict[str, Any] = {}
    for region in sorted(regions, key=lambda r: r != "cell"):  # the cheap compile first: in-process kernel reuse
        m, opt = fresh()                                       # can only flatter the compile that comes later
        fn, part = compiled_part(m, True, device, args.backend, region)
        part.name, part.say = name, print
        first = timed(fn, m, opt)
        if part.fallback:
            out[region] = {**common, "status": f"failed: did not compile: {part.fallback}"}
            continue
        variants[region], firsts[region], parts[region] = (fn, m, opt), first, part
    for _ in range(warmup):
        for fn, m, opt in variants.values():
            timed(fn, m, opt)
    times: dict[str, list[float]] = {k: [] for k in variants}
    keys = list(variants)
    for r in range(steps):  # interleaved, rotating order: a drift in the machine's speed hits every variant alike
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            times[k].append(timed(*variants[k]))
    e = statistics.median(times["eager"])
    if "eager_other" in times:
        eo = statistics.median(times["eager_other"])
        common.update(layout=prec.memory_format, other_layout=other, eager_other_ms=round(eo * 1e3, 2))
    for region in parts:
        c = statistics.median(times[region])
        compile_s = max(0.0, firsts[region] - c)
        out[region] = {**common, "eager_ms": round(e * 1e3, 2), "compiled_ms": round(c * 1e3, 2),
                       "speedup": round(e / c, 3), "eager_steps_per_s": round(1 / e, 3),
                       "compiled_steps_per_s": round(1 / c, 3), "compile_s": round(compile_s, 1),
                       "break_even_steps": round(compile_s / (e - c)) if e > c else None, "run_steps": n,
                       "graph_breaks": parts[region].graph_breaks, "run_eager_s": round(n * e, 1) if n else None,
                       "run_compiled_s": round(compile_s + n * c, 1) if n else None, "status": "ok"}
        if "eager_other" in times:  # the measure: against the best eager choice of the two layouts
            out[region]["speedup_vs_best_eager"] = round(min(e, eo) / c, 3)
    return out


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    cols = ["model", "family", "precision", "region", "eager_ms", "compiled_ms", "speedup", "eager_other_ms",
            "speedup_vs_best_eager", "compile_s",
            "break_even_steps", "run_eager_s", "run_compiled_s", "graph_breaks", "cpu_stall", "status", "date"]
    lines = [f"Eager vs compiled ({meta['backend']}) training step, {meta['preset']} preset: {meta['device']}, "
             f"torch {meta['torch']}, ISA {meta['isa']} (the CPU has: {meta.get('cpu_isa', 'not recorded')}), "
             f"{meta['steps']} timed steps after {meta['warmup']} warm-up; latest run {meta['date']} (rows of "
             "models not measured again keep their own run's date)", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        r = {"region": "step", **r}  # rows measured before regions compiled the whole step
        lines.append("| " + " | ".join("" if r.get(k) is None else str(r.get(k)) for k in cols) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
