"""SimVP v1 translator: a U-Net of inception blocks over time-folded channels (docs/protocol.md)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from stbench.layers import GroupConvNormAct, init_conv_
from stbench.models.base import ParallelTemporal
from stbench.registry import TEMPORAL


class Inception(nn.Module):
    """1x1 conv (c_in -> c_hid), then the sum of grouped k x k branches (c_hid -> c_out)."""

    def __init__(self, c_in: int, c_hid: int, c_out: int, kernels: tuple[int, ...] = (3, 5, 7, 11),
                 groups: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_hid, 1)
        self.branches = nn.ModuleList(GroupConvNormAct(c_hid, c_out, k, groups) for k in kernels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        y = self.branches[0](x)
        for b in self.branches[1:]:
            y = y + b(x)
        return y


@TEMPORAL.register("incepu")
class IncepU(ParallelTemporal):
    """(B, T, C, H, W) -> fold to (B, T*C, H, W) -> N_T encoder + N_T decoder inception blocks -> unfold."""

    def __init__(self, *, in_shape: tuple[int, int, int, int], t_out: int, hid_T: int = 512, N_T: int = 8,
                 kernels: tuple[int, ...] = (3, 5, 7, 11), groups: int = 8) -> None:
        super().__init__()
        T, C = in_shape[:2]
        c = T * C
        h = hid_T // 2
        self.enc = nn.ModuleList(
            [Inception(c, h, hid_T, kernels, groups)]
            + [Inception(hid_T, h, hid_T, kernels, groups) for _ in range(N_T - 1)]
        )
        self.dec = nn.ModuleList(
            [Inception(hid_T, h, hid_T, kernels, groups)]
            + [Inception(2 * hid_T, h, hid_T, kernels, groups) for _ in range(N_T - 2)]
            + [Inception(2 * hid_T, h, c, kernels, groups)]
        )
        self.apply(init_conv_)

    def forward(self, z: Tensor) -> Tensor:
        B, T, C, H, W = z.shape
        x = z.reshape(B, T * C, H, W)  # (B, T*C, H, W)
        skips = []
        for i, blk in enumerate(self.enc):
            x = blk(x)
            if i < len(self.enc) - 1:
                skips.append(x)
        x = self.dec[0](x)
        for i, blk in enumerate(self.dec[1:], start=1):
            x = blk(torch.cat([x, skips[-i]], dim=1))
        return x.reshape(B, T, C, H, W)
