"""Recurrent temporal modules: ConvLSTM, PredRNN (ST-LSTM) and PredRNN.V2 (docs/protocol.md).

Each module is a stack of cells plus a bias-free 1x1 head from the top hidden state to the latent
channels; it implements only :meth:`init_state` and :meth:`step`. The time loop, with scheduled
sampling, is :meth:`stbench.models.base.RecurrentTemporal.forward`, shared by all of them.

Gate convolutions: one bias-free convolution per input source, as published -- ``conv_x(x) + conv_h(h)``
for ConvLSTM's four gates; ``conv_x``, ``conv_h``, ``conv_m`` for the ST-LSTM's seven -- the gates that read
the same input computed together (one convolution, the gates' channels stacked). They keep the published
parameter names, initialisation (each convolution's own fan-in) and FLOPs, and avoid copying [x, h] into one
tensor every step (benchmarks/README.md section 7 has the timings of both forms). Weights saved when ConvLSTM
ran one convolution over ``cat([x, h])`` (``conv_xh``) still load (:func:`stbench.models.base.split_fused_conv`).
The ST-LSTM's forget gates get +1 (the published ConvLSTM adds none, see :class:`ConvLSTM`).

Parameter counts with the Moving MNIST config (patch 4: 16 latent channels, 4 x 128, filter 5):
``predrnn`` 23,838,720 (23.8M published), ``predrnn_v2`` 23,855,104 (23.9M; one 1x1 adapter shared
by all layers), ``convlstm`` 11,675,648. The published ConvLSTM figure, 15.0M, also counts a
``conv_o`` (2*128 -> 128, 5x5, bias-free) that the peer's ConvLSTM cell constructs in every layer
and never uses in its forward: 4 x 819,200 = 3,276,800 dead parameters, 11,675,648 + 3,276,800 =
14,952,448 = 15.0M. stbench does not carry dead parameters; its FLOPs (56.8G) are the published ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stbench.models.base import RecurrentTemporal, split_fused_conv
from stbench.registry import TEMPORAL


def hidden_sizes(num_hidden: int | str | Sequence[int], num_layers: int) -> tuple[int, ...]:
    """``128`` (with num_layers), ``"128,128"`` (a CLI flag) or ``(128, 128)`` -> a tuple of ints."""
    if isinstance(num_hidden, str):
        num_hidden = [int(s) for s in num_hidden.split(",") if s.strip()]
    if isinstance(num_hidden, int):
        num_hidden = [num_hidden] * int(num_layers)
    sizes = tuple(int(n) for n in num_hidden)
    if not sizes or min(sizes) < 1:
        raise ValueError(f"num_hidden must name at least one positive layer width, got {num_hidden!r}")
    return sizes


def _conv(c_in: int, c_out: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, 1, k // 2, bias=False)


# ---------------------------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------------------------
class ConvLSTMCell(nn.Module):
    """ConvLSTM without peepholes or layer norm; gates (i, f, g, o) from conv_x(x) + conv_h(h).

    i, f, g, o = conv_x(x) + conv_h(h);  c' = sig(f + b) * c + sig(i) * tanh(g);  h' = sig(o) * tanh(c').
    The :class:`ConvLSTM` stack uses b = 0, as the published ConvLSTM-S does (OpenSTL's cell stores a
    forget bias of 1 but never adds it); the cell itself keeps b as a parameter.
    """

    def __init__(self, c_in: int, num_hidden: int, filter_size: int, forget_bias: float = 1.0) -> None:
        super().__init__()
        self.num_hidden = num_hidden
        self.forget_bias = float(forget_bias)
        self.conv_x = _conv(c_in, 4 * num_hidden, filter_size)  # (i, f, g, o)
        self.conv_h = _conv(num_hidden, 4 * num_hidden, filter_size)  # (i, f, g, o)
        split_fused_conv(self, "conv_xh", "conv_x", "conv_h")

    def forward(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        # x (B, C_in, H, W), h and c (B, nh, H, W)
        i, f, g, o = (self.conv_x(x) + self.conv_h(h)).chunk(4, dim=1)  # 4 x (B, nh, H, W)
        c = torch.addcmul(torch.sigmoid(i) * torch.tanh(g), torch.sigmoid(f + self.forget_bias), c)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class STLSTMCell(nn.Module):
    """Spatiotemporal LSTM cell of PredRNN.

    Temporal memory C, gates from x and h; spatiotemporal memory M, gates from x and M::

        i, f, g, i', f', g', o_x = conv_x(x)     i_h, f_h, g_h, o_h = conv_h(h)     i_m, f_m, g_m = conv_m(m)
        dc = sig(i + i_h) * tanh(g + g_h)       c' = sig(f + f_h + 1) * c + dc
        dm = sig(i' + i_m) * tanh(g' + g_m)     m' = sig(f' + f_m + 1) * m + dm
        o  = sig(o_x + o_h + conv_o([c', m']))  h' = o * tanh(conv_last([c', m']))

    The published convolutions and gate order (conv_x C_in -> 7nh, conv_h nh -> 4nh, conv_m nh -> 3nh,
    conv_o k x k 2nh -> nh, conv_last 1x1 2nh -> nh), so released weights load by name. Three separate
    convolutions measured faster than two over concatenated inputs ([x, h] and [x, m]) in fp32 on CPU
    (no input copies, x's gradient computed once; benchmarks/README.md section 7).
    Returns (h', c', m', dc, dm); the increments dc, dm feed PredRNN.V2's decoupling loss.
    """

    def __init__(self, c_in: int, num_hidden: int, filter_size: int, forget_bias: float = 1.0) -> None:
        super().__init__()
        nh = num_hidden
        self.num_hidden = nh
        self.forget_bias = float(forget_bias)
        self.conv_x = _conv(c_in, 7 * nh, filter_size)  # (i, f, g, i', f', g', o)
        self.conv_h = _conv(nh, 4 * nh, filter_size)  # (i, f, g, o)
        self.conv_m = _conv(nh, 3 * nh, filter_size)  # (i', f', g')
        self.conv_o = _conv(2 * nh, nh, filter_size)
        self.conv_last = _conv(2 * nh, nh, 1)

    def forward(self, x: Tensor, h: Tensor, c: Tensor, m: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        # x (B, C_in, H, W); h, c, m (B, nh, H, W)
        nh, fb = self.num_hidden, self.forget_bias
        # split, not slices: the backward of a split is one cat, of each slice a zero-filled full-width gradient
        x_c, x_m, o_x = self.conv_x(x).split((3 * nh, 3 * nh, nh), dim=1)
        h_c, o_h = self.conv_h(h).split((3 * nh, nh), dim=1)
        i, f, g = (x_c + h_c).chunk(3, dim=1)
        i_m, f_m, g_m = (x_m + self.conv_m(m)).chunk(3, dim=1)
        dc = torch.sigmoid(i) * torch.tanh(g)
        c = torch.addcmul(dc, torch.sigmoid(f + fb), c)
        dm = torch.sigmoid(i_m) * torch.tanh(g_m)
        m = torch.addcmul(dm, torch.sigmoid(f_m + fb), m)
        mem = torch.cat([c, m], dim=1)  # (B, 2nh, H, W)
        h = torch.sigmoid(o_x + o_h + self.conv_o(mem)) * torch.tanh(self.conv_last(mem))
        return h, c, m, dc, dm


# ---------------------------------------------------------------------------------------------
# Stacks
# ---------------------------------------------------------------------------------------------
class _CellStack(RecurrentTemporal):
    """Shared construction: layer widths, the 1x1 head, zero states in the weights' memory format."""

    def __init__(self, *, in_shape: tuple[int, int, int, int], t_out: int,
                 num_hidden: int | str | Sequence[int], num_layers: int) -> None:
        super().__init__()
        self.t_in, self.c_lat = int(in_shape[0]), int(in_shape[1])
        self.t_out = int(t_out)
        self.num_hidden = hidden_sizes(num_hidden, num_layers)
        self.head = nn.Conv2d(self.num_hidden[-1], self.c_lat, 1, bias=False)  # top h -> latent frame

    def _zeros(self, x: Tensor, channels: int) -> Tensor:
        # (B, channels, H, W) zeros with x's dtype/device and the layout of the model's weights
        z = x.new_zeros(x.shape[0], channels, x.shape[2], x.shape[3])
        w = self.head.weight
        if w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous():
            z = z.contiguous(memory_format=torch.channels_last)
        return z


@TEMPORAL.register("convlstm")
class ConvLSTM(_CellStack):
    """Stack of ConvLSTM cells (ConvLSTM-S of the OpenSTL tables); state = (h per layer, c per layer).

    ``forget_bias`` defaults to 0: the published forward (OpenSTL's ``ConvLSTMCell``) computes
    ``sigmoid(f_x + f_h)`` with no bias, and its released weights were trained that way.
    """

    def __init__(self, *, in_shape: tuple[int, int, int, int], t_out: int,
                 num_hidden: int | str | Sequence[int] = (128, 128, 128, 128), num_layers: int = 4,
                 filter_size: int = 5, forget_bias: float = 0.0) -> None:
        super().__init__(in_shape=in_shape, t_out=t_out, num_hidden=num_hidden, num_layers=num_layers)
        c_ins = (self.c_lat, *self.num_hidden[:-1])
        self.cells = nn.ModuleList(
            ConvLSTMCell(c, nh, filter_size, forget_bias) for c, nh in zip(c_ins, self.num_hidden)
        )

    def init_state(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        zeros = {nh: self._zeros(x, nh) for nh in set(self.num_hidden)}  # read-only, shared
        return [zeros[nh] for nh in self.num_hidden], [zeros[nh] for nh in self.num_hidden]

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any, None]:
        # x (B, C_lat, H, W) -> y (B, C_lat, H, W)
        hs, cs = state
        new_h, new_c = [], []
        inp = x
        for cell, h, c in zip(self.cells, hs, cs):
            inp, c = cell(inp, h, c)
            new_h.append(inp)
            new_c.append(c)
        return self.head(inp), (new_h, new_c), None


@TEMPORAL.register("predrnn")
class PredRNN(_CellStack):
    """Stack of ST-LSTM cells; M flows zig-zag: up through the layers at time t, then from the top
    layer into layer 1 at t + 1. State = (h per layer, c per layer, m)."""

    def __init__(self, *, in_shape: tuple[int, int, int, int], t_out: int,
                 num_hidden: int | str | Sequence[int] = (128, 128, 128, 128), num_layers: int = 4,
                 filter_size: int = 5, forget_bias: float = 1.0) -> None:
        super().__init__(in_shape=in_shape, t_out=t_out, num_hidden=num_hidden, num_layers=num_layers)
        if len(set(self.num_hidden)) != 1:
            raise ValueError(f"{type(self).__name__} passes M from layer to layer (and from the top back to the "
                             f"bottom), so all layers need the same width; got num_hidden={self.num_hidden}")
        c_ins = (self.c_lat, *self.num_hidden[:-1])
        self.cells = nn.ModuleList(
            STLSTMCell(c, nh, filter_size, forget_bias) for c, nh in zip(c_ins, self.num_hidden)
        )

    def init_state(self, x: Tensor) -> tuple[list[Tensor], list[Tensor], Tensor]:
        z = self._zeros(x, self.num_hidden[0])  # read-only, shared
        n = len(self.num_hidden)
        return [z] * n, [z] * n, z

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any, Tensor | None]:
        # x (B, C_lat, H, W) -> y (B, C_lat, H, W)
        hs, cs, m = state
        new_h, new_c, dcs, dms = [], [], [], []
        inp = x
        for cell, h, c in zip(self.cells, hs, cs):
            inp, c, m, dc, dm = cell(inp, h, c, m)
            new_h.append(inp)
            new_c.append(c)
            dcs.append(dc)
            dms.append(dm)
        return self.head(inp), (new_h, new_c, m), self.aux_loss(dcs, dms)

    def aux_loss(self, dcs: list[Tensor], dms: list[Tensor]) -> Tensor | None:
        return None


@TEMPORAL.register("predrnn_v2")
class PredRNNv2(PredRNN):
    """PredRNN.V2: PredRNN plus the memory decoupling loss.

    Per layer, the increments dc and dm go through one shared bias-free 1x1 adapter (nh -> nh);
    per sample and channel, the cosine similarity of the two over the H*W positions is taken; the
    step's aux loss is ``decouple_beta * mean |cos|`` over layers, samples and channels. The time
    loop averages it over the T_in + T_out - 1 steps, which is the published mean over steps and
    layers. It is computed in eval mode too, as published, so validation losses include it. Its
    adapter is in the published 116.6G FLOPs; fvcore's tracer drops ops whose results are not
    returned, so a FLOP counter must return ``aux_loss`` beside ``pred`` to see it (``pred`` alone:
    115.95G, the cost of the forecast itself). Train with reverse scheduled sampling
    (the ``schedule`` on the model's registry entry, see :func:`stbench.models.sampling.default_schedule`).
    """

    def __init__(self, *, in_shape: tuple[int, int, int, int], t_out: int,
                 num_hidden: int | str | Sequence[int] = (128, 128, 128, 128), num_layers: int = 4,
                 filter_size: int = 5, forget_bias: float = 1.0, decouple_beta: float = 0.1) -> None:
        super().__init__(in_shape=in_shape, t_out=t_out, num_hidden=num_hidden, num_layers=num_layers,
                         filter_size=filter_size, forget_bias=forget_bias)
        nh = self.num_hidden[0]
        self.adapter = nn.Conv2d(nh, nh, 1, bias=False)
        self.decouple_beta = float(decouple_beta)

    def aux_loss(self, dcs: list[Tensor], dms: list[Tensor]) -> Tensor:
        # one adapter call for all layers: 2L x (B, nh, H, W) -> (2*L*B, nh, H*W)
        d = self.adapter(torch.cat(dcs + dms, dim=0)).flatten(2)
        dc, dm = d.chunk(2, dim=0)  # (L*B, nh, H*W) each
        return self.decouple_beta * F.cosine_similarity(dc, dm, dim=2).abs().mean()
