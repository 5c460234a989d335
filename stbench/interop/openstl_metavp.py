"""OpenSTL's MetaVP translators (SimVP ``model_type`` convmixer ... vit) -> stbench temporal modules.

One function per OpenSTL ``model_type``: ``map_<type>(cfg, sd_translator) -> dict`` takes the translator's
sub-state-dict (OpenSTL's keys with the leading ``hid.`` removed, e.g. ``enc.0.block.norm1.weight``)
and returns it under the keys of the stbench temporal module (relative to ``temporal.``).

OpenSTL's MidMetaNet holds N_T MetaBlocks ``enc.i``, each a ``block`` plus, where its width changes, a
1x1 ``reduction``. stbench's :class:`~stbench.models.metavp.MetaVPTranslator` keeps them in one
Sequential ``blocks``: [block 0, reduction 0, block 1, ..., block N_T-1, reduction N_T-1]. Block-internal
names are the same except the few renamed in each type's table below. Buffers that OpenSTL stores and
stbench recomputes (Swin's relative position index, attention masks) are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from stbench.errors import CheckpointError

_KEY = re.compile(r"^enc\.(\d+)\.(block|reduction)\.(.+)$")
_DROPPED = ("relative_position_index", "attn_mask")


def _structural(sd: Mapping[str, Tensor], renames: tuple[tuple[str, str], ...] = ()) -> dict[str, Tensor]:
    """enc.i.block.X -> blocks.(i or i+1).X;  enc.0.reduction -> blocks.1;  enc.(N-1).reduction -> blocks.(N+1)."""
    out: dict[str, Tensor] = {}
    for key, v in sd.items():
        m = _KEY.match(key)
        if m is None:
            raise CheckpointError(f"unexpected OpenSTL translator key 'hid.{key}'; is this a MetaVP SimVP checkpoint?")
        i, part, rest = int(m.group(1)), m.group(2), m.group(3)
        if rest.rsplit(".", 1)[-1] in _DROPPED:
            continue
        if part == "block":
            idx = 0 if i == 0 else i + 1
        else:
            idx = 1 if i == 0 else i + 2
        for old, new in renames:
            if rest.startswith(old):
                rest = new + rest[len(old):]
                break
        out[f"blocks.{idx}.{rest}"] = v
    return out


def map_convmixer(cfg: dict[str, Any], sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return _structural(sd)


def map_convnext(cfg: dict[str, Any], sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return _structural(sd)


def map_hornet(cfg: dict[str, Any], sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return _structural(sd)


def map_mlp(cfg: dict[str, Any], sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return _structural(sd)


def map_moga(cfg: dict[str, Any], sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return _structural(sd)


def map_poolformer(cfg: dict[str, Any], sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return _structural(sd)


def map_swin(cfg: dict[str, Any], sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    # timm's SwinTransformerBlock: attn.{qkv,proj,relative_position_bias_table}, mlp.{fc1,fc2}, norm1/2
    return _structural(sd)


def map_uniformer(cfg: dict[str, Any], sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return _structural(sd)


def map_van(cfg: dict[str, Any], sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return _structural(sd, (("mlp.dwconv.dwconv.", "mlp.dwconv."),))  # OpenSTL wraps the dw conv once more


def map_vit(cfg: dict[str, Any], sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    # timm's ViT Block: attn.{qkv,proj}, mlp.{fc1,fc2}, norm1/2 (ls1/ls2 are parameter-free Identities)
    return _structural(sd)


# OpenSTL model_type (lower case, with its aliases) -> (stbench temporal name, map function)
MODEL_TYPES: dict[str, tuple[str, Any]] = {
    "convmixer": ("convmixer", map_convmixer),
    "convnext": ("convnext", map_convnext),
    "hornet": ("hornet", map_hornet),
    "mlp": ("mlpmixer", map_mlp),
    "mlpmixer": ("mlpmixer", map_mlp),
    "moga": ("moganet", map_moga),
    "moganet": ("moganet", map_moga),
    "poolformer": ("poolformer", map_poolformer),
    "swin": ("swin", map_swin),
    "uniformer": ("uniformer", map_uniformer),
    "van": ("van", map_van),
    "vit": ("vit", map_vit),
}
