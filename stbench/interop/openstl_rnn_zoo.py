"""OpenSTL PredRNNpp / MIM / E3DLSTM weights -> stbench ``predrnnpp`` / ``mim`` / ``e3dlstm``.

Key maps by structure (any number of layers, width, filter size, patch size, channels):

- OpenSTL's ``nn.Sequential(conv)`` wrappers (``conv_x.0.weight``) lose their ``.0``; the 3D convs
  of E3D-LSTM (``conv_x.0.conv3d.weight``) their ``.conv3d`` too.
- Convolutions that stbench runs as one conv over a concatenation get the published weights
  concatenated along the input channels, in the order of the concatenation: PredRNN++'s highway
  ``[x_concat, z_concat]``, MIM's MIM-N / MIM-S ``[conv_x_concat, conv_h_concat]``, E3D-LSTM's
  ``[conv_new_cell, conv_new_gm]``; MIM's first layer (PredRNN's ST-LSTM) is regrouped by output
  gate as in :class:`stbench.models.recurrent.STLSTMCell`.
- Patch channels: OpenSTL's ``reshape_patch`` orders a patch's channels (row, column, c), stbench's
  patch codec (c, row, column). The first layer's input convolution and the head's output channels
  are permuted accordingly (the identity for one-channel data such as Moving MNIST).
- Dropped, because the published forward never reads them: PredRNN++'s ``conv_o`` in every causal
  cell, and MIM's ``conv_last`` in every MIM-N cell.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from stbench.errors import CheckpointError
from stbench.interop.openstl import load_mapped
from stbench.models.recurrent import hidden_sizes


def patch_permutation(channels: int, patch_size: int) -> Tensor:
    """``perm[k]`` = OpenSTL's patch channel that is stbench's patch channel k.

    stbench (pixel_unshuffle): k = c * p * p + r * p + q; OpenSTL (reshape_patch): j = (r * p + q) * C + c.
    """
    C, p = int(channels), int(patch_size)
    k = torch.arange(C * p * p)
    c, rq = k // (p * p), k % (p * p)
    return rq * C + c


def _predrnnpp(sd: dict[str, Tensor], L: int, perm: Tensor) -> tuple[dict[str, Tensor], list[str]]:
    out: dict[str, Tensor] = {}
    for i in range(L):
        src, dst = f"cell_list.{i}.", f"temporal.cells.{i}."
        for name in ("conv_x", "conv_h", "conv_c", "conv_m", "conv_c2m", "conv_om"):
            out[dst + f"{name}.weight"] = sd[src + f"{name}.0.weight"]
        out[dst + "conv_last.weight"] = sd[src + "conv_last.weight"]
    out["temporal.cells.0.conv_x.weight"] = out["temporal.cells.0.conv_x.weight"][:, perm]
    out["temporal.highway.conv_x.weight"] = sd["gradient_highway.x_concat.0.weight"]
    out["temporal.highway.conv_z.weight"] = sd["gradient_highway.z_concat.0.weight"]
    out["temporal.head.weight"] = sd["conv_last.weight"][perm]
    return out, [f"cell_list.{i}.conv_o.0.weight" for i in range(L)]


def _stlstm(sd: dict[str, Tensor], src: str, dst: str, perm: Tensor) -> dict[str, Tensor]:
    """PredRNN's ST-LSTM cell: the same convolutions by name (its input columns in our patch order)."""
    return {
        dst + "conv_x.weight": sd[src + "conv_x.0.weight"][:, perm],
        dst + "conv_h.weight": sd[src + "conv_h.0.weight"],
        dst + "conv_m.weight": sd[src + "conv_m.0.weight"],
        dst + "conv_o.weight": sd[src + "conv_o.0.weight"],
        dst + "conv_last.weight": sd[src + "conv_last.weight"],
    }


def _mimn(sd: dict[str, Tensor], src: str, dst: str) -> dict[str, Tensor]:
    return {
        dst + "conv_x.weight": sd[src + "conv_x_concat.0.weight"],
        dst + "conv_h.weight": sd[src + "conv_h_concat.0.weight"],
        dst + "ct_weight": sd[src + "ct_weight"],
        dst + "oc_weight": sd[src + "oc_weight"],
    }


