"""Straightforward reference implementations of the seed models, PredRNN++, MIM, E3D-LSTM, MAU, PhyDNet, SwinLSTM,
PredFormer and the ten MetaVP translators (ConvMixer, ConvNeXt, HorNet, MLP-Mixer, MogaNet, PoolFormer, Swin,
UniFormer, VAN, ViT), written the way the papers and their public code describe them: plain PyTorch modules on
contiguous NCHW tensors (token blocks on (B, N, C)), nothing fused (the cells' gate convolutions are bias-free, as in
the public code), no layout tricks; attention runs through torch's F.scaled_dot_product_attention, as timm's
blocks do. They exist only as the yardstick of ``reference_step.py`` (is stbench's fp32 step as fast as the obvious
implementation of the same published architecture?); they are not part of the package. Parameter counts equal
stbench's (tests/test_reference_models.py).

Sizes are the published Moving MNIST ones (10 -> 10 frames, 1 x 64 x 64): the SimVP family with hid_S 64, N_S 4,
hid_T 512, N_T 8 (MetaFormer and MetaVP blocks: mlp_ratio 8, no stochastic depth); the recurrent ones (ConvLSTM,
PredRNN, PredRNN.V2, PredRNN++, MIM) with patch 4 (16 x 16 x 16 frames), 4 x 128 hidden, filter 5; MAU with 4 x 64
cells (filter 5, tau 5) on 16 x 16 latents; E3D-LSTM with 4 x 128 eidetic cells (kernel 2 x 5 x 5, window 2) on the
patch-4 frames; PhyDNet with nf 32, PhyCell 49 x 7 x 7, ConvLSTMs 128, 128, 64; SwinLSTM-D with 2 x 2 patches of
128, window 4, depths 2, 6 down and 6, 2 up, heads 4, 8 (no dead weights, as stbench); PredFormer with 8 x 8 patches,
width 256, 8 heads of 32, SwiGLU 1024, 6 quadruplet layers. Each model returns the training loss of its paper for
``(x, y, mask)``: MSE (TAU adds its differential-divergence term, PredRNN.V2 its decoupling loss); the recurrent
ones run T_in + T_out - 1 steps with scheduled sampling driven by ``mask``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------------------------------------
# SimVP codec: 3x3 conv + GroupNorm(2) + SiLU; strides 1, 2, 1, 2; decoder: conv to 4C + PixelShuffle
# ---------------------------------------------------------------------------------------------


class ConvSC(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int = 1, up: bool = False) -> None:
        super().__init__()
        if up:
            self.conv = nn.Sequential(nn.Conv2d(c_in, c_out * 4, 3, 1, 1), nn.PixelShuffle(2))
        else:
            self.conv = nn.Conv2d(c_in, c_out, 3, stride, 1)
        self.norm = nn.GroupNorm(2, c_out)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.norm(self.conv(x)))


class SimVPCodec(nn.Module):
    def __init__(self, C: int, hid_S: int, N_S: int) -> None:
        super().__init__()
        strides = [1 if i % 2 == 0 else 2 for i in range(N_S)]
        self.enc = nn.ModuleList(ConvSC(C if i == 0 else hid_S, hid_S, s) for i, s in enumerate(strides))
        self.dec = nn.ModuleList(ConvSC(hid_S, hid_S, up=(s == 2)) for s in reversed(strides))
        self.readout = nn.Conv2d(hid_S, C, 1)

    def encode(self, x):
        skip = h = self.enc[0](x)
        for layer in self.enc[1:]:
            h = layer(h)
        return h, skip

    def decode(self, h, skip):
        for layer in self.dec[:-1]:
            h = layer(h)
        return self.readout(self.dec[-1](h + skip))


class SimVPStyle(nn.Module):
    """encoder per frame -> translator on (B, T*hid_S, H/4, W/4) -> decoder per frame."""

    def __init__(self, translator: nn.Module, T: int = 10, C: int = 1, hid_S: int = 64, N_S: int = 4,
                 ddr_alpha: float = 0.0) -> None:
        super().__init__()
        self.codec = SimVPCodec(C, hid_S, N_S)
        self.translator = translator
        self.ddr_alpha = ddr_alpha

    def forward(self, x, y, mask=None):
        B, T, C, H, W = x.shape
        h, skip = self.codec.encode(x.reshape(B * T, C, H, W))
        _, c, h_, w_ = h.shape
        z = self.translator(h.reshape(B, T * c, h_, w_)).reshape(B * T, c, h_, w_)
        pred = self.codec.decode(z, skip).reshape(B, T, C, H, W)
        loss = F.mse_loss(pred, y)
        if self.ddr_alpha:  # TAU's differential divergence regularisation on the frame differences
            dp = (pred[:, 1:] - pred[:, :-1]).reshape(B, T - 1, -1)
            dy = (y[:, 1:] - y[:, :-1]).reshape(B, T - 1, -1)
            loss = loss + self.ddr_alpha * F.kl_div(F.log_softmax(dp / 0.1, -1), F.softmax(dy / 0.1, -1),
                                                    reduction="batchmean")
        return loss


# -- SimVP v1: inception U-Net --------------------------------------------------------------------
class GroupConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int, groups: int) -> None:
        super().__init__()
        groups = groups if c_in % groups == 0 else 1
        self.conv = nn.Conv2d(c_in, c_out, k, 1, k // 2, groups=groups)
        self.norm = nn.GroupNorm(groups, c_out)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x):
        return self.act(self.norm(self.conv(x)))


class Inception(nn.Module):
    def __init__(self, c_in: int, c_hid: int, c_out: int, kernels=(3, 5, 7, 11), groups: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_hid, 1)
        self.branches = nn.ModuleList(GroupConv(c_hid, c_out, k, groups) for k in kernels)

    def forward(self, x):
        x = self.conv1(x)
        return sum(b(x) for b in self.branches)


class MidIncepNet(nn.Module):
    def __init__(self, c: int, hid: int, N_T: int) -> None:
        super().__init__()
        self.enc = nn.ModuleList([Inception(c, hid // 2, hid)]
                                 + [Inception(hid, hid // 2, hid) for _ in range(N_T - 1)])
        self.dec = nn.ModuleList([Inception(hid, hid // 2, hid)]
                                 + [Inception(2 * hid, hid // 2, hid) for _ in range(N_T - 2)]
                                 + [Inception(2 * hid, hid // 2, c)])

    def forward(self, x):
        skips = []
        for i, layer in enumerate(self.enc):
            x = layer(x)
            if i < len(self.enc) - 1:
                skips.append(x)
        x = self.dec[0](x)
        for i, layer in enumerate(self.dec[1:], start=1):
            x = layer(torch.cat([x, skips[-i]], dim=1))
        return x


# -- gSTA / TAU: MetaFormer blocks -----------------------------------------------------------------
class LKA(nn.Module):
    """depthwise 5x5 -> depthwise 7x7 dilation 3 -> 1x1 (to 2d for gSTA's gate, d for TAU)."""

    def __init__(self, d: int, out: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(d, d, 5, padding=2, groups=d)
        self.conv_spatial = nn.Conv2d(d, d, 7, padding=9, groups=d, dilation=3)
        self.conv1 = nn.Conv2d(d, out, 1)

    def forward(self, x):
        return self.conv1(self.conv_spatial(self.conv0(x)))


class GatedSpatialAttention(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.lka = LKA(d, 2 * d)

    def forward(self, x):
        f, g = torch.split(self.lka(x), x.shape[1], dim=1)
        return torch.sigmoid(g) * f


class TemporalAttention(nn.Module):
    def __init__(self, d: int, reduction: int = 16) -> None:
        super().__init__()
        self.lka = LKA(d, d)
        r = max(d // reduction, 4)
        self.fc = nn.Sequential(nn.Linear(d, d // r, bias=False), nn.ReLU(True), nn.Linear(d // r, d, bias=False),
                                nn.Sigmoid())

    def forward(self, x):
        b, c = x.shape[:2]
        se = self.fc(F.adaptive_avg_pool2d(x, 1).view(b, c)).view(b, c, 1, 1)
        return se * self.lka(x) * x


class MetaBlock(nn.Module):
    def __init__(self, d: int, attention: nn.Module, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(d)
        self.proj_1, self.act, self.attn, self.proj_2 = nn.Conv2d(d, d, 1), nn.GELU(), attention, nn.Conv2d(d, d, 1)
        self.norm2 = nn.BatchNorm2d(d)
        h = int(d * mlp_ratio)
        self.fc1, self.dw, self.fc2 = nn.Conv2d(d, h, 1), nn.Conv2d(h, h, 3, 1, 1, groups=h), nn.Conv2d(h, d, 1)
        self.ls1 = nn.Parameter(1e-2 * torch.ones(d))
        self.ls2 = nn.Parameter(1e-2 * torch.ones(d))

    def forward(self, x):
        u = self.norm1(x)
        a = self.proj_2(self.attn(self.act(self.proj_1(u)))) + u
        x = x + self.ls1.view(1, -1, 1, 1) * a
        m = self.fc2(F.gelu(self.dw(self.fc1(self.norm2(x)))))
        return x + self.ls2.view(1, -1, 1, 1) * m


class MidMetaNet(nn.Module):
    """N_T blocks on the time-folded channels: block 0 at c, a 1x1 to hid, N_T - 1 blocks at hid, a 1x1 back to c.
    ``block(i, d)`` makes block i, of width d (gSTA / TAU: a MetaBlock with its attention; MetaVP: its block)."""

    def __init__(self, c: int, hid: int, N_T: int, block) -> None:
        super().__init__()
        layers: list[nn.Module] = [block(0, c), nn.Conv2d(c, hid, 1)]
        layers += [block(i, hid) for i in range(1, N_T)]
        layers += [nn.Conv2d(hid, c, 1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


# -- MetaVP translators (OpenSTL's SimVP with another MetaFormer block; mlp_ratio 8 at the paper size) ---------
class ConvMixerRef(nn.Module):
    """x + BN(GELU(dw11x11(x))), then BN(GELU(1x1(.)))."""

    def __init__(self, d: int, mlp_ratio: float = 8.0) -> None:
        super().__init__()
        self.dw, self.bn1 = nn.Conv2d(d, d, 11, padding=5, groups=d), nn.BatchNorm2d(d)
        self.pw, self.bn2 = nn.Conv2d(d, d, 1), nn.BatchNorm2d(d)

    def forward(self, x):
        x = x + self.bn1(F.gelu(self.dw(x)))
        return self.bn2(F.gelu(self.pw(x)))


class ConvNeXtRef(nn.Module):
    """x + gamma * Linear(GELU(Linear(LN(dw7x7(x))))), the MLP on channels-last tokens as published."""

    def __init__(self, d: int, mlp_ratio: float = 8.0) -> None:
        super().__init__()
        self.dw = nn.Conv2d(d, d, 7, padding=3, groups=d)
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.fc1, self.fc2 = nn.Linear(d, int(mlp_ratio * d)), nn.Linear(int(mlp_ratio * d), d)
        self.gamma = nn.Parameter(1e-6 * torch.ones(d))

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.gamma * self.fc2(F.gelu(self.fc1(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)


class PoolFormerRef(nn.Module):
    """x + ls1 * (avgpool3x3(GN(x)) - GN(x)), then x + ls2 * MLP(GN(x)) with 1x1 convs."""

    def __init__(self, d: int, mlp_ratio: float = 8.0) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.GroupNorm(1, d), nn.GroupNorm(1, d)
        self.fc1, self.fc2 = nn.Conv2d(d, int(mlp_ratio * d), 1), nn.Conv2d(int(mlp_ratio * d), d, 1)
        self.ls1 = nn.Parameter(1e-5 * torch.ones(d))
        self.ls2 = nn.Parameter(1e-5 * torch.ones(d))

    def forward(self, x):
        y = self.norm1(x)
        x = x + self.ls1.view(1, -1, 1, 1) * (F.avg_pool2d(y, 3, 1, 1, count_include_pad=False) - y)
        return x + self.ls2.view(1, -1, 1, 1) * self.fc2(F.gelu(self.fc1(self.norm2(x))))


class VANRef(nn.Module):
    """x + ls1 * (proj2(u * LKA(GELU(proj1(u)))) + u) with u = BN(x); x + ls2 * (1x1, dw3x3, GELU, 1x1)(BN(x))."""

    def __init__(self, d: int, mlp_ratio: float = 8.0) -> None:
        super().__init__()
        h = int(mlp_ratio * d)
        self.norm1, self.norm2 = nn.BatchNorm2d(d), nn.BatchNorm2d(d)
        self.proj1, self.lka, self.proj2 = nn.Conv2d(d, d, 1), LKA(d, d), nn.Conv2d(d, d, 1)
        self.fc1, self.dw, self.fc2 = nn.Conv2d(d, h, 1), nn.Conv2d(h, h, 3, 1, 1, groups=h), nn.Conv2d(h, d, 1)
        self.ls1 = nn.Parameter(1e-2 * torch.ones(d))
        self.ls2 = nn.Parameter(1e-2 * torch.ones(d))

    def forward(self, x):
        u = self.norm1(x)
        a = F.gelu(self.proj1(u))
        x = x + self.ls1.view(1, -1, 1, 1) * (self.proj2(a * self.lka(a)) + u)
        return x + self.ls2.view(1, -1, 1, 1) * self.fc2(F.gelu(self.dw(self.fc1(self.norm2(x)))))


class HorNetRef(nn.Module):
    """x + g1 * gnConv_4(LN(x)), x + g2 * MLP(LN(x)); gnConv: 1x1 to 2d, dw7x7 on the gates, a chain of 1x1s."""

    def __init__(self, d: int, mlp_ratio: float = 8.0, order: int = 4) -> None:
        super().__init__()
        self.dims = [d // 2 ** k for k in reversed(range(order))]
        self.norm1, self.norm2 = nn.LayerNorm(d, eps=1e-6), nn.LayerNorm(d, eps=1e-6)
        self.proj_in, self.proj_out = nn.Conv2d(d, 2 * d, 1), nn.Conv2d(d, d, 1)
        self.dw = nn.Conv2d(sum(self.dims), sum(self.dims), 7, padding=3, groups=sum(self.dims))
        self.pws = nn.ModuleList(nn.Conv2d(self.dims[k], self.dims[k + 1], 1) for k in range(order - 1))
        self.fc1, self.fc2 = nn.Linear(d, int(mlp_ratio * d)), nn.Linear(int(mlp_ratio * d), d)
        self.g1 = nn.Parameter(1e-6 * torch.ones(d))
        self.g2 = nn.Parameter(1e-6 * torch.ones(d))

    def forward(self, x):
        u = self.norm1(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        p, abc = self.proj_in(u).split((self.dims[0], sum(self.dims)), dim=1)
        gates = self.dw(abc).split(self.dims, dim=1)
        y = p * gates[0]
        for pw, g in zip(self.pws, gates[1:]):
            y = pw(y) * g
        x = x + self.g1.view(1, -1, 1, 1) * self.proj_out(y)
        t = self.g2 * self.fc2(F.gelu(self.fc1(self.norm2(x.permute(0, 2, 3, 1)))))
        return x + t.permute(0, 3, 1, 2)


class MLPMixerRef(nn.Module):
    """Token MLP over the H*W positions (hidden d/2), then channel MLP; LayerNorm eps 1e-6."""

    def __init__(self, d: int, mlp_ratio: float = 8.0, n: int = 16 * 16) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d, eps=1e-6), nn.LayerNorm(d, eps=1e-6)
        self.tok1, self.tok2 = nn.Linear(n, d // 2), nn.Linear(d // 2, n)
        self.ch1, self.ch2 = nn.Linear(d, int(mlp_ratio * d)), nn.Linear(int(mlp_ratio * d), d)

    def forward(self, x):
        B, C, H, W = x.shape
        t = x.flatten(2).transpose(1, 2)  # (B, N, C)
        t = t + self.tok2(F.gelu(self.tok1(self.norm1(t).transpose(1, 2)))).transpose(1, 2)
        t = t + self.ch2(F.gelu(self.ch1(self.norm2(t))))
        return t.transpose(1, 2).reshape(B, C, H, W)


class MogaNetRef(nn.Module):
    """x + ls1 * MOGA(BN(x)), x + ls2 * CA-FFN(BN(x)) (multi-order gated aggregation, channel aggregation)."""

    def __init__(self, d: int, mlp_ratio: float = 8.0) -> None:
        super().__init__()
        h = int(mlp_ratio * d)
        self.d1, self.d2 = 3 * d // 8, d // 2
        self.d0 = d - self.d1 - self.d2
        self.norm1, self.norm2 = nn.BatchNorm2d(d), nn.BatchNorm2d(d)
        self.proj1, self.gate, self.proj2, self.pw = (nn.Conv2d(d, d, 1) for _ in range(4))
        self.dw0 = nn.Conv2d(d, d, 5, padding=2, groups=d)
        self.dw1 = nn.Conv2d(self.d1, self.d1, 5, padding=4, dilation=2, groups=self.d1)
        self.dw2 = nn.Conv2d(self.d2, self.d2, 7, padding=9, dilation=3, groups=self.d2)
        self.sigma1 = nn.Parameter(1e-5 * torch.ones(1, d, 1, 1))
        self.fc1, self.dw, self.fc2 = nn.Conv2d(d, h, 1), nn.Conv2d(h, h, 3, 1, 1, groups=h), nn.Conv2d(h, d, 1)
        self.decompose = nn.Conv2d(h, 1, 1)
        self.sigma2 = nn.Parameter(1e-5 * torch.ones(1, h, 1, 1))
        self.ls1 = nn.Parameter(1e-5 * torch.ones(1, d, 1, 1))
        self.ls2 = nn.Parameter(1e-5 * torch.ones(1, d, 1, 1))

    def attention(self, u):
        y = self.proj1(u)
        y = F.silu(y + self.sigma1 * (y - y.mean((2, 3), keepdim=True)))
        v0 = self.dw0(y)
        v = torch.cat([v0[:, :self.d0], self.dw1(v0[:, self.d0:self.d0 + self.d1]), self.dw2(v0[:, -self.d2:])], 1)
        return self.proj2(F.silu(self.gate(y)) * F.silu(self.pw(v))) + u

    def ffn(self, u):
        h = F.gelu(self.dw(self.fc1(u)))
        return self.fc2(h + self.sigma2 * (h - F.gelu(self.decompose(h))))

    def forward(self, x):
        x = x + self.ls1 * self.attention(self.norm1(x))
        return x + self.ls2 * self.ffn(self.norm2(x))


def _attention(qkv: nn.Linear, proj: nn.Linear, t, heads: int = 8, bias=None):
    """Multi-head self-attention on tokens (B, N, C) through torch's fused kernel (as timm's Attention)."""
    B, N, C = t.shape
    q, k, v = qkv(t).reshape(B, N, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
    return proj(F.scaled_dot_product_attention(q, k, v, attn_mask=bias).transpose(1, 2).reshape(B, N, C))


class SwinRef(nn.Module):
    """Pre-norm 4x4-window attention (relative position bias) + MLP; odd blocks shift by 2, no mask (OpenSTL)."""

    def __init__(self, d: int, mlp_ratio: float = 8.0, i: int = 0, w: int = 4) -> None:
        super().__init__()
        self.w, self.shift = w, (w // 2 if i % 2 else 0)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.table = nn.Parameter(torch.zeros((2 * w - 1) ** 2, 8))
        ys, xs = torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")
        yx = torch.stack([ys.flatten(), xs.flatten()])
        rel = (yx[:, :, None] - yx[:, None, :]) + (w - 1)
        self.register_buffer("index", rel[0] * (2 * w - 1) + rel[1], persistent=False)
        self.fc1, self.fc2 = nn.Linear(d, int(mlp_ratio * d)), nn.Linear(int(mlp_ratio * d), d)

    def forward(self, x):
        B, C, H, W = x.shape
        w, s = self.w, self.shift
        t = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        y = self.norm1(t)
        if s:
            y = torch.roll(y, (-s, -s), (1, 2))
        y = y.reshape(B, H // w, w, W // w, w, C).transpose(2, 3).reshape(-1, w * w, C)
        y = _attention(self.qkv, self.proj, y, bias=self.table[self.index].permute(2, 0, 1))
        y = y.reshape(B, H // w, W // w, w, w, C).transpose(2, 3).reshape(B, H, W, C)
        if s:
            y = torch.roll(y, (s, s), (1, 2))
        t = t + y
        t = t + self.fc2(F.gelu(self.fc1(self.norm2(t))))
        return t.permute(0, 3, 1, 2)


class ViTRef(nn.Module):
    """Pre-norm global multi-head self-attention over the H*W tokens + MLP; with ``ls``, each branch scaled by a
    learned per-channel factor starting at ``ls`` (UniFormer's attention block)."""

    def __init__(self, d: int, mlp_ratio: float = 8.0, ls: float | None = None) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, int(mlp_ratio * d)), nn.Linear(int(mlp_ratio * d), d)
        self.g1 = self.g2 = None
        if ls is not None:
            self.g1, self.g2 = nn.Parameter(ls * torch.ones(d)), nn.Parameter(ls * torch.ones(d))

    def forward(self, x):
        B, C, H, W = x.shape
        t = x.flatten(2).transpose(1, 2)
        a = _attention(self.qkv, self.proj, self.norm1(t))
        t = t + (a if self.g1 is None else self.g1 * a)
        m = self.fc2(F.gelu(self.fc1(self.norm2(t))))
        t = t + (m if self.g2 is None else self.g2 * m)
        return t.transpose(1, 2).reshape(B, C, H, W)


class UniformerConvRef(nn.Module):
    """x + dw3x3(x); x + 1x1(dw5x5(1x1(BN(x)))); x + MLP(BN(x)) with 1x1 convs."""

    def __init__(self, d: int, mlp_ratio: float = 8.0) -> None:
        super().__init__()
        self.pos = nn.Conv2d(d, d, 3, padding=1, groups=d)
        self.norm1, self.norm2 = nn.BatchNorm2d(d), nn.BatchNorm2d(d)
        self.conv1, self.conv2 = nn.Conv2d(d, d, 1), nn.Conv2d(d, d, 1)
        self.dw = nn.Conv2d(d, d, 5, padding=2, groups=d)
        self.fc1, self.fc2 = nn.Conv2d(d, int(mlp_ratio * d), 1), nn.Conv2d(int(mlp_ratio * d), d, 1)

    def forward(self, x):
        x = x + self.pos(x)
        x = x + self.conv2(self.dw(self.conv1(self.norm1(x))))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class UniformerSARef(nn.Module):
    """x + dw3x3(x), then a layer-scaled pre-norm global attention + MLP block on the tokens."""

    def __init__(self, d: int, mlp_ratio: float = 8.0) -> None:
        super().__init__()
        self.pos = nn.Conv2d(d, d, 3, padding=1, groups=d)
        self.vit = ViTRef(d, mlp_ratio, ls=1e-6)

    def forward(self, x):
        return self.vit(x + self.pos(x))


def _uniformer(d: int, *, i: int, N_T: int) -> nn.Module:
    """Global attention in the middle blocks (width unchanged), conv blocks first and last (OpenSTL's rule)."""
    return (UniformerSARef if 0 < i < N_T - 1 else UniformerConvRef)(d)


def _metavp(block):  # a block class that ignores its position
    return lambda d, *, i, N_T: block(d)


METAVP = {"convmixer": _metavp(ConvMixerRef), "convnext": _metavp(ConvNeXtRef), "hornet": _metavp(HorNetRef),
          "mlpmixer": _metavp(MLPMixerRef), "moganet": _metavp(MogaNetRef), "poolformer": _metavp(PoolFormerRef),
          "swin": lambda d, *, i, N_T: SwinRef(d, i=i), "uniformer": _uniformer, "van": _metavp(VANRef),
          "vit": _metavp(ViTRef)}


# ---------------------------------------------------------------------------------------------
# recurrent models on 4 x 4 patches
# ---------------------------------------------------------------------------------------------
def to_patches(x, p: int):
    B, T, C, H, W = x.shape  # -> (B, T, C*p*p, H/p, W/p)
    x = x.reshape(B, T, C, H // p, p, W // p, p).permute(0, 1, 2, 4, 6, 3, 5)
    return x.reshape(B, T, C * p * p, H // p, W // p)


def step_input(frames, t: int, t_in: int, mask, x_gen):
    """The frame fed at step t: the true one while t < T_in, then per sample the true frame where ``mask`` is 1
    and the model's own last prediction where it is 0 (column t - 1 rules step t: stbench's mask layout); without
    a mask always the prediction."""
    if t < t_in:
        return frames[:, t]
    if mask is None:  # no scheduled sampling (SwinLSTM): always its own prediction
        return x_gen
    mt = mask[:, t - 1].view(-1, 1, 1, 1)
    return mt * frames[:, t] + (1 - mt) * x_gen


def _gate(c_in: int, c_out: int, k: int) -> nn.Conv2d:
    """A gate convolution of the recurrent cells: k x k, same padding, no bias (as in the public code)."""
    return nn.Conv2d(c_in, c_out, k, 1, k // 2, bias=False)


class ConvLSTMCell(nn.Module):
    def __init__(self, c_in: int, nh: int, k: int) -> None:
        super().__init__()
        self.conv_x = _gate(c_in, 4 * nh, k)
        self.conv_h = _gate(nh, 4 * nh, k)

    def forward(self, x, h, c):
        i, f, g, o = torch.split(self.conv_x(x) + self.conv_h(h), h.shape[1], dim=1)
        c = torch.sigmoid(f + 1.0) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class STLSTMCell(nn.Module):
    def __init__(self, c_in: int, nh: int, k: int) -> None:
        super().__init__()
        self.conv_x = _gate(c_in, 7 * nh, k)
        self.conv_h = _gate(nh, 4 * nh, k)
        self.conv_m = _gate(nh, 3 * nh, k)
        self.conv_o = _gate(2 * nh, nh, k)
        self.conv_last = nn.Conv2d(2 * nh, nh, 1, bias=False)

    def forward(self, x, h, c, m):
        nh = h.shape[1]
        i_x, f_x, g_x, i_xp, f_xp, g_xp, o_x = torch.split(self.conv_x(x), nh, dim=1)
        i_h, f_h, g_h, o_h = torch.split(self.conv_h(h), nh, dim=1)
        i_m, f_m, g_m = torch.split(self.conv_m(m), nh, dim=1)
        delta_c = torch.sigmoid(i_x + i_h) * torch.tanh(g_x + g_h)
        c = torch.sigmoid(f_x + f_h + 1.0) * c + delta_c
        delta_m = torch.sigmoid(i_xp + i_m) * torch.tanh(g_xp + g_m)
        m = torch.sigmoid(f_xp + f_m + 1.0) * m + delta_m
        mem = torch.cat([c, m], dim=1)
        h = torch.sigmoid(o_x + o_h + self.conv_o(mem)) * torch.tanh(self.conv_last(mem))
        return h, c, m, delta_c, delta_m


class CausalLSTMCell(nn.Module):
    """PredRNN++'s causal LSTM: c first, then M from c', tanh output gate (the published code's conv_o, built and
    never used there, is left out)."""

    def __init__(self, c_in: int, nh: int, k: int) -> None:
        super().__init__()
        self.conv_x = _gate(c_in, 7 * nh, k)
        self.conv_h = _gate(nh, 4 * nh, k)
        self.conv_c = _gate(nh, 3 * nh, k)
        self.conv_m = _gate(nh, 3 * nh, k)
        self.conv_c2m = _gate(nh, 4 * nh, k)
        self.conv_om = _gate(nh, nh, k)
        self.conv_last = nn.Conv2d(2 * nh, nh, 1, bias=False)

    def forward(self, x, h, c, m):
        nh = h.shape[1]
        i_x, f_x, g_x, i_xp, f_xp, g_xp, o_x = torch.split(self.conv_x(x), nh, dim=1)
        i_h, f_h, g_h, o_h = torch.split(self.conv_h(h), nh, dim=1)
        i_c, f_c, g_c = torch.split(self.conv_c(c), nh, dim=1)
        i_m, f_m, m_m = torch.split(self.conv_m(m), nh, dim=1)
        c = torch.sigmoid(f_x + f_h + f_c + 1.0) * c + torch.sigmoid(i_x + i_h + i_c) * torch.tanh(g_x + g_h + g_c)
        i_cm, g_cm, f_cm, o_cm = torch.split(self.conv_c2m(c), nh, dim=1)
        m = torch.sigmoid(f_xp + f_m + f_cm + 1.0) * torch.tanh(m_m) + torch.sigmoid(i_xp + i_m + i_cm) * torch.tanh(
            g_xp + g_cm)
        o = torch.tanh(o_x + o_h + o_cm + self.conv_om(m))
        return o * torch.tanh(self.conv_last(torch.cat([c, m], dim=1))), c, m


class GradientHighway(nn.Module):
    """PredRNN++'s GHU between layers 1 and 2, with the published two convolutions (of x and of z)."""

    def __init__(self, nh: int, k: int) -> None:
        super().__init__()
        self.x_concat = _gate(nh, 2 * nh, k)
        self.z_concat = _gate(nh, 2 * nh, k)

    def forward(self, x, z):
        p, u = torch.split(self.x_concat(x) + self.z_concat(z), z.shape[1], dim=1)
        u = torch.sigmoid(u)
        return u * torch.tanh(p) + (1 - u) * z


class MIMNCell(nn.Module):
    """MIM's non-stationary cell (and the stationary one inside a block), with the published two
    convolutions (of x and of h) and per-position peephole weights; ``(x, h, c) -> (h', c')``."""

    def __init__(self, nh: int, height: int, width: int, k: int) -> None:
        super().__init__()
        self.conv_x = _gate(nh, 4 * nh, k)
        self.conv_h = _gate(nh, 4 * nh, k)
        self.ct_weight = nn.Parameter(torch.zeros(2 * nh, height, width))
        self.oc_weight = nn.Parameter(torch.zeros(nh, height, width))

    def forward(self, x, h, c):
        nh = h.shape[1]
        i, g, f, o = torch.split(self.conv_x(x) + self.conv_h(h), nh, dim=1)
        w_ci, w_cf = torch.split(self.ct_weight, nh, dim=0)
        c = torch.sigmoid(f + w_cf * c + 1.0) * c + torch.sigmoid(i + w_ci * c) * torch.tanh(g)
        return torch.sigmoid(o + self.oc_weight * c) * torch.tanh(c), c


class MIMBlock(nn.Module):
    """``(x, d, h, c, M, s) -> (h', c', M', s')``: the MIM-S cell on (differences d, c) replaces the forget gate."""

    def __init__(self, nh: int, height: int, width: int, k: int) -> None:
        super().__init__()
        self.conv_x = _gate(nh, 4 * nh, k)
        self.conv_h = _gate(nh, 3 * nh, k)
        self.conv_m = _gate(nh, 4 * nh, k)
        self.conv_last = nn.Conv2d(2 * nh, nh, 1, bias=False)
        self.mims = MIMNCell(nh, height, width, k)

    def forward(self, x, d, h, c, m, s):
        nh = h.shape[1]
        i_x, g_x, f_x, o_x = torch.split(self.conv_x(x), nh, dim=1)
        i_h, g_h, o_h = torch.split(self.conv_h(h), nh, dim=1)
        i_m, g_m, f_m, o_m = torch.split(self.conv_m(m), nh, dim=1)
        m = torch.sigmoid(f_x + f_m + 1.0) * m + torch.sigmoid(i_x + i_m) * torch.tanh(g_x + g_m)
        c_s, s = self.mims(d, c, s.detach())  # the published code passes the MIM-S state in detached
        c = c_s + torch.sigmoid(i_x + i_h) * torch.tanh(g_x + g_h)
        h = torch.sigmoid(o_x + o_h + o_m) * torch.tanh(self.conv_last(torch.cat([c, m], dim=1)))
        return h, c, m, s


CELLS = {"convlstm": ConvLSTMCell, "predrnn": STLSTMCell, "predrnn_v2": STLSTMCell, "predrnnpp": CausalLSTMCell,
         "mim": STLSTMCell}  # MIM: an ST-LSTM first layer, then MIM blocks fed by MIM-N cells


class RecurrentStack(nn.Module):
    """4 stacked cells over patch frames; T_in + T_out - 1 steps; scheduled sampling on the inputs after
    T_in - 1 (mask 1 = true frame); loss = MSE of all next-frame predictions (+ PredRNN.V2 decoupling)."""

    def __init__(self, kind: str, patch: int = 4, C: int = 1, num_hidden=(128, 128, 128, 128), k: int = 5,
                 beta: float = 0.1) -> None:
        super().__init__()
        self.kind, self.patch, self.beta = kind, patch, beta
        fc = C * patch * patch
        cell = CELLS[kind]
        self.cells = nn.ModuleList(cell(fc if i == 0 else num_hidden[i - 1], nh, k) for i, nh in enumerate(num_hidden))
        if kind == "mim":  # latent frames of 64 / patch pixels a side
            side = 64 // patch
            self.cells = nn.ModuleList([self.cells[0], *(MIMBlock(nh, side, side, k) for nh in num_hidden[1:])])
            self.mimn = nn.ModuleList(MIMNCell(nh, side, side, k) for nh in num_hidden[1:])
        if kind == "predrnnpp":
            self.highway = GradientHighway(num_hidden[0], k)
        self.conv_last = nn.Conv2d(num_hidden[-1], fc, 1, bias=False)
        if kind == "predrnn_v2":
            self.adapter = nn.Conv2d(num_hidden[0], num_hidden[0], 1, bias=False)

    def forward(self, x, y, mask):
        p = self.patch
        frames = to_patches(torch.cat([x, y], dim=1), p)  # (B, T, fc, h, w)
        B, T, fc, hh, ww = frames.shape
        t_in = x.shape[1]
        h = [frames.new_zeros(B, cell.conv_h.in_channels, hh, ww) for cell in self.cells]
        c = [torch.zeros_like(v) for v in h]
        m = torch.zeros_like(h[0])
        z = torch.zeros_like(h[0])  # PredRNN++'s highway state
        d, n, s = ([z] * (len(h) - 1) for _ in range(3))  # MIM: differences, MIM-N and MIM-S cell states
        preds, decouple = [], []
        x_gen = None
        for t in range(T - 1):
            net = step_input(frames, t, t_in, mask, x_gen)
            if self.kind == "mim":
                h0_prev = h[0]
                h[0], c[0], m, _, _ = self.cells[0](net, h[0], c[0], m)
                for i in range(1, len(h)):
                    if t > 0:  # differences of the layer below, from the second step on
                        d[i - 1], n[i - 1] = self.mimn[i - 1](h[0] - h0_prev if i == 1 else d[i - 2], d[i - 1],
                                                              n[i - 1])
                    h[i], c[i], m, s[i - 1] = self.cells[i](h[i - 1], d[i - 1], h[i], c[i], m, s[i - 1])
            else:
                for i, cell in enumerate(self.cells):
                    inp = net if i == 0 else h[i - 1]
                    if self.kind == "predrnnpp" and i == 1:
                        z = self.highway(inp, z)
                        inp = z
                    if self.kind == "convlstm":
                        h[i], c[i] = cell(inp, h[i], c[i])
                    elif self.kind == "predrnnpp":
                        h[i], c[i], m = cell(inp, h[i], c[i], m)
                    else:
                        h[i], c[i], m, dc, dm = cell(inp, h[i], c[i], m)
                        if self.kind == "predrnn_v2":
                            a = F.normalize(self.adapter(dc).flatten(2), dim=2)
                            b = F.normalize(self.adapter(dm).flatten(2), dim=2)
                            decouple.append(torch.abs(torch.cosine_similarity(a, b, dim=2)).mean())
            x_gen = self.conv_last(h[-1])
            preds.append(x_gen)
        loss = F.mse_loss(torch.stack(preds, dim=1), frames[:, 1:])
        if decouple:
            loss = loss + self.beta * torch.stack(decouple).mean()
        return loss


# ---------------------------------------------------------------------------------------------
# E3D-LSTM: eidetic 3D LSTM cells on a sliding window of 2 patch frames, recall attention over past cell states
# ---------------------------------------------------------------------------------------------
class Conv3dSame(nn.Conv3d):
    """Bias-free 3D conv, kernel (2, k, k), no temporal padding, output stretched back to the input's (T, H, W)
    by nearest-neighbour interpolation (the published tf_Conv3d)."""

    def __init__(self, c_in: int, c_out: int, k: int, kt: int = 2) -> None:
        super().__init__(c_in, c_out, (kt, k, k), 1, (0, k // 2, k // 2), bias=False)

    def forward(self, x):
        return F.interpolate(super().forward(x), size=x.shape[-3:], mode="nearest")


class EideticCellRef(nn.Module):
    def __init__(self, c_in: int, nh: int = 128, k: int = 5, w: int = 2, side: int = 16) -> None:
        super().__init__()
        self.nh = nh
        self.conv_x, self.conv_h, self.conv_gm = Conv3dSame(c_in, 7 * nh, k), Conv3dSame(nh, 4 * nh, k), Conv3dSame(
            nh, 4 * nh, k)
        self.conv_new_cell, self.conv_new_gm = Conv3dSame(nh, nh, k), Conv3dSame(nh, nh, k)
        self.conv_last = nn.Conv3d(2 * nh, nh, 1, bias=False)
        self.norm = nn.LayerNorm([nh, w, side, side])

    def recall(self, q, history):  # softmax(q K^T) K over every past cell state, by the published raw reshape
        query = q.reshape(q.shape[0], -1, self.nh)
        keys = history.reshape(q.shape[0], -1, self.nh)
        return torch.bmm(torch.softmax(torch.bmm(query, keys.transpose(1, 2)), dim=2), keys).reshape(q.shape)

    def forward(self, x, h, c, m, history):
        nh = self.nh
        i_x, g_x, r_x, o_x, ti_x, tg_x, tf_x = torch.split(self.conv_x(x), nh, dim=1)
        i_h, g_h, r_h, o_h = torch.split(self.conv_h(h), nh, dim=1)
        i_m, f_m, g_m, m_m = torch.split(self.conv_gm(m), nh, dim=1)
        c_new = self.norm(c + self.recall(torch.sigmoid(r_x + r_h), history)) + torch.sigmoid(
            i_x + i_h) * torch.tanh(g_x + g_h)
        m_new = torch.sigmoid(tf_x + f_m + 1.0) * torch.tanh(m_m) + torch.sigmoid(ti_x + i_m) * torch.tanh(tg_x + g_m)
        o = torch.tanh(o_x + o_h + self.conv_new_cell(c_new) + self.conv_new_gm(m_new))
        h_new = torch.tanh(self.conv_last(torch.cat([c_new, m_new], dim=1))) * torch.sigmoid(o)
        return h_new, c_new, m  # the published cell hands back the M it was given


class E3DLSTMRef(nn.Module):
    """4 eidetic cells (128 wide, kernel 2 x 5 x 5) on patch-4 frames, window 2; head Conv3d (2, 1, 1); loss
    MSE + L1 over all next-frame predictions."""

    def __init__(self, patch: int = 4, C: int = 1, nh: int = 128, layers: int = 4, w: int = 2) -> None:
        super().__init__()
        self.patch, self.nh, self.w = patch, nh, w
        fc = C * patch * patch
        self.cells = nn.ModuleList(EideticCellRef(fc if i == 0 else nh, nh) for i in range(layers))
        self.head = nn.Conv3d(nh, fc, (w, 1, 1), (w, 1, 1), bias=False)

    def forward(self, x, y, mask):
        frames = to_patches(torch.cat([x, y], dim=1), self.patch)  # (B, T, fc, h, w)
        B, T, fc, hh, ww = frames.shape
        t_in = x.shape[1]
        zero = frames.new_zeros(B, self.nh, self.w, hh, ww)
        h, c = [zero] * len(self.cells), [zero] * len(self.cells)
        history = [zero] * len(self.cells)  # every cell state so far, stacked along the channels
        m = zero
        window = [frames.new_zeros(B, fc, hh, ww)] * (self.w - 1)
        preds, x_gen = [], None
        for t in range(T - 1):
            net = step_input(frames, t, t_in, mask, x_gen)
            window = window[-(self.w - 1):] + [net]
            inp = torch.stack(window, dim=2)
            for i, cell in enumerate(self.cells):
                if t > 0:
                    history[i] = torch.cat([history[i], c[i]], dim=1)
                h[i], c[i], m = cell(inp, h[i], c[i], m, history[i])
                inp = h[i]
            x_gen = self.head(inp).squeeze(2)
            preds.append(x_gen)
        pred = torch.stack(preds, dim=1)
        return F.mse_loss(pred, frames[:, 1:]) + F.l1_loss(pred, frames[:, 1:])


# ---------------------------------------------------------------------------------------------
# MAU: a learned codec (frames in and out, 4x downsampling) around 4 motion-aware units
# ---------------------------------------------------------------------------------------------
class MAUCellRef(nn.Module):
    """Attention over the last tau spatial inputs picks a trend of the last tau temporal states; gated fusion."""

    def __init__(self, nh: int = 64, side: int = 16, k: int = 5, tau: int = 5) -> None:
        super().__init__()
        self.nh, self.tau, self.scale = nh, tau, (nh * side * side) ** -0.5

        def gate(c_out: int) -> nn.Module:
            return nn.Sequential(nn.Conv2d(nh, c_out, k, 1, k // 2), nn.LayerNorm([c_out, side, side]))

        self.conv_t, self.conv_t_next, self.conv_s, self.conv_s_next = gate(3 * nh), gate(nh), gate(3 * nh), gate(nh)

    def forward(self, T, S, t_att: list, s_att: list):
        s_next, t_next = self.conv_s_next(S), self.conv_t_next(T)
        w = torch.softmax(torch.stack([(s * s_next).sum((1, 2, 3)) for s in s_att]) * self.scale, dim=0)  # (tau, B)
        trend = sum(w[j].view(-1, 1, 1, 1) * t_att[j] for j in range(self.tau))
        u = torch.sigmoid(t_next)
        t_g, t_t, t_s = torch.split(self.conv_t(u * T + (1 - u) * trend), self.nh, dim=1)
        s_g, s_t, s_s = torch.split(self.conv_s(S), self.nh, dim=1)
        g_t, g_s = torch.sigmoid(t_g), torch.sigmoid(s_g)
        return g_t * t_t + (1 - g_t) * s_t, g_s * s_s + (1 - g_s) * t_s


class MAURef(nn.Module):
    """1x1 conv + two stride-2 3x3 convs (LeakyReLU 0.2) -> 4 MAU cells (64 wide, filter 5, tau 5) -> two
    transposed convs + 1x1 to the frame; T_in + T_out - 1 steps, decoded frames fed back under ``mask``."""

    def __init__(self, C: int = 1, nh: int = 64, layers: int = 4, side: int = 16, tau: int = 5) -> None:
        super().__init__()
        self.nh, self.side, self.tau = nh, side, tau
        act = nn.LeakyReLU(0.2)
        self.enc = nn.Sequential(nn.Conv2d(C, nh, 1), act, nn.Conv2d(nh, nh, 3, 2, 1), act, nn.Conv2d(nh, nh, 3, 2, 1),
                                 act)
        self.dec = nn.Sequential(nn.ConvTranspose2d(nh, nh, 3, 2, 1, output_padding=1), act,
                                 nn.ConvTranspose2d(nh, nh, 3, 2, 1, output_padding=1), nn.Conv2d(nh, C, 1))
        self.cells = nn.ModuleList(MAUCellRef(nh, side, 5, tau) for _ in range(layers))

    def forward(self, x, y, mask):
        frames = torch.cat([x, y], dim=1)
        B, T = frames.shape[:2]
        t_in = x.shape[1]
        zero = x.new_zeros(B, self.nh, self.side, self.side)
        Ts = [zero] * len(self.cells)
        t_att = [[zero] * self.tau for _ in self.cells]
        s_att = [[zero] * self.tau for _ in self.cells]
        preds, x_gen = [], None
        for t in range(T - 1):
            net = step_input(frames, t, t_in, mask, x_gen)
            S = self.enc(net)
            for i, cell in enumerate(self.cells):
                s_in = S
                Ts[i], S = cell(Ts[i], S, t_att[i], s_att[i])
                t_att[i] = t_att[i][1:] + [Ts[i]]
                s_att[i] = s_att[i][1:] + [s_in]
            x_gen = self.dec(S)
            preds.append(x_gen)
        return F.mse_loss(torch.stack(preds, dim=1), frames[:, 1:])


# ---------------------------------------------------------------------------------------------
# PhyDNet: a learned codec around a PhyCell branch and a ConvLSTM branch, plus the moment constraint
# ---------------------------------------------------------------------------------------------
def _phy_block(c_in: int, c_out: int, stride: int = 1, up: bool = False) -> nn.Module:
    conv = (nn.ConvTranspose2d(c_in, c_out, 3, stride, 1, output_padding=stride - 1) if up
            else nn.Conv2d(c_in, c_out, 3, stride, 1))
    return nn.Sequential(conv, nn.GroupNorm(16, c_out), nn.LeakyReLU(0.2))


class PhyDNetRef(nn.Module):
    """Encoder (64 -> 16 x 16 x 64), per step: PhyCell (49 filters of 7 x 7) on one branch, 3 ConvLSTMs (128, 128,
    64; 3 x 3, one conv over [x, h] as the published code) on the other, decoded and summed, then the frame decoder
    (sigmoid); loss = frame MSE + the moment constraint of PhyCell's filters over the steps."""

    def __init__(self, C: int = 1, nf: int = 32, rnn=(128, 128, 64)) -> None:
        super().__init__()
        c = 2 * nf
        self.enc = nn.Sequential(_phy_block(C, nf, 2), _phy_block(nf, nf), _phy_block(nf, c, 2))
        self.dec = nn.Sequential(_phy_block(c, nf, 2, up=True), _phy_block(nf, nf, up=True),
                                 nn.ConvTranspose2d(nf, C, 3, 2, 1, output_padding=1))
        self.enc_p, self.enc_r = (nn.Sequential(_phy_block(c, c), _phy_block(c, c)) for _ in range(2))
        self.dec_p, self.dec_r = (nn.Sequential(_phy_block(c, c, up=True), _phy_block(c, c, up=True)) for _ in range(2))
        self.phy_f = nn.Sequential(nn.Conv2d(c, 49, 7, 1, 3), nn.GroupNorm(7, 49), nn.Conv2d(49, c, 1))
        self.phy_gate = nn.Conv2d(2 * c, c, 3, 1, 1)
        self.lstm = nn.ModuleList(nn.Conv2d(ci + nh, 4 * nh, 3, 1, 1) for ci, nh in zip((c, *rnn[:-1]), rnn))
        a = torch.arange(7, dtype=torch.float64) - 3
        self.register_buffer("M", torch.stack([a ** i / math.factorial(i) for i in range(7)]))
        self.register_buffer("target", torch.eye(49, dtype=torch.float64).view(49, 7, 7))

    def forward(self, x, y, mask):
        frames = torch.cat([x, y], dim=1)
        B, T = frames.shape[:2]
        t_in = x.shape[1]
        hp, hs, cs = None, None, None
        preds, x_gen = [], None
        for t in range(T - 1):
            net = step_input(frames, t, t_in, mask, x_gen)
            z = self.enc(net)
            if hp is None:
                hp = torch.zeros_like(z)
                hs = [z.new_zeros(B, conv.out_channels // 4, *z.shape[2:]) for conv in self.lstm]
                cs = list(hs)
            zp = self.enc_p(z)
            k = torch.sigmoid(self.phy_gate(torch.cat([zp, hp], dim=1)))
            h_tilde = hp + self.phy_f(hp)
            hp = h_tilde + k * (zp - h_tilde)
            inp = self.enc_r(z)
            for j, conv in enumerate(self.lstm):
                i, f, o, g = torch.split(conv(torch.cat([inp, hs[j]], dim=1)), hs[j].shape[1], dim=1)
                cs[j] = torch.sigmoid(f) * cs[j] + torch.sigmoid(i) * torch.tanh(g)
                hs[j] = inp = torch.sigmoid(o) * torch.tanh(cs[j])
            x_gen = torch.sigmoid(self.dec(self.dec_p(hp) + self.dec_r(inp)))
            preds.append(x_gen)
        w = self.phy_f[0].weight.double()  # (49, c, 7, 7): moments M w M^T against the identity basis
        moments = torch.einsum("ia,ocab,jb->ocij", self.M, w, self.M)
        constraint = ((moments - self.target[:, None]) ** 2).mean(dim=(0, 2, 3)).sum().float()
        return F.mse_loss(torch.stack(preds, dim=1), frames[:, 1:]) + constraint / (T - 1)


# ---------------------------------------------------------------------------------------------
# SwinLSTM-D: Swin-block LSTM cells on 2 x 2 patch tokens, two levels down and two up
# ---------------------------------------------------------------------------------------------
def _drop_path(x, p: float, training: bool):
    """Stochastic depth per sample (timm's DropPath)."""
    if not training or p == 0.0:
        return x
    keep = x.new_empty(x.shape[0], *([1] * (x.dim() - 1))).bernoulli_(1 - p)
    return x * keep / (1 - p)


class SwinBlockRef(nn.Module):
    """timm's Swin block on (B, H*W, C) (window w, shift s, relative position bias, attention through SDPA), that
    may first fuse a second sequence: LN of both, concatenated, Linear 2C -> C ("red", built only where used)."""

    def __init__(self, dim: int, side: int, heads: int, w: int = 4, shift: bool = False, fuse: bool = False,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        self.side, self.heads, self.w, self.s, self.dp = side, heads, w, w // 2 if shift else 0, drop_path
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.red = nn.Linear(2 * dim, dim) if fuse else None
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.table = nn.Parameter(torch.zeros((2 * w - 1) ** 2, heads))
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        ij = torch.stack(torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")).flatten(1)
        rel = ij[:, :, None] - ij[:, None, :] + w - 1
        self.register_buffer("index", rel[0] * (2 * w - 1) + rel[1], persistent=False)
        mask = None
        if self.s:  # the shifted windows that wrap around attend only within their own region
            region = torch.zeros(side, side)
            cuts = (slice(0, -w), slice(-w, -self.s), slice(-self.s, None))
            for n, (a, b) in enumerate((a, b) for a in cuts for b in cuts):
                region[a, b] = n
            r = region.view(side // w, w, side // w, w).transpose(1, 2).reshape(-1, w * w)
            mask = (r[:, None, :] != r[:, :, None]).float() * -100.0  # (windows, w*w, w*w)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x, other=None):
        B, L, C = x.shape
        n, w, s = self.side, self.w, self.s
        u = self.norm1(x)
        if self.red is not None:
            u = self.red(torch.cat([u, self.norm1(other)], dim=-1))
        u = u.view(B, n, n, C)
        if s:
            u = torch.roll(u, (-s, -s), (1, 2))
        u = u.view(B, n // w, w, n // w, w, C).transpose(2, 3).reshape(-1, w * w, C)  # windows
        q, k, v = self.qkv(u).view(u.shape[0], w * w, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        bias = self.table[self.index].permute(2, 0, 1)  # (heads, N, N)
        if self.mask is not None:
            bias = (bias + self.mask[:, None]).repeat(B, 1, 1, 1)  # (B * windows, heads, N, N)
        u = F.scaled_dot_product_attention(q, k, v, attn_mask=bias).transpose(1, 2).reshape(-1, w * w, C)
        u = self.proj(u).view(B, n // w, n // w, w, w, C).transpose(2, 3).reshape(B, n, n, C)
        if s:
            u = torch.roll(u, (s, s), (1, 2))
        x = x + _drop_path(u.reshape(B, L, C), self.dp, self.training)
        return x + _drop_path(self.fc2(F.gelu(self.fc1(self.norm2(x)))), self.dp, self.training)


class SwinLSTMCellRef(nn.Module):
    """Blocks over (x, h): block 0 fuses h, later even blocks fuse x again; o = last output;
    c' = sig(o) * (c + tanh(o)), h' = sig(o) * tanh(c')."""

    def __init__(self, dim: int, side: int, depth: int, heads: int, rates) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(SwinBlockRef(dim, side, heads, shift=j % 2 == 1, fuse=j % 2 == 0,
                                                 drop_path=rates[j]) for j in range(depth))

    def forward(self, x, h, c):
        o = self.blocks[0](x, h)
        for j, blk in enumerate(self.blocks[1:], 1):
            o = blk(o, x) if j % 2 == 0 else blk(o)
        g = torch.sigmoid(o)
        c = g * (c + torch.tanh(o))
        return g * torch.tanh(c), c


class SwinLSTMRef(nn.Module):
    """Conv 2x2 stride 2 + LN to 32 x 32 tokens of 128; cells 128 (depth 2, 4 heads), patch merging, 256 (depth 6,
    8 heads), patch merging; up: 512 (depth 2, 8 heads), patch expanding, 256 (depth 6, 4 heads), patch expanding;
    transposed conv + sigmoid back to the frame. T_in + T_out - 1 steps, its own predictions fed back; MSE on all."""

    def __init__(self, C: int = 1, E: int = 128, side: int = 32, down=(2, 6), up=(6, 2), heads=(4, 8)) -> None:
        super().__init__()
        self.embed, self.embed_norm = nn.Conv2d(C, E, 2, 2), nn.LayerNorm(E)
        self.head = nn.ConvTranspose2d(E, C, 3, 2, 1, output_padding=1)
        rd = torch.linspace(0, 0.1, sum(down)).tolist()
        ru = torch.linspace(0, 0.1, sum(up)).tolist()
        self.cells, self.resample, self.shapes = nn.ModuleList(), nn.ModuleList(), []
        for i, depth in enumerate(down):
            d, n = E * 2 ** i, side // 2 ** i
            self.cells.append(SwinLSTMCellRef(d, n, depth, heads[i], rd[sum(down[:i]):][:depth]))
            merge = {"norm": nn.LayerNorm(4 * d), "lin": nn.Linear(4 * d, 2 * d, bias=False)}
            self.resample.append(nn.ModuleDict(merge))
            self.shapes.append((d, n))
        for i in range(len(up)):
            j = len(up) - 1 - i
            d, n = E * 2 ** (len(up) - i), side // 2 ** (len(up) - i)
            self.cells.append(SwinLSTMCellRef(d, n, up[j], heads[j], ru[sum(up[:j]):][:up[j]][::-1]))
            self.resample.append(nn.ModuleDict({"lin": nn.Linear(d, 2 * d, bias=False), "norm": nn.LayerNorm(d // 2)}))
            self.shapes.append((d, n))
        self.levels = len(down)

    def _merge(self, m, x, n):  # (B, n*n, d) -> (B, n*n/4, 2d): 2 x 2 neighbours, LN, linear
        B, _, d = x.shape
        x = x.view(B, n, n, d)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return m["lin"](m["norm"](x.reshape(B, -1, 4 * d)))

    def _expand(self, m, x, n):  # (B, n*n, d) -> (B, 4n*n, d/2): linear to 2d, spread over 2 x 2, LN
        B, _, d = x.shape
        x = m["lin"](x).view(B, n, n, 2, 2, d // 2).permute(0, 1, 3, 2, 4, 5).reshape(B, -1, d // 2)
        return m["norm"](x)

    def forward(self, x, y, mask=None):
        frames = torch.cat([x, y], dim=1)
        B, T = frames.shape[:2]
        t_in = x.shape[1]
        state = [(x.new_zeros(B, n * n, d),) * 2 for d, n in self.shapes]
        preds, x_gen = [], None
        for t in range(T - 1):
            z = self.embed(step_input(frames, t, t_in, mask, x_gen))  # (B, E, 32, 32)
            tok = self.embed_norm(z.flatten(2).transpose(1, 2))
            for i, (cell, m) in enumerate(zip(self.cells, self.resample)):
                h, c = cell(tok, *state[i])
                state[i] = (h, c)
                n = self.shapes[i][1]
                tok = self._merge(m, h, n) if i < self.levels else self._expand(m, h, n)
            E, n = tok.shape[-1], self.shapes[0][1]
            x_gen = torch.sigmoid(self.head(tok.transpose(1, 2).reshape(B, E, n, n)))
            preds.append(x_gen)
        return F.mse_loss(torch.stack(preds, dim=1), frames[:, 1:])


# ---------------------------------------------------------------------------------------------
# PredFormer: patch tokens, quadruplet temporal-spatial-spatial-temporal gated transformers
# ---------------------------------------------------------------------------------------------
class GatedTransformerRef(nn.Module):
    """One pre-norm block (attention, qkv without bias; SwiGLU feed-forward) and a final LayerNorm, on (B, L, D)."""

    def __init__(self, d: int = 256, heads: int = 8, dim_head: int = 32, hidden: int = 1024) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2, self.norm = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * heads * dim_head, bias=False), nn.Linear(heads * dim_head, d)
        self.gate, self.inp, self.out = nn.Linear(d, hidden), nn.Linear(d, hidden), nn.Linear(hidden, d)

    def forward(self, x):
        B, L, _ = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(B, L, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        x = x + self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, L, -1))
        u = self.norm2(x)
        return self.norm(x + self.out(F.silu(self.gate(u)) * self.inp(u)))


class PredFormerRef(nn.Module):
    """8 x 8 patches -> Linear to 256 + a fixed sinusoidal code -> 6 x (temporal, spatial, spatial, temporal)
    gated transformers -> LayerNorm + Linear back to patches; MSE. The 10 output frames come at once."""

    def __init__(self, T: int = 10, C: int = 1, H: int = 64, p: int = 8, d: int = 256, layers: int = 6) -> None:
        super().__init__()
        self.p, n = p, (H // p) ** 2
        self.embed = nn.Linear(C * p * p, d)
        pos = torch.arange(T * n, dtype=torch.float32)[:, None]
        angle = pos / 10000 ** (2 * (torch.arange(d) // 2) / d)
        self.register_buffer("pos", torch.where(torch.arange(d) % 2 == 0, angle.sin(), angle.cos()).view(T, n, d))
        self.quads = nn.ModuleList(nn.ModuleList(GatedTransformerRef(d) for _ in range(4)) for _ in range(layers))
        self.head_norm, self.head = nn.LayerNorm(d), nn.Linear(d, C * p * p)

    def forward(self, x, y, mask=None):
        B, T, C, H, W = x.shape
        p, h, w = self.p, H // self.p, W // self.p
        t = x.reshape(B, T, C, h, p, w, p).permute(0, 1, 3, 5, 4, 6, 2).reshape(B, T, h * w, p * p * C)
        t = self.embed(t) + self.pos  # (B, T, N, D)
        N, D = h * w, t.shape[-1]
        for tt, ss, ss2, tt2 in self.quads:
            t = tt(t.transpose(1, 2).reshape(B * N, T, D)).reshape(B, N, T, D).transpose(1, 2)
            t = ss2(ss(t.reshape(B * T, N, D))).reshape(B, T, N, D)
            t = tt2(t.transpose(1, 2).reshape(B * N, T, D)).reshape(B, N, T, D).transpose(1, 2)
        out = self.head(self.head_norm(t)).reshape(B, T, h, w, C, p, p).permute(0, 1, 4, 2, 5, 3, 6)
        return F.mse_loss(out.reshape(B, T, C, H, W), y)


NAMES = ("simvp", "gsta", "tau", *CELLS, "e3dlstm", "mau", "phydnet", "swinlstm", *METAVP, "predformer")


def build(name: str) -> nn.Module:
    """The published Moving MNIST configuration of ``name`` (one of ``NAMES``)."""
    T, hid_S, hid_T, N_T = 10, 64, 512, 8
    c = T * hid_S
    if name == "simvp":
        return SimVPStyle(MidIncepNet(c, hid_T, N_T))
    if name == "gsta":
        return SimVPStyle(MidMetaNet(c, hid_T, N_T, lambda i, d: MetaBlock(d, GatedSpatialAttention(d), 8.0)))
    if name == "tau":
        return SimVPStyle(MidMetaNet(c, hid_T, N_T, lambda i, d: MetaBlock(d, TemporalAttention(d), 8.0)),
                          ddr_alpha=0.1)
    if name in METAVP:
        return SimVPStyle(MidMetaNet(c, hid_T, N_T, lambda i, d: METAVP[name](d, i=i, N_T=N_T)))
    if name in CELLS:
        return RecurrentStack(name)
    if name == "e3dlstm":
        return E3DLSTMRef()
    if name == "mau":
        return MAURef()
    if name == "phydnet":
        return PhyDNetRef()
    if name == "swinlstm":
        return SwinLSTMRef()
    if name == "predformer":
        return PredFormerRef()
    raise KeyError(f"no reference implementation of '{name}'")
