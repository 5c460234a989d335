"""MIM, Memory In Memory (Wang et al., CVPR 2019), as in OpenSTL.

Stack of L layers of one width nh. Layer 0 is PredRNN's ST-LSTM cell; layers i >= 1 are MIM
blocks, each fed by a MIM-N cell (non-stationary memory) that models the differences of the layer
below over time; the spatiotemporal memory M flows zig-zag as in PredRNN::

    h0, c0, M = stlstm(x, h0, c0, M)                                   (h0_prev: h0 before the step)
    d_1 = mimn_1(h0 - h0_prev, d_1), d_i = mimn_i(d_{i-1}, d_i)        only from the second step on
    hi, ci, M = mimblock_i(h_{i-1}, d_i, hi, ci, M)                     i >= 1
    y = head(h_{L-1})

At the first step the MIM-N cells are not run (the published code calls them and discards the
result) and the blocks see zero differences.

MIM-N cell ``(x, h, c) -> (h', c')``, with per-position weights ``w_ci`` (2nh, H, W), ``w_co``
(nh, H, W)::

    [i, g, f, o] = conv_x(x) + conv_h(h)   (the published conv_x_concat, conv_h_concat)
    c' = sig(f + w_cf * c + 1) * c + sig(i + w_ci * c) * tanh(g)
    h' = sig(o + w_co * c') * tanh(c')

MIM block ``(x, d, h, c, M) -> (h', c', M')``, its stationary module MIM-S being a MIM-N cell run on
(d, c) with its own cell state s::

    [i, g, f, o]_x = conv_x(x)   [i, g, o]_h = conv_h(h)   [i, g, f, o]_m = conv_m(M)
    M' = sig(f_x + f_m + 1) * M + sig(i_x + i_m) * tanh(g_x + g_m)
    c_s, s = mims(d, c, s)                      (s enters each step detached, as published)
    c' = c_s + sig(i_x + i_h) * tanh(g_x + g_h)
    h' = sig(o_x + o_h + o_m) * tanh(conv_last([c', M']))

Published quirk, reproduced: OpenSTL keeps the MIM-S cell state s of each block as a module
attribute, passed in detached at every step (no gradient flows through s across time). It is also
never reset between sequences (hence its assertion that train and validation batch sizes agree);
stbench starts every sequence from zero state, which is what OpenSTL computes for a model's first
sequence.

Counts (Moving MNIST, patch 4, 4 x 128, filter 5): 37,945,344 parameters and 179,180,666,880 fvcore
FLOPs (the published FLOPs). OpenSTL's count, 38,043,648, also includes a ``conv_last`` (2nh -> nh,
1x1) that each MIM-N cell constructs and never uses: 3 x 32,768 = 98,304 dead parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from stbench.models.base import split_fused_conv
from stbench.models.recurrent import STLSTMCell, _CellStack
from stbench.models.zoo import named_model
from stbench.models.zoo_recurrent import LINEAR, PAPER_RNN_MODEL, RNN, rnn_presets
from stbench.registry import MODELS, TEMPORAL


def _conv(c_in: int, c_out: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, 1, k // 2, bias=False)


class MIMNCell(nn.Module):
    """Non-stationary cell (MIM-N; also the stationary MIM-S inside a block): ``(x, h, c) -> (h', c')``."""

    def __init__(self, num_hidden: int, height: int, width: int, filter_size: int,
                 forget_bias: float = 1.0) -> None:
        super().__init__()
        nh = num_hidden
        self.forget_bias = float(forget_bias)
        self.conv_x = _conv(nh, 4 * nh, filter_size)  # (i, g, f, o)
        self.conv_h = _conv(nh, 4 * nh, filter_size)  # (i, g, f, o)
        split_fused_conv(self, "conv_xh", "conv_x", "conv_h")
        self.ct_weight = nn.Parameter(torch.zeros(2 * nh, height, width))  # (w_ci, w_cf) per position
        self.oc_weight = nn.Parameter(torch.zeros(nh, height, width))  # w_co per position

    def forward(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        # x, h, c (B, nh, H, W)
        i, g, f, o = (self.conv_x(x) + self.conv_h(h)).chunk(4, dim=1)
        w_ci, w_cf = self.ct_weight.chunk(2, dim=0)  # (nh, H, W) each
        c = torch.sigmoid(f + w_cf * c + self.forget_bias) * c + torch.sigmoid(i + w_ci * c) * torch.tanh(g)
        h = torch.sigmoid(o + self.oc_weight * c) * torch.tanh(c)
        return h, c


class MIMBlock(nn.Module):
    """MIM block: ``(x, d, h, c, M, s) -> (h', c', M', s')`` (see the module docstring)."""

    def __init__(self, num_hidden: int, height: int, width: int, filter_size: int,
                 forget_bias: float = 1.0) -> None:
        super().__init__()
        nh, k = num_hidden, filter_size
        self.forget_bias = float(forget_bias)
        self.conv_x = _conv(nh, 4 * nh, k)  # (i, g, f, o)
        self.conv_h = _conv(nh, 3 * nh, k)  # (i, g, o)
        self.conv_m = _conv(nh, 4 * nh, k)  # (i, g, f, o)
        self.conv_last = _conv(2 * nh, nh, 1)
        self.mims = MIMNCell(nh, height, width, filter_size, forget_bias)

    def forward(self, x: Tensor, d: Tensor, h: Tensor, c: Tensor, m: Tensor,
                s: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        # all (B, nh, H, W)
        i_x, g_x, f_x, o_x = self.conv_x(x).chunk(4, dim=1)
        i_h, g_h, o_h = self.conv_h(h).chunk(3, dim=1)
        i_m, g_m, f_m, o_m = self.conv_m(m).chunk(4, dim=1)
        m = torch.sigmoid(f_x + f_m + self.forget_bias) * m + torch.sigmoid(i_x + i_m) * torch.tanh(g_x + g_m)
        c_s, s = self.mims(d, c, s.detach())
        c = c_s + torch.sigmoid(i_x + i_h) * torch.tanh(g_x + g_h)
        h = torch.sigmoid(o_x + o_h + o_m) * torch.tanh(self.conv_last(torch.cat([c, m], dim=1)))
        return h, c, m, s


@TEMPORAL.register("mim")
class MIM(_CellStack):
    """ST-LSTM, then MIM blocks fed by MIM-N cells. State = (h, c per layer, M, d, n per MIM-N cell,
    s per block, whether a step has run)."""

    def __init__(self, *, in_shape: tuple[int, int, int, int], t_out: int,
                 num_hidden: int | str | Sequence[int] = (128, 128, 128, 128), num_layers: int = 4,
                 filter_size: int = 5, forget_bias: float = 1.0) -> None:
        super().__init__(in_shape=in_shape, t_out=t_out, num_hidden=num_hidden, num_layers=num_layers)
        if len(self.num_hidden) < 2 or len(set(self.num_hidden)) != 1:
            raise ValueError(f"{type(self).__name__} needs at least two layers of one width (M and the differences "
                             f"pass between layers); got num_hidden={self.num_hidden}")
        nh, L = self.num_hidden[0], len(self.num_hidden)
        H, W = int(in_shape[2]), int(in_shape[3])
        self.stlstm = STLSTMCell(self.c_lat, nh, filter_size, forget_bias)
        self.blocks = nn.ModuleList(MIMBlock(nh, H, W, filter_size, forget_bias) for _ in range(L - 1))
        self.mimn = nn.ModuleList(MIMNCell(nh, H, W, filter_size, forget_bias) for _ in range(L - 1))

    def init_state(self, x: Tensor) -> tuple[Any, ...]:
        z = self._zeros(x, self.num_hidden[0])  # read-only, shared
        n = len(self.num_hidden)
        return [z] * n, [z] * n, z, [z] * (n - 1), [z] * (n - 1), [z] * (n - 1), False

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any, None]:
        # x (B, C_lat, H, W) -> y (B, C_lat, H, W)
        hs, cs, m, ds, ns, ss, started = state
        h0, c0, m, _, _ = self.stlstm(x, hs[0], cs[0], m)
        new_h, new_c, new_d, new_n, new_s = [h0], [c0], [], [], []
        for i, (block, mimn) in enumerate(zip(self.blocks, self.mimn)):
            d, n = ds[i], ns[i]
            if started:  # differences from the second step on
                d, n = mimn(h0 - hs[0] if i == 0 else new_d[-1], d, n)
            h, c, m, s = block(new_h[-1], d, hs[i + 1], cs[i + 1], m, ss[i])
            new_h.append(h)
            new_c.append(c)
            new_d.append(d)
            new_n.append(n)
            new_s.append(s)
        return self.head(new_h[-1]), (new_h, new_c, m, new_d, new_n, new_s, True), None


PAPER_SIZES = RNN  # OpenSTL configs/mmnist: patch 4, 4 x 128 hidden, filter 5


mim = named_model("mim", "patch", "mim", PAPER_SIZES)
MODELS.register(family="recurrent", paper="MIM (CVPR 2019)", schedule=LINEAR,
                presets=rnn_presets(paper_model=PAPER_RNN_MODEL))(mim)
