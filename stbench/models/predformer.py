"""PredFormer (arXiv 2410.04733): a pure transformer over patch tokens, no convolution, no recurrence.

PredFormer's whole network, written as stbench's encoder -> temporal module -> decoder:

    encoder  "predformer"  per frame: cut p x p patches, one Linear per patch -> (N, dim, H/p, W/p)
    temporal "predformer"  add the fixed sinusoidal position code over all T_in * (H/p)(W/p) tokens,
                           then Ndepth quadruplet layers (below)           (B, T, dim, H/p, W/p)
    decoder  "predformer"  per frame: LayerNorm + Linear per token, patches back to (N, C, H, W)

Why the position code sits in the temporal module: it depends on the frame index t, which a per-frame
encoder never sees; it has no parameters and is added right before the first layer, so the composed
model computes PredFormer's function unchanged.

A quadruplet "TSST" layer (PredFormer's Moving MNIST model, ``PredFormer_Quadruplet_TSST``) is four
gated transformers applied in turn: temporal attention (each token position across the T frames),
spatial attention (the tokens of one frame), spatial, temporal. Each gated transformer is ``depth``
pre-norm blocks (multi-head attention + SwiGLU feed-forward, residual both) and a final LayerNorm.
``Ndepth`` counts quadruplet layers: the published Moving MNIST configs are depth 1 with Ndepth 6
(``predformer``, the paper's "TSST, 6 layers": 25.3M params) or Ndepth 8 (``predformer_quad``, the
paper's best "quadruplet TSST, 8 layers": 33.7M).

Counting convention kept on purpose: for fvcore (under ``torch.jit`` tracing) the two attention products are
``torch.einsum`` calls as in PredFormer; everywhere else the same attention runs through
``F.scaled_dot_product_attention`` (tests/test_predformer.py checks that the two agree). fvcore counts an
einsum from the cost string of ``numpy.einsum_path``, printed to four significant digits, so its count is
slightly off the exact product count (-760 per spatial and +100 per temporal einsum at the published size);
the published 16,477,864,480 FLOPs include that rounding, and with einsum here stbench's fvcore count equals
it exactly (a matmul would give 15,840 more).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stbench.layers.drop_path import DropPath
from stbench.models.base import Decoder, Encoder, ParallelTemporal
from stbench.models.zoo import named_model
from stbench.registry import DECODERS, ENCODERS, MODELS, TEMPORAL


def _patch_grid(shape: tuple[int, int, int], p: int, who: str) -> tuple[int, int]:
    _, H, W = shape
    if p < 1 or H % p or W % p:
        raise ValueError(f"PredFormer {who} with patch_size={p} needs H and W divisible by it, got {H}x{W}")
    return H // p, W // p


# ---------------------------------------------------------------------------------------------
# Encoder / decoder
# ---------------------------------------------------------------------------------------------
@ENCODERS.register("predformer")
class PredFormerEncoder(Encoder):
    """(N, C, H, W) -> (N, dim, H/p, W/p): one Linear on each p x p patch, read in (row, column, channel)
    order as PredFormer flattens it."""

    def __init__(self, *, in_shape: tuple[int, int, int], patch_size: int = 8, dim: int = 256) -> None:
        super().__init__()
        C = in_shape[0]
        self.patch_size = p = int(patch_size)
        self.grid = _patch_grid(tuple(in_shape), p, "encoder")
        self.embed = nn.Linear(C * p * p, dim)
        self.latent_shape = (int(dim), *self.grid)
        self.skip_channels = 0

    def forward(self, x: Tensor) -> tuple[Tensor, None]:
        N, C, H, W = x.shape
        p, (h, w) = self.patch_size, self.grid
        x = x.reshape(N, C, h, p, w, p).permute(0, 2, 4, 3, 5, 1)  # (N, h, w, p1, p2, C)
        z = self.embed(x.reshape(N, h, w, p * p * C))  # (N, h, w, dim)
        return z.permute(0, 3, 1, 2), None  # (N, dim, h, w)


@DECODERS.register("predformer")
class PredFormerDecoder(Decoder):
    """(N, dim, H/p, W/p) -> (N, C, H, W): LayerNorm + Linear per token, each token's C*p*p outputs read
    in (channel, row, column) order as PredFormer's head writes them."""

    def __init__(self, *, latent_shape: tuple[int, int, int], out_shape: tuple[int, int, int],
                 skip_channels: int = 0, patch_size: int = 8) -> None:
        super().__init__()
        dim = int(latent_shape[0])
        self.patch_size = p = int(patch_size)
        self.out_shape = tuple(out_shape)
        grid = _patch_grid(self.out_shape, p, "decoder")
        if tuple(latent_shape[1:]) != grid:
            raise ValueError(f"PredFormer decoder with patch_size={p} expects a {grid} token grid for "
                             f"{self.out_shape}, got latent shape {tuple(latent_shape)} (pair it with its encoder)")
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, self.out_shape[0] * p * p)

    def forward(self, z: Tensor, skip: Tensor | None) -> Tensor:
        N, _, h, w = z.shape
        C, H, W = self.out_shape
        p = self.patch_size
        y = self.proj(self.norm(z.permute(0, 2, 3, 1)))  # (N, h, w, C*p*p)
        y = y.reshape(N, h, w, C, p, p).permute(0, 3, 1, 4, 2, 5)  # (N, C, h, p1, w, p2)
        return y.reshape(N, C, H, W)


