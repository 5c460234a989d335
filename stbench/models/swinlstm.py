"""SwinLSTM-D (Tang et al., ICCV 2023): SwinLSTM cells in a down-sampling / up-sampling hierarchy.

Codec (``swinlstm`` encoder / decoder, learned, so the time loop feeds back decoded frames):
    encoder  patch embedding: conv p x p stride p (C -> E) + LayerNorm     (N, C, H, W) -> (N, E, H/p, W/p)
    decoder  patch inflation: 3x3 transposed conv stride 2 (E -> C) + sigmoid  (so p = 2, as published)

Temporal module ``swinlstm`` on the R x R grid of E-channel tokens (R = H / p), L = len(depths_down):
    down level i (i = 0 .. L-1): SwinLSTM cell (dim E 2^i, grid R / 2^i, depth depths_down[i],
                 heads num_heads[i]), then patch merging (2x2 neighbours, LayerNorm(4d), linear 4d -> 2d)
    up level i   (i = 0 .. L-1): SwinLSTM cell (dim E 2^(L-i), grid R / 2^(L-i), depth depths_up[L-1-i],
                 heads num_heads[L-1-i]), then patch expanding (linear d -> 2d, 2x2 pixel shuffle to
                 d/2 channels, LayerNorm(d/2))
A SwinLSTM cell with input x and state (h, c) runs ``depth`` Swin blocks (window attention with
relative position bias; odd blocks shift their windows by half a window): block 0 reads [x, h],
even blocks > 0 read [previous output, x], odd blocks read the previous output only, where a block
reading two sequences takes LN1 of each, concatenates them and projects 2d -> d ("red") before
attention. With o the last block's output: F = sig(o), c' = F * (c + tanh(o)), h' = F * tanh(c').
Each level's h' is the input of what follows. States start at zero.

Stochastic depth as published: drop-path rates linspace(0, 0.1) over the blocks of the down path
(block j of level i gets the (sum of earlier depths + j)-th rate), likewise over the up path with
the blocks of a level in reverse order. The windows are shrunk (and unshifted) where a grid is not
larger than the window, as in the timm Swin block the published code builds on.

Counts at the Moving MNIST config (E 128, patch 2, window 4, depths 2,6 / 6,2, heads 4,8): 18,845,409
parameters and 69,877,858,304 fvcore FLOPs (the paper: 69.9G). The paper's 20.2M and OpenSTL's
SwinLSTM_D_Model (20,191,969, counted by running it under timm 0.6.13) also count weights the forward
never uses: every Swin block builds the 2d -> d projection ``red``, but odd blocks read one sequence
and never call it (1,345,664 parameters at this config), and the up-sampling path builds a second
patch embedding (896). stbench does not carry dead weights; the converter drops them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stbench.models.base import Decoder, Encoder, RecurrentTemporal
from stbench.models.zoo import named_model
from stbench.registry import DECODERS, ENCODERS, MODELS, TEMPORAL


def _ints(v: int | str | Sequence[int]) -> tuple[int, ...]:
    if isinstance(v, str):
        return tuple(int(s) for s in v.split(",") if s.strip())
    if isinstance(v, int):
        return (v,)
    return tuple(int(s) for s in v)


def _linspace(end: float, n: int) -> list[float]:
    """torch.linspace(0, end, n) as floats (host arithmetic, so models can be built on the meta device)."""
    return [float(torch.linspace(0, end, n, device="cpu")[i]) for i in range(n)] if n > 1 else [0.0] * n


# ---------------------------------------------------------------------------------------------
# Codec
# ---------------------------------------------------------------------------------------------
@ENCODERS.register("swinlstm")
class SwinLSTMEncoder(Encoder):
    """Patch embedding (N, C, H, W) -> (N, E, H/p, W/p), tokens layer-normed over their E channels."""

    frame_feedback = True

    def __init__(self, *, in_shape: tuple[int, int, int], embed_dim: int = 128, patch_size: int = 2) -> None:
        super().__init__()
        C, H, W = in_shape
        p = int(patch_size)
        if p != 2:
            raise ValueError(f"SwinLSTM's patch inflation upsamples by 2, so patch_size must be 2, got {p}")
        if H % p or W % p:
            raise ValueError(f"SwinLSTM encoder with patch_size={p} needs H and W divisible by it, got {H}x{W}")
        self.proj = nn.Conv2d(C, embed_dim, p, p)
        self.norm = nn.LayerNorm(embed_dim)
        self.latent_shape = (int(embed_dim), H // p, W // p)
        self.skip_channels = 0

    def forward(self, x: Tensor) -> tuple[Tensor, None]:
        z = self.proj(x)  # (N, E, H/p, W/p)
        return self.norm(z.permute(0, 2, 3, 1)).permute(0, 3, 1, 2), None


@DECODERS.register("swinlstm")
class SwinLSTMDecoder(Decoder):
    """Patch inflation (N, E, H/2, W/2) -> (N, C, H, W) in (0, 1)."""

    def __init__(self, *, latent_shape: tuple[int, int, int], out_shape: tuple[int, int, int],
                 skip_channels: int = 0) -> None:
        super().__init__()
        E, h, w = latent_shape
        C, H, W = out_shape
        if (2 * h, 2 * w) != (H, W):
            raise ValueError(f"SwinLSTM decoder doubles the latent grid; got latent {h}x{w} for {H}x{W} frames "
                             "(pair it with the swinlstm encoder)")
        self.conv = nn.ConvTranspose2d(E, C, 3, 2, 1, output_padding=1)

    def forward(self, z: Tensor, skip: Tensor | None) -> Tensor:
        return torch.sigmoid(self.conv(z))


# ---------------------------------------------------------------------------------------------
# Swin block
# ---------------------------------------------------------------------------------------------
def _drop_path(x: Tensor, p: float, training: bool) -> Tensor:
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask / keep


def _windows(x: Tensor, w: int) -> Tensor:
    """(B, H, W, C) -> (B * H/w * W/w, w * w, C)."""
    B, H, W, C = x.shape
    x = x.view(B, H // w, w, W // w, w, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w * w, C)


def _unwindows(x: Tensor, w: int, H: int, W: int) -> Tensor:
    """(B * H/w * W/w, w * w, C) -> (B, H, W, C)."""
    C = x.shape[-1]
    x = x.view(-1, H // w, W // w, w, w, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, H, W, C)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside w x w windows with a learned relative position bias."""

    def __init__(self, dim: int, window: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"SwinLSTM width {dim} is not divisible by its {heads} attention heads")
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]) + (window - 1)  # (2, w*w, w*w)
        self.register_buffer("relative_position_index", rel[0] * (2 * window - 1) + rel[1], persistent=False)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        # x (B_, N, C) windows; mask (nW, N, N) of 0 / -100 or None
        B_, N, C = x.shape
        q, k, v = self.qkv(x).view(B_, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)  # (B_, heads, N, N)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(N, N, -1)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nW = mask.shape[0]
            attn = attn.view(B_ // nW, nW, self.heads, N, N) + mask[None, :, None]
            attn = attn.view(B_, self.heads, N, N)
        x = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(B_, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim: int, ratio: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, int(dim * ratio))
        self.fc2 = nn.Linear(int(dim * ratio), dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SwinBlock(nn.Module):
    """Swin transformer block that may also read a second sequence (see the module docstring)."""

    def __init__(self, dim: int, grid: tuple[int, int], heads: int, window: int, shift: bool,
                 mlp_ratio: float, drop_path: float, two_inputs: bool) -> None:
        super().__init__()
        self.grid = grid
        self.window, self.shift = window, (window // 2 if shift else 0)
        if min(grid) <= self.window:  # the whole grid is one window: no shift
            self.window, self.shift = min(grid), 0
        if grid[0] % self.window or grid[1] % self.window:
            raise ValueError(f"SwinLSTM grid {grid[0]}x{grid[1]} is not a multiple of the window {self.window}")
        self.drop_path = float(drop_path)
        self.norm1 = nn.LayerNorm(dim)
        self.red = nn.Linear(2 * dim, dim) if two_inputs else None  # [x, other] -> x
        self.attn = WindowAttention(dim, self.window, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_ratio)
        self.register_buffer("attn_mask", self._mask(), persistent=False)

    def _mask(self) -> Tensor | None:
        if not self.shift:
            return None
        H, W = self.grid
        w, s = self.window, self.shift
        img = torch.zeros(1, H, W, 1)
        region = 0
        for hs in (slice(0, -w), slice(-w, -s), slice(-s, None)):
            for ws in (slice(0, -w), slice(-w, -s), slice(-s, None)):
                img[:, hs, ws, :] = region
                region += 1
        mw = _windows(img, w).squeeze(-1)  # (nW, w*w)
        diff = mw[:, None, :] - mw[:, :, None]
        return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)

    def forward(self, x: Tensor, other: Tensor | None = None) -> Tensor:
        # x, other (B, L, C) token sequences on the block's grid; other is read by even blocks only
        H, W = self.grid
        B, L, C = x.shape
        shortcut = x
        x = self.norm1(x)
        if self.red is not None:
            x = self.red(torch.cat([x, self.norm1(other)], dim=-1))
        x = x.view(B, H, W, C)
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        x = _unwindows(self.attn(_windows(x, self.window), self.attn_mask), self.window, H, W)
        if self.shift:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        x = shortcut + _drop_path(x.reshape(B, L, C), self.drop_path, self.training)
        return x + _drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)


class SwinLSTMCell(nn.Module):
    def __init__(self, dim: int, grid: tuple[int, int], depth: int, heads: int, window: int,
                 mlp_ratio: float, drop_paths: Sequence[float]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, grid, heads, window, j % 2 == 1, mlp_ratio, drop_paths[j], j % 2 == 0)
            for j in range(depth)
        )

    def forward(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        o = x
        for j, block in enumerate(self.blocks):
            o = block(x, h) if j == 0 else block(o, x if j % 2 == 0 else None)
        gate = torch.sigmoid(o)
        c = gate * (c + torch.tanh(o))
        return gate * torch.tanh(c), c


class PatchMerging(nn.Module):
    """(B, H*W, d) -> (B, H/2 * W/2, 2d): 2x2 neighbours concatenated (row offset fastest), LN, linear."""

    def __init__(self, dim: int, grid: tuple[int, int]) -> None:
        super().__init__()
        self.grid = grid
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        H, W = self.grid
        B, _, C = x.shape
        x = x.view(B, H // 2, 2, W // 2, 2, C).permute(0, 1, 3, 4, 2, 5).reshape(B, -1, 4 * C)
        return self.reduction(self.norm(x))


class PatchExpanding(nn.Module):
    """(B, H*W, d) -> (B, 2H * 2W, d/2): linear d -> 2d, each token's 2d channels spread over a 2x2
    block (channels ordered (row, column, d/2)), LN."""

    def __init__(self, dim: int, grid: tuple[int, int]) -> None:
        super().__init__()
        self.grid = grid
        self.expand = nn.Linear(dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(dim // 2)

    def forward(self, x: Tensor) -> Tensor:
        H, W = self.grid
        x = self.expand(x)
        B, _, C = x.shape
        x = x.view(B, H, W, 2, 2, C // 4).permute(0, 1, 3, 2, 4, 5).reshape(B, 4 * H * W, C // 4)
        return self.norm(x)


# ---------------------------------------------------------------------------------------------
# Temporal module
# ---------------------------------------------------------------------------------------------
@TEMPORAL.register("swinlstm")
class SwinLSTM(RecurrentTemporal):
    """SwinLSTM-D: state = ((h, c) per down level, (h, c) per up level), tokens (B, L, d)."""

    def __init__(self, *, in_shape: tuple[int, int, int, int], t_out: int,
                 depths_downsample: int | str | Sequence[int] = (2, 6),
                 depths_upsample: int | str | Sequence[int] = (6, 2), num_heads: int | str | Sequence[int] = (4, 8),
                 window_size: int = 4, mlp_ratio: float = 4.0, drop_path_rate: float = 0.1) -> None:
        super().__init__()
        self.t_in, E, R1, R2 = (int(v) for v in in_shape)
        self.t_out = int(t_out)
        down, up, heads = _ints(depths_downsample), _ints(depths_upsample), _ints(num_heads)
        L = len(down)
        if len(up) != L or len(heads) != L:
            raise ValueError(f"SwinLSTM needs as many up levels and head counts as down levels; got "
                             f"depths_downsample={down}, depths_upsample={up}, num_heads={heads}")
        if R1 % 2 ** L or R2 % 2 ** L:
            raise ValueError(f"SwinLSTM with {L} levels needs a latent grid divisible by {2 ** L}, got {R1}x{R2}")
        self.grid = (R1, R2)
        dpr_down, dpr_up = _linspace(drop_path_rate, sum(down)), _linspace(drop_path_rate, sum(up))
        self.down, self.merge, self.up, self.expand = (nn.ModuleList() for _ in range(4))
        self.dims: list[tuple[int, int, int]] = []  # (dim, H, W) of each cell's state, down then up
        for i in range(L):
            d, g = E * 2 ** i, (R1 // 2 ** i, R2 // 2 ** i)
            rates = dpr_down[sum(down[:i]):sum(down[:i + 1])]
            self.down.append(SwinLSTMCell(d, g, down[i], heads[i], window_size, mlp_ratio, rates))
            self.merge.append(PatchMerging(d, g))
            self.dims.append((d, *g))
        for i in range(L):
            j = L - 1 - i
            d, g = E * 2 ** (L - i), (R1 // 2 ** (L - i), R2 // 2 ** (L - i))
            rates = dpr_up[sum(up[:j]):sum(up[:j + 1])][::-1]  # a level's blocks in reverse order
            self.up.append(SwinLSTMCell(d, g, up[j], heads[j], window_size, mlp_ratio, rates))
            self.expand.append(PatchExpanding(d, g))
            self.dims.append((d, *g))

    def init_state(self, x: Tensor) -> list[tuple[Tensor, Tensor]]:
        B = x.shape[0]
        out = []
        for d, h, w in self.dims:
            z = x.new_zeros(B, h * w, d)
            out.append((z, z))
        return out

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any, None]:
        # x (B, E, R, R) embedded frame -> (B, E, R, R)
        B, E, R1, R2 = x.shape
        t = x.flatten(2).transpose(1, 2)  # (B, R*R, E)
        new_state = []
        cells = list(zip(self.down, self.merge)) + list(zip(self.up, self.expand))
        for (cell, resample), (h, c) in zip(cells, state):
            h, c = cell(t, h, c)
            new_state.append((h, c))
            t = resample(h)
        return t.transpose(1, 2).reshape(B, E, R1, R2), new_state, None


# ---------------------------------------------------------------------------------------------
# Named model
# ---------------------------------------------------------------------------------------------
SWINLSTM_PAPER = dict(patch_size=2, embed_dim=128, depths_downsample=(2, 6), depths_upsample=(6, 2),
                      num_heads=(4, 8), window_size=4)


swinlstm = named_model("swinlstm", "swinlstm", "swinlstm", SWINLSTM_PAPER)
MODELS.register(
    family="recurrent", paper="SwinLSTM-D (ICCV 2023)",
    presets={
        # the paper's code: constant-lr Adam, batch 16, 2000 epochs (OpenSTL's config: the same with onecycle)
        "paper": {"epochs": 2000, "lr": 1e-4, "batch_size": 16, "scheduler": "none", "model": {},
                  "sampling": {"kind": "free"}},
        "quick": {"lr": 1e-3,
                  "model": {"embed_dim": 16, "depths_downsample": [2, 2], "depths_upsample": [2, 2],
                            "num_heads": [2, 4]}, "sampling": {"kind": "free"}},
        "smoke": {"lr": 1e-3, "sampling": {"kind": "free"},
                  "model": {"embed_dim": 16, "depths_downsample": [2], "depths_upsample": [2], "num_heads": [2]}},
    },
    schedule={"kind": "free"},
)(swinlstm)
