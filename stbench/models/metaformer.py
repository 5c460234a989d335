"""MetaFormer translators of TAU and gSTA (SimVP v2) (docs/protocol.md, "What matches the published work").

Block: x = x + drop_path(ls1 * attn(BN(x)));  x = x + drop_path(ls2 * mlp(BN(x))); layer scale 1e-2.
attn = proj_1 (1x1) -> GELU -> attention module -> proj_2 (1x1) -> + input.
The two translators differ only in the attention module: TAU multiplies a large-kernel static
attention by a squeeze-excitation dynamic attention; gSTA gates with sigmoid(g) * f.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stbench.layers import ConvMlp, DropPath, init_conv_, translator_stack
from stbench.models.base import ParallelTemporal
from stbench.registry import TEMPORAL


class LargeKernel(nn.Module):
    """Depthwise 5x5 then depthwise 7x7 with dilation 3: approximates a 21x21 depthwise kernel."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.dw_dilated = nn.Conv2d(dim, dim, 7, padding=9, groups=dim, dilation=3)

    def forward(self, x: Tensor) -> Tensor:
        return self.dw_dilated(self.dw(x))


class TAUAttention(nn.Module):
    """static SA = conv1x1(LK(x)); dynamic DA = SE(avgpool(x)); out = SA * DA * x."""

    def __init__(self, dim: int, reduction: int = 16) -> None:
        super().__init__()
        self.lk = LargeKernel(dim)
        self.conv1 = nn.Conv2d(dim, dim, 1)
        r = max(dim // reduction, 4)
        self.fc = nn.Sequential(nn.Linear(dim, dim // r, bias=False), nn.ReLU(inplace=True),
                                nn.Linear(dim // r, dim, bias=False), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        # x: (B, d, H, W)
        sa = self.conv1(self.lk(x))
        # global average pool as a pooling op (not a mean): fvcore counts it, as in the published count
        da = self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1)).unsqueeze(-1).unsqueeze(-1)  # (B, d, 1, 1)
        return sa * da * x


class GatedAttention(nn.Module):
    """gSTA: LK(x) -> 1x1 to 2d -> split f, g -> sigmoid(g) * f."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.lk = LargeKernel(dim)
        self.conv1 = nn.Conv2d(dim, 2 * dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        f, g = self.conv1(self.lk(x)).chunk(2, dim=1)
        return torch.sigmoid(g) * f


class AttentionBranch(nn.Module):
    """proj_1 -> GELU -> attention -> proj_2 -> + input."""

    def __init__(self, dim: int, attention: nn.Module) -> None:
        super().__init__()
        self.proj_1 = nn.Conv2d(dim, dim, 1)
        self.act = nn.GELU()
        self.attn = attention
        self.proj_2 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj_2(self.attn(self.act(self.proj_1(x)))) + x


class MetaBlock(nn.Module):
    def __init__(self, dim: int, attention: nn.Module, mlp_ratio: float = 8.0, drop: float = 0.0,
                 drop_path: float = 0.0, init_value: float = 1e-2) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(dim)
        self.attn = AttentionBranch(dim, attention)
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = ConvMlp(dim, int(dim * mlp_ratio), drop)
        self.drop_path = DropPath(drop_path)
        self.ls1 = nn.Parameter(init_value * torch.ones(dim, 1, 1))
        self.ls2 = nn.Parameter(init_value * torch.ones(dim, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.ls1 * self.attn(self.norm1(x)))
        return x + self.drop_path(self.ls2 * self.mlp(self.norm2(x)))


class MetaTranslator(ParallelTemporal):
    """N_T MetaBlocks on time-folded channels: block 0 at T*C (then 1x1 to hid_T), middle blocks at
    hid_T, the last at hid_T (then 1x1 back to T*C); no 1x1 where T*C == hid_T (as published).

    ``blocks`` (an nn.Sequential): index 0 = block 0, 1 = its 1x1, 2 .. N_T = blocks 1 .. N_T - 1,
    N_T + 1 = the last 1x1 (the key map of :mod:`stbench.interop.openstl_simvp` relies on it)."""

    attention_cls: type[nn.Module]

    def __init__(self, *, in_shape: tuple[int, int, int, int], t_out: int, hid_T: int = 512, N_T: int = 8,
                 mlp_ratio: float = 8.0, drop: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        if N_T < 2:
            raise ValueError(f"{type(self).__name__} needs N_T >= 2, got {N_T}")
        T, C = in_shape[:2]
        c = T * C
        dpr = [drop_path * i / (N_T - 1) for i in range(N_T)]  # stochastic depth grows linearly
        self.blocks = translator_stack(
            c, hid_T, N_T, lambda i, d: MetaBlock(d, self.attention_cls(d), mlp_ratio, drop, dpr[i]))
        self.apply(init_conv_)

    def forward(self, z: Tensor) -> Tensor:
        B, T, C, H, W = z.shape
        y = self.blocks(z.reshape(B, T * C, H, W))  # (B, T*C, H, W)
        return y.reshape(B, T, C, H, W)


@TEMPORAL.register("tau")
class TAU(MetaTranslator):
    attention_cls = TAUAttention


@TEMPORAL.register("gsta")
class GSTA(MetaTranslator):
    attention_cls = GatedAttention
