"""PredFormer weights -> stbench models: ``from_predformer(model_config, state_dict) -> STModel``.

    from stbench.interop.predformer import from_predformer
    sd = torch.load("predformer_mmnist.pth", map_location="cpu", weights_only=True)
    model = from_predformer({"Ndepth": 6, ...PredFormer's model_config...}, sd)
    model(inputs).pred   # equals PredFormer's prediction (checked on a fixture written by its own code)

``model_config`` is PredFormer's own dict (``configs/<dataset>/PredFormer.py``: height, width,
num_channels, pre_seq, after_seq, patch_size, dim, heads, dim_head, scale_dim, depth, Ndepth,
dropout, attn_dropout, drop_path); a missing key takes the value of its Moving MNIST config
(:data:`PREDFORMER_MMNIST`). ``state_dict`` is PredFormer's ``PredFormer_Model`` state dict: bare, under
``state_dict``, and/or with keys prefixed ``model.``. The model is PredFormer's Moving MNIST model,
``PredFormer_Quadruplet_TSST`` (quadruplet TSST layers); other layer orders are not converted.

:func:`load_predformer_checkpoint` is the entry point of ``stbench eval --from predformer``: a file
(loaded with ``weights_only=True``) or a loaded dict, and the stbench model name (``predformer`` or
``predformer_quad``) whose published config fills the missing keys.

Roll-out: for ``after_seq > pre_seq`` PredFormer feeds its predicted frames back through the whole
network (head, patch embedding and position code included); the returned model does the same
(:class:`PixelRolloutModel`), so the equivalence holds for any horizon.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from os import PathLike
from typing import Any

import torch
from torch import Tensor

from stbench.errors import CheckpointError
from stbench.interop.openstl import bare_state_dict, load_mapped
from stbench.models.base import ModelOutput, STModel
from stbench.models.compose import build

# PredFormer's configs/mmnist/PredFormer.py (commit b73c7ae); Ndepth 6 is the "TSST, 6 layers" model
PREDFORMER_MMNIST: dict[str, Any] = {
    "height": 64, "width": 64, "num_channels": 1, "pre_seq": 10, "after_seq": 10, "patch_size": 8,
    "dim": 256, "heads": 8, "dim_head": 32, "dropout": 0.0, "attn_dropout": 0.0, "drop_path": 0.0,
    "scale_dim": 4, "depth": 1, "Ndepth": 6,
}
# the published Moving MNIST configs of the two named models
PUBLISHED_CONFIGS: dict[str, dict[str, Any]] = {
    "predformer": dict(PREDFORMER_MMNIST),
    "predformer_quad": dict(PREDFORMER_MMNIST, Ndepth=8),
}

# PredFormer's key pattern -> ours (applied in order, first match wins); {i}/{j} are layer indices
_TRANSFORMERS = {"ts_temporal_transformer": "ts_t", "ts_space_transformer": "ts_s",
                 "st_space_transformer": "st_s", "st_temporal_transformer": "st_t"}
_BLOCK_PARTS = {"0.norm": "norm1", "0.fn.to_qkv": "attn.qkv", "0.fn.to_out.0": "attn.proj.0",
                "1.norm": "norm2", "1.fn.fc1_g": "mlp.fc_gate", "1.fn.fc1_x": "mlp.fc_in", "1.fn.fc2": "mlp.fc_out"}
KEY_MAP: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^to_patch_embedding\.1\.(weight|bias)$"), r"encoder.embed.\1"),
    (re.compile(r"^mlp_head\.0\.(weight|bias)$"), r"decoder.norm.\1"),
    (re.compile(r"^mlp_head\.1\.(weight|bias)$"), r"decoder.proj.\1"),
    *[(re.compile(rf"^blocks\.(\d+)\.{theirs}\.layers\.(\d+)\.{re.escape(part)}\.(weight|bias)$"),
       rf"temporal.layers.\1.{ours}.blocks.\2.{mine}.\3")
      for theirs, ours in _TRANSFORMERS.items() for part, mine in _BLOCK_PARTS.items()],
    *[(re.compile(rf"^blocks\.(\d+)\.{theirs}\.norm\.(weight|bias)$"), rf"temporal.layers.\1.{ours}.norm.\2")
      for theirs, ours in _TRANSFORMERS.items()],
]


def map_keys(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """PredFormer's key names -> stbench's; keys that match no pattern are kept as they are (and then
    reported as unexpected by :func:`load_mapped`)."""
    out: dict[str, Tensor] = {}
    for key, value in sd.items():
        for pattern, repl in KEY_MAP:
            if pattern.match(key):
                key = pattern.sub(repl, key)
                break
        out[key] = value
    return out


class PixelRolloutModel(STModel):
    """For T_out > T_in: the whole model runs again on its own predicted frames (PredFormer's
    ``_predict``); T_out <= T_in is one pass and a crop, exactly as :class:`STModel` does it."""

    def forward(self, inputs: Tensor, targets: Tensor | None = None,
                sampling_mask: Tensor | None = None) -> ModelOutput:
        t_in = self.in_shape[0]
        if self.t_out <= t_in:
            return super().forward(inputs, targets, sampling_mask)
        chunks, cur, produced = [], inputs, 0
        while produced < self.t_out:
            z, _ = self._encode(cur)  # (B, T_in, dim, h, w)
            cur = self._decode(self.temporal(z), None)  # (B, T_in, C, H, W)
            chunks.append(cur)
            produced += t_in
        return ModelOutput(pred=torch.cat(chunks, dim=1)[:, : self.t_out])


def _model_name(cfg: Mapping[str, Any]) -> str:
    for name, published in PUBLISHED_CONFIGS.items():
        if all(cfg.get(k) == v for k, v in published.items() if k not in ("pre_seq", "after_seq")):
            return name
    return "predformer"


def build_from_config(model_config: Mapping[str, Any] | None) -> STModel:
    """The (randomly initialised) stbench model with PredFormer's ``model_config`` sizes."""
    cfg = dict(PREDFORMER_MMNIST)
    cfg.update({k: v for k, v in (model_config or {}).items() if v is not None})
    in_shape = (int(cfg["pre_seq"]), int(cfg["num_channels"]), int(cfg["height"]), int(cfg["width"]))
    sizes = {k: cfg[k] for k in ("patch_size", "dim", "heads", "dim_head", "scale_dim", "depth", "Ndepth",
                                 "dropout", "attn_dropout", "drop_path")}
    try:
        m = build("predformer", "predformer", in_shape=in_shape, t_out=int(cfg["after_seq"]),
                  model_name=_model_name(cfg), **sizes)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"PredFormer model_config does not build a model ({exc}); check its sizes") from None
    model = PixelRolloutModel(m.encoder, m.temporal, m.decoder, in_shape=in_shape, t_out=m.t_out, names=m.names)
    model.hparams = {**m.hparams, "rollout": "pixel"}
    return model


