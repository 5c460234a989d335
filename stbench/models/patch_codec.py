"""Parameter-free patch encoder / decoder of ConvLSTM and PredRNN (docs/protocol.md, "What matches the published work").

Space-to-depth with patch size p: (N, C, H, W) -> (N, C*p*p, H/p, W/p), e.g. 1x64x64 -> 16x16x16
for p = 4, and back. The published code's ``reshape_patch`` orders the new channels as
(row-in-patch, column-in-patch, c); ``pixel_unshuffle`` orders them as (c, row-in-patch,
column-in-patch). The two are identical for C = 1 (Moving MNIST) and differ only by a fixed channel
permutation otherwise, which the first convolution of any temporal module absorbs: the codec has
no parameters, so the models, their parameter counts and their FLOPs are the same either way.
Because the codec is a bijection, feeding predictions back in latent space (stbench's time loop)
equals the published feedback in pixel space.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from stbench.models.base import Decoder, Encoder
from stbench.registry import DECODERS, ENCODERS


def _patched_shape(shape: tuple[int, int, int], p: int, who: str) -> tuple[int, int, int]:
    C, H, W = shape
    if p < 1 or H % p or W % p:
        raise ValueError(f"patch {who} with patch_size={p} needs H and W divisible by it, got {H}x{W}")
    return (C * p * p, H // p, W // p)


@ENCODERS.register("patch")
class PatchEncoder(Encoder):
    """(N, C, H, W) -> (N, C*p*p, H/p, W/p); no skip features."""

    def __init__(self, *, in_shape: tuple[int, int, int], patch_size: int = 4) -> None:
        super().__init__()
        self.patch_size = int(patch_size)
        self.latent_shape = _patched_shape(tuple(in_shape), self.patch_size, "encoder")
        self.skip_channels = 0

    def forward(self, x: Tensor) -> tuple[Tensor, None]:
        return F.pixel_unshuffle(x, self.patch_size), None  # (N, C*p*p, H/p, W/p)


@DECODERS.register("patch")
class PatchDecoder(Decoder):
    """(N, C*p*p, H/p, W/p) -> (N, C, H, W); the inverse of :class:`PatchEncoder`."""

    def __init__(self, *, latent_shape: tuple[int, int, int], out_shape: tuple[int, int, int],
                 skip_channels: int = 0, patch_size: int = 4) -> None:
        super().__init__()
        self.patch_size = int(patch_size)
        expected = _patched_shape(tuple(out_shape), self.patch_size, "decoder")
        if tuple(latent_shape) != expected:
            raise ValueError(f"patch decoder with patch_size={patch_size} maps {expected} to {tuple(out_shape)}; "
                             f"got latent shape {tuple(latent_shape)} (pair it with the patch encoder)")

    def forward(self, z: Tensor, skip: Tensor | None) -> Tensor:
        return F.pixel_shuffle(z, self.patch_size)  # (N, C, H, W)
