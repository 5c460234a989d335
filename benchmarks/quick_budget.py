"""What the README's main command costs on this machine, predicted from short measurements.

    python benchmarks/quick_budget.py                          # tau + predrnn, quick preset
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 OMP_NUM_THREADS=2 python benchmarks/quick_budget.py
    python benchmarks/quick_budget.py --models tau --set tau:model.N_T=2 --set tau:epochs=3

For each model, with its recipe (``--preset``, default quick; ``--set model:key=value`` tries other
values without editing the TOML): the precision / layout choice exactly as ``stbench run`` makes it
(``stbench.precision.choose_precision``, which reports every candidate's step time), the cost profile
the run records (``stbench.profile.profile_model`` with the runner's settings), and the test-set
evaluation timed on ``--eval-sample`` sequences and scaled. Prints, per model, the predicted training
time (steps x measured step) and the fixed costs, and the predicted total of the command, with the
1-minute load average and the CPU stall share (Linux PSI) over the measurement: numbers taken while
other work shares the CPU are pessimistic. Nothing is trained; it takes about a minute per model.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import measured  # noqa: E402

from stbench.precision import choose_precision, cpu_capability, device_name  # noqa: E402


def budget(model_name: str, preset: str, sets: list[str], eval_sample: int) -> dict:
    from stbench.data import get_dataset
    from stbench.profile import profile_model
    from stbench.recipes import load_recipe
    from stbench.runner import INFER_BATCH
    from stbench.train import evaluate

    device = torch.device("cpu")
    recipe = load_recipe("mmnist", model_name, preset, sets=sets)
    cfg = recipe.config
    batch, epochs = int(cfg["batch_size"]), int(cfg["epochs"])
    torch.manual_seed(0)
    model = recipe.build_model(model_name)
    t0 = time.perf_counter()
    choice = choose_precision(model, batch, device, cfg.get("precision", "fp32"), cfg.get("memory_format"))
    t_choice = time.perf_counter() - t0
    prec = choice.precision
    t0 = time.perf_counter()
    prof = profile_model(recipe.build_model(model_name), name=model_name, device=device, precision=prec, batch=batch,
                         infer_batch=INFER_BATCH, warmup=2, reps=5, train=True, flops=True)
    t_profile = time.perf_counter() - t0
    data = get_dataset("mmnist", **cfg.get("data", {}))
    steps = data.num_batches("train", batch, limit=cfg.get("train_size")) * epochs
    m = prec.prepare(model)
    eb = int(cfg.get("eval_batch_size", 16))
    t0 = time.perf_counter()
    evaluate(m, data.batches("test", eb, limit=eval_sample), device, prec)
    per_seq = (time.perf_counter() - t0) / eval_sample
    t_val = per_seq * int(cfg.get("val_size") or 0) * epochs  # validation: MSE only, so this is an upper bound
    t_test = per_seq * int(cfg.get("test_size") or 0)
    train_s = steps * prof.train_step_ms / 1e3
    return {"model": model_name, "choice": choice.line(), "precision": prec.label, "steps": steps, "batch": batch,
            "epochs": epochs, "step_ms": prof.train_step_ms, "train_s": train_s, "choice_s": t_choice,
            "profile_s": t_profile, "val_s": t_val, "test_s": t_test,
            "total_s": train_s + t_choice + t_profile + t_val + t_test}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="tau,predrnn")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--set", action="append", default=[], metavar="MODEL:KEY=VALUE")
    ap.add_argument("--eval-sample", type=int, default=100, help="test sequences timed for the evaluation estimate")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{device_name('cpu')}, ATen {cpu_capability()}, torch {torch.__version__}", flush=True)
    total = 0.0
    for m in (s.strip() for s in args.models.split(",") if s.strip()):
        sets = [s.partition(":")[2] for s in args.set if s.partition(":")[0] == m]
        r, load = measured(lambda m=m, sets=sets: budget(m, args.preset, sets, args.eval_sample))
        total += r["total_s"]
        print(f"{m}: {r['choice']}", flush=True)
        per_epoch = r["steps"] // r["epochs"]
        print(f"  {r['epochs']} epochs x {per_epoch} steps of batch {r['batch']} at {r['step_ms']:.0f} ms "
              f"({r['precision']}) = train {r['train_s'] / 60:.1f} min; choice {r['choice_s']:.0f} s, profile "
              f"{r['profile_s']:.0f} s, validation <= {r['val_s']:.0f} s, test {r['test_s']:.0f} s; "
              f"model total {r['total_s'] / 60:.1f} min  "
              f"[load {load['loadavg_1m']:.2f}, stall {load['cpu_stall']:.2f}]",
              flush=True)
    print(f"predicted command total (without start-up and the floors): {total / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
