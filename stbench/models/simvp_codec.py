"""SimVP per-frame encoder / decoder (docs/protocol.md, "What matches the published work").

Encoder: N_S layers of 3x3 conv -> GroupNorm(2) -> SiLU, strides 1, 2, 1, 2, ... (downsample 2^(N_S/2)).
Decoder mirrors it (conv to 4C + PixelShuffle(2) where the encoder strided); the first encoder
layer's output is added to the input of the last decoder layer, then a 1x1 readout to C channels.
"""

from __future__ import annotations

from torch import Tensor, nn

from stbench.layers import ConvNormAct, init_conv_
from stbench.models.base import Decoder, Encoder
from stbench.registry import DECODERS, ENCODERS


def _strided(n: int) -> list[bool]:
    return [i % 2 == 1 for i in range(n)]  # [False, True, False, True, ...]


@ENCODERS.register("simvp")
class SimVPEncoder(Encoder):
    def __init__(self, *, in_shape: tuple[int, int, int], hid_S: int = 64, N_S: int = 4, kernel: int = 3) -> None:
        super().__init__()
        C, H, W = in_shape
        downs = _strided(N_S)
        f = 2 ** sum(downs)
        if H % f or W % f:
            raise ValueError(f"simvp encoder with N_S={N_S} needs H and W divisible by {f}, got {H}x{W}")
        self.layers = nn.ModuleList(
            ConvNormAct(C if i == 0 else hid_S, hid_S, kernel, down=d) for i, d in enumerate(downs)
        )
        self.latent_shape = (hid_S, H // f, W // f)
        self.skip_channels = hid_S
        self.apply(init_conv_)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        # x: (N, C, H, W) -> z (N, hid_S, H/f, W/f), skip (N, hid_S, H, W)
        skip = z = self.layers[0](x)
        for layer in self.layers[1:]:
            z = layer(z)
        return z, skip


@DECODERS.register("simvp")
class SimVPDecoder(Decoder):
    def __init__(self, *, latent_shape: tuple[int, int, int], out_shape: tuple[int, int, int],
                 skip_channels: int = 0, N_S: int = 4, kernel: int = 3) -> None:
        super().__init__()
        C_lat = latent_shape[0]
        ups = list(reversed(_strided(N_S)))  # [True, False, True, False]
        self.layers = nn.ModuleList(ConvNormAct(C_lat, C_lat, kernel, up=u) for u in ups)
        self.readout = nn.Conv2d(C_lat, out_shape[0], 1)
        self.use_skip = skip_channels > 0
        if self.use_skip and skip_channels != C_lat:
            raise ValueError(f"simvp decoder adds the skip to a {C_lat}-channel map; got {skip_channels} skip channels")
        self.apply(init_conv_)

    def forward(self, z: Tensor, skip: Tensor | None) -> Tensor:
        # z: (N, C_lat, H', W'), skip (N, C_lat, H, W) -> (N, C, H, W)
        for layer in self.layers[:-1]:
            z = layer(z)
        if skip is not None and self.use_skip:
            z = z + skip
        return self.readout(self.layers[-1](z))
