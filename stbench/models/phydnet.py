"""PhyDNet (Le Guen & Thome, CVPR 2020) as OpenSTL runs it on Moving MNIST.

Codec (``phydnet`` encoder / decoder, learned, so the time loop feeds back decoded frames); a block is
conv 3x3 + GroupNorm(16) + LeakyReLU(0.2) (transposed conv for the decoder's blocks):
    encoder  block(C -> nf, stride 2), block(nf -> nf), block(nf -> 2nf, stride p/2)
             (N, C, H, W) -> (N, 2nf, H/p, W/p)                           p = patch_size, 2 or 4
    decoder  up-block(2nf -> nf, stride 2), up-block(nf -> nf), transposed conv (nf -> C, stride p/2), sigmoid

Temporal module ``phydnet``: the encoded frame z feeds two branches, each with its own two-block
encoder and decoder (stride 1, 2nf channels):
    physical   z_p = E_p(z);  PhyCell:  K = sig(gate([z_p, h]));  h~ = h + F(h);  h' = h~ + K * (z_p - h~)
               with F = conv k x k (2nf -> 49) + GroupNorm(7) + conv 1x1 (49 -> 2nf)
    residual   z_r = E_r(z);  ConvLSTM with biases, gates (i, f, o, g), no forget bias, widths 128, 128, 64
    output     D_p(h') + D_r(top ConvLSTM h)        (the codec's decoder turns it into the next frame)
All widths are fixed in the published code (nf = 32, 49 PhyCell channels, 7 x 7 kernel, ConvLSTM
128, 128, 64, 3 x 3); they are arguments here only so that the smoke / quick presets can shrink them.

Moment constraint (the published training loss): for every input channel b of PhyCell's k x k
convolution W (49, 2nf, 7, 7), the moment matrix M0 W[:, b] M1^T (M[i, a] = (a - 3)^i / i!, computed
in float64) is pulled towards the identity basis (filter o = 7i + j should measure the (i, j)-th
derivative): sum_b MSE(m_b, C). The published loss is sum over the T_in + T_out - 1 steps of the frame
MSE plus this sum; stbench's loss is the mean frame MSE plus this sum / (T_in + T_out - 1) -- the
published loss divided by the number of steps. The module returns the sum as the first step's ``aux``
and the shared loop divides aux by the number of steps. Published training also decays teacher
forcing: with probability max(0, 1 - 0.003 * epoch) per BATCH, all prediction steps read the true frame
(``sampling = {kind = "linear", draw = "batch", ...}``, keyed to the iteration, see ``presets``).

Counts at the Moving MNIST config: 3,091,732 parameters (OpenSTL's own count; it registers PhyCell
and the ConvLSTM twice, the parameters once) and fvcore 15,327,511,168 FLOPs (19 steps, plus the 2.15M
of the moment matrices, which OpenSTL's FLOP count also traces; its partial reconstructions
out_phys / out_conv are never used and are not computed here).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from stbench.models.base import Decoder, Encoder, RecurrentTemporal
from stbench.models.zoo import named_model
from stbench.models.zoo_recurrent import QUICK_LINEAR
from stbench.registry import DECODERS, ENCODERS, MODELS, TEMPORAL


def _block(c_in: int, c_out: int, stride: int = 1, up: bool = False) -> nn.Sequential:
    if up:
        conv: nn.Module = nn.ConvTranspose2d(c_in, c_out, 3, stride, 1, output_padding=1 if stride == 2 else 0)
    else:
        conv = nn.Conv2d(c_in, c_out, 3, stride, 1)
    return nn.Sequential(conv, nn.GroupNorm(16, c_out), nn.LeakyReLU(0.2))


def _patch(patch_size: int) -> int:
    if int(patch_size) not in (2, 4):
        raise ValueError(f"PhyDNet's codec downsamples by 2 or 4 (patch_size 2 or 4), got {patch_size}")
    return int(patch_size)


def _check_nf(nf: int) -> int:
    if nf < 16 or nf % 16:
        raise ValueError(f"PhyDNet's blocks use GroupNorm(16), so nf must be a multiple of 16, got {nf}")
    return int(nf)


# ---------------------------------------------------------------------------------------------
# Codec
# ---------------------------------------------------------------------------------------------
@ENCODERS.register("phydnet")
class PhyDNetEncoder(Encoder):
    """(N, C, H, W) -> (N, 2nf, H/p, W/p); OpenSTL's encoder_E."""

    frame_feedback = True

    def __init__(self, *, in_shape: tuple[int, int, int], nf: int = 32, patch_size: int = 4) -> None:
        super().__init__()
        C, H, W = in_shape
        p, nf = _patch(patch_size), _check_nf(nf)
        if H % p or W % p:
            raise ValueError(f"PhyDNet encoder with patch_size={p} needs H and W divisible by it, got {H}x{W}")
        self.net = nn.Sequential(_block(C, nf, 2), _block(nf, nf), _block(nf, 2 * nf, p // 2))
        self.latent_shape = (2 * nf, H // p, W // p)
        self.skip_channels = 0

    def forward(self, x: Tensor) -> tuple[Tensor, None]:
        return self.net(x), None


@DECODERS.register("phydnet")
class PhyDNetDecoder(Decoder):
    """(N, 2nf, H/p, W/p) -> (N, C, H, W) in (0, 1); OpenSTL's decoder_D followed by its sigmoid."""

    def __init__(self, *, latent_shape: tuple[int, int, int], out_shape: tuple[int, int, int],
                 skip_channels: int = 0, nf: int = 32, patch_size: int = 4) -> None:
        super().__init__()
        C, H, W = out_shape
        p, nf = _patch(patch_size), _check_nf(nf)
        if tuple(latent_shape) != (2 * nf, H // p, W // p):
            raise ValueError(f"PhyDNet decoder with nf={nf}, patch_size={p} maps {(2 * nf, H // p, W // p)} to "
                             f"{tuple(out_shape)}; got latent shape {tuple(latent_shape)} (pair it with the "
                             "phydnet encoder)")
        s = p // 2
        self.net = nn.Sequential(_block(2 * nf, nf, 2, up=True), _block(nf, nf, up=True),
                                 nn.ConvTranspose2d(nf, C, 3, s, 1, output_padding=1 if s == 2 else 0))

    def forward(self, z: Tensor, skip: Tensor | None) -> Tensor:
        return torch.sigmoid(self.net(z))


# ---------------------------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------------------------
class PhyCell(nn.Module):
    """One PhyCell layer: physical prediction h + F(h), corrected towards the input with a learned gain."""

    def __init__(self, channels: int, hidden: int, kernel: int) -> None:
        super().__init__()
        if hidden % 7:
            raise ValueError(f"PhyCell's GroupNorm has 7 groups, so phy_hidden must be a multiple of 7, got {hidden}")
        self.conv1 = nn.Conv2d(channels, hidden, kernel, 1, kernel // 2)
        self.norm = nn.GroupNorm(7, hidden)
        self.conv2 = nn.Conv2d(hidden, channels, 1)
        self.gate = nn.Conv2d(2 * channels, channels, 3, 1, 1)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        # x, h (B, C, H, W)
        k = torch.sigmoid(self.gate(torch.cat([x, h], dim=1)))
        h_tilde = h + self.conv2(self.norm(self.conv1(h)))
        return h_tilde + k * (x - h_tilde)


class PhyConvLSTMCell(nn.Module):
    """ConvLSTM cell of PhyDNet: one conv (with bias) over [x, h]; gates (i, f, o, g); no forget bias."""

    def __init__(self, c_in: int, hidden: int, kernel: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in + hidden, 4 * hidden, kernel, 1, kernel // 2)

    def forward(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        i, f, o, g = self.conv(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


def moment_matrix(size: int) -> Tensor:
    """(size, size) float64: M[i, a] = (a - (size - 1) // 2)^i / i!  (kernel -> moments along one axis)."""
    a = torch.arange(size, dtype=torch.float64) - (size - 1) // 2
    return torch.stack([a ** i / math.factorial(i) for i in range(size)])


@TEMPORAL.register("phydnet")
class PhyDNet(RecurrentTemporal):
    """PhyCell branch + ConvLSTM branch over the encoded frame; state = (PhyCell h, ConvLSTM h's, c's,
    the pending moment loss)."""

    def __init__(self, *, in_shape: tuple[int, int, int, int], t_out: int, phy_hidden: int = 49,
                 phy_kernel: int = 7, rnn_hidden: int | str | Sequence[int] = (128, 128, 64),
                 rnn_kernel: int = 3, moment_loss: bool = True) -> None:
        super().__init__()
        self.t_in, c, _, _ = (int(v) for v in in_shape)
        self.t_out = int(t_out)
        if isinstance(rnn_hidden, str):
            rnn_hidden = [int(s) for s in rnn_hidden.split(",") if s.strip()]
        rnn = (int(rnn_hidden),) if isinstance(rnn_hidden, int) else tuple(int(n) for n in rnn_hidden)
        if not rnn or rnn[-1] != c:
            raise ValueError(f"PhyDNet's top ConvLSTM layer feeds the residual decoder, so it needs the latent's "
                             f"{c} channels; got rnn_hidden={rnn}")
        self.rnn_hidden = rnn
        self.enc_phys = nn.Sequential(_block(c, c), _block(c, c))
        self.enc_conv = nn.Sequential(_block(c, c), _block(c, c))
        self.dec_phys = nn.Sequential(_block(c, c, up=True), _block(c, c, up=True))
        self.dec_conv = nn.Sequential(_block(c, c, up=True), _block(c, c, up=True))
        self.phycell = PhyCell(c, int(phy_hidden), int(phy_kernel))
        c_ins = (c, *rnn[:-1])
        self.convlstm = nn.ModuleList(PhyConvLSTMCell(ci, nh, int(rnn_kernel)) for ci, nh in zip(c_ins, rnn))
        self.moment_loss = bool(moment_loss)
        if self.moment_loss:
            k = int(phy_kernel)
            if int(phy_hidden) != k * k:
                raise ValueError(f"PhyDNet's moment constraint pairs each of the {k * k} PhyCell filters with one "
                                 f"moment; set phy_hidden={k * k} (or moment_loss=False), got {phy_hidden}")
            m = moment_matrix(k)
            self.register_buffer("moment_M0", m, persistent=False)
            self.register_buffer("moment_M1", m.clone(), persistent=False)
            target = torch.eye(k * k, dtype=torch.float32).view(k * k, k, k)  # filter 7i + j -> moment (i, j)
            self.register_buffer("moment_target", target, persistent=False)

    def constraint_loss(self) -> Tensor:
        """sum over PhyCell's input channels b of MSE(M0 W[:, b] M1^T, identity basis), in float64 like
        the published K2M (two matmuls, ordered so a FLOP counter sees the published 2 * 49 * C * 343)."""
        w = self.phycell.conv1.weight  # (hidden, C, k, k)
        with torch.autocast(device_type=w.device.type, enabled=False):
            m = w.double() @ self.moment_M1.double().t()  # contract the column axis
            m = (m.transpose(-1, -2) @ self.moment_M0.double().t()).transpose(-1, -2).float()  # and the row axis
            err = (m - self.moment_target[:, None]) ** 2  # (hidden, C, k, k)
            return err.mean(dim=(0, 2, 3)).sum()

    def init_state(self, x: Tensor) -> tuple[Tensor, list[Tensor], list[Tensor], Tensor | None]:
        # x (B, C, H, W) the first encoded frame: zero states of its size
        B, _, H, W = x.shape
        zeros = [x.new_zeros(B, nh, H, W) for nh in self.rnn_hidden]
        aux = self.constraint_loss() if self.moment_loss else None
        return torch.zeros_like(x), zeros, list(zeros), aux

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any, Tensor | None]:
        # x (B, C, H, W) encoded frame -> (B, C, H, W) sum of the two branches' decodings
        hp, hs, cs, aux = state
        hp = self.phycell(self.enc_phys(x), hp)
        inp = self.enc_conv(x)
        new_h, new_c = [], []
        for cell, h, c in zip(self.convlstm, hs, cs):
            inp, c = cell(inp, h, c)
            new_h.append(inp)
            new_c.append(c)
        y = self.dec_phys(hp) + self.dec_conv(inp)
        return y, (hp, new_h, new_c, None), aux  # the moment loss once per sequence (first step)


# ---------------------------------------------------------------------------------------------
# Named model
# ---------------------------------------------------------------------------------------------
PHYDNET_PAPER = dict(patch_size=4, nf=32, phy_hidden=49, phy_kernel=7, rnn_hidden=(128, 128, 64), rnn_kernel=3)
# teacher forcing max(0, 1 - 0.003 * epoch), one draw per batch; per iteration at 625 iterations per epoch
# (10,000 sequences, batch 16): rate 0.003 / 625, zero from epoch 333.3 on
PHYDNET_SCHEDULE = {"kind": "linear", "draw": "batch", "start": 1.0, "rate": 4.8e-6, "stop_iter": 208_334}


phydnet = named_model("phydnet", "phydnet", "phydnet", PHYDNET_PAPER)
MODELS.register(
    family="recurrent", paper="PhyDNet (CVPR 2020)",
    presets={
        "paper": {"lr": 1e-3, "batch_size": 16, "model": {}, "sampling": PHYDNET_SCHEDULE},
        "quick": {"lr": 2e-3, "model": {"nf": 16, "rnn_hidden": [32, 32]},
                  "sampling": {**QUICK_LINEAR, "draw": "batch"}},
        "smoke": {"lr": 1e-3, "model": {"nf": 16, "rnn_hidden": [32]},
                  "sampling": {"kind": "linear", "draw": "batch", "rate": 0.1, "stop_iter": 10}},
    },
    schedule=PHYDNET_SCHEDULE,
)(phydnet)

