"""PredRNN++ (Wang et al., ICML 2018): causal LSTM cells with a gradient highway unit, as in OpenSTL.

Stack (all layers the same width nh, the spatiotemporal memory M flows zig-zag as in PredRNN)::

    h0, c0, M = causal_0(x, h0, c0, M)
    z         = GHU(h0, z)                    gradient highway between layers 1 and 2
    h1, c1, M = causal_1(z, h1, c1, M)
    hi, ci, M = causal_i(h_{i-1}, hi, ci, M)  i >= 2
    y         = head(h_{L-1})                 bias-free 1x1 conv to the latent channels

Causal LSTM cell (all convolutions k x k and bias-free, except the 1x1 ``conv_last``)::

    [i, f, g, i', f', g', o]_x = conv_x(x)    [i, f, g, o]_h = conv_h(h)
    [i, f, g]_c = conv_c(c)                   [i, f, m]_m = conv_m(M)
    c' = sig(f_x + f_h + f_c + 1) * c + sig(i_x + i_h + i_c) * tanh(g_x + g_h + g_c)
    [i, g, f, o]_c2m = conv_c2m(c')
    M' = sig(f'_x + f_m + f_c2m + 1) * tanh(m_m) + sig(i'_x + i_m + i_c2m) * tanh(g'_x + g_c2m)
    o  = tanh(o_x + o_h + o_c2m + conv_om(M'))
    h' = o * tanh(conv_last([c', M']))

(the output gate is a tanh and M enters through tanh(conv_m(M)), as in the published code).
Gradient highway unit: ``[p, u] = conv_x(x) + conv_z(z)``, ``z' = sig(u) * tanh(p) + (1 - sig(u)) * z``;
its convolutions are the published ``x_concat`` and ``z_concat``, initialised uniformly in
[-0.001, 0.001] as published (weights saved with the two as one ``conv_xz`` over [x, z] still load).

Counts (Moving MNIST, patch 4: 16 latent channels, 4 x 128, filter 5): 35,307,520 parameters and
171,735,777,280 fvcore FLOPs (the published FLOPs). OpenSTL's count, 38,584,320, also includes a
``conv_o`` (2nh -> nh, k x k) that its causal cell constructs and never uses: 4 x 819,200 =
3,276,800 dead parameters, which stbench does not carry (as for ConvLSTM).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from stbench.models.base import split_fused_conv
from stbench.models.recurrent import _CellStack
from stbench.models.zoo import named_model
from stbench.models.zoo_recurrent import LINEAR, PAPER_RNN_MODEL, RNN, rnn_presets
from stbench.registry import MODELS, TEMPORAL


def _conv(c_in: int, c_out: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, 1, k // 2, bias=False)


class CausalLSTMCell(nn.Module):
    """One causal LSTM cell: ``(x, h, c, M) -> (h', c', M')`` (see the module docstring)."""

    def __init__(self, c_in: int, num_hidden: int, filter_size: int, forget_bias: float = 1.0) -> None:
        super().__init__()
        nh, k = num_hidden, filter_size
        self.num_hidden = nh
        self.forget_bias = float(forget_bias)
        self.conv_x = _conv(c_in, 7 * nh, k)  # (i, f, g, i', f', g', o)
        self.conv_h = _conv(nh, 4 * nh, k)  # (i, f, g, o)
        self.conv_c = _conv(nh, 3 * nh, k)  # (i, f, g)
        self.conv_m = _conv(nh, 3 * nh, k)  # (i', f', m)
        self.conv_c2m = _conv(nh, 4 * nh, k)  # (i', g', f', o) from c'
        self.conv_om = _conv(nh, nh, k)  # o from M'
        self.conv_last = _conv(2 * nh, nh, 1)

    def forward(self, x: Tensor, h: Tensor, c: Tensor, m: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # x (B, C_in, H, W); h, c, m (B, nh, H, W)
        fb = self.forget_bias
        i_x, f_x, g_x, i_xp, f_xp, g_xp, o_x = self.conv_x(x).chunk(7, dim=1)
        i_h, f_h, g_h, o_h = self.conv_h(h).chunk(4, dim=1)
        i_c, f_c, g_c = self.conv_c(c).chunk(3, dim=1)
        i_m, f_m, m_m = self.conv_m(m).chunk(3, dim=1)
        c = torch.sigmoid(f_x + f_h + f_c + fb) * c + torch.sigmoid(i_x + i_h + i_c) * torch.tanh(g_x + g_h + g_c)
        i_cm, g_cm, f_cm, o_cm = self.conv_c2m(c).chunk(4, dim=1)
        m = (torch.sigmoid(f_xp + f_m + f_cm + fb) * torch.tanh(m_m)
             + torch.sigmoid(i_xp + i_m + i_cm) * torch.tanh(g_xp + g_cm))
        o = torch.tanh(o_x + o_h + o_cm + self.conv_om(m))
        h = o * torch.tanh(self.conv_last(torch.cat([c, m], dim=1)))
        return h, c, m


class GradientHighway(nn.Module):
    """GHU: ``z' = sig(u) * tanh(p) + (1 - sig(u)) * z`` with ``[p, u] = conv_x(x) + conv_z(z)``."""

    def __init__(self, num_hidden: int, filter_size: int, init_range: float = 0.001) -> None:
        super().__init__()
        self.conv_x = _conv(num_hidden, 2 * num_hidden, filter_size)  # (p, u)
        self.conv_z = _conv(num_hidden, 2 * num_hidden, filter_size)  # (p, u)
        for conv in (self.conv_x, self.conv_z):
            nn.init.uniform_(conv.weight, -init_range, init_range)
        split_fused_conv(self, "conv_xz", "conv_x", "conv_z")

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        # x, z (B, nh, H, W)
        p, u = (self.conv_x(x) + self.conv_z(z)).chunk(2, dim=1)
        u = torch.sigmoid(u)
        return u * torch.tanh(p) + (1 - u) * z


@TEMPORAL.register("predrnnpp")
class PredRNNpp(_CellStack):
    """Causal LSTM stack with a gradient highway after the first layer. State = (h, c per layer, M, z)."""

    def __init__(self, *, in_shape: tuple[int, int, int, int], t_out: int,
                 num_hidden: int | str | Sequence[int] = (128, 128, 128, 128), num_layers: int = 4,
                 filter_size: int = 5, forget_bias: float = 1.0) -> None:
        super().__init__(in_shape=in_shape, t_out=t_out, num_hidden=num_hidden, num_layers=num_layers)
        if len(self.num_hidden) < 2 or len(set(self.num_hidden)) != 1:
            raise ValueError(f"{type(self).__name__} needs at least two layers of one width (M passes through "
                             f"every layer, the highway joins layers 1 and 2); got num_hidden={self.num_hidden}")
        nh = self.num_hidden[0]
        c_ins = (self.c_lat, *self.num_hidden[:-1])
        self.cells = nn.ModuleList(CausalLSTMCell(c, nh, filter_size, forget_bias) for c in c_ins)
        self.highway = GradientHighway(nh, filter_size)

    def init_state(self, x: Tensor) -> tuple[list[Tensor], list[Tensor], Tensor, Tensor]:
        z = self._zeros(x, self.num_hidden[0])  # read-only, shared
        n = len(self.num_hidden)
        return [z] * n, [z] * n, z, z

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any, None]:
        # x (B, C_lat, H, W) -> y (B, C_lat, H, W)
        hs, cs, m, z = state
        new_h, new_c = [], []
        inp = x
        for i, (cell, h, c) in enumerate(zip(self.cells, hs, cs)):
            if i == 1:
                z = self.highway(inp, z)
                inp = z
            inp, c, m = cell(inp, h, c, m)
            new_h.append(inp)
            new_c.append(c)
        return self.head(inp), (new_h, new_c, m, z), None


PAPER_SIZES = RNN  # OpenSTL configs/mmnist: patch 4, 4 x 128 hidden, filter 5


predrnnpp = named_model("predrnnpp", "patch", "predrnnpp", PAPER_SIZES)
MODELS.register(family="recurrent", paper="PredRNN++ (ICML 2018)", schedule=LINEAR,
                presets=rnn_presets(paper_lr=1e-4,
                                    paper_model=PAPER_RNN_MODEL))(predrnnpp)
