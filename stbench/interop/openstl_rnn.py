"""OpenSTL ``ConvLSTM`` / ``PredRNN`` / ``PredRNNv2`` weights -> the stbench recurrent models.

Key map (OpenSTL commit c74deb5; ``nh`` = a layer's width, ``k`` = ``filter_size``):

=====================================================  =============================================
OpenSTL                                                stbench
=====================================================  =============================================
``cell_list.<l>.conv_x.0.weight`` (G*nh, c_in, k, k)   ``temporal.cells.<l>.conv_x.weight`` (G = 7 ST-LSTM, 4)
``cell_list.<l>.conv_h.0.weight`` (4nh, nh, k, k)      ``temporal.cells.<l>.conv_h.weight``
``cell_list.<l>.conv_m.0.weight`` (3nh, nh, k, k)      ``temporal.cells.<l>.conv_m.weight`` (ST-LSTM)
``cell_list.<l>.conv_o.0.weight``, ``conv_last``       same names (ST-LSTM); ConvLSTM: unused, dropped
``conv_last.weight`` (C*p*p, nh_top, 1, 1)             ``temporal.head.weight``
``adapter.weight`` (PredRNNv2)                         ``temporal.adapter.weight``
=====================================================  =============================================

Both cells keep the published convolutions and gate order, so their weights map by name.

Quirks reproduced:
- OpenSTL's ConvLSTM cell builds ``conv_o`` and ``conv_last`` and never uses them, nor its forget
  bias; they are dropped and reported (our ConvLSTM has no forget bias either).
- Patches: OpenSTL's ``reshape_patch`` orders a patch's channels (row, column, c); our patch codec
  (``pixel_unshuffle``) orders them (c, row, column). Identical for C = 1; for C > 1 the first layer's
  input columns and the head's output rows are permuted here (:func:`patch_permutation`).
- Test time: OpenSTL's method feeds true frames for t < T_in and its own predictions after, with
  either sampling flag (``reverse_scheduled_sampling`` only changes how the all-zero/one test mask is
  laid out); stbench's test-time loop does exactly that, so no mask is needed.
- ``layer_norm=1`` and ``stride != 1`` variants are not supported (refused with a CheckpointError).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from stbench.errors import CheckpointError
from stbench.interop.openstl import load_mapped

_NAMES = {"convlstm": "ConvLSTM", "predrnn": "PredRNN", "predrnnv2": "PredRNNv2"}
_TEMPORAL = {"convlstm": "convlstm", "predrnn": "predrnn", "predrnnv2": "predrnn_v2"}


def patch_permutation(channels: int, patch_size: int) -> Tensor:
    """``perm[j]`` = OpenSTL's patch channel that holds our patch channel ``j``.

    Ours (pixel_unshuffle): j = c*p*p + r*p + s;  OpenSTL (reshape_patch): (r*p + s)*C + c.
    """
    p = int(patch_size)
    theirs = torch.arange(channels * p * p).view(p, p, channels)  # theirs[r, s, c] = (r*p + s)*C + c
    return theirs.permute(2, 0, 1).reshape(-1)  # in our order (c, r, s)


class _Source:
    """OpenSTL's weights, read once each, checked against the shapes the model needs."""

    def __init__(self, sd: dict[str, Tensor], label: str) -> None:
        self.sd, self.label = sd, label
        self.used: set[str] = set()
        self.missing: list[str] = []

    def take(self, key: str, shape: tuple[int, ...]) -> Tensor | None:
        if key not in self.sd:
            self.missing.append(key)
            return None
        self.used.add(key)
        v = self.sd[key]
        if tuple(v.shape) != tuple(shape):
            raise CheckpointError(f"OpenSTL {self.label} weight '{key}' has shape {tuple(v.shape)} but the model "
                                  f"expects {tuple(shape)}; check num_hidden, filter_size and patch_size in the "
                                  "config")
        return v


