"""MetaVP: SimVP's encoder/decoder with ten MetaFormer-style translators (OpenSTL, NeurIPS 2023 D&B).

Every translator has the layout of :class:`stbench.models.metaformer.MetaTranslator`: N_T blocks on the
time-folded latent (B, T*C, H, W); block 0 runs at T*C channels and is followed by a 1x1 conv to hid_T,
blocks 1..N_T-1 run at hid_T and a last 1x1 conv returns to T*C. Only the block differs:

=========== ==================================================================================
convmixer   x + BN(GELU(dw11x11(x))), then BN(GELU(1x1(.))) (no second residual)
convnext    x + gamma * MLP(LN(dw7x7(x)))                      (1x1-conv MLP, LN eps 1e-6)
hornet      x + g1 * gnConv_4(LN(x)),  x + g2 * MLP(LN(x))     (recursive gated conv, order 4)
mlpmixer    token MLP over H*W (hidden dim/2), channel MLP      (LN eps 1e-6)
moganet     x + ls1 * MOGA(BN(x)),  x + ls2 * CA-FFN(BN(x))    (multi-order gated aggregation)
poolformer  x + ls1 * (avgpool3(GN1(x)) - GN1(x)),  x + ls2 * MLP(GN1(x))
swin        window attention (4x4 windows at 16x16), odd blocks cyclically shifted WITHOUT a mask
uniformer   conv block (dw5x5 "attention") at the first and last block, global MHSA in between
van         x + ls1 * LKA-attention(BN(x)),  x + ls2 * MixMLP(BN(x))
vit         pre-norm global multi-head self-attention over the H*W tokens + MLP
=========== ==================================================================================

Attention blocks use 8 heads; MLP hidden width is ``mlp_ratio * dim``. Parameter names follow the
published checkpoints' block layout so that ``stbench.interop.openstl_metavp`` is a structural map.
Operator choice matters for fvcore FLOPs (it counts convs, linears, matmuls, norms and adaptive pooling,
not elementwise ops): each block uses the same operator kinds as OpenSTL's, so counts agree exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stbench.layers import DropPath, init_conv_, translator_stack
from stbench.models.base import ParallelTemporal
from stbench.models.zoo import named_model
from stbench.registry import MODELS, TEMPORAL


# -- shared pieces --------------------------------------------------------------------------------
def _dw(dim: int, k: int, dilation: int = 1, padding: int | None = None) -> nn.Conv2d:
    pad = dilation * (k - 1) // 2 if padding is None else padding
    return nn.Conv2d(dim, dim, k, padding=pad, dilation=dilation, groups=dim)


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2 on the last axis (tokens) or on channels (``conv=True``: 1x1 convs)."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0, conv: bool = False, out: int | None = None) -> None:
        super().__init__()
        layer = (lambda a, b: nn.Conv2d(a, b, 1)) if conv else nn.Linear
        self.fc1 = layer(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = layer(hidden, out or dim)
        self.drop = nn.Dropout(drop) if drop > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of (B, C, H, W), through F.layer_norm on a channels-last view."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of (B, C, H, W) (HorNet's channels_first LayerNorm, which its code writes out
    element-wise): one fused layer_norm over the channels-last view, the same function in one kernel."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        t = F.layer_norm(x.permute(0, 2, 3, 1), self.weight.shape, self.weight, self.bias, self.eps)
        return t.permute(0, 3, 1, 2)


class MHSA(nn.Module):
    """Multi-head self-attention on (B, N, C) with explicit q @ k^T (fvcore counts both matmuls)."""

    def __init__(self, dim: int, heads: int = 8, drop: float = 0.0, window: int = 0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(drop) if drop > 0 else nn.Identity()
        self.window = window
        if window:  # Swin: learned bias per relative offset inside a window
            self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
            ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
            coords = torch.stack([ys.flatten(), xs.flatten()])  # (2, w*w)
            rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
            self.register_buffer("relative_position_index", rel[..., 0] * (2 * window - 1) + rel[..., 1],
                                 persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1)  # (B, heads, N, N)
        if self.window:
            bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
            attn = attn + bias.reshape(N, N, -1).permute(2, 0, 1).unsqueeze(0)
        x = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, N, C)
        return self.drop(self.proj(x))


def _tokens(x: Tensor) -> Tensor:
    return x.flatten(2).transpose(1, 2)  # (B, C, H, W) -> (B, H*W, C)


def _grid(x: Tensor, H: int, W: int) -> Tensor:
    return x.transpose(1, 2).reshape(x.shape[0], -1, H, W)  # (B, H*W, C) -> (B, C, H, W)


# -- the ten blocks -------------------------------------------------------------------------------
class ConvMixerBlock(nn.Module):
    def __init__(self, dim: int, kernel: int = 11, **_: object) -> None:
        super().__init__()
        self.conv_dw = nn.Conv2d(dim, dim, kernel, groups=dim, padding="same")
        self.norm_1 = nn.BatchNorm2d(dim)
        self.conv_pw = nn.Conv2d(dim, dim, 1)
        self.norm_2 = nn.BatchNorm2d(dim)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.norm_1(self.act(self.conv_dw(x)))
        return self.norm_2(self.act(self.conv_pw(x)))


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, mlp_ratio: float = 4.0, drop_path: float = 0.0, ls: float = 1e-6,
                 **_: object) -> None:
        super().__init__()
        self.conv_dw = _dw(dim, 7)
        self.norm = LayerNorm2d(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(mlp_ratio * dim), conv=True)
        self.gamma = nn.Parameter(ls * torch.ones(dim))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        # OpenSTL's block (timm's, conv_mlp=True) holds 1x1 convs; they run here as matmuls on channels-last
        # tokens, ConvNeXt's own form: the same function and FLOPs, and on an AVX2 CPU the fp32 training step
        # of the 1x1 convs was 1.4x slower than this (benchmarks/README.md, section 7). Weights stay conv-shaped.
        t = nn.LayerNorm.forward(self.norm, self.conv_dw(x).permute(0, 2, 3, 1))  # (B, H, W, C)
        fc1, fc2 = self.mlp.fc1, self.mlp.fc2
        t = self.mlp.drop(self.mlp.act(F.linear(t, fc1.weight.flatten(1), fc1.bias)))
        t = self.mlp.drop(F.linear(t, fc2.weight.flatten(1), fc2.bias))
        return x + self.drop_path((self.gamma * t).permute(0, 3, 1, 2))


class GnConv(nn.Module):
    """Recursive gated convolution of order n: widths dim/2^(n-1), ..., dim/2, dim."""

    def __init__(self, dim: int, order: int = 4) -> None:
        super().__init__()
        if dim % 2 ** (order - 1):
            raise ValueError(f"hornet needs widths divisible by {2 ** (order - 1)}, got {dim}")
        self.dims = [dim // 2 ** i for i in reversed(range(order))]
        self.proj_in = nn.Conv2d(dim, 2 * dim, 1)
        self.dwconv = _dw(sum(self.dims), 7)
        self.proj_out = nn.Conv2d(dim, dim, 1)
        self.pws = nn.ModuleList(nn.Conv2d(self.dims[i], self.dims[i + 1], 1) for i in range(order - 1))

    def forward(self, x: Tensor) -> Tensor:
        p, abc = self.proj_in(x).split((self.dims[0], sum(self.dims)), dim=1)
        gates = self.dwconv(abc).split(self.dims, dim=1)
        x = p * gates[0]
        for pw, g in zip(self.pws, gates[1:]):
            x = pw(x) * g
        return self.proj_out(x)


class HorNetBlock(nn.Module):
    def __init__(self, dim: int, mlp_ratio: float = 4.0, drop_path: float = 0.0, ls: float = 1e-6,
                 **_: object) -> None:
        super().__init__()
        self.norm1 = ChannelNorm(dim)
        self.gnconv = GnConv(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, int(mlp_ratio * dim))
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(int(mlp_ratio * dim), dim)
        self.gamma1 = nn.Parameter(ls * torch.ones(dim))
        self.gamma2 = nn.Parameter(ls * torch.ones(dim))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.gamma1.view(-1, 1, 1) * self.gnconv(self.norm1(x)))
        y = self.gamma2 * self.pwconv2(self.act(self.pwconv1(self.norm2(x.permute(0, 2, 3, 1)))))
        return x + self.drop_path(y.permute(0, 3, 1, 2))


class MLPMixerBlock(nn.Module):
    def __init__(self, dim: int, resolution: tuple[int, int], mlp_ratio: float = 4.0, drop: float = 0.0,
                 drop_path: float = 0.0, **_: object) -> None:
        super().__init__()
        n = resolution[0] * resolution[1]
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp_tokens = Mlp(n, int(0.5 * dim), drop)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp_channels = Mlp(dim, int(mlp_ratio * dim), drop)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        H, W = x.shape[-2:]
        x = _tokens(x)  # (B, N, C)
        x = x + self.drop_path(self.mlp_tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2))
        x = x + self.drop_path(self.mlp_channels(self.norm2(x)))
        return _grid(x, H, W)


class MultiOrderDWConv(nn.Module):
    """dw5x5 on all channels; then 3/8 of them through dw5x5 dilation 2, 4/8 through dw7x7 dilation 3."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim % 8:
            raise ValueError(f"moganet needs widths divisible by 8, got {dim}")
        self.d1, self.d2 = 3 * dim // 8, dim // 2
        self.d0 = dim - self.d1 - self.d2
        self.DW_conv0 = _dw(dim, 5)
        self.DW_conv1 = _dw(self.d1, 5, dilation=2)
        self.DW_conv2 = _dw(self.d2, 7, dilation=3)
        self.PW_conv = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        x0 = self.DW_conv0(x)
        x1 = self.DW_conv1(x0[:, self.d0:self.d0 + self.d1])
        x2 = self.DW_conv2(x0[:, x0.shape[1] - self.d2:])
        return self.PW_conv(torch.cat([x0[:, :self.d0], x1, x2], dim=1))


