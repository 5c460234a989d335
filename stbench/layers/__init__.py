"""Shared layers, one idea per file (timm's habit)."""

from stbench.layers.conv import ConvNormAct, GroupConvNormAct, init_conv_, translator_stack
from stbench.layers.drop_path import DropPath
from stbench.layers.mlp import ConvMlp

__all__ = ["ConvNormAct", "GroupConvNormAct", "DropPath", "ConvMlp", "init_conv_", "translator_stack"]