def _check_config(method: str, cfg: dict[str, Any]) -> None:
    if int(cfg.get("layer_norm") or 0):
        raise CheckpointError(f"OpenSTL {_NAMES[method]} with layer_norm=1 is not supported by stbench; "
                              "use a checkpoint trained with layer_norm=0 (the published configs)")
    if int(cfg.get("stride") or 1) != 1:
        raise CheckpointError(f"OpenSTL {_NAMES[method]} with stride={cfg['stride']} is not supported by "
                              "stbench; use stride=1 (the published configs)")


def build_model(method: str, cfg: dict[str, Any]):
    from stbench.models.compose import build

    t_in, C, H, W = (int(x) for x in cfg["in_shape"])
    kw: dict[str, Any] = {"patch_size": int(cfg["patch_size"]), "num_hidden": str(cfg["num_hidden"]),
                          "filter_size": int(cfg["filter_size"])}
    if method == "predrnnv2":
        kw["decouple_beta"] = float(cfg.get("decouple_beta", 0.1))
    name = {"predrnnv2": "predrnn_v2"}.get(method, method)
    try:
        return build("patch", _TEMPORAL[method], in_shape=(t_in, C, H, W), t_out=int(cfg["aft_seq_length"]),
                     model_name=name, **kw)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"OpenSTL {_NAMES[method]} config cannot be built: {exc}") from None


def convert(method: str, cfg: dict[str, Any], sd: dict[str, Tensor]):
    """OpenSTL ConvLSTM / PredRNN / PredRNNv2 -> the stbench model with these weights, in eval mode."""
    _check_config(method, cfg)
    model = build_model(method, cfg)
    tm = model.temporal
    C, p = int(cfg["in_shape"][1]), int(cfg["patch_size"])
    perm = patch_permutation(C, p)
    src = _Source(sd, _NAMES[method])
    mapped: dict[str, Tensor] = {}
    unused: list[str] = []
    st_lstm = method != "convlstm"
    for li, cell in enumerate(tm.cells):
        nh = cell.num_hidden
        k, c_in = cell.conv_x.kernel_size[0], cell.conv_x.in_channels
        pre = f"cell_list.{li}."
        wx = src.take(pre + "conv_x.0.weight", ((7 if st_lstm else 4) * nh, c_in, k, k))
        wh = src.take(pre + "conv_h.0.weight", (4 * nh, nh, k, k))
        if wx is not None and li == 0:
            wx = wx[:, perm]  # OpenSTL's patch channel order -> ours
        for name, w in (("conv_x", wx), ("conv_h", wh)):
            if w is not None:
                mapped[f"temporal.cells.{li}.{name}.weight"] = w
        if st_lstm:
            wm = src.take(pre + "conv_m.0.weight", (3 * nh, nh, k, k))
            if wm is not None:
                mapped[f"temporal.cells.{li}.conv_m.weight"] = wm
            for name, shape in (("conv_o", (nh, 2 * nh, k, k)), ("conv_last", (nh, 2 * nh, 1, 1))):
                key = pre + (f"{name}.0.weight" if name == "conv_o" else f"{name}.weight")
                w = src.take(key, shape)
                if w is not None:
                    mapped[f"temporal.cells.{li}.{name}.weight"] = w
        else:
            unused += [k_ for k_ in sd if k_.startswith(pre + "conv_o.") or k_ == pre + "conv_last.weight"]
    head = src.take("conv_last.weight", tuple(tm.head.weight.shape))
    if head is not None:
        mapped["temporal.head.weight"] = head[perm]  # output rows in our patch channel order
    if method == "predrnnv2":
        w = src.take("adapter.weight", tuple(tm.adapter.weight.shape))
        if w is not None:
            mapped["temporal.adapter.weight"] = w
    if src.missing:
        n = len(src.missing)
        more = f" (+{n - 4} more)" if n > 4 else ""
        raise CheckpointError(f"OpenSTL {_NAMES[method]} weights do not fit the model (missing {n} key(s): "
                              f"{', '.join(src.missing[:4])}{more}); check the method and num_hidden in the config")
    leftover = {k: v for k, v in sd.items() if k not in src.used and k not in unused}
    mapped.update(leftover)  # unknown keys: the strict load reports them as unexpected
    return load_mapped(model, mapped, source=f"OpenSTL {_NAMES[method]}", unused=unused)
