"""stbench's fp32 optimizer step against a straightforward implementation of the same published model.

    python benchmarks/reference_step.py                  # every model with a reference, paper size, batch 4
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/reference_step.py   # an AVX2-only CPU
    python benchmarks/reference_step.py --models tau,predrnn --reps 3 --budget 60

Per model, at the published Moving MNIST size (10 -> 10, 1 x 64 x 64) and batch ``--batch`` (4), fp32:
one optimizer step (forward + the model's training loss + backward + Adam) of

- ``ref``: ``reference_models.py``, the published architecture written plainly (NCHW, unfused gates),
- ``stbench nchw`` and ``stbench channels_last``: stbench's model in each layout; ``stbench`` is the one
  ``--precision auto`` / ``--memory-format auto`` would train with (stbench.precision.pick: the faster, or
  the device's default layout when the two are within 3%),

timed interleaved (one warm-up round, then up to ``--reps`` rounds each timing every variant once, in
rotating order, no new round after ``--budget`` seconds), so that a change in the machine's load hits all
variants alike. Reported: best and median step per variant and ``ratio`` = stbench best / ref best
(<= 1.0: stbench is no slower; ``ratio_fastest`` with stbench's faster layout), with the 1-minute load
average and the CPU stall share (PSI) over each model's measurement. Writes
results/benchmarks/reference_step_<env>_<ATen capability>.csv after every model (a model measured again
replaces its row; the other models' rows stay).

``--profile N`` instead runs torch.profiler over N rounds, one step of each variant per round, interleaved (after
one warm-up step each), and splits each step's operator time (the least over the rounds) into the convolutions
(oneDNN's kernels: the same calls in both when the architecture matches) and everything else (gate arithmetic,
copies, normalisation, the loss, the optimizer). ``ratio_other`` compares the latter like for like, stbench NCHW /
ref (also NCHW): the part of a ratio that is the model code's own. Written to
results/benchmarks/reference_split_<env>_<ATen capability>.csv the same way.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_models  # noqa: E402
from _common import (  # noqa: E402
    RESULTS,
    configure_threads,
    conv_and_rest,
    env_info,
    env_slug,
    measured,
    merge_rows,
)

from stbench.precision import Precision, StepBench, cpu_capability, pick  # noqa: E402

LAYOUTS = ("nchw", "channels_last")


def step_functions(name: str, batch: int) -> dict[str, Callable[[], float]]:
    """``ref``, ``stbench nchw``, ``stbench channels_last``: one fp32 optimizer step each, same batch (seconds)."""
    import stbench

    device = torch.device("cpu")
    torch.manual_seed(0)
    ours = stbench.create_model(name)
    bench = StepBench(ours, batch, device)
    ref = reference_models.build(name).train()
    opt = torch.optim.Adam(ref.parameters(), lr=1e-4)

    def ref_step() -> float:
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        ref(bench.x, bench.y, bench.mask).backward()
        opt.step()
        return time.perf_counter() - t0

    precs = {f"stbench {f}": Precision("fp32", device, f) for f in LAYOUTS}
    return {"ref": ref_step, **{n: (lambda p=p: bench.step(p)) for n, p in precs.items()}}


def compare(name: str, batch: int, reps: int, budget_s: float) -> dict:
    """The interleaved timing of :func:`step_functions` (the module docstring) as one CSV row."""
    steps = step_functions(name, batch)
    names = list(steps)
    t_start = time.perf_counter()
    for n in names:  # warm-up round
        steps[n]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(max(1, reps)):
        if r and time.perf_counter() - t_start >= budget_s:
            break
        for n in names[r % len(names):] + names[:r % len(names)]:
            times[n].append(steps[n]())
    best = {n: 1e3 * min(v) for n, v in times.items()}
    med = {n: 1e3 * statistics.median(v) for n, v in times.items()}
    variants = [Precision("fp32", torch.device("cpu"), f) for f in LAYOUTS]
    auto = pick(variants, {p.label: best[f"stbench {p.memory_format}"] for p in variants})  # what a run trains
    layout = auto.memory_format
    row = {"model": name, "batch": batch, "reps": len(times["ref"]), "ref_best_ms": best["ref"],
           "ref_median_ms": med["ref"]}
    for f in LAYOUTS:
        row[f"stbench_{f}_best_ms"] = best[f"stbench {f}"]
        row[f"stbench_{f}_median_ms"] = med[f"stbench {f}"]
    row.update({"stbench_layout": layout, "ratio": best[f"stbench {layout}"] / best["ref"],
                "ratio_nchw": best["stbench nchw"] / best["ref"],
                "ratio_fastest": min(best["stbench nchw"], best["stbench channels_last"]) / best["ref"]})
    return row


def split(name: str, batch: int, rounds: int) -> dict:
    """Each variant's step under torch.profiler, one step per variant per round, interleaved (after one warm-up step
    each): the smallest convolution and other ms per step over the rounds (both only ever grow with interference)."""
    steps = step_functions(name, batch)
    for fn in steps.values():
        fn()
    runs: dict[str, list[dict[str, float]]] = {n: [] for n in steps}
    for r in range(rounds):
        for n in list(steps)[r % len(steps):] + list(steps)[:r % len(steps)]:
            runs[n].append(conv_and_rest(steps[n]))
    row: dict = {"model": name, "batch": batch, "rounds": rounds}
    for n, got in runs.items():
        row.update({f"{n.replace(' ', '_')}_{k}": min(g[k] for g in got) for k in got[0]})
    row["ratio_other"] = row["stbench_nchw_other_ms"] / row["ref_other_ms"]  # like for like: both NCHW
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(reference_models.NAMES))
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--budget", type=float, default=120.0, help="seconds per model: no new round after it")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--profile", type=int, default=0, metavar="ROUNDS",
                    help="instead of timing, profile ROUNDS steps of each variant: convolution vs other ms (own CSV)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    configure_threads(args.threads)
    device = torch.device("cpu")
    cap = cpu_capability()
    print(f"{env_info(device)['device']}, ATen {cap}, torch {torch.__version__}, batch {args.batch}, fp32", flush=True)
    kind = "reference_split" if args.profile else "reference_step"
    path = args.out / f"{kind}_{env_slug(device)}_{cap.lower()}.csv"
    for m in (s.strip() for s in args.models.split(",") if s.strip()):
        if args.profile:
            r, load = measured(lambda m=m: split(m, args.batch, args.profile))
            print(f"{m:11s} convolutions / everything else, ms per step: " + ", ".join(
                f"{n} {r[f'{n}_conv_ms']:.0f} / {r[f'{n}_other_ms']:.0f}" for n in ("ref", "stbench_nchw",
                                                                                   "stbench_channels_last"))
                  + f" ({r['ref_conv_fwd_calls']:.0f} / {r['stbench_nchw_conv_fwd_calls']:.0f} convolutions): "
                  f"ratio_other {r['ratio_other']:.2f} (stall {load['cpu_stall']:.2f})", flush=True)
        else:
            r, load = measured(lambda m=m: compare(m, args.batch, args.reps, args.budget))
            print(f"{m:11s} ref {r['ref_best_ms']:7.0f} ms | stbench nchw {r['stbench_nchw_best_ms']:7.0f}, "
                  f"channels_last {r['stbench_channels_last_best_ms']:7.0f} -> {r['stbench_layout']}: ratio "
                  f"{r['ratio']:.2f} (best of {r['reps']}; load {load['loadavg_1m']:.2f}, stall "
                  f"{load['cpu_stall']:.2f})", flush=True)
        write_row(path, {**r, "aten_capability": cap, **env_info(device), **load})  # each at once: a long run
    print(f"wrote {path}")  # cut short keeps what it measured
    return 0


def write_row(path: Path, row: dict) -> None:
    """Add ``row`` to the CSV at ``path``, replacing an earlier row of its model (the others stay, in order)."""
    rows = [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}]
    if path.exists():
        with open(path, newline="") as f:
            rows = merge_rows(list(csv.DictReader(f)), rows, key=lambda r: r["model"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)), restval="")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


if __name__ == "__main__":
    raise SystemExit(main())