class MogaAttention(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj_1 = nn.Conv2d(dim, dim, 1)
        self.gate = nn.Conv2d(dim, dim, 1)
        self.value = MultiOrderDWConv(dim)
        self.proj_2 = nn.Conv2d(dim, dim, 1)
        self.act = nn.SiLU()
        self.sigma = nn.Parameter(1e-5 * torch.ones(1, dim, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        y = self.proj_1(x)
        y = self.act(y + self.sigma * (y - F.adaptive_avg_pool2d(y, 1)))  # feature decomposition
        return self.proj_2(self.act(self.gate(y)) * self.act(self.value(y))) + x


class ChannelAggregationFFN(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.dwconv = _dw(hidden, 3)
        self.act = nn.GELU()
        self.decompose = nn.Conv2d(hidden, 1, 1)
        self.sigma = nn.Parameter(1e-5 * torch.ones(1, hidden, 1, 1))
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.drop = nn.Dropout(drop) if drop > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.drop(self.act(self.dwconv(self.fc1(x))))
        x = x + self.sigma * (x - self.act(self.decompose(x)))
        return self.drop(self.fc2(x))


class MogaBlock(nn.Module):
    def __init__(self, dim: int, mlp_ratio: float = 4.0, drop: float = 0.0, drop_path: float = 0.0,
                 ls: float = 1e-5, **_: object) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(dim)
        self.attn = MogaAttention(dim)
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = ChannelAggregationFFN(dim, int(dim * mlp_ratio), drop)
        self.layer_scale_1 = nn.Parameter(ls * torch.ones(1, dim, 1, 1))
        self.layer_scale_2 = nn.Parameter(ls * torch.ones(1, dim, 1, 1))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.layer_scale_1 * self.attn(self.norm1(x)))
        return x + self.drop_path(self.layer_scale_2 * self.mlp(self.norm2(x)))


class PoolFormerBlock(nn.Module):
    def __init__(self, dim: int, mlp_ratio: float = 4.0, drop: float = 0.0, drop_path: float = 0.0,
                 ls: float = 1e-5, **_: object) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(1, dim)
        self.pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.norm2 = nn.GroupNorm(1, dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop, conv=True)
        self.layer_scale_1 = nn.Parameter(ls * torch.ones(dim))
        self.layer_scale_2 = nn.Parameter(ls * torch.ones(dim))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm1(x)
        x = x + self.drop_path(self.layer_scale_1[:, None, None] * (self.pool(y) - y))
        return x + self.drop_path(self.layer_scale_2[:, None, None] * self.mlp(self.norm2(x)))


def swin_window(resolution: tuple[int, int]) -> int:
    """OpenSTL's window rule: 7 if H divides by 7, else max(4, H // 16), at most 8 (4 at a 16x16 latent)."""
    w = 7 if resolution[0] % 7 == 0 else max(4, resolution[0] // 16)
    return min(8, w)


class SwinBlock(nn.Module):
    """Pre-norm window attention + MLP on (B, C, H, W). Odd blocks roll the map by half a window and
    back, and -- as in OpenSTL's published model -- apply NO attention mask to the wrapped windows."""

    def __init__(self, dim: int, resolution: tuple[int, int], layer_i: int = 0, mlp_ratio: float = 4.0,
                 drop: float = 0.0, drop_path: float = 0.0, **_: object) -> None:
        super().__init__()
        w = swin_window(resolution)
        shift = 0 if layer_i % 2 == 0 else w // 2
        if min(resolution) <= w:  # one window covers the map: no shift (Swin's rule)
            w, shift = min(resolution), 0
        if resolution[0] % w or resolution[1] % w:
            raise ValueError(f"swin window {w} does not tile the {resolution[0]}x{resolution[1]} latent")
        self.window, self.shift = w, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MHSA(dim, 8, drop, window=w)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        w, s = self.window, self.shift
        t = _tokens(x)
        y = self.norm1(t).view(B, H, W, C)
        if s:
            y = torch.roll(y, shifts=(-s, -s), dims=(1, 2))
        y = y.view(B, H // w, w, W // w, w, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, C)
        y = self.attn(y)
        y = y.view(B, H // w, W // w, w, w, C).permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, C)
        if s:
            y = torch.roll(y, shifts=(s, s), dims=(1, 2))
        t = t + self.drop_path(y.reshape(B, H * W, C))
        t = t + self.drop_path(self.mlp(self.norm2(t)))
        return _grid(t, H, W)


class UniformerConvBlock(nn.Module):
    def __init__(self, dim: int, mlp_ratio: float = 4.0, drop: float = 0.0, drop_path: float = 0.0,
                 **_: object) -> None:
        super().__init__()
        self.pos_embed = _dw(dim, 3)
        self.norm1 = nn.BatchNorm2d(dim)
        self.conv1 = nn.Conv2d(dim, dim, 1)
        self.attn = _dw(dim, 5)
        self.conv2 = nn.Conv2d(dim, dim, 1)
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop, conv=True)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.pos_embed(x)
        x = x + self.drop_path(self.conv2(self.attn(self.conv1(self.norm1(x)))))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class UniformerSABlock(nn.Module):
    def __init__(self, dim: int, mlp_ratio: float = 4.0, drop: float = 0.0, drop_path: float = 0.0,
                 ls: float = 1e-6, **_: object) -> None:
        super().__init__()
        self.pos_embed = _dw(dim, 3)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MHSA(dim, 8, drop)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        self.gamma_1 = nn.Parameter(ls * torch.ones(dim))
        self.gamma_2 = nn.Parameter(ls * torch.ones(dim))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.pos_embed(x)
        H, W = x.shape[-2:]
        t = _tokens(x)
        t = t + self.drop_path(self.gamma_1 * self.attn(self.norm1(t)))
        t = t + self.drop_path(self.gamma_2 * self.mlp(self.norm2(t)))
        return _grid(t, H, W)


class LKA(nn.Module):
    """Large-kernel attention: u * 1x1(dw7x7_dil3(dw5x5(u)))."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv0 = _dw(dim, 5)
        self.conv_spatial = _dw(dim, 7, dilation=3)
        self.conv1 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.conv1(self.conv_spatial(self.conv0(x)))


class VANAttention(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj_1 = nn.Conv2d(dim, dim, 1)
        self.act = nn.GELU()
        self.spatial_gating_unit = LKA(dim)
        self.proj_2 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj_2(self.spatial_gating_unit(self.act(self.proj_1(x)))) + x


class MixMlp(nn.Module):
    """1x1 -> dw3x3 -> GELU -> 1x1."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.dwconv = _dw(hidden, 3)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.drop = nn.Dropout(drop) if drop > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.dwconv(self.fc1(x))))))


class VANBlock(nn.Module):
    def __init__(self, dim: int, mlp_ratio: float = 4.0, drop: float = 0.0, drop_path: float = 0.0,
                 ls: float = 1e-2, **_: object) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(dim)
        self.attn = VANAttention(dim)
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = MixMlp(dim, int(dim * mlp_ratio), drop)
        self.layer_scale_1 = nn.Parameter(ls * torch.ones(dim))
        self.layer_scale_2 = nn.Parameter(ls * torch.ones(dim))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.layer_scale_1[:, None, None] * self.attn(self.norm1(x)))
        return x + self.drop_path(self.layer_scale_2[:, None, None] * self.mlp(self.norm2(x)))


class ViTBlock(nn.Module):
    def __init__(self, dim: int, mlp_ratio: float = 4.0, drop: float = 0.0, drop_path: float = 0.0,
                 **_: object) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MHSA(dim, 8, drop)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        H, W = x.shape[-2:]
        t = _tokens(x)
        t = t + self.drop_path(self.attn(self.norm1(t)))
        t = t + self.drop_path(self.mlp(self.norm2(t)))
        return _grid(t, H, W)


# -- the translator ------------------------------------------------------------------------------
class MetaVPTranslator(ParallelTemporal):
    """N_T blocks of one kind on time-folded channels: block 0 at T*C (then 1x1 to hid_T), blocks
    1..N_T-1 at hid_T (then 1x1 back to T*C; both 1x1 convs are absent when T*C == hid_T, as in OpenSTL).
    Stochastic depth: OpenSTL's rule, linspace(0.01, drop_path) over the first N_T - 1 blocks and
    ``drop_path`` on the last (so the published drop_path = 0 still drops about 1% early on)."""

    def make_block(self, dim: int, **kw: object) -> nn.Module:
        raise NotImplementedError

    def __init__(self, *, in_shape: tuple[int, int, int, int], t_out: int, hid_T: int = 512, N_T: int = 8,
                 mlp_ratio: float = 8.0, drop: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        if N_T < 2:
            raise ValueError(f"{type(self).__name__} needs N_T >= 2, got {N_T}")
        T, C, H, W = in_shape
        c = T * C
        dpr = [1e-2 + (drop_path - 1e-2) * i / (N_T - 1) for i in range(N_T - 1)] + [drop_path]
        self.blocks = translator_stack(c, hid_T, N_T, lambda i, dim: self.make_block(
            dim, layer_i=i, same_width=0 < i < N_T - 1 or c == hid_T,  # block input width == block output width
            resolution=(H, W), mlp_ratio=mlp_ratio, drop=drop, drop_path=dpr[i]))
        self.apply(init_conv_)

    def forward(self, z: Tensor) -> Tensor:
        B, T, C, H, W = z.shape
        return self.blocks(z.reshape(B, T * C, H, W)).reshape(B, T, C, H, W)


def _translator(name: str, block: type[nn.Module] | None = None):
    def make(cls: type[MetaVPTranslator]) -> type[MetaVPTranslator]:
        if block is not None:
            cls.make_block = lambda self, dim, **kw: block(dim, **kw)
        return TEMPORAL.register(name)(cls)
    return make


@_translator("convmixer", ConvMixerBlock)
class ConvMixerTranslator(MetaVPTranslator):
    pass


@_translator("convnext", ConvNeXtBlock)
class ConvNeXtTranslator(MetaVPTranslator):
    pass


@_translator("hornet", HorNetBlock)
class HorNetTranslator(MetaVPTranslator):
    pass


@_translator("mlpmixer", MLPMixerBlock)
class MLPMixerTranslator(MetaVPTranslator):
    pass


@_translator("moganet", MogaBlock)
class MogaNetTranslator(MetaVPTranslator):
    pass


@_translator("poolformer", PoolFormerBlock)
class PoolFormerTranslator(MetaVPTranslator):
    pass


@_translator("swin", SwinBlock)
class SwinTranslator(MetaVPTranslator):
    pass


@_translator("uniformer")
class UniformerTranslator(MetaVPTranslator):
    """Global self-attention where the width does not change (the middle blocks), conv blocks at the ends."""

    def make_block(self, dim: int, *, layer_i: int, same_width: bool, **kw: object) -> nn.Module:
        attention = layer_i > 0 and same_width
        return (UniformerSABlock if attention else UniformerConvBlock)(dim, **kw)


@_translator("van", VANBlock)
class VANTranslator(MetaVPTranslator):
    pass


@_translator("vit", ViTBlock)
class ViTTranslator(MetaVPTranslator):
    pass


TRANSLATORS = ("convmixer", "convnext", "hornet", "mlpmixer", "moganet", "poolformer", "swin", "uniformer",
               "van", "vit")


# -- named models: SimVP encoder/decoder + one translator (OpenSTL configs/mmnist/simvp/SimVP_<Type>.py) ----
PAPER_LR = {"convmixer": 1e-2, "convnext": 1e-2, "hornet": 1e-3, "mlpmixer": 1e-3, "moganet": 1e-3,
            "poolformer": 1e-3, "swin": 1e-3, "uniformer": 5e-4, "van": 1e-3, "vit": 5e-4}
PAPER_TITLE = {"convmixer": "ConvMixer", "convnext": "ConvNeXt (CVPR 2022)", "hornet": "HorNet (NeurIPS 2022)",
               "mlpmixer": "MLP-Mixer (NeurIPS 2021)", "moganet": "MogaNet (ICLR 2024)",
               "poolformer": "PoolFormer (CVPR 2022)", "swin": "Swin Transformer (ICCV 2021)",
               "uniformer": "UniFormer (ICLR 2022)", "van": "VAN (CVM 2023)", "vit": "ViT (ICLR 2021)"}
META_PAPER = dict(hid_S=64, N_S=4, hid_T=512, N_T=8, mlp_ratio=8.0, drop_path=0.0)
META_QUICK = dict(hid_S=16, N_S=4, hid_T=128, N_T=4, mlp_ratio=4.0)
META_SMOKE = dict(hid_S=8, N_S=2, hid_T=16, N_T=2, mlp_ratio=2.0)


def _presets(name: str) -> dict:
    return {"paper": {"lr": PAPER_LR[name], "model": dict(META_PAPER)},
            "quick": {"lr": 3e-3, "batch_size": 4, "model": dict(META_QUICK)},
            "smoke": {"lr": 1e-3, "model": dict(META_SMOKE)}}


def _register_named(name: str) -> None:
    factory = named_model(name, "simvp", name, META_PAPER)
    factory.__doc__ = (f"SimVP encoder/decoder with the {PAPER_TITLE[name]} translator (OpenSTL MetaVP).\n\n"
                       + factory.__doc__)
    MODELS.register(name, family="parallel", paper=f"MetaVP: SimVP + {PAPER_TITLE[name]} translator (OpenSTL)",
                    presets=_presets(name))(factory)


for _name in TRANSLATORS:
    _register_named(_name)
