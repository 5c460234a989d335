"""Convolution + normalisation + activation blocks used by the SimVP family."""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import Tensor, nn


def init_conv_(m: nn.Module) -> None:
    """He-normal (fan-out) for convolutions, truncated normal for linear layers, unit norms."""
    if isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
        nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.GroupNorm, nn.BatchNorm2d, nn.LayerNorm)):
        if m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def translator_stack(c: int, hid_T: int, N_T: int, make_block: Callable[[int, int], nn.Module]) -> nn.Sequential:
    """The layers of a MetaFormer-style translator on time-folded channels (OpenSTL's MidMetaNet):
    block 0 at ``c`` channels, a 1x1 conv to ``hid_T``, blocks 1 .. N_T - 1 at ``hid_T``, a 1x1 conv back to ``c``;
    ``make_block(i, dim)`` builds block i. Where ``c == hid_T`` the published translator has no 1x1 conv: an
    Identity stands there, so the indices never move (0 = block 0, 1 = its 1x1, 2 .. N_T = blocks 1 .. N_T - 1,
    N_T + 1 = the last 1x1; the OpenSTL key maps rely on them). Layers are built in that order."""

    def one_by_one(c_in: int, c_out: int) -> nn.Module:
        return nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    layers: list[nn.Module] = []
    for i in range(N_T):
        layers.append(make_block(i, c if i == 0 else hid_T))
        if i == 0:
            layers.append(one_by_one(c, hid_T))
    layers.append(one_by_one(hid_T, c))
    return nn.Sequential(*layers)


class ConvNormAct(nn.Module):
    """3x3 conv (stride 1 or 2, or conv to 4C + PixelShuffle(2) to upsample) -> GroupNorm(2) -> SiLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, *, down: bool = False, up: bool = False,
                 norm_act: bool = True) -> None:
        super().__init__()
        stride = 2 if down else 1
        pad = (kernel - stride + 1) // 2
        if up:
            self.conv = nn.Sequential(nn.Conv2d(c_in, c_out * 4, kernel, 1, kernel // 2), nn.PixelShuffle(2))
        else:
            self.conv = nn.Conv2d(c_in, c_out, kernel, stride, pad)
        self.norm = nn.GroupNorm(2, c_out) if norm_act else nn.Identity()
        # not in place: autograd saves a clone of silu_'s input (its backward needs it), a full copy per layer
        self.act = nn.SiLU() if norm_act else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(x)))


class GroupConvNormAct(nn.Module):
    """Grouped k x k conv -> GroupNorm(groups) -> LeakyReLU(0.2) (IncepU branches)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, groups: int) -> None:
        super().__init__()
        if c_in % groups:
            groups = 1
        self.conv = nn.Conv2d(c_in, c_out, kernel, 1, kernel // 2, groups=groups)
        self.norm = nn.GroupNorm(groups, c_out)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(x)))
