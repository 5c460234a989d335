"""An example stbench plugin: a parallel temporal module made of residual time-folded convolutions.

Install it (``pip install -e examples/plugin``) and it appears in ``stbench list temporal``; then
``stbench run --models tconv`` trains it over the SimVP encoder/decoder, and ``tconv@patch`` over
the patch codec. Nothing else in stbench needs to change: its recipe defaults per preset sit on its
registry entry (same shape as a ``[models.<name>.<preset>]`` table of ``baselines/<dataset>.toml``;
the dataset's ``[presets.<preset>]`` supplies epochs, batch size and split sizes), so ``--preset
smoke`` trains it at its own tiny sizes with no TOML line.
"""

from __future__ import annotations

from torch import Tensor, nn

from stbench.models.base import ParallelTemporal
from stbench.registry import TEMPORAL


@TEMPORAL.register("tconv", presets={
    "paper": {"lr": 1e-3, "model": {"hid_S": 64, "N_S": 4, "hid_T": 256, "depth": 4}},
    "quick": {"lr": 2e-3, "model": {"hid_S": 16, "N_S": 4, "hid_T": 64, "depth": 2}},
    "smoke": {"lr": 1e-3, "model": {"hid_S": 8, "N_S": 2, "hid_T": 16, "depth": 1}},
})
class TimeConv(ParallelTemporal):
    """(B, T, C, H, W) -> fold time into channels -> ``depth`` residual 3x3 conv blocks -> unfold."""

    def __init__(self, *, in_shape: tuple[int, int, int, int], t_out: int, hid_T: int = 128, depth: int = 2) -> None:
        super().__init__()
        T, C = in_shape[:2]
        self.inp = nn.Conv2d(T * C, hid_T, 1)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(hid_T, hid_T, 3, padding=1), nn.GroupNorm(1, hid_T), nn.GELU())
            for _ in range(depth)
        )
        self.out = nn.Conv2d(hid_T, T * C, 1)

    def forward(self, z: Tensor) -> Tensor:
        B, T, C, H, W = z.shape
        x = self.inp(z.reshape(B, T * C, H, W))  # (B, hid_T, H, W)
        for blk in self.blocks:
            x = x + blk(x)
        return z + self.out(x).reshape(B, T, C, H, W)
