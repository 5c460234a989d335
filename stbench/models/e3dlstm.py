"""E3D-LSTM, Eidetic 3D LSTM (Wang et al., ICLR 2019), as in OpenSTL.

Each step sees a temporal window of the last ``window_length`` (w = 2) inputs, (B, C, w, H, W), the
oldest zero-padded at the start. Every state of a layer is a short clip (B, nh, w, H, W); all
convolutions are 3D, bias-free, kernel (2, k, k) with no temporal padding, and their output (w - 1
frames) is stretched back to w frames by nearest-neighbour interpolation, as published. One step of
the L-layer stack (all layers nh wide)::

    [i, g, r, o, i', g', f']_x = conv_x(x)     [i, g, r, o]_h = conv_h(h)    [i, f, g, m]_M = conv_M(M)
    C' = LayerNorm(c + recall(sig(r_x + r_h), history)) + sig(i_x + i_h) * tanh(g_x + g_h)
    M' = sig(f'_x + f_M + 1) * tanh(m_M) + sig(i'_x + i_M) * tanh(g'_x + g_M)
    h' = tanh(conv_last([C', M'])) * sig(tanh(o_x + o_h + conv_o([C', M'])))

``history`` holds every cell state c the layer has had (the zero initial one included); the recall
gate attends over all of them: ``recall(q, K) = softmax(q K^T) K`` (no scaling), where q and each
stored state are laid out as the published code does, by a raw reshape of (B, nh, w, H, W) to
(B, w*H*W, nh) (positions and channels are mixed by that reshape; it is reproduced exactly). The
head, a bias-free Conv3d with kernel and stride (w, 1, 1), maps the top h to the next latent frame.
``conv_o`` is the published ``conv_new_cell(C') + conv_new_gm(M')`` as one conv over [C', M'].

Published quirk, reproduced: OpenSTL's cell returns the global memory M it was given, not M', so M
stays zero for ever; ``conv_M`` therefore always convolves zeros (it is computed, and counted, as
published, and its weights never receive a gradient), and M' reduces to sig(i'_x) * tanh(g'_x).

Loss (published): MSE + L1 over all next-frame outputs (the named model sets ``l1_alpha = 1``).
Counts (Moving MNIST, patch 4, 4 x 128, filter 5): 51,347,456 parameters and 298,871,967,040
fvcore FLOPs, both the published ones (convolutions 247.8G, recall attention 51.0G, layer norm).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stbench.models.base import RecurrentTemporal
from stbench.models.recurrent import hidden_sizes
from stbench.models.zoo import named_model
from stbench.models.zoo_recurrent import LINEAR, PAPER_RNN_MODEL, RNN, rnn_presets
from stbench.registry import MODELS, TEMPORAL


class WindowConv3d(nn.Conv3d):
    """Bias-free 3D conv, kernel (kt, k, k), spatial 'same' padding, no temporal padding; the output is
    resized to the input's (T, H, W) by nearest-neighbour interpolation (the published ``tf_Conv3d``)."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int, int]) -> None:
        super().__init__(c_in, c_out, kernel, 1, (0, kernel[1] // 2, kernel[2] // 2), bias=False)

    def forward(self, x: Tensor) -> Tensor:
        # x (B, C_in, T, H, W) -> (B, C_out, T, H, W)
        y = super().forward(x)
        if y.shape[-3:] != x.shape[-3:]:
            y = F.interpolate(y, size=x.shape[-3:], mode="nearest")
        return y


class EideticCell(nn.Module):
    """One eidetic 3D LSTM cell: ``(x, h, c, M, history) -> (h', C', M')`` (see the module docstring)."""

    def __init__(self, c_in: int, num_hidden: int, window_length: int, height: int, width: int,
                 filter_size: int, time_kernel: int = 2, forget_bias: float = 1.0) -> None:
        super().__init__()
        nh, kern = num_hidden, (time_kernel, filter_size, filter_size)
        self.num_hidden = nh
        self.forget_bias = float(forget_bias)
        self.conv_x = WindowConv3d(c_in, 7 * nh, kern)  # (i, g, r, o, i', g', f')
        self.conv_h = WindowConv3d(nh, 4 * nh, kern)  # (i, g, r, o)
        self.conv_gm = WindowConv3d(nh, 4 * nh, kern)  # (i', f', g', m) from M
        self.conv_o = WindowConv3d(2 * nh, nh, kern)  # = conv_new_cell(C') + conv_new_gm(M')
        self.conv_last = WindowConv3d(2 * nh, nh, (1, 1, 1))
        self.norm_c = nn.LayerNorm([nh, window_length, height, width])

    def recall(self, q: Tensor, keys: Tensor) -> Tensor:
        # q (B, nh, w, H, W); keys (B, N, nh) -> (B, nh, w, H, W)
        # einsum, not bmm, on purpose: fvcore counts an einsum from numpy's 4-digit FLOP estimate, and the
        # published 298.9G holds that figure (recall 51,005,640,000 against 51,002,736,640 exact MACs)
        query = q.reshape(q.shape[0], -1, self.num_hidden)  # (B, w*H*W, nh), the published raw reshape
        attn = torch.softmax(torch.einsum("bxc,byc->bxy", query, keys), dim=2)  # (B, w*H*W, N)
        return torch.einsum("bxy,byc->bxc", attn, keys).reshape(q.shape)

    def forward(self, x: Tensor, h: Tensor, c: Tensor, m: Tensor, keys: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # x (B, C_in, w, H, W); h, c, m (B, nh, w, H, W); keys (B, N, nh)
        i_x, g_x, r_x, o_x, ti_x, tg_x, tf_x = self.conv_x(x).chunk(7, dim=1)
        i_h, g_h, r_h, o_h = self.conv_h(h).chunk(4, dim=1)
        c = self.norm_c(c + self.recall(torch.sigmoid(r_x + r_h), keys))
        c = c + torch.sigmoid(i_x + i_h) * torch.tanh(g_x + g_h)
        i_m, f_m, g_m, m_m = self.conv_gm(m).chunk(4, dim=1)
        m = torch.sigmoid(tf_x + f_m + self.forget_bias) * torch.tanh(m_m) + torch.sigmoid(ti_x + i_m) * torch.tanh(
            tg_x + g_m)
        mem = torch.cat([c, m], dim=1)  # (B, 2nh, w, H, W)
        o = torch.tanh(o_x + o_h + self.conv_o(mem))
        h = torch.tanh(self.conv_last(mem)) * torch.sigmoid(o)
        return h, c, m


@TEMPORAL.register("e3dlstm")
class E3DLSTM(RecurrentTemporal):
    """Stack of eidetic 3D LSTM cells over a sliding input window. State = (last w - 1 inputs, h and
    c per layer, recall history per layer, global memory M)."""

    def __init__(self, *, in_shape: tuple[int, int, int, int], t_out: int,
                 num_hidden: int | str | Sequence[int] = (128, 128, 128, 128), num_layers: int = 4,
                 filter_size: int = 5, window_length: int = 2, time_kernel: int = 2,
                 forget_bias: float = 1.0) -> None:
        super().__init__()
        self.t_in, self.c_lat = int(in_shape[0]), int(in_shape[1])
        self.t_out = int(t_out)
        self.num_hidden = hidden_sizes(num_hidden, num_layers)
        if len(set(self.num_hidden)) != 1:
            raise ValueError(f"{type(self).__name__} passes its global memory through every layer, so all layers "
                             f"need the same width; got num_hidden={self.num_hidden}")
        if not 1 <= time_kernel <= window_length:
            raise ValueError(f"time_kernel must be between 1 and window_length={window_length}, got {time_kernel}")
        self.window_length = int(window_length)
        nh, H, W = self.num_hidden[0], int(in_shape[2]), int(in_shape[3])
        c_ins = (self.c_lat, *self.num_hidden[:-1])
        self.cells = nn.ModuleList(
            EideticCell(c, nh, self.window_length, H, W, filter_size, time_kernel, forget_bias) for c in c_ins
        )
        w = self.window_length
        self.head = nn.Conv3d(nh, self.c_lat, (w, 1, 1), (w, 1, 1), bias=False)  # top h clip -> latent frame

    def init_state(self, x: Tensor) -> tuple[Any, ...]:
        B, _, H, W = x.shape
        nh, n, w = self.num_hidden[0], len(self.num_hidden), self.window_length
        z = x.new_zeros(B, nh, w, H, W)  # read-only, shared
        no_keys = x.new_zeros(B, 0, nh)
        return [x.new_zeros(x.shape)] * (w - 1), [z] * n, [z] * n, [no_keys] * n, z

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any, None]:
        # x (B, C_lat, H, W) -> y (B, C_lat, H, W)
        prev, hs, cs, keys, m = state
        window = [*prev, x]
        inp = torch.stack(window, dim=2)  # (B, C_lat, w, H, W), oldest first
        new_h, new_c, new_k = [], [], []
        for cell, h, c, k in zip(self.cells, hs, cs, keys):
            k = torch.cat([k, c.reshape(c.shape[0], -1, c.shape[1])], dim=1)  # (B, N + w*H*W, nh)
            inp, c, _ = cell(inp, h, c, m, k)  # M' is not passed on (published)
            new_h.append(inp)
            new_c.append(c)
            new_k.append(k)
        y = self.head(inp).squeeze(2)  # (B, C_lat, H, W)
        return y, (window[1:], new_h, new_c, new_k, m), None


PAPER_SIZES = dict(RNN, l1_alpha=1.0)  # the published loss: MSE + L1


# quick at patch 8 (8 x 8 latent): the recall attention grows with the square of the latent grid, and a patch-4
# step costs 8x a patch-8 one; 2 x 32 hidden (2 x 16 learned too little in 6 epochs: test MSE 158.4)
e3dlstm = named_model("e3dlstm", "patch", "e3dlstm", PAPER_SIZES)
MODELS.register(family="recurrent", paper="E3D-LSTM (ICLR 2019)", schedule=LINEAR,
                presets=rnn_presets(paper_lr=1e-4,
                                    paper_model=PAPER_RNN_MODEL,
                                    quick_model={"num_hidden": [32, 32], "filter_size": 5, "patch_size": 8}))(e3dlstm)
