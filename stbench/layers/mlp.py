"""Convolutional MLP of the MetaFormer blocks: 1x1 (d -> r*d) -> depthwise 3x3 -> GELU -> 1x1 (r*d -> d)."""

from __future__ import annotations

from torch import Tensor, nn


class ConvMlp(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.dw = nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.drop = nn.Dropout(drop) if drop > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.dw(self.fc1(x))))))