# ---------------------------------------------------------------------------------------------
# Gated transformer: pre-norm attention + pre-norm SwiGLU
# ---------------------------------------------------------------------------------------------
class Attention(nn.Module):
    """Multi-head self-attention over the token axis of (B, L, dim); qkv without bias. The output
    projection is absent when heads == 1 and dim_head == dim (as in PredFormer)."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float = 0.0) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads, self.scale = heads, dim_head ** -0.5
        self.qkv = nn.Linear(dim, 3 * inner, bias=False)
        if heads == 1 and dim_head == dim:
            self.proj: nn.Module = nn.Identity()
        else:
            self.proj = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        B, L, _ = x.shape
        q, k, v = self.qkv(x).reshape(B, L, 3, self.heads, -1).permute(2, 0, 3, 1, 4)  # 3 x (B, h, L, d)
        if torch.jit.is_tracing():
            # what fvcore traces to count FLOPs: PredFormer's einsum form. fvcore counts an einsum from numpy's
            # 4-digit cost string, and the published FLOPs carry that rounding (16,477,864,480 for Ndepth 6;
            # exact matmul counts give 15,840 more)
            att = torch.einsum("bhid,bhjd->bhij", q, k) * self.scale  # (B, h, L, L)
            y = torch.einsum("bhij,bhjd->bhid", att.softmax(dim=-1), v)  # (B, h, L, d)
        else:  # the same function, fused: fp32 step 1.08x -> 0.96x of a plain reference's (benchmarks/README.md, 7)
            y = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        return self.proj(y.transpose(1, 2).reshape(B, L, -1))  # (B, L, dim)


class SwiGLU(nn.Module):
    """fc_out(silu(fc_gate(x)) * fc_in(x)), dropout after the product and after fc_out."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc_gate = nn.Linear(dim, hidden)
        self.fc_in = nn.Linear(dim, hidden)
        self.fc_out = nn.Linear(hidden, dim)
        self.act = nn.SiLU()
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc_out(self.drop(self.act(self.fc_gate(x)) * self.fc_in(x))))


