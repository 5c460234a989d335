"""The GPU measurements of stbench in one bounded run (driven by ``benchmarks/gpu_check.sh``).

    bash benchmarks/gpu_check.sh              # on a machine with one CUDA GPU: at most ~8 minutes
    python benchmarks/gpu_check.py --dry      # the same pipeline on CPU at smoke sizes (tests run this)

Four phases, each under its own share of a wall-clock budget (``--minutes``, default 7.5): a phase
that runs out of time stops after the model it is on and says so in its CSV (``skipped`` rows),
so the script always ends in time and never passes a partial sweep off as complete.

1. ``profile``: every registered published model (tiny variants excluded) at its paper size, fp32
   and AMP (bf16 autocast where the GPU supports it, else fp16): parameters, fvcore FLOPs (once),
   inference throughput with stbench's protocol (warm-up, synchronised, median of repetitions) and
   with the published protocol (batch 100 -- 10 at >= 128 px --, no warm-up, the mean over the
   repetitions that fit the budget). -> ``profile_<env>.csv``
2. ``scaling``: the recurrent-vs-parallel scaling points of ``benchmarks/scaling.py`` (seed models,
   paper sizes, T_out 10/20/40 at 64 px and 128 px at T_out 10) on the GPU. -> ``scaling_<env>.csv``
3. ``quick``: ``stbench run --models tau,predrnn --preset quick`` with AMP, then ``stbench report``.
   -> ``quick_<env>.csv`` (test metrics and training time per model) and the records.
4. ``compile``: ``benchmarks/compile_step.py`` on the GPU: eager vs ``torch.compile`` training step (mode
   ``reduce-overhead``: CUDA graphs, which replay the recurrent models' time loop as one launch) of the
   compile models at quick size, fp32 and AMP, with compile seconds and the estimated quick-run time of
   each. -> ``compile_step_<env>.json`` / ``.md`` (written after every row: a phase cut short keeps its rows).
   With ``--dry``: smoke sizes and the ``aot_eager`` backend (the pipeline, not a measurement).

Every CSV row names the device, torch version and precision. Output goes to ``--out``
(default ``results/benchmarks``); ``<env>`` is e.g. ``cuda-nvidia-h100-80gb-hbm3``.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, SEED_MODELS, env_info, env_slug  # noqa: E402

# the quick phase's models; with --dry, every phase runs these at their smoke sizes
QUICK_MODELS = ("tau", "predrnn")
# the compile phase's models: the quick pair first (a cut-short phase still has them), then recurrent vs parallel
COMPILE_MODELS = ("predrnn", "tau", "convlstm", "simvp", "predrnn_v2", "gsta")
PROFILE_FIELDS = ["model", "family", "precision", "params", "flops", "infer_batch", "infer_seq_per_s",
                  "infer_seq_per_s_min", "infer_seq_per_s_max", "infer_reps", "published_protocol_fps",
                  "published_protocol_batch", "published_protocol_reps", "status", "device", "torch", "seconds"]


class Budget:
    def __init__(self, seconds: float) -> None:
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_reps(fn, device: torch.device, *, warmup: int, max_reps: int, budget_s: float) -> list[float]:
    """Per-repetition seconds; at most ``max_reps`` and about ``budget_s`` of repetitions (at least 1)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times: list[float] = []
    t_end = time.perf_counter() + budget_s
    while len(times) < max_reps and (not times or time.perf_counter() < t_end):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


def amp_precision(device: torch.device) -> str:
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    from stbench.precision import cpu_supports_bf16

    return "bf16" if cpu_supports_bf16() else "fp32"


def published_models(dry: bool) -> list[str]:
    import stbench

    if dry:
        return list(QUICK_MODELS)  # built at their smoke sizes
    return stbench.list_models(include_tiny=False)