def _mim(sd: dict[str, Tensor], L: int, perm: Tensor) -> tuple[dict[str, Tensor], list[str]]:
    out = _stlstm(sd, "stlstm_layer.0.", "temporal.stlstm.", perm)
    for i in range(1, L):
        src, dst = f"stlstm_layer.{i}.", f"temporal.blocks.{i - 1}."
        for theirs, ours in (("conv_x_cc", "conv_x"), ("conv_t_cc", "conv_h"), ("conv_s_cc", "conv_m")):
            out[dst + f"{ours}.weight"] = sd[src + f"{theirs}.0.weight"]
        out[dst + "conv_last.weight"] = sd[src + "conv_last.weight"]
        out.update(_mimn(sd, src, dst + "mims."))
        out.update(_mimn(sd, f"stlstm_layer_diff.{i - 1}.", f"temporal.mimn.{i - 1}."))
    out["temporal.head.weight"] = sd["conv_last.weight"][perm]
    return out, [f"stlstm_layer_diff.{i}.conv_last.weight" for i in range(L - 1)]


def _e3dlstm(sd: dict[str, Tensor], L: int, perm: Tensor) -> tuple[dict[str, Tensor], list[str]]:
    out: dict[str, Tensor] = {}
    for i in range(L):
        src, dst = f"cell_list.{i}.", f"temporal.cells.{i}."
        out[dst + "norm_c.weight"] = sd[src + "_norm_c_t.weight"]
        out[dst + "norm_c.bias"] = sd[src + "_norm_c_t.bias"]
        for name in ("conv_x", "conv_h", "conv_gm"):
            out[dst + f"{name}.weight"] = sd[src + f"{name}.0.conv3d.weight"]
        out[dst + "conv_o.weight"] = torch.cat(
            [sd[src + "conv_new_cell.0.conv3d.weight"], sd[src + "conv_new_gm.0.conv3d.weight"]], dim=1)
        out[dst + "conv_last.weight"] = sd[src + "conv_last.conv3d.weight"]
    out["temporal.cells.0.conv_x.weight"] = out["temporal.cells.0.conv_x.weight"][:, perm]
    out["temporal.head.weight"] = sd["conv_last.weight"][perm]
    return out, []


KEY_MAPS = {"predrnnpp": _predrnnpp, "mim": _mim, "e3dlstm": _e3dlstm}


def convert(method: str, cfg: dict[str, Any], sd: dict[str, Tensor]):
    """OpenSTL ``PredRNNpp`` / ``MIM`` / ``E3DLSTM`` (config keys in_shape, num_hidden, filter_size,
    patch_size, aft_seq_length) -> the stbench model of the same name, weights loaded, eval mode.
    E3D-LSTM's kernel and window are read from the weights (OpenSTL fixes them, whatever filter_size says)."""
    from stbench.registry import MODELS

    if method not in KEY_MAPS:
        raise CheckpointError(f"openstl_rnn_zoo converts PredRNNpp, MIM and E3DLSTM, not '{method}'")
    if int(cfg.get("layer_norm", 0)):
        raise CheckpointError(f"OpenSTL {method} with layer_norm=1 is not supported (the published Moving MNIST "
                              "configs use layer_norm=0); convert a model trained with layer_norm=0")
    if int(cfg.get("stride", 1)) != 1:
        raise CheckpointError(f"OpenSTL {method} with stride={cfg['stride']} is not supported; only stride=1 runs "
                              "in OpenSTL's recurrent models")
    T, C, H, W = (int(v) for v in cfg["in_shape"])
    p = int(cfg["patch_size"])
    num_hidden = list(hidden_sizes(cfg["num_hidden"], 0))
    sizes: dict[str, Any] = {"filter_size": int(cfg["filter_size"])}
    if method == "e3dlstm" and "cell_list.0.conv_x.0.conv3d.weight" in sd:
        # OpenSTL's E3D-LSTM ignores filter_size: its kernel (2, 5, 5) and window 2 are fixed in its code
        kt, _, k = sd["cell_list.0.conv_x.0.conv3d.weight"].shape[-3:]
        sizes = {"filter_size": int(k), "time_kernel": int(kt), "window_length": int(sd["conv_last.weight"].shape[2])}
    model = MODELS.get(method)(in_shape=(T, C, H, W), t_out=int(cfg["aft_seq_length"]), num_hidden=num_hidden,
                               patch_size=p, **sizes)
    try:
        mapped, unused = KEY_MAPS[method](sd, len(num_hidden), patch_permutation(C, p))
    except KeyError as exc:
        raise CheckpointError(f"OpenSTL {method} weights lack {exc}; check the method and num_hidden in the "
                              "config") from None
    return load_mapped(model, mapped, source=f"OpenSTL {method}", unused=unused)
