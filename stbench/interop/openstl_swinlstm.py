"""OpenSTL SwinLSTM-D weights -> the stbench ``swinlstm`` model.

Key map (by structure: any number of levels, depths, widths):
    Downsample.patch_embed.{proj,norm}.*            -> encoder.{proj,norm}.*
    Upsample.Unembed.Conv.*                         -> decoder.conv.*
    Downsample.layers.{i}.STBs.{j}.*                -> temporal.down.{i}.blocks.{j}.*
    Downsample.downsample.{i}.{norm,reduction}.*    -> temporal.merge.{i}.*
    Upsample.layers.{i}.STBs.{j}.*                  -> temporal.up.{i}.blocks.{j}.*
    Upsample.upsample.{i}.{expand,norm}.*           -> temporal.expand.{i}.*
    Upsample.patch_embed.*                          -> dropped: built, never called by the forward
    *.STBs.{odd j}.red.*                            -> dropped: odd blocks read one sequence, never call red
    *.attn.relative_position_index, *.attn_mask     -> dropped: constant buffers (timm 0.6 stores them),
                                                       recomputed by stbench
(the block suffixes norm1 / attn.qkv / attn.proj / attn.relative_position_bias_table / norm2 /
mlp.fc1 / mlp.fc2 / red are the same on both sides).

OpenSTL's SwinLSTM code needs timm 0.6's Swin classes (with ``input_resolution``) and timm >= 0.9's
``timm.layers`` module at once, so it runs against no released timm as is; ``tests/test_mau_phydnet_swinlstm.py``
checks this converter on a fixture made by OpenSTL's own SwinLSTM code under timm 0.6.13, with
``timm.layers`` aliased to ``timm.models.layers`` (how: ``tests/data/openstl/README.md``).
"""

from __future__ import annotations

import re
from typing import Any

import torch

from stbench.errors import CheckpointError
from stbench.interop.openstl import load_mapped

_BLOCK = re.compile(r"(Downsample|Upsample)\.layers\.(\d+)\.STBs\.(\d+)\.(.+)")
_RESAMPLE = re.compile(r"(Downsample\.downsample|Upsample\.upsample)\.(\d+)\.(norm|reduction|expand)\.(weight|bias)")


def _ints(spec: Any) -> tuple[int, ...]:
    if isinstance(spec, str):
        return tuple(int(s) for s in spec.split(",") if s.strip())
    if isinstance(spec, int):
        return (spec,)
    return tuple(int(s) for s in spec)


def map_keys(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """OpenSTL SwinLSTM_D_Model keys -> stbench keys; returns (mapped, dropped keys of never-used weights)."""
    mapped: dict[str, torch.Tensor] = {}
    unused: list[str] = []
    for k, v in sd.items():
        if k.endswith((".attn.relative_position_index", ".attn_mask")):
            continue  # constant buffers
        if m := _BLOCK.fullmatch(k):
            path, i, j, rest = m.groups()
            if rest.startswith("red.") and int(j) % 2 == 1:  # odd blocks read one sequence: red never used
                unused.append(k)
                continue
            mapped[f"temporal.{'down' if path == 'Downsample' else 'up'}.{i}.blocks.{j}.{rest}"] = v
        elif m := _RESAMPLE.fullmatch(k):
            path, i, part, p = m.groups()
            mapped[f"temporal.{'merge' if path.startswith('Down') else 'expand'}.{i}.{part}.{p}"] = v
        elif k.startswith("Downsample.patch_embed."):
            mapped["encoder." + k[len("Downsample.patch_embed."):]] = v
        elif k.startswith("Upsample.Unembed.Conv."):
            mapped["decoder.conv." + k[len("Upsample.Unembed.Conv."):]] = v
        elif k.startswith("Upsample.patch_embed."):
            unused.append(k)
        else:
            raise CheckpointError(f"OpenSTL SwinLSTM weight '{k}' is not part of OpenSTL's SwinLSTM_D_Model; pass "
                                  "the state dict of a SwinLSTM-D checkpoint")
    return mapped, unused


def convert(method: str, cfg: dict[str, Any], sd: dict[str, torch.Tensor]):
    import stbench

    if method != "swinlstm_d":
        raise CheckpointError(f"the SwinLSTM converter handles OpenSTL's SwinLSTM_D, not '{method}'")
    t_in, C, H, W = (int(v) for v in cfg["in_shape"])
    t_in = int(cfg.get("pre_seq_length", t_in))
    if "embed_dim" not in cfg or "depths_downsample" not in cfg:
        raise CheckpointError("the OpenSTL SwinLSTM config needs embed_dim, depths_downsample, depths_upsample, "
                              "num_heads, window_size and patch_size (configs/mmnist/SwinLSTM-D.py)")
    model = stbench.create_model(
        "swinlstm", in_shape=(t_in, C, H, W), t_out=int(cfg["aft_seq_length"]),
        patch_size=int(cfg.get("patch_size", 2)), embed_dim=int(cfg["embed_dim"]),
        depths_downsample=_ints(cfg["depths_downsample"]), depths_upsample=_ints(cfg["depths_upsample"]),
        num_heads=_ints(cfg["num_heads"]), window_size=int(cfg.get("window_size", 4)),
    )
    mapped, unused = map_keys(sd)
    return load_mapped(model, mapped, source="OpenSTL SwinLSTM_D", unused=unused)
