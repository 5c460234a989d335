"""OpenSTL weights -> stbench models: ``from_openstl(method, config, state_dict) -> STModel``.

    from stbench.interop.openstl import from_openstl
    sd = torch.load("mmnist_tau_one_ep2000.pth", map_location="cpu", weights_only=True)
    model = from_openstl("TAU", {"in_shape": [10, 1, 64, 64], "hid_S": 64, ...}, sd)
    model(inputs).pred   # equals OpenSTL's prediction (checked on fixtures written by its own code)

``method`` is OpenSTL's method name (case-insensitive); for ``SimVP`` the config's ``model_type``
picks the translator. ``config`` uses OpenSTL's key names; a missing key takes OpenSTL's parser
default (:data:`OPENSTL_DEFAULTS`). ``state_dict`` is a bare model state dict (the released ``.pth``)
or a Lightning checkpoint's (keys prefixed ``model.``, possibly nested under ``state_dict``).

One converter per method family, named in :data:`METHODS` (the stbench model each OpenSTL method becomes) and
resolved lazily through :data:`CONVERTERS` (``"module:function"``),
each with the signature ``convert(method, cfg, state_dict) -> STModel``; the key map of a family
lives in its converter's module. Every converter builds the stbench model and loads the renamed
weights through :func:`load_mapped`, which refuses missing / unexpected keys and shape mismatches
with :class:`~stbench.errors.CheckpointError` and reports weights the published forward never uses.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from stbench.errors import CheckpointError

# OpenSTL's defaults for the keys that shape a model, checked against commit c74deb5: pre/aft/total
# lengths, model_type, drop, drop_path from `default_parser()` (openstl/utils/parser.py); hid_S, hid_T,
# N_S, N_T, spatio kernels, mlp_ratio from `SimVP_Model.__init__`'s keyword defaults (the parser has none);
# the recurrent keys have no parser default at all, so these are configs/mmnist/{ConvLSTM,PredRNN}.py's
# values; in_shape is the mmnist dataset's. A user's config overrides them.
OPENSTL_DEFAULTS: dict[str, Any] = {
    "in_shape": [10, 1, 64, 64],
    "pre_seq_length": 10,
    "aft_seq_length": 10,
    "total_length": 20,
    "model_type": "gSTA",
    "hid_S": 16,
    "hid_T": 256,
    "N_S": 4,
    "N_T": 4,
    "spatio_kernel_enc": 3,
    "spatio_kernel_dec": 3,
    "mlp_ratio": 8.0,
    "drop": 0.0,
    "drop_path": 0.0,
    "num_hidden": "128,128,128,128",
    "filter_size": 5,
    "stride": 1,
    "patch_size": 4,
    "layer_norm": 0,
}

_SIMVP = "stbench.interop.openstl_simvp:convert"
_RNN = "stbench.interop.openstl_rnn:convert"
_RNN_ZOO = "stbench.interop.openstl_rnn_zoo:convert"
_MAU_PHYDNET = "stbench.interop.openstl_mau_phydnet:convert"


@dataclass(frozen=True)
class Method:
    """How OpenSTL names and converts the method behind one stbench model."""

    name: str  # OpenSTL's method name, as its configs write it
    converter: str  # "module:function" of its converter (imported on first use)
    flags: Mapping[str, Any] = field(default_factory=dict)  # config keys that pick its translator / test-time flags


# THE table of OpenSTL methods: stbench model -> the OpenSTL method whose released weights it loads.
# `from_openstl` finds converters here (CONVERTERS below is derived from it) and `stbench eval --from openstl`
# finds the method of `--model` here when no --config names one.
METHODS: dict[str, Method] = {
    "simvp": Method("SimVP", _SIMVP, {"model_type": "IncepU"}),
    "gsta": Method("SimVP", _SIMVP, {"model_type": "gSTA"}),
    "tau": Method("TAU", _SIMVP, {"model_type": "tau"}),
    **{ours: Method("SimVP", _SIMVP, {"model_type": theirs})  # the MetaVP translators (openstl_metavp)
       for ours, theirs in (("convmixer", "convmixer"), ("convnext", "convnext"), ("hornet", "hornet"),
                            ("mlpmixer", "mlp"), ("moganet", "moga"), ("poolformer", "poolformer"),
                            ("swin", "swin"), ("uniformer", "uniformer"), ("van", "van"), ("vit", "vit"))},
    "convlstm": Method("ConvLSTM", _RNN, {"reverse_scheduled_sampling": 0}),
    "predrnn": Method("PredRNN", _RNN, {"reverse_scheduled_sampling": 0}),
    "predrnn_v2": Method("PredRNNv2", _RNN, {"reverse_scheduled_sampling": 1}),
    "predrnnpp": Method("PredRNNpp", _RNN_ZOO),
    "mim": Method("MIM", _RNN_ZOO),
    "e3dlstm": Method("E3DLSTM", _RNN_ZOO),
    "mau": Method("MAU", _MAU_PHYDNET, {"patch_size": 1}),  # OpenSTL's MAU runs only unpatched
    "phydnet": Method("PhyDNet", _MAU_PHYDNET),
    "swinlstm": Method("SwinLSTM_D", "stbench.interop.openstl_swinlstm:convert"),
    "mmvp": Method("MMVP", "stbench.interop.openstl_mmvp:convert"),
}

# lower-cased OpenSTL method name -> "module:function" of its converter (derived from METHODS)
CONVERTERS: dict[str, str] = {m.name.lower(): m.converter for m in METHODS.values()}

# stbench hyper-parameters that are not OpenSTL config keys (the dataset gives shapes) or have another name there
_NOT_OPENSTL_KEYS = ("encoder", "temporal", "decoder", "in_shape", "t_out", "rollout")
_OPENSTL_NAMES = {"kernel": "spatio_kernel_enc", "ddr_alpha": "alpha"}


def openstl_keys(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """A stbench model's hyper-parameters written as an OpenSTL config (``num_hidden = "128,128"`` ...)."""
    cfg: dict[str, Any] = {}
    for ours, v in hparams.items():
        if ours in _NOT_OPENSTL_KEYS:
            continue
        cfg[_OPENSTL_NAMES.get(ours, ours)] = ",".join(map(str, v)) if isinstance(v, (list, tuple)) else v
    if "spatio_kernel_enc" in cfg:
        cfg["spatio_kernel_dec"] = cfg["spatio_kernel_enc"]
    return cfg