def from_predformer(model_config: Mapping[str, Any] | None, state_dict: Mapping[str, Any]) -> STModel:
    """The stbench model, in eval mode, that computes what PredFormer's model computes with these weights."""
    model = build_from_config(model_config)
    return load_mapped(model, map_keys(bare_state_dict(state_dict)), source="PredFormer")


def load_predformer_checkpoint(path_or_state: str | PathLike[str] | Mapping[str, Any], model_name: str,
                               config: Mapping[str, Any] | None = None) -> STModel:
    """``stbench eval --from predformer``: PredFormer weights (a file, or an already loaded dict) ->
    the stbench model ``model_name`` (``predformer`` | ``predformer_quad``) in eval mode.

    ``config`` (PredFormer's ``model_config`` keys, or a parsed PredFormer config file whose
    ``model_config`` entry holds them) overrides the published Moving MNIST config of ``model_name``;
    a checkpoint that carries its own ``model_config`` dict is read too (below ``config``). The
    PredFormer config that built the model is kept as ``model.source_config`` for the record.
    """
    if model_name not in PUBLISHED_CONFIGS:
        raise CheckpointError(f"--from predformer loads the models {', '.join(PUBLISHED_CONFIGS)}, "
                              f"not '{model_name}'; pass --model predformer or --model predformer_quad")
    state: Any = path_or_state
    if not isinstance(state, Mapping):
        try:
            state = torch.load(state, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise CheckpointError(f"checkpoint '{path_or_state}' not found; check the --checkpoint path") from None
        except Exception as exc:  # unpickling refused or a corrupt file
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CheckpointError(f"cannot read PredFormer checkpoint '{path_or_state}' with weights_only=True "
                                  f"({msg}); save the model's state_dict alone") from None
    cfg = dict(PUBLISHED_CONFIGS[model_name])
    if isinstance(state.get("model_config"), Mapping):
        cfg.update(state["model_config"])
    config = dict(config or {})
    if isinstance(config.get("model_config"), Mapping):
        config = {**config, **config.pop("model_config")}
    cfg.update({k: v for k, v in config.items() if k in PREDFORMER_MMNIST})
    model = from_predformer(cfg, state)
    model.names["model"] = model_name
    model.source_config = cfg
    return model
