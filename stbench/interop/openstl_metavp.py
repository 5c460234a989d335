"""OpenSTL's MetaVP translators (SimVP ``model_type`` convmixer ... vit) -> stbench temporal modules.

One function name per OpenSTL ``model_type``: ``map_<type>(cfg, sd_translator) -> dict`` takes the translator's
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
from stbench.interop.openstl_simvp import METAVP_TEMPORAL

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


def map_blocks(cfg: dict[str, Any], sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The structural map alone: the types whose block-internal names are OpenSTL's (every type but van; swin and
    vit are timm's blocks: attn.{qkv,proj[,relative_position_bias_table]}, mlp.{fc1,fc2}, norm1/2)."""
    return _structural(sd)


def map_van(cfg: dict[str, Any], sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return _structural(sd, (("mlp.dwconv.dwconv.", "mlp.dwconv."),))  # OpenSTL wraps the dw conv once more


# one name per OpenSTL model_type: openstl_simvp.SIMVP_TRANSLATORS points at map_<model_type>
map_convmixer = map_convnext = map_hornet = map_mlp = map_mlpmixer = map_moga = map_moganet = map_blocks
map_poolformer = map_swin = map_uniformer = map_vit = map_blocks

# OpenSTL model_type (lower case, with its aliases) -> (stbench temporal name, map function)
MODEL_TYPES: dict[str, tuple[str, Any]] = {t: (ours, map_van if t == "van" else map_blocks)
                                           for t, ours in METAVP_TEMPORAL.items()}
