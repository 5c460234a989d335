"""The older concatenated gate convolution against the per-source ones, in one process, interleaved.

    python benchmarks/concat_vs_split.py --models convlstm,mim,predrnnpp --reps 4 --budget 200
    python benchmarks/concat_vs_split.py --preset quick --precisions bf16 --reps 8   # what a quick run trains

Until 2026-12 three recurrent cells ran one convolution over ``cat([a, b])`` where the published code runs one
per source and adds them: ConvLSTM's cell (``conv_xh``), MIM's MIM-N cells and PredRNN++'s gradient highway
(``conv_xz``). They now run the published form; the older form (the same function, the two weights
concatenated along the input channels) is rebuilt here from :func:`stbench.models.base.split_fused_conv`'s
declarations, so the two forms share weights, batch and everything else. Per model, at the published size and
batch ``--batch`` (``--preset quick``: the Moving MNIST quick recipe's sizes and batch), in each precision of
``--precisions`` and layout of ``--layouts``: one warm-up round, then up to ``--reps`` rounds each timing one
optimizer step of every variant in rotating order (no new round after ``--budget`` seconds).
Prints best and median per variant and split / concat of the best steps (< 1: the published form is faster).
Writes nothing: the numbers go to benchmarks/README.md section 7 with the command.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
import types
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import configure_threads, env_info, measured  # noqa: E402

from stbench.precision import Precision, StepBench, cpu_capability  # noqa: E402


# the older forward of each cell (as in git history before the change): one convolution over cat([a, b])
def _convlstm(self, x, h, c):
    i, f, g, o = self.conv_xh(torch.cat([x, h], dim=1)).chunk(4, dim=1)
    c = torch.addcmul(torch.sigmoid(i) * torch.tanh(g), torch.sigmoid(f + self.forget_bias), c)
    return torch.sigmoid(o) * torch.tanh(c), c


def _mimn(self, x, h, c):
    i, g, f, o = self.conv_xh(torch.cat([x, h], dim=1)).chunk(4, dim=1)
    w_ci, w_cf = self.ct_weight.chunk(2, dim=0)
    c = torch.sigmoid(f + w_cf * c + self.forget_bias) * c + torch.sigmoid(i + w_ci * c) * torch.tanh(g)
    return torch.sigmoid(o + self.oc_weight * c) * torch.tanh(c), c


def _highway(self, x, z):
    p, u = self.conv_xz(torch.cat([x, z], dim=1)).chunk(2, dim=1)
    u = torch.sigmoid(u)
    return u * torch.tanh(p) + (1 - u) * z


OLDER_FORWARD = {"ConvLSTMCell": _convlstm, "MIMNCell": _mimn, "GradientHighway": _highway}


def _concat_forward(module: nn.Module) -> None:
    """Give ``module`` (declared by split_fused_conv) its older form: one convolution ``fused`` whose weight is
    the two per-source weights concatenated along the input channels (the two are removed), and the older
    forward."""
    fused, first, second = module._older_layout
    a, b = getattr(module, first), getattr(module, second)
    conv = nn.Conv2d(a.in_channels + b.in_channels, a.out_channels, a.kernel_size, a.stride, a.padding, bias=False)
    conv.weight = nn.Parameter(torch.cat([a.weight.detach(), b.weight.detach()], dim=1))
    delattr(module, first)
    delattr(module, second)
    setattr(module, fused, conv)
    module.forward = types.MethodType(OLDER_FORWARD[type(module).__name__], module)


def concat_form(model: nn.Module) -> int:
    """Rewrite every declared cell of ``model`` to the older form in place; the number rewritten."""
    cells = [m for m in model.modules() if hasattr(m, "_older_layout")]
    for m in cells:
        _concat_forward(m)
    return len(cells)


def compare(name: str, preset: str, batch: int, precisions: list[str], layouts: list[str], reps: int,
            budget_s: float) -> dict[str, list[float]]:
    import stbench
    from stbench.recipes import load_recipe

    device = torch.device("cpu")
    if preset == "paper":
        split = stbench.create_model(name)
    else:
        recipe = load_recipe("mmnist", name, preset)
        split, batch = recipe.build_model(), int(recipe.config["batch_size"])
    older = copy.deepcopy(split)
    if not concat_form(older):
        raise SystemExit(f"{name} has no cell with a concatenated older form")
    benches = {"split": StepBench(split, batch, device), "concat": StepBench(older, batch, device)}
    variants = [(form, Precision(pr, device, lay)) for pr in precisions for lay in layouts for form in benches]
    label = [f"{form} {p.label}" for form, p in variants]
    with torch.no_grad():  # the two forms are one function
        a = split.eval()(benches["split"].x).pred
        b = older.eval()(benches["split"].x).pred
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    t0 = time.perf_counter()
    for form, p in variants:  # warm-up round
        benches[form].step(p)
    times: dict[str, list[float]] = {k: [] for k in label}
    for r in range(max(1, reps)):
        if r and time.perf_counter() - t0 >= budget_s:
            break
        order = list(range(len(variants)))
        order = order[r % len(order):] + order[:r % len(order)]
        for i in order:
            form, p = variants[i]
            times[label[i]].append(benches[form].step(p))
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="convlstm,mim,predrnnpp")
    ap.add_argument("--preset", default="paper", help="paper (published sizes, --batch) | quick (recipe's)")
    ap.add_argument("--precisions", default="fp32")
    ap.add_argument("--layouts", default="nchw,channels_last")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--budget", type=float, default=200.0, help="seconds per model: no new round after it")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    configure_threads(args.threads)
    device = torch.device("cpu")
    layouts = [s.strip() for s in args.layouts.split(",") if s.strip()]
    precisions = [s.strip() for s in args.precisions.split(",") if s.strip()]
    print(f"{env_info(device)['device']}, ATen {cpu_capability()}, torch {torch.__version__}, preset {args.preset}",
          flush=True)
    for m in (s.strip() for s in args.models.split(",") if s.strip()):
        times, load = measured(lambda m=m: compare(m, args.preset, args.batch, precisions, layouts, args.reps,
                                                   args.budget))
        best = {k: 1e3 * min(v) for k, v in times.items()}
        for k, v in times.items():
            print(f"{m:10s} {k:22s} best {best[k]:8.0f} ms  median {1e3 * statistics.median(v):8.0f} ms  "
                  f"({len(v)} steps)", flush=True)
        for lab in dict.fromkeys(k.split(" ", 1)[1] for k in times):
            print(f"{m:10s} {lab:18s} split / concat = {best[f'split {lab}'] / best[f'concat {lab}']:.3f} "
                  f"(load {load['loadavg_1m']:.2f}, stall {load['cpu_stall']:.3f})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
