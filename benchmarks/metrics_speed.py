"""SSIM speed: stbench's batched torch SSIM against a per-frame scikit-image loop.

    python benchmarks/metrics_speed.py                    # 1,000 frames of 1x64x64
    python benchmarks/metrics_speed.py --frames 200 --channels 3 --threads 1

Both sides get the same float32 frames (the published code passes float32 arrays); the loop is the
published one: ``structural_similarity(pred, true, data_range=2.0, channel_axis=-1)`` per (b, t)
frame, channels last. Times are the best of ``--repeats`` runs. Prints both timings and the ratio,
for one torch thread (like for like with the single-threaded loop) and for torch's default count.
Timings on a machine whose cores are busy with other work are not meaningful (torch's threads stall).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from skimage.metrics import structural_similarity

from stbench.metrics import ssim


def measure(frames: int = 1000, size: int = 64, channels: int = 1, repeats: int = 5, seed: int = 0) -> dict:
    """Best-of-``repeats`` seconds for both implementations on ``frames`` random frames, and the ratio."""
    rng = np.random.default_rng(seed)
    t_seq = 10 if frames % 10 == 0 else 1
    shape = (frames // t_seq, t_seq, channels, size, size)  # (B, T, C, H, W)
    true = rng.random(shape, dtype=np.float32)
    pred = np.clip(true + 0.1 * rng.standard_normal(shape, dtype=np.float32), 0, 1)
    pred_t, true_t = torch.from_numpy(pred), torch.from_numpy(true)

    def loop() -> float:
        vals = [
            structural_similarity(pred[b, t].transpose(1, 2, 0), true[b, t].transpose(1, 2, 0),
                                  data_range=2.0, channel_axis=-1, win_size=7)
            for b in range(shape[0]) for t in range(shape[1])
        ]
        return float(np.mean(vals))

    def batched() -> float:
        return float(ssim(pred_t, true_t).mean())

    def best(fn) -> tuple[float, float]:
        value, times = fn(), []  # the first call warms up
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times), value

    t_torch, v_torch = best(batched)
    t_sk, v_sk = best(loop)
    return {"frames": frames, "skimage_s": t_sk, "torch_s": t_torch, "speedup": t_sk / t_torch,
            "abs_diff": abs(v_sk - v_torch), "threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="*", default=None,
                    help="torch intra-op thread counts to try (default: 1 and torch's default)")
    args = ap.parse_args()
    default = torch.get_num_threads()
    print(f"{args.frames} frames of {args.channels}x{args.size}x{args.size}, float32, torch {torch.__version__}")
    for threads in args.threads or sorted({1, default}):
        torch.set_num_threads(threads)
        r = measure(args.frames, args.size, args.channels, args.repeats)
        print(f"torch threads {threads}: scikit-image per-frame loop {r['skimage_s'] * 1e3:7.1f} ms, "
              f"stbench batched torch SSIM {r['torch_s'] * 1e3:6.1f} ms, speed-up {r['speedup']:.1f}x "
              f"(|mean SSIM difference| {r['abs_diff']:.1e})")
    torch.set_num_threads(default)


if __name__ == "__main__":
    main()
