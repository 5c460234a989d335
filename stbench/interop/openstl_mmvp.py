"""OpenSTL ``MMVP`` -> stbench ``mmvp`` (patch codec, patch_size=2, around the ``mmvp`` temporal module).

Key map (OpenSTL -> stbench, all under ``temporal.``): ``enc.*``, ``dec.*`` and ``enhance.*`` keep their
names except that an up-block's ``conv.conv.0`` is ``conv.0``; ``filter.filter_block.i`` -> ``filters.i``;
``hid.predictor.{conv1,out_conv}`` -> ``predictor.{conv1,out_conv}``; ``hid.predictor.predictor.*`` ->
``predictor.net.*``. OpenSTL builds ``hid.scale_fuser_1``, ``hid.scale_fuser_2`` and
``hid.predictor.fuse_conv`` but its forward never calls them: they are dropped and reported.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from stbench.errors import CheckpointError
from stbench.interop.openstl import load_mapped

UNUSED_PREFIXES = ("hid.scale_fuser_1.", "hid.scale_fuser_2.", "hid.predictor.fuse_conv.")
_PREFIXES = (  # OpenSTL prefix -> stbench prefix (first match wins)
    ("hid.predictor.predictor.", "predictor.net."),
    ("hid.predictor.", "predictor."),
    ("filter.filter_block.", "filters."),
    ("enc.", "enc."),
    ("dec.", "dec."),
    ("enhance.", "enhance."),
)


def map_keys(sd: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """OpenSTL MMVP state dict -> (stbench keys under ``temporal.``, dropped OpenSTL keys)."""
    mapped: dict[str, Tensor] = {}
    unused: list[str] = []
    for key, v in sd.items():
        if key.startswith(UNUSED_PREFIXES):
            unused.append(key)
            continue
        for old, new in _PREFIXES:
            if key.startswith(old):
                rest = key[len(old):].replace(".conv.conv.0.", ".conv.0.")
                mapped["temporal." + new + rest] = v
                break
        else:
            raise CheckpointError(f"unexpected OpenSTL MMVP key '{key}'; is this an MMVP checkpoint?")
    return mapped, unused


def convert(method: str, cfg: dict[str, Any], sd: dict[str, Tensor]):
    from stbench.registry import MODELS

    T, C, H, W = (int(v) for v in cfg["in_shape"])
    t_out = int(cfg.get("aft_seq_length", T))
    if t_out != T:
        raise CheckpointError(f"OpenSTL MMVP with aft_seq_length={t_out} != pre_seq_length={T} predicts "
                              f"{t_out} frames at once; stbench's mmvp predicts T_in per pass (use equal lengths)")
    model = MODELS.get("mmvp")(
        in_shape=(T, C, H, W), t_out=t_out,
        hid_S=int(cfg.get("hid_S", 32)), hid_T=int(cfg.get("hid_T", 192)),
        rrdb_encoder_num=int(cfg.get("rrdb_encoder_num", 2)), rrdb_decoder_num=int(cfg.get("rrdb_decoder_num", 2)),
        rrdb_enhance_num=int(cfg.get("rrdb_enhance_num", 2)),
        downsample_setting=str(cfg.get("downsample_setting", "2,2,2")))
    mapped, unused = map_keys(sd)
    return load_mapped(model, mapped, source=f"OpenSTL {method}", unused=unused)