def _resolve(spec: str) -> Callable[..., Any]:
    mod, _, attr = spec.partition(":")
    return getattr(importlib.import_module(mod), attr)


def merged_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """OpenSTL defaults overridden by the user's config (unknown keys are kept: converters ignore them)."""
    cfg = dict(OPENSTL_DEFAULTS)
    cfg.update({k: v for k, v in (config or {}).items() if v is not None})
    return cfg


def bare_state_dict(state_dict: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """A released ``.pth`` or a Lightning checkpoint -> the model's own keys, fp32 tensors."""
    sd: Any = state_dict
    if isinstance(sd, Mapping) and "state_dict" in sd and isinstance(sd["state_dict"], Mapping):
        sd = sd["state_dict"]
    if not isinstance(sd, Mapping) or not sd:
        raise CheckpointError("the checkpoint holds no state dict; pass the model's state_dict (or a Lightning "
                              "checkpoint whose 'state_dict' holds it)")
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if not isinstance(v, torch.Tensor):
            continue
        key = k[len("model."):] if k.startswith("model.") else k
        out[key] = v.float() if v.is_floating_point() else v
    return out


def _fmt(keys: Iterable[str], n: int = 4) -> str:
    keys = sorted(keys)
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def load_mapped(model: torch.nn.Module, mapped: Mapping[str, torch.Tensor], *, source: str,
                unused: Iterable[str] = ()) -> torch.nn.Module:
    """Load ``mapped`` (keys already in the stbench model's names) strictly into ``model``.

    ``unused``: the source's keys the published forward never reads; they were dropped by the key
    map and are reported in one warning, not treated as an error.
    """
    own = model.state_dict()
    missing = set(own) - set(mapped)
    unexpected = set(mapped) - set(own)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s): {_fmt(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s): {_fmt(unexpected)}")
        raise CheckpointError(f"{source} weights do not fit the model ({'; '.join(parts)}); check the method, "
                              "model_type and sizes in the config")
    for k, v in mapped.items():
        if tuple(own[k].shape) != tuple(v.shape):
            raise CheckpointError(f"{source} weight '{k}' has shape {tuple(v.shape)} but the model expects "
                                  f"{tuple(own[k].shape)}; check the sizes in the config (hid_S, hid_T, "
                                  "num_hidden, patch_size ...)")
    model.load_state_dict(dict(mapped), strict=True)
    unused = sorted(unused)
    if unused:
        warnings.warn(f"{source}: dropped {len(unused)} weight(s) that the published forward never uses: "
                      f"{_fmt(unused)}", stacklevel=3)
    model.dropped_keys = unused
    return model.eval()


def from_openstl(method: str, config: Mapping[str, Any] | None, state_dict: Mapping[str, Any]):
    """The stbench model, in eval mode, that computes what OpenSTL's ``method`` computes with these weights."""
    key = str(method).strip().lower().replace("-", "_")
    key = {"predrnn_v2": "predrnnv2", "predrnn++": "predrnnpp", "predrnn_pp": "predrnnpp",
           "swinlstm": "swinlstm_d"}.get(key, key)
    if key not in CONVERTERS:
        names = ", ".join(dict.fromkeys(m.name for m in METHODS.values()))
        raise CheckpointError(f"unknown OpenSTL method '{method}'; choose one of {names}")
    try:
        convert = _resolve(CONVERTERS[key])
    except (ImportError, AttributeError) as exc:
        raise CheckpointError(f"OpenSTL method '{method}' cannot be imported yet ({exc})") from None
    return convert(key, merged_config(config), bare_state_dict(state_dict))
