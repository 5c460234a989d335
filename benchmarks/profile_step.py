"""Where a training step's time goes: torch.profiler over one step of each model, by operator.

    python benchmarks/profile_step.py                          # seed models, quick sizes, fp32
    python benchmarks/profile_step.py --models tau --precision bf16 --rows 25
    python benchmarks/profile_step.py --models convlstm --precision bf16 --batch 8 --compile off,step,cell

Per model (``quick`` preset size, Moving MNIST 10 -> 10 at 64 x 64, batch ``--batch``): two untimed
steps, then ``--steps`` profiled steps (forward + loss + backward + Adam). Prints the operators with
the most self CPU time and a summary of the "wasted work" suspects: memory copies (``aten::copy_``,
``aten::clone``, ``aten::contiguous``), concatenations, dtype conversions (``aten::to`` /
``aten::_to_copy``), and host synchronisations (``aten::item`` / ``aten::_local_scalar_dense``),
each with its call count and share of the step, and the convolutions' share (forward and backward).
``--compile``: also profile the step compiled in each region (stbench.compile: ``step`` the whole training step,
``cell`` one recurrent time step), compiled during the untimed steps; inductor's generated kernels have no
operator name and count under the compiled region that calls them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CONVOLUTIONS, SEED_MODELS, configure_threads, train_step  # noqa: E402

SUSPECTS = {
    "copies": ("aten::copy_", "aten::clone"),
    "concatenation": ("aten::cat",),
    "dtype casts": ("aten::_to_copy",),
    "host syncs": ("aten::_local_scalar_dense",),
}


def profile_step(name: str, precision: str, batch: int, steps: int, rows: int,
                 region: str = "off") -> dict[str, tuple[int, float]]:
    from stbench.compile import compiled_part
    from stbench.models.sampling import make_schedule
    from stbench.precision import make_precision
    from stbench.recipes import load_recipe

    device = torch.device("cpu")
    prec = make_precision(precision, device)
    torch.manual_seed(0)
    model = prec.prepare(load_recipe("mmnist", name, "quick").build_model())
    model.train()
    t_in = model.in_shape[0]
    x = torch.rand(batch, *model.in_shape)
    y = torch.rand(batch, model.t_out, *model.in_shape[1:])
    mask = make_schedule({"kind": "linear", "rate": 2e-5, "stop_iter": 50000}).mask(0, batch, t_in, model.t_out) \
        if model.recurrent else None
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    fn = compiled_part(model, True, device, None, region)[0] if region != "off" else None

    def step() -> None:
        train_step(model, opt, prec, x, y, mask, forward=fn)

    for _ in range(2):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    avg = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in avg)
    print(f"\n=== {name} ({precision}, batch {batch}, compile {region}): {total / 1e3 / steps:.1f} ms of operator "
          "time per step ===")
    print(avg.table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=40))
    out = {}
    for label, ops in SUSPECTS.items():
        hits = [e for e in avg if e.key in ops]
        n = sum(e.count for e in hits) // steps
        share = sum(e.self_cpu_time_total for e in hits) / max(total, 1)
        out[label] = (n, share)
        print(f"  {label:14s} {n:5d} calls per step, {100 * share:5.1f}% of self CPU time")
    conv = sum(e.self_cpu_time_total for e in avg if e.key in CONVOLUTIONS)
    print(f"  convolutions   {conv / 1e3 / steps:7.1f} ms per step, {100 * conv / max(total, 1):5.1f}%; everything "
          f"else {(total - conv) / 1e3 / steps:7.1f} ms")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(SEED_MODELS))
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--rows", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compile", default="off", help="comma list of off | step | cell (stbench.compile regions)")
    args = ap.parse_args(argv)
    configure_threads(args.threads)
    for m in (s.strip() for s in args.models.split(",")):
        for region in (r.strip() for r in args.compile.split(",")):
            if m and region:
                profile_step(m, args.precision, args.batch, args.steps, args.rows, region)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
