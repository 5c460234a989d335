"""MAU, the motion-aware unit (Chang et al., NeurIPS 2021), as OpenSTL runs it on Moving MNIST.

Codec (``mau`` encoder / decoder, a learned codec, so the time loop feeds back decoded frames):
    encoder  1x1 conv C -> nh + LeakyReLU(0.2), then log2(sr_size) x [3x3 conv stride 2 + LeakyReLU]
             (N, C, H, W) -> (N, nh, H/sr, W/sr)
    decoder  log2(sr_size) x [3x3 transposed conv stride 2] with LeakyReLU(0.2) after all but the last,
             then a 1x1 conv nh -> C                                      (N, nh, H/sr, W/sr) -> (N, C, H, W)

Temporal module ``mau``: a stack of MAU cells. Cell l keeps the temporal state T_l and, in the
module's state, its last ``tau`` temporal states and its last ``tau`` spatial inputs. With
s' = LN(conv_s_next(S)) and t' = LN(conv_t_next(T)) (k x k convs with bias, layer norm over C x H x W)::

    w_j     = softmax_j( <S_pre_j, s'> / sqrt(nh * H * W) )        j = 1 .. tau (attention over the past)
    T_trend = sum_j w_j T_pre_j
    U       = sig(t');  T_fused = U * T + (1 - U) * T_trend
    t_g, t_t, t_s = LN(conv_t(T_fused));   s_g, s_t, s_s = LN(conv_s(S))
    T' = sig(t_g) * t_t + (1 - sig(t_g)) * s_t;   S' = sig(s_g) * s_s + (1 - sig(s_g)) * t_s  (+ S if residual)

S' is the input of the next layer; the top S' is the step's output. The past states start as tau
zero tensors. Layer norms over (C, H, W) tie the module to its latent size, as published.

Parameter count at the Moving MNIST config (4 x 64 hidden, filter 5, sr_size 4, tau 5): 4,475,329.
OpenSTL's MAU_Model reports 4,483,588: it also builds ``merge`` (1x1, 128 -> 64, 8,256 parameters) and
``conv_last_sr`` (1x1, 2 -> 1, 3 parameters) and never calls them; stbench does not carry dead layers.
The fvcore FLOPs are OpenSTL's: 17,791,188,992 (19 steps of encoder, cells and decoder; dead layers
cost nothing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from stbench.models.base import Decoder, Encoder, RecurrentTemporal
from stbench.models.recurrent import hidden_sizes
from stbench.models.zoo import named_model
from stbench.models.zoo_recurrent import LINEAR, QUICK_LINEAR, SMOKE_LINEAR
from stbench.registry import DECODERS, ENCODERS, MODELS, TEMPORAL


def _levels(sr_size: int) -> int:
    n = int(round(math.log2(sr_size))) if sr_size >= 1 else -1
    if n < 0 or 2 ** n != sr_size:
        raise ValueError(f"MAU's sr_size must be a power of two (1, 2, 4, ...), got {sr_size}")
    return n


def _width(num_hidden: int | str | Sequence[int], num_layers: int) -> int:
    sizes = hidden_sizes(num_hidden, num_layers)
    if len(set(sizes)) != 1:
        raise ValueError(f"MAU passes the temporal and spatial states between layers of one width; "
                         f"got num_hidden={sizes}")
    return sizes[0]


# ---------------------------------------------------------------------------------------------
# Codec
# ---------------------------------------------------------------------------------------------
@ENCODERS.register("mau")
class MAUEncoder(Encoder):
    """(N, C, H, W) -> (N, nh, H/sr, W/sr); no skip features (OpenSTL's model_mode 'normal')."""

    frame_feedback = True

    def __init__(self, *, in_shape: tuple[int, int, int], num_hidden: int | str | Sequence[int] = (64,) * 4,
                 num_layers: int = 4, sr_size: int = 4) -> None:
        super().__init__()
        C, H, W = in_shape
        n, nh = _levels(sr_size), _width(num_hidden, num_layers)
        if H % sr_size or W % sr_size:
            raise ValueError(f"MAU encoder with sr_size={sr_size} needs H and W divisible by it, got {H}x{W}")
        self.stem = nn.Conv2d(C, nh, 1)
        self.down = nn.ModuleList(nn.Conv2d(nh, nh, 3, 2, 1) for _ in range(n))
        self.act = nn.LeakyReLU(0.2)
        self.latent_shape = (nh, H // sr_size, W // sr_size)
        self.skip_channels = 0

    def forward(self, x: Tensor) -> tuple[Tensor, None]:
        z = self.act(self.stem(x))  # (N, nh, H, W)
        for conv in self.down:
            z = self.act(conv(z))  # halves H and W
        return z, None


@DECODERS.register("mau")
class MAUDecoder(Decoder):
    """(N, nh, H/sr, W/sr) -> (N, C, H, W): transposed convs, then a 1x1 conv to the frame channels."""

    def __init__(self, *, latent_shape: tuple[int, int, int], out_shape: tuple[int, int, int],
                 skip_channels: int = 0, sr_size: int = 4) -> None:
        super().__init__()
        nh, C = int(latent_shape[0]), int(out_shape[0])
        n = _levels(sr_size)
        if tuple(latent_shape[1:]) != (out_shape[1] // sr_size, out_shape[2] // sr_size):
            raise ValueError(f"MAU decoder with sr_size={sr_size} maps {out_shape[1] // sr_size}x"
                             f"{out_shape[2] // sr_size} latents to {out_shape[1]}x{out_shape[2]} frames; got "
                             f"latent shape {tuple(latent_shape)} (pair it with the mau encoder)")
        self.up = nn.ModuleList(nn.ConvTranspose2d(nh, nh, 3, 2, 1, output_padding=1) for _ in range(n))
        self.act = nn.LeakyReLU(0.2)
        self.head = nn.Conv2d(nh, C, 1)  # OpenSTL's srcnn

    def forward(self, z: Tensor, skip: Tensor | None) -> Tensor:
        last = len(self.up) - 1
        for i, conv in enumerate(self.up):
            z = conv(z)
            if i < last:
                z = self.act(z)
        return self.head(z)


# ---------------------------------------------------------------------------------------------
# Cell and stack
# ---------------------------------------------------------------------------------------------
class MAUCell(nn.Module):
    """One motion-aware unit; see the module docstring for its equations."""

    def __init__(self, num_hidden: int, height: int, width: int, filter_size: int, tau: int,
                 residual: bool = False) -> None:
        super().__init__()
        nh, k = num_hidden, filter_size
        self.num_hidden, self.tau, self.residual = nh, int(tau), bool(residual)
        self.scale = 1.0 / math.sqrt(nh * height * width)

        def conv(c_out: int) -> nn.Conv2d:
            return nn.Conv2d(nh, c_out, k, 1, k // 2)

        self.conv_t, self.norm_t = conv(3 * nh), nn.LayerNorm([3 * nh, height, width])
        self.conv_t_next, self.norm_t_next = conv(nh), nn.LayerNorm([nh, height, width])
        self.conv_s, self.norm_s = conv(3 * nh), nn.LayerNorm([3 * nh, height, width])
        self.conv_s_next, self.norm_s_next = conv(nh), nn.LayerNorm([nh, height, width])

    def forward(self, T: Tensor, S: Tensor, t_past: Sequence[Tensor], s_past: Sequence[Tensor]
                ) -> tuple[Tensor, Tensor]:
        # T, S (B, nh, H, W); t_past, s_past: the last tau temporal states / spatial inputs, oldest first, each
        # (B, nh, H, W); kept as tau tensors, not stacked: a stack copies every state at every step
        s_next = self.norm_s_next(self.conv_s_next(S))
        t_next = self.norm_t_next(self.conv_t_next(T))
        w = torch.softmax(torch.stack([(s * s_next).sum(dim=(1, 2, 3)) for s in s_past]) * self.scale, dim=0)
        w = w[:, :, None, None, None]  # (tau, B, 1, 1, 1)
        t_trend = w[0] * t_past[0]  # (B, nh, H, W)
        for j in range(1, len(t_past)):
            t_trend = torch.addcmul(t_trend, w[j], t_past[j])
        gate = torch.sigmoid(t_next)
        t_fused = T * gate + (1 - gate) * t_trend
        t_g, t_t, t_s = self.norm_t(self.conv_t(t_fused)).split(self.num_hidden, dim=1)
        s_g, s_t, s_s = self.norm_s(self.conv_s(S)).split(self.num_hidden, dim=1)
        g_t, g_s = torch.sigmoid(t_g), torch.sigmoid(s_g)
        T_new = g_t * t_t + (1 - g_t) * s_t
        S_new = g_s * s_s + (1 - g_s) * t_s
        if self.residual:
            S_new = S_new + S
        return T_new, S_new


@TEMPORAL.register("mau")
class MAU(RecurrentTemporal):
    """Stack of MAU cells. State = (T per layer, last tau T's per layer, last tau S inputs per layer);
    the step's output is the top layer's S (latent channels = the cells' width)."""

    def __init__(self, *, in_shape: tuple[int, int, int, int], t_out: int,
                 num_hidden: int | str | Sequence[int] = (64,) * 4, num_layers: int = 4, filter_size: int = 5,
                 tau: int = 5, cell_mode: str = "normal") -> None:
        super().__init__()
        self.t_in, c_lat, H, W = (int(v) for v in in_shape)
        self.t_out = int(t_out)
        nh = _width(num_hidden, num_layers)
        self.num_layers = len(hidden_sizes(num_hidden, num_layers))
        if c_lat != nh:
            raise ValueError(f"MAU cells of width {nh} need latents with {nh} channels, got {c_lat} "
                             "(use the mau encoder with the same num_hidden)")
        if cell_mode not in ("normal", "residual"):
            raise ValueError(f"MAU cell_mode must be 'normal' or 'residual', got {cell_mode!r}")
        if int(tau) < 1:
            raise ValueError(f"MAU needs tau >= 1 past states, got {tau}")
        self.tau = int(tau)
        self.cells = nn.ModuleList(
            MAUCell(nh, H, W, filter_size, self.tau, cell_mode == "residual") for _ in range(self.num_layers)
        )

    def init_state(self, x: Tensor) -> tuple[list[Tensor], list[tuple[Tensor, ...]], list[tuple[Tensor, ...]]]:
        # x (B, nh, H, W): zero T per layer; tau zero past T's and S's per layer (read-only, shared)
        z = torch.zeros_like(x)
        past = (z,) * self.tau
        n = self.num_layers
        return [z] * n, [past] * n, [past] * n

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any, None]:
        # x (B, nh, H, W) encoded frame -> top S (B, nh, H, W)
        Ts, t_pasts, s_pasts = state
        new_T, new_tp, new_sp = [], [], []
        S = x
        for cell, T, t_past, s_past in zip(self.cells, Ts, t_pasts, s_pasts):
            S_in = S
            T, S = cell(T, S, t_past, s_past)
            new_T.append(T)
            new_tp.append((*t_past[1:], T))  # keep the last tau
            new_sp.append((*s_past[1:], S_in))
        return S, (new_T, new_tp, new_sp), None


# ---------------------------------------------------------------------------------------------
# Named model
# ---------------------------------------------------------------------------------------------
MAU_PAPER = dict(num_hidden=(64, 64, 64, 64), filter_size=5, sr_size=4, tau=5, cell_mode="normal")


mau = named_model("mau", "mau", "mau", MAU_PAPER)
MODELS.register(
    family="recurrent", paper="MAU (NeurIPS 2021)",
    presets={
        "paper": {"lr": 1e-3, "batch_size": 16, "model": {},
                  "sampling": LINEAR},
        "quick": {"lr": 2e-3, "model": {"num_hidden": [16, 16], "filter_size": 5, "tau": 5},
                  "sampling": QUICK_LINEAR},
        "smoke": {"lr": 1e-3, "model": {"num_hidden": [8, 8], "filter_size": 3, "tau": 2},
                  "sampling": SMOKE_LINEAR},
    },
    schedule=LINEAR,
)(mau)
