"""Harness overhead of one `quick`-preset epoch: data generation, metrics, logging, record and
checkpoint writing, against the model's own compute.

    python benchmarks/overhead.py --model tau            # quick preset, this CPU
    python benchmarks/overhead.py --model predrnn --threads 2

The training loop runs these pieces one after another (there are no background data workers), so
the components add up. Each is timed on its own with the same sizes the `quick` epoch uses:
- data: iterating one epoch of the train split plus one pass over the validation split (what the
  loop does per epoch), generation and float conversion included;
- model: the measured training step (stbench.profile) x steps per epoch, plus eval-mode forward
  passes over the validation split;
- metrics: the validation metrics on predictions of that size (MetricAccumulator);
- logging: the rich progress updates the loop makes (every 10 batches) into a null console;
- records: the atomic record rewrite after the epoch, plus the epoch checkpoint (model, optimizer).
Target (issue 7): overhead <= 5% of the epoch.
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, env_info, env_slug, measured  # noqa: E402

from stbench.data import get_dataset  # noqa: E402
from stbench.metrics import MetricAccumulator  # noqa: E402
from stbench.precision import make_precision  # noqa: E402
from stbench.profile import profile_model  # noqa: E402
from stbench.recipes import load_recipe  # noqa: E402
from stbench.records import atomic_write_json  # noqa: E402


def _time(fn, reps: int = 3) -> float:
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tau")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    device = torch.device("cpu")
    recipe = load_recipe("mmnist", a.model, a.preset)
    cfg = recipe.config
    prec = make_precision(cfg.get("precision", "fp32"), device)
    ds = get_dataset("mmnist")
    bs, ebs = int(cfg["batch_size"]), int(cfg.get("eval_batch_size", cfg["batch_size"]))
    n_train, n_val = int(cfg["train_size"]), int(cfg["val_size"])
    steps = ds.num_batches("train", bs, limit=n_train)

    # model compute: the training step as stbench profile measures it, and eval forwards on val
    model = recipe.build_model(a.model)
    prof = profile_model(model, name=a.model, device=device, precision=prec, batch=bs, warmup=2, reps=6,
                         flops=False, mfu=False)
    model = prec.prepare(model).eval()
    xv = torch.rand(ebs, *model.in_shape)

    def eval_fwd() -> None:
        with torch.no_grad(), prec.autocast():
            model(xv)

    t_eval = _time(eval_fwd) * (n_val / ebs)
    t_model = prof.train_step_ms / 1e3 * steps + t_eval

    # data: one train epoch + one validation pass
    def data_epoch() -> None:
        for _ in ds.batches("train", bs, epoch=1, limit=n_train):
            pass
        for _ in ds.batches("val", ebs, limit=n_val):
            pass

    t_data, load = measured(lambda: _time(data_epoch))

    # metrics on validation-sized predictions
    pred = torch.rand(ebs, model.t_out, *model.in_shape[1:])
    true = torch.rand_like(pred)

    def metrics_pass() -> None:
        acc = MetricAccumulator(metrics=("mse",))  # the loop's per-epoch validation metric
        for _ in range(max(1, n_val // ebs)):
            acc.update(pred, true)
        acc.result()

    t_metrics = _time(metrics_pass)

    # logging: progress updates every 10 batches into a console that discards output
    from rich.console import Console

    from stbench.runner import _Progress

    def logging_pass() -> None:
        con = Console(file=io.StringIO(), force_terminal=True, width=120)
        with _Progress(con, a.model) as p:
            p.start(1, steps)
            for i in range(10, steps + 1, 10):
                p.step(i, 0.1, 100.0)
            p.epoch_done({"train_loss": 0.1, "val_mse": 100.0})

    t_log = _time(logging_pass)

    # records: one atomic record rewrite + one checkpoint per epoch
    from stbench.train import TrainState, make_optimizer, make_scheduler, save_checkpoint

    opt = make_optimizer(model, cfg)
    sched = make_scheduler(opt, cfg, steps)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    record = {"history": [{"epoch": i, "train_loss": 0.1, "val_mse": 1.0} for i in range(int(cfg["epochs"]))],
              "per_frame": {k: [0.0] * model.t_out for k in ("mse", "mae", "ssim", "psnr")},
              "config": cfg, "profile": prof.as_dict()}
    with tempfile.TemporaryDirectory() as tmp:
        def write_records() -> None:
            atomic_write_json(Path(tmp) / "r.json", record)
            save_checkpoint(Path(tmp) / "c.pt", model=model, opt=opt, sched=sched, scaler=scaler,
                            state=TrainState(), best_state=None, gen=torch.Generator(), meta={})

        t_rec = _time(write_records)

    parts = {"data generation": t_data, "metrics": t_metrics, "logging": t_log, "records + checkpoint": t_rec}
    total = t_model + sum(parts.values())
    rows = [{"component": "model compute (train steps + val forwards)", "seconds": t_model,
             "share_pct": 100 * t_model / total}]
    rows += [{"component": k, "seconds": v, "share_pct": 100 * v / total} for k, v in parts.items()]
    overhead = 100 * sum(parts.values()) / total
    rows.append({"component": "harness overhead (all but model)", "seconds": sum(parts.values()),
                 "share_pct": overhead})
    env = env_info(device)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"overhead_{a.model}_{a.preset}_{env_slug(device)}.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["model", "preset", "precision", "component", "seconds", "share_pct",
                                          "steps", "batch", "device", "torch", "threads", "cpu_isa", "loadavg_1m"])
        w.writeheader()
        for r in rows:
            w.writerow({"model": a.model, "preset": a.preset, "precision": prec.name, **r, "steps": steps,
                        "batch": bs, **env, "loadavg_1m": load["loadavg_1m"]})
    print(f"{a.model} / {a.preset} / {prec.name} / {env['device']}: one epoch = {steps} steps of batch {bs} "
          f"+ {n_val} validation sequences")
    for r in rows:
        print(f"  {r['component']:<45s} {r['seconds']:8.3f} s  {r['share_pct']:5.2f}%")
    print(f"wrote {path}")
    return 0 if overhead <= 5.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