def phase_profile(args: argparse.Namespace, device: torch.device, budget: Budget, out: Path) -> Path:
    from stbench.precision import make_precision
    from stbench.profile import count_flops, count_params
    from stbench.recipes import load_recipe

    preset = "smoke" if args.dry else "paper"
    models = published_models(args.dry)
    precs = ["fp32", amp_precision(device)]
    path = out / f"profile_{env_slug(device)}{'_dry' if args.dry else ''}.csv"
    rows: list[dict[str, Any]] = []
    per_model = max(1.0, budget.left() / max(1, len(models)))
    for name in models:
        flops = None
        for pname in dict.fromkeys(precs):
            row: dict[str, Any] = {"model": name, "precision": pname, **_env_cols(device)}
            if budget.left() <= 0:
                rows.append({**row, "status": "skipped: out of time"})
                continue
            t0 = time.perf_counter()
            try:
                prec = make_precision(pname, device)
                model = prec.prepare(load_recipe("mmnist", name, preset).build_model(name).to(device)).eval()
                if flops is None:
                    flops = count_flops(model)
                t_in, C, H, W = model.in_shape
                share = per_model / (2 * len(precs))  # two timings per precision
                ib = 2 if args.dry else 16
                x = torch.rand(ib, t_in, C, H, W, device=device)

                def infer(xb: torch.Tensor, m: torch.nn.Module = model, p: Any = prec) -> None:
                    with torch.no_grad(), p.autocast():
                        m(xb)

                ts = _timed_reps(functools.partial(infer, x), device, warmup=3, max_reps=args.reps, budget_s=share)
                pb = 2 if args.dry else (10 if H >= 128 else 100)
                xp = torch.rand(pb, t_in, C, H, W, device=device)
                # published protocol: no warm-up, mean over consecutive repetitions (100 when they fit)
                tp = _timed_reps(functools.partial(infer, xp), device, warmup=0, max_reps=min(100, args.reps),
                                 budget_s=share)
                row.update({"family": "recurrent" if model.recurrent else "parallel", "params": count_params(model),
                            "flops": flops, "infer_batch": ib, "infer_seq_per_s": ib / statistics.median(ts),
                            "infer_seq_per_s_min": ib / max(ts), "infer_seq_per_s_max": ib / min(ts),
                            "infer_reps": len(ts), "published_protocol_fps": pb * len(tp) / sum(tp),
                            "published_protocol_batch": pb, "published_protocol_reps": len(tp), "status": "ok"})
                del model, x, xp
            except Exception as exc:  # noqa: BLE001 - one model's failure (e.g. out of memory) is a row, not a crash
                row["status"] = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
            if device.type == "cuda":
                torch.cuda.empty_cache()
            row["seconds"] = round(time.perf_counter() - t0, 2)
            rows.append(row)
            print(f"profile {name} {pname}: {row['status']}", flush=True)
    _write_csv(path, PROFILE_FIELDS, rows)
    return path


def _env_cols(device: torch.device) -> dict[str, Any]:
    e = env_info(device)
    return {"device": e["device"], "torch": e["torch"]}


