"""The fast path: bf16 autocast + channels_last against fp32, for speed and for accuracy.

    python benchmarks/fastpath.py                      # all seed models, quick-preset sizes
    python benchmarks/fastpath.py --models tau --steps 200 --no-accuracy
    python benchmarks/fastpath.py --noise-floor        # also a second fp32 seed (seed-to-seed spread)

(a) Speed. Per model (``quick`` preset size, batch ``--batch``, Moving MNIST 10 -> 10 at 64 x 64),
:func:`stbench.profile.profile_model` in three settings, measured one after the other per model:
``fp32-nchw`` (contiguous NCHW: the straightforward implementation), ``fp32`` (stbench's fp32 on
CPU: channels_last, same maths) and ``bf16`` (the fast path of ``--precision bf16``: autocast to
bfloat16 + channels_last). fp32 vs fp32-nchw isolates the memory-format effect, bf16 vs fp32 the
dtype. Reported: training-step time (median), inference throughput (median), the bf16 / fp32
speed-ups, and MFU of the training step against a matmul peak measured in the same process and dtype.

(b) Accuracy. Per model, the same short training run in fp32 and in bf16: same seed, same initial
weights, same Moving MNIST batches (embedded digits, train split, ``--steps`` steps of ``--batch``),
Adam + OneCycle at the quick recipe's learning rate, the quick recipe's scheduled sampling for the
recurrent models. Reported: the final training loss (mean over the last ``--tail`` steps) and the
validation MSE (published convention: per-frame sum of squared error; ``--val`` sequences of the
val split). bf16 "keeps accuracy" when both are within ``--tolerance`` (2%) of fp32.

Writes results/benchmarks/fastpath_<env>.csv (speed) and fastpath_accuracy_<env>.csv.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    RESULTS,
    SEED_MODELS,
    configure_threads,
    env_info,
    env_slug,
    least_disturbed,
    train_step,
)

from stbench.precision import Precision, make_precision  # noqa: E402

SETTINGS = ("fp32-nchw", "fp32", "bf16")


def precision_of(setting: str, device: torch.device) -> Precision:
    """``fp32-nchw``: contiguous NCHW (the straightforward implementation); ``fp32``: channels_last (stbench's
    fp32 on CPU when this study was made; now the layout is measured, see benchmarks/README.md section 6b);
    ``bf16``: autocast + channels_last."""
    if setting == "fp32-nchw":
        return Precision("fp32", device, "nchw")
    return make_precision(setting, device, "channels_last")


def quick_model(name: str, seed: int = 0):
    from stbench.recipes import load_recipe

    recipe = load_recipe("mmnist", name, "quick")
    torch.manual_seed(seed)
    return recipe, recipe.build_model()


# ---------------------------------------------------------------------------------------------
# (a) speed
# ---------------------------------------------------------------------------------------------
def speed(models: list[str], args: argparse.Namespace, device: torch.device) -> list[dict]:
    from stbench.profile import profile_model

    rows = []
    for m in models:
        for setting in SETTINGS:
            _, model = quick_model(m)
            prec = precision_of(setting, device)

            def run(model=model, prec=prec, m=m):
                return profile_model(model, name=m, device=device, precision=prec, batch=args.batch,
                                     warmup=args.warmup, reps=args.reps, train=True, flops=True, mfu=True)

            r, load = least_disturbed(run, args.retries, args.max_stall)
            row = {"model": m, "family": "recurrent" if r.recurrent else "parallel", "setting": setting,
                   "batch": args.batch, "params": r.params, "gflops_per_sample": r.flops / 1e9,
                   "train_step_ms": r.train_step_ms, "infer_seq_per_s": r.infer_seq_per_s,
                   "achieved_tflops": r.achieved_tflops, "matmul_peak_tflops": r.matmul_peak_tflops, "mfu": r.mfu,
                   **env_info(device), **load}
            rows.append(row)
            print(f"{m:12s} {setting:8s} train {r.train_step_ms:8.1f} ms  infer {r.infer_seq_per_s:7.1f} seq/s  "
                  f"{r.achieved_tflops * 1e3:6.1f} GFLOP/s of {r.matmul_peak_tflops * 1e3:6.1f}  MFU {r.mfu:.3f}  "
                  f"load {load['loadavg_1m']:.2f} stall {load['cpu_stall']:.2f}", flush=True)
    return rows


# ---------------------------------------------------------------------------------------------
# (b) accuracy
# ---------------------------------------------------------------------------------------------
def short_run(name: str, setting: str, args: argparse.Namespace, device: torch.device, seed: int = 0) -> dict:
    from stbench.data import get_dataset
    from stbench.models.sampling import make_schedule
    from stbench.train import evaluate

    recipe, model = quick_model(name, seed)
    prec = precision_of(setting, device)
    model = prec.prepare(model)
    model.train()
    lr = float(recipe.config["lr"])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=args.steps,
                                                final_div_factor=float(recipe.config.get("final_div_factor", 1e4)))
    schedule = make_schedule(recipe.config.get("sampling"), temporal=model.names.get("temporal")) \
        if model.recurrent else None
    data = get_dataset("mmnist", seed=0)  # the same batches for every setting and seed
    gen = torch.Generator(device=device).manual_seed(seed)  # scheduled-sampling draws
    losses: list[float] = []
    t0 = time.perf_counter()
    for step, (x, y) in enumerate(data.batches("train", args.batch, epoch=0, limit=args.steps * args.batch)):
        x, y = x.to(device), y.to(device)
        mask = None if schedule is None else schedule.mask(step, x.shape[0], x.shape[1], y.shape[1], device, gen)
        loss = train_step(model, opt, prec, x, y, mask)
        sched.step()
        losses.append(float(loss))
    train_s = time.perf_counter() - t0
    metrics, _ = evaluate(model, data.batches("val", 50, limit=args.val), device, prec, metrics=("mse",))
    tail = losses[-args.tail:]
    return {"model": name, "setting": setting, "seed": seed, "steps": len(losses), "batch": args.batch,
            "final_train_loss": sum(tail) / len(tail), "val_mse": metrics["mse"], "train_s": round(train_s, 1)}


def accuracy(models: list[str], args: argparse.Namespace, device: torch.device) -> list[dict]:
    rows = []
    for m in models:
        runs = [("fp32", 0), ("bf16", 0)] + ([("fp32", 1)] if args.noise_floor else [])  # fp32 = channels_last
        res = {}
        for setting, seed in runs:
            r, load = least_disturbed(lambda s=setting, sd=seed, m=m: short_run(m, s, args, device, sd), 0, 1.0)
            res[(setting, seed)] = r
            print(f"{m:12s} {setting:5s} seed {seed}: loss {r['final_train_loss']:.5f}  val MSE {r['val_mse']:.2f}  "
                  f"({r['train_s']} s, load {load['loadavg_1m']:.2f})", flush=True)
        ref = res[("fp32", 0)]
        for r in res.values():
            rel_loss = r["final_train_loss"] / ref["final_train_loss"] - 1
            rel_mse = r["val_mse"] / ref["val_mse"] - 1
            rows.append({**r, "rel_loss_vs_fp32": rel_loss, "rel_val_mse_vs_fp32": rel_mse,
                         "within_tolerance": abs(rel_loss) <= args.tolerance and abs(rel_mse) <= args.tolerance,
                         **env_info(device)})
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items()})
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(SEED_MODELS))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=16, help="batch of the speed test (the quick preset's)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--steps", type=int, default=120, help="training steps of the accuracy runs")
    ap.add_argument("--train-batch", type=int, default=8, help="batch of the accuracy runs")
    ap.add_argument("--tail", type=int, default=20, help="final training loss = mean of the last N steps")
    ap.add_argument("--val", type=int, default=200, help="validation sequences")
    ap.add_argument("--tolerance", type=float, default=0.02)
    ap.add_argument("--noise-floor", action="store_true", help="also train fp32 with seed 1 (seed-to-seed spread)")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--no-accuracy", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--retries", type=int, default=1)
    ap.add_argument("--max-stall", type=float, default=0.5)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    configure_threads(args.threads)
    device = torch.device(args.device)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    env = env_slug(device)
    if not args.no_speed:
        write_csv(speed(models, args, device), args.out / f"fastpath_{env}.csv")
    if not args.no_accuracy:
        speed_batch, args.batch = args.batch, args.train_batch
        write_csv(accuracy(models, args, device), args.out / f"fastpath_accuracy_{env}.csv")
        args.batch = speed_batch
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
