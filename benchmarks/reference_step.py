"""stbench's fp32 optimizer step against a straightforward implementation of the same published model.

    python benchmarks/reference_step.py                  # every model with a reference, paper size, batch 4
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/reference_step.py   # an AVX2-only CPU
    python benchmarks/reference_step.py --models tau,predrnn --reps 3 --budget 60

Per model, at the published Moving MNIST size (10 -> 10, 1 x 64 x 64) and batch ``--batch`` (4), fp32:
one optimizer step (forward + the model's training loss + backward + Adam) of

- ``ref``: ``reference_models.py``, the published architecture written plainly (NCHW, unfused gates),
- ``stbench nchw`` and ``stbench channels_last``: stbench's model in each layout; ``stbench`` is the
  faster of the two, which is what ``--precision auto`` / ``--memory-format auto`` trains with
  (stbench.precision.choose_precision measures the same two candidates),

timed interleaved (one warm-up round, then up to ``--reps`` rounds each timing every variant once, in
rotating order, no new round after ``--budget`` seconds), so that a change in the machine's load hits all
variants alike. Reported: best and median step per variant and ``ratio`` = stbench best / ref best
(<= 1.0: stbench is no slower), with the 1-minute load average and the CPU stall share (PSI) over each
model's measurement. Writes results/benchmarks/reference_step_<env>_<ATen capability>.csv (a model measured
again replaces its row; the other models' rows stay).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_models  # noqa: E402
from _common import RESULTS, configure_threads, env_info, env_slug, measured, merge_rows  # noqa: E402

from stbench.precision import Precision, StepBench, cpu_capability  # noqa: E402


def compare(name: str, batch: int, reps: int, budget_s: float) -> dict:
    import stbench

    device = torch.device("cpu")
    torch.manual_seed(0)
    ours = stbench.create_model(name)
    variants = [Precision("fp32", device, "nchw"), Precision("fp32", device, "channels_last")]
    bench = StepBench(ours, batch, device)
    ref = reference_models.build(name).train()
    opt = torch.optim.Adam(ref.parameters(), lr=1e-4)

    def ref_step() -> float:
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        ref(bench.x, bench.y, bench.mask).backward()
        opt.step()
        return time.perf_counter() - t0

    steps = {"ref": ref_step, **{f"stbench {p.memory_format}": (lambda p=p: bench.step(p)) for p in variants}}
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
    layout = min(("nchw", "channels_last"), key=lambda f: best[f"stbench {f}"])
    row = {"model": name, "batch": batch, "reps": len(times["ref"]), "ref_best_ms": best["ref"],
           "ref_median_ms": med["ref"]}
    for f in ("nchw", "channels_last"):
        row[f"stbench_{f}_best_ms"] = best[f"stbench {f}"]
        row[f"stbench_{f}_median_ms"] = med[f"stbench {f}"]
    row.update({"stbench_layout": layout, "ratio": best[f"stbench {layout}"] / best["ref"],
                "ratio_nchw": best["stbench nchw"] / best["ref"]})
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(reference_models.NAMES))
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--budget", type=float, default=120.0, help="seconds per model: no new round after it")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    configure_threads(args.threads)
    device = torch.device("cpu")
    cap = cpu_capability()
    print(f"{env_info(device)['device']}, ATen {cap}, torch {torch.__version__}, batch {args.batch}, fp32", flush=True)
    rows = []
    for m in (s.strip() for s in args.models.split(",") if s.strip()):
        r, load = measured(lambda m=m: compare(m, args.batch, args.reps, args.budget))
        rows.append({**r, "aten_capability": cap, **env_info(device), **load})
        print(f"{m:11s} ref {r['ref_best_ms']:7.0f} ms | stbench nchw {r['stbench_nchw_best_ms']:7.0f}, channels_last "
              f"{r['stbench_channels_last_best_ms']:7.0f} -> {r['stbench_layout']}: ratio {r['ratio']:.2f} "
              f"(best of {r['reps']}; load {load['loadavg_1m']:.2f}, stall {load['cpu_stall']:.2f})", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"reference_step_{env_slug(device)}_{cap.lower()}.csv"
    rows = [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]
    if path.exists():  # keep the earlier rows of the models not measured this time, in their order
        with open(path, newline="") as f:
            old = list(csv.DictReader(f))
        rows = merge_rows(old, rows, key=lambda r: r["model"])
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)), restval="")
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