def _write_csv(path: Path, fields: list[str], rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    print("$", " ".join(cmd), flush=True)
    try:
        return subprocess.run(cmd, timeout=max(1.0, timeout), text=True, capture_output=True)
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(cmd, 124, exc.stdout or "", f"timed out after {timeout:.0f} s")


def phase_scaling(args: argparse.Namespace, device: torch.device, budget: Budget, out: Path) -> str:
    here = Path(__file__).resolve().parent
    cmd = [sys.executable, str(here / "scaling.py"), "--devices", str(device), "--out", str(out)]
    if args.dry:
        cmd += ["--models", ",".join(QUICK_MODELS), "--arch", "smoke", "--t-out", "10", "--res", "64",
                "--batch", "2", "--warmup", "1", "--reps", "2", "--retries", "0", "--threads", "1"]
    else:
        cmd += ["--models", ",".join(SEED_MODELS), "--arch", "paper", "--batch", "8", "--warmup", "2", "--reps", "5",
                "--precision", amp_precision(device)]
    r = _run(cmd, budget.left())
    print(r.stdout[-2000:], r.stderr[-2000:], sep="\n", flush=True)
    return "ok" if r.returncode == 0 else f"failed (exit {r.returncode}): {r.stderr.strip().splitlines()[-1:]}"


def phase_quick(args: argparse.Namespace, device: torch.device, budget: Budget, out: Path) -> Path:
    res = out / f"quick_{env_slug(device)}{'_dry' if args.dry else ''}"
    models = ",".join(QUICK_MODELS)
    preset = "smoke" if args.dry else "quick"
    prec = "fp32" if args.dry else amp_precision(device)
    cmd = [sys.executable, "-m", "stbench", "run", "--models", models, "--preset", preset, "--precision", prec,
           "--device", str(device), "--out", str(res), "--force"]
    r = _run(cmd, budget.left())
    print(r.stdout[-3000:], r.stderr[-2000:], sep="\n", flush=True)
    rows = []
    for name in models.split(","):
        rec_path = res / "records" / "mmnist" / preset / f"{name}__seed0.json"
        try:
            rec = json.loads(rec_path.read_text())
        except (OSError, json.JSONDecodeError):
            rows.append({"model": name, "status": f"no record (run exit {r.returncode})"})
            continue
        m = rec.get("metrics") or {}
        rows.append({"model": name, "status": rec.get("status"), "precision": prec, "mse": m.get("mse"),
                     "ssim": m.get("ssim"), "psnr": m.get("psnr"), "train_s": (rec.get("timing") or {}).get("train_s"),
                     **_env_cols(device)})
    path = out / f"quick_{env_slug(device)}{'_dry' if args.dry else ''}.csv"
    _write_csv(path, ["model", "status", "precision", "mse", "ssim", "psnr", "train_s", "device", "torch"], rows)
    _run([sys.executable, "-m", "stbench", "report", "--results", str(res), "--format", "md,csv"], 120)
    return path


def phase_compile(args: argparse.Namespace, device: torch.device, budget: Budget, out: Path) -> str:
    here = Path(__file__).resolve().parent
    cmd = [sys.executable, str(here / "compile_step.py"), "--device", str(device), "--out", str(out)]
    if args.dry:
        cmd += ["--models", ",".join(QUICK_MODELS), "--precisions", "fp32", "--preset", "smoke", "--backend",
                "aot_eager", "--steps", "2", "--warmup", "1", "--threads", "1"]
    else:
        cmd += ["--models", ",".join(COMPILE_MODELS), "--precisions", f"{amp_precision(device)},fp32", "--steps", "20",
                "--warmup", "3"]
    r = _run(cmd, budget.left())
    print(r.stdout[-3000:], r.stderr[-2000:], sep="\n", flush=True)
    return "ok" if r.returncode == 0 else f"stopped (exit {r.returncode}); the rows measured so far are written"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry", action="store_true", help="CPU, smoke sizes: checks the pipeline, measures nothing")
    ap.add_argument("--minutes", type=float, default=7.5, help="wall-clock budget of all phases together")
    ap.add_argument("--reps", type=int, default=50, help="most repetitions of a stbench-protocol timing")
    ap.add_argument("--phases", default="profile,scaling,quick,compile")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if args.dry:
        device = torch.device("cpu")
        args.reps = min(args.reps, 2)
    elif torch.cuda.is_available():
        device = torch.device("cuda", 0)
    else:
        print("gpu_check: no CUDA device here; run it on a GPU machine, or use --dry to check the pipeline on CPU",
              file=sys.stderr)
        return 2
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    total = Budget(args.minutes * 60)
    shares = {"profile": 0.3, "scaling": 0.15, "quick": 0.25, "compile": 0.3}  # of the budget left at the phase's start
    weight_left = sum(shares[p] for p in phases)
    t0 = time.perf_counter()
    for p in phases:
        b = Budget(total.left() * shares[p] / weight_left)
        weight_left -= shares[p]
        print(f"== {p} (budget {b.left():.0f} s)", flush=True)
        phase = {"profile": phase_profile, "scaling": phase_scaling, "quick": phase_quick, "compile": phase_compile}[p]
        result = phase(args, device, b, args.out)
        print(f"== {p}: {result}", flush=True)
    print(f"gpu_check finished in {time.perf_counter() - t0:.0f} s on {env_info(device)['device']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