class GatedBlock(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int, hidden: int,
                 dropout: float, attn_dropout: float, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dim_head, attn_dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = SwiGLU(dim, hidden, dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:  # (B, L, dim)
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class GatedTransformer(nn.Module):
    """``depth`` gated blocks and a final LayerNorm over (B, L, dim)."""

    def __init__(self, dim: int, depth: int, **block: Any) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([GatedBlock(dim, **block) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


class QuadrupletTSST(nn.Module):
    """Temporal -> spatial -> spatial -> temporal gated transformers on tokens (B, T, N, dim)."""

    def __init__(self, dim: int, depth: int, **block: Any) -> None:
        super().__init__()
        self.ts_t = GatedTransformer(dim, depth, **block)
        self.ts_s = GatedTransformer(dim, depth, **block)
        self.st_s = GatedTransformer(dim, depth, **block)
        self.st_t = GatedTransformer(dim, depth, **block)

    @staticmethod
    def _over_time(f: nn.Module, x: Tensor) -> Tensor:
        B, T, N, D = x.shape
        y = f(x.transpose(1, 2).reshape(B * N, T, D))  # (B*N, T, dim): each token position across frames
        return y.reshape(B, N, T, D).transpose(1, 2)  # (B, T, N, dim)

    @staticmethod
    def _over_space(f: nn.Module, x: Tensor) -> Tensor:
        B, T, N, D = x.shape
        return f(x.reshape(B * T, N, D)).reshape(B, T, N, D)  # the tokens of one frame

    def forward(self, x: Tensor) -> Tensor:  # (B, T, N, dim)
        x = self._over_space(self.ts_s, self._over_time(self.ts_t, x))
        return self._over_time(self.st_t, self._over_space(self.st_s, x))


def sinusoidal_code(positions: int, dim: int) -> Tensor:
    """(positions, dim) fixed code: sin on even, cos on odd channels of p / 10000^(2*(i//2)/dim).

    Angles are formed in float64 and rounded to float32 before sin/cos, as PredFormer does, so the
    code (and so the prediction from PredFormer's weights) is bit-identical to its own.
    """
    p = torch.arange(positions, dtype=torch.float64)[:, None]
    i = torch.arange(dim, dtype=torch.float64)[None, :]
    angle = (p / 10000 ** (2 * torch.div(i, 2, rounding_mode="floor") / dim)).float()  # (positions, dim)
    code = angle.clone()
    code[:, 0::2] = torch.sin(angle[:, 0::2])
    code[:, 1::2] = torch.cos(angle[:, 1::2])
    return code


@TEMPORAL.register("predformer")
class PredFormerTemporal(ParallelTemporal):
    """PredFormer's position code + ``Ndepth`` quadruplet TSST layers: (B, T_in, dim, h, w) -> same.

    ``depth`` blocks per gated transformer, SwiGLU width ``dim * scale_dim``. ``dropout`` acts in the
    SwiGLU, ``attn_dropout`` on the attention output projection, ``drop_path`` on every residual
    branch (all 0 in the published Moving MNIST config).
    """

    def __init__(self, *, in_shape: tuple[int, int, int, int], t_out: int, heads: int = 8, dim_head: int = 32,
                 scale_dim: int = 4, depth: int = 1, Ndepth: int = 6, dropout: float = 0.0,
                 attn_dropout: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        T, dim, h, w = in_shape
        # not a parameter and not saved: PredFormer's checkpoints do not hold it either
        self.register_buffer("pos", sinusoidal_code(T * h * w, dim).reshape(1, T, h * w, dim), persistent=False)
        block = dict(heads=heads, dim_head=dim_head, hidden=dim * scale_dim, dropout=dropout,
                     attn_dropout=attn_dropout, drop_path=drop_path)
        self.layers = nn.ModuleList([QuadrupletTSST(dim, depth, **block) for _ in range(Ndepth)])
        self.layers.apply(_init_transformer)

    def forward(self, z: Tensor) -> Tensor:
        B, T, D, h, w = z.shape
        x = z.flatten(3).transpose(2, 3) + self.pos  # (B, T, h*w, dim) tokens in row-major order
        for layer in self.layers:
            x = layer(x)
        return x.transpose(2, 3).reshape(B, T, D, h, w)


def _init_transformer(m: nn.Module) -> None:
    # PredFormer's init for its transformers (the patch embedding and head keep PyTorch's defaults)
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02, a=-2.0, b=2.0)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------------------------------
# Named models: PredFormer's Moving MNIST configs (configs/mmnist/PredFormer.py, depth 1)
# ---------------------------------------------------------------------------------------------
PREDFORMER = dict(patch_size=8, dim=256, heads=8, dim_head=32, scale_dim=4, depth=1, Ndepth=6,
                  dropout=0.0, attn_dropout=0.0, drop_path=0.0)
PREDFORMER_QUAD = dict(PREDFORMER, Ndepth=8)

# scripts/mmnist/mm_PredFormer_TSST_train.sh: AdamW, lr 1e-3, weight decay 1e-2, batch 16, 2000 epochs,
# OneCycle (the parser default, final_div_factor 1e4), fp32
_PAPER_RECIPE = {"epochs": 2000, "batch_size": 16, "lr": 1e-3, "optimizer": "adamw", "weight_decay": 1e-2,
                 "scheduler": "onecycle"}
_QUICK = {"batch_size": 4, "lr": 1e-3, "optimizer": "adamw", "weight_decay": 1e-2,
          "model": dict(patch_size=8, dim=64, heads=4, dim_head=16, scale_dim=2, depth=1, Ndepth=2)}
_SMOKE = {"lr": 1e-3, "optimizer": "adamw", "weight_decay": 1e-2,
          "model": dict(patch_size=8, dim=16, heads=2, dim_head=8, scale_dim=2, depth=1, Ndepth=1)}


predformer = named_model("predformer", "predformer", "predformer", PREDFORMER)
MODELS.register(family="parallel", paper="PredFormer (arXiv 2410.04733), TSST, 6 layers",
                presets={"paper": {**_PAPER_RECIPE, "model": dict(PREDFORMER)}, "quick": _QUICK,
                         "smoke": _SMOKE})(predformer)


# the quadruplet model is deeper at every preset (8 vs 6 layers at paper size): one more layer here
_QUICK_QUAD = {**_QUICK, "model": dict(_QUICK["model"], Ndepth=3)}
_SMOKE_QUAD = {**_SMOKE, "model": dict(_SMOKE["model"], Ndepth=2)}


predformer_quad = named_model("predformer_quad", "predformer", "predformer", PREDFORMER_QUAD)
MODELS.register(family="parallel", paper="PredFormer (arXiv 2410.04733), quadruplet TSST, 8 layers",
                presets={"paper": {**_PAPER_RECIPE, "model": dict(PREDFORMER_QUAD)}, "quick": _QUICK_QUAD,
                         "smoke": _SMOKE_QUAD})(predformer_quad)
