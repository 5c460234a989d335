"""Metrics for fields that are not images on [0, 1] (ns2d, weather), registered on
:data:`stbench.registry.METRICS` like the built-ins (per-frame ``fn(pred, true) -> (B, T)``).

- ``rel_l2``  per frame ``||pred - true||_2 / ||true||_2`` over C*H*W (the relative L2 error of the
  PDE benchmarks, FNO / PDEBench), not clipped; the denominator is floored at 1e-12.
- ``rmse``    per frame ``sqrt(mean over C*H*W of the squared error)``, not clipped. The reported
  value is the mean of the per-frame RMSEs (every metric is a mean of per-frame values), which is
  at most ``sqrt`` of the mean per-pixel MSE (Jensen).
- ``mse_px`` / ``mae_px``  per-frame MEAN (not sum) over C*H*W of the squared / absolute error.

Importing this module registers them (it is a ``stbench.metrics`` entry point, imported on the first
lookup of one of its names).
"""

from __future__ import annotations

import torch

from stbench.metrics import register_metric

REL_L2_FLOOR = 1e-12


def _flat(pred: torch.Tensor, true: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    B, T = pred.shape[:2]
    acc = torch.float64 if pred.device.type != "mps" else torch.float32
    return pred.reshape(B, T, -1).to(acc), true.reshape(B, T, -1).to(acc)  # (B, T, C*H*W)


@register_metric("rel_l2", label="rel. L2", unit="", higher_is_better=False,
                  convention="per frame ||pred - true||_2 / ||true||_2 over C*H*W (denominator floored at 1e-12), "
                  "not clipped; mean over all (B, T) frames")
def rel_l2(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    p, t = _flat(pred, true)
    return (p - t).norm(dim=-1) / t.norm(dim=-1).clamp_min(REL_L2_FLOOR)


@register_metric("rmse", label="RMSE", unit="data units", higher_is_better=False,
                  convention="per frame sqrt(mean over C*H*W of squared error), not clipped; mean over all "
                  "(B, T) frames (<= sqrt of the mean MSE)")
def rmse(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    p, t = _flat(pred, true)
    return (p - t).pow(2).mean(dim=-1).sqrt()


@register_metric("mse_px", label="MSE/px", unit="data units^2", higher_is_better=False,
                  convention="per frame MEAN over C*H*W of squared error, not clipped; mean over all (B, T) frames")
def mse_px(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    p, t = _flat(pred, true)
    return (p - t).pow(2).mean(dim=-1)


@register_metric("mae_px", label="MAE/px", unit="data units", higher_is_better=False,
                  convention="per frame MEAN over C*H*W of absolute error, not clipped; mean over all (B, T) frames")
def mae_px(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    p, t = _flat(pred, true)
    return (p - t).abs().mean(dim=-1)


# -- LPIPS (KTH, Human3.6M): only with the lpips package and its weights already on disk ---------------
LPIPS_HINT = ("LPIPS needs the 'lpips' package and the AlexNet weights on disk (never downloaded by stbench); "
              "fix: pip install lpips, then put alexnet-owt-7be5be79.pth in {hub}")


def lpips_available() -> str | None:
    """None if LPIPS can run offline, else the one-line message saying how to provide it."""
    import importlib.util
    from pathlib import Path

    hub = Path(torch.hub.get_dir()) / "checkpoints"
    if importlib.util.find_spec("lpips") is None or not (hub / "alexnet-owt-7be5be79.pth").is_file():
        return LPIPS_HINT.format(hub=hub)
    return None


_LPIPS_NET: dict[str, torch.nn.Module] = {}


@register_metric("lpips", label="LPIPS", unit="", higher_is_better=False,
                  convention="LPIPS (Zhang et al. 2018, AlexNet v0.1) per frame on RGB in [0, 1] (grey repeated to 3 "
                  "channels), prediction clipped to [0, 1]; mean over all (B, T) frames")
def lpips(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    msg = lpips_available()
    if msg:
        from stbench.errors import DataError

        raise DataError(msg)
    if "alex" not in _LPIPS_NET:
        import lpips as _lp

        _LPIPS_NET["alex"] = _lp.LPIPS(net="alex", verbose=False).eval()
    net = _LPIPS_NET["alex"].to(pred.device)
    B, T, C = pred.shape[:3]
    p = pred.reshape(B * T, C, *pred.shape[3:]).float().clamp(0, 1)
    t = true.reshape(B * T, C, *true.shape[3:]).float()
    if C == 1:
        p, t = p.expand(-1, 3, -1, -1), t.expand(-1, 3, -1, -1)
    with torch.no_grad():
        return net(p, t, normalize=True).reshape(B, T).to(torch.float64)
