"""Loss terms shared by the models."""

from __future__ import annotations

import torch
from torch import Tensor


def ddr_loss(pred: Tensor, true: Tensor, tau: float = 0.1, eps: float = 1e-12) -> Tensor:
    """TAU's differential divergence regularisation (docs/protocol.md, "What matches the published work").

    pred, true: (B, T, C, H, W). dP = P[:,1:] - P[:,:-1] (dY likewise), flattened over C*H*W;
    p = softmax(dP / tau), q = softmax(dY / tau); returns mean(p * log(p / (q + eps) + eps)).
    Zero when T <= 2.
    """
    B, T = pred.shape[:2]
    if T <= 2:
        return pred.new_zeros(())
    dp = (pred[:, 1:] - pred[:, :-1]).reshape(B, T - 1, -1)  # (B, T-1, C*H*W)
    dy = (true[:, 1:] - true[:, :-1]).reshape(B, T - 1, -1)
    p = torch.softmax(dp / tau, dim=-1)
    q = torch.softmax(dy / tau, dim=-1)
    return torch.mean(p * torch.log(p / (q + eps) + eps))
