"""OpenSTL ``SimVP`` / ``TAU`` weights -> the stbench SimVP-family model (same function, our names).

OpenSTL's ``SimVP_Model`` is ``enc`` (per-frame encoder) + ``hid`` (translator) + ``dec`` (decoder);
stbench's is ``encoder`` + ``temporal`` + ``decoder``. The codec key map is structural (any hid_S,
N_S, kernel); the translator's keys are mapped by a translator function picked by ``model_type``.

Translator functions (the plug-in point for the MetaVP translators)
-------------------------------------------------------------------
:data:`SIMVP_TRANSLATORS` maps OpenSTL's lower-cased ``model_type`` to ``(our temporal module name,
"module:function")``; the function is imported on first use and has the signature::

    fn(cfg: dict, sd_translator: dict[str, Tensor]) -> dict[str, Tensor]

- ``cfg``: OpenSTL's merged config (its key names: ``hid_S``, ``hid_T``, ``N_T``, ``mlp_ratio``,
  ``in_shape``, ``model_type`` ...), defaults filled in.
- ``sd_translator``: OpenSTL's translator weights, i.e. the keys under ``hid.`` with that prefix
  removed (``enc.0.block.norm1.weight`` ...), fp32.
- returns the same weights under our names, RELATIVE to ``temporal.`` (``blocks.0.norm1.weight`` ...).
  Keys it does not know it should pass through unchanged, so that the strict load names them.

The MetaVP entries (convmixer, convnext, hornet, mlp, moga, poolformer, swin, uniformer, van, vit)
point at ``stbench.interop.openstl_metavp:map_<OpenSTL model_type>`` (e.g. ``map_convmixer``,
``map_mlp``, ``map_moga``), written beside the MetaVP temporal modules registered as
``convmixer``, ``convnext``, ``hornet``, ``mlpmixer``, ``moganet``, ``poolformer``, ``swin``,
``uniformer``, ``van``, ``vit``. Their constructors receive ``hid_T``, ``N_T``, ``mlp_ratio``,
``drop``, ``drop_path`` where they accept them (``in_shape`` = (T, hid_S, H', W') as for every module).

Quirks reproduced (OpenSTL commit c74deb5):
- ``N_S`` odd: OpenSTL's ``sampling_generator`` yields ``N_S - 1`` layers ([False, True] * (N_S // 2)),
  so the model is built with the even ``N_S - 1``.
- ``spatio_kernel_enc`` and ``spatio_kernel_dec`` may differ (the decoder is built separately then).
- MetaFormer layer scales are stored as ``(d,)``; ours are ``(d, 1, 1)``.
- The 1x1 "reduction" convs exist only where T * hid_S != hid_T (ours: Identity there, no weights).
- ``TAU`` = the SimVP model with the ``tau`` translator (its configs' ``model_type``), trained with DDR
  (``alpha``); ``SimVP`` with ``model_type='tau'`` is the same network without DDR.
- Long horizons: the published method feeds predicted frames back through the whole model; the
  returned model has ``rollout == "frame"``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

from torch import Tensor

from stbench.errors import CheckpointError
from stbench.interop.openstl import load_mapped

_METAVP = "stbench.interop.openstl_metavp"

# OpenSTL's MetaVP model_types (lower-case, with their aliases) -> our temporal module; keys mapped by
# openstl_metavp:map_<model_type>
METAVP_TEMPORAL = {"convmixer": "convmixer", "convnext": "convnext", "hornet": "hornet", "mlp": "mlpmixer",
                   "mlpmixer": "mlpmixer", "moga": "moganet", "moganet": "moganet", "poolformer": "poolformer",
                   "swin": "swin", "uniformer": "uniformer", "van": "van", "vit": "vit"}

# OpenSTL model_type (lower-case) -> (stbench temporal module, "module:function" mapping its keys)
SIMVP_TRANSLATORS: dict[str, tuple[str, str]] = {
    "incepu": ("incepu", "stbench.interop.openstl_simvp:incepu_keys"),
    "gsta": ("gsta", "stbench.interop.openstl_simvp:metaformer_keys"),
    "tau": ("tau", "stbench.interop.openstl_simvp:metaformer_keys"),
    **{t: (ours, f"{_METAVP}:map_{t}") for t, ours in METAVP_TEMPORAL.items()},
}

# our temporal module -> the stbench named model it is (records / leaderboards use this name)
_MODEL_NAMES = {"incepu": "simvp", "gsta": "gsta", "tau": "tau"}


def _sub(rules: list[tuple[str, str]], key: str) -> str:
    for pattern, repl in rules:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    return key  # unknown: passed through so the strict load names it


# ---------------------------------------------------------------------------------------------
# codec: enc.enc.<i>.conv.{conv,norm}.* -> encoder.layers.<i>.{conv,norm}.*  (decoder alike)
# ---------------------------------------------------------------------------------------------
_CODEC_RULES = [
    (r"^enc\.enc\.(\d+)\.conv\.", r"encoder.layers.\1."),
    (r"^dec\.dec\.(\d+)\.conv\.", r"decoder.layers.\1."),  # conv.conv.0.* (upsampling) -> conv.0.*
    (r"^dec\.readout\.", "decoder.readout."),
]


# ---------------------------------------------------------------------------------------------
# translators
# ---------------------------------------------------------------------------------------------
def incepu_keys(cfg: dict[str, Any], sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """SimVP v1 (IncepU): {enc,dec}.<i>.conv1 / .layers.<j>.{conv,norm} -> {enc,dec}.<i>.conv1 / .branches.<j>."""
    rules = [(r"^(enc|dec)\.(\d+)\.conv1\.", r"\1.\2.conv1."),
             (r"^(enc|dec)\.(\d+)\.layers\.(\d+)\.", r"\1.\2.branches.\3.")]
    return {_sub(rules, k): v for k, v in sd.items()}


_META_BLOCK_RULES = [
    (r"^layer_scale_1$", "ls1"),
    (r"^layer_scale_2$", "ls2"),
    (r"^norm([12])\.", r"norm\1."),
    (r"^attn\.proj_([12])\.", r"attn.proj_\1."),
    (r"^attn\.spatial_gating_unit\.conv0\.", "attn.attn.lk.dw."),
    (r"^attn\.spatial_gating_unit\.conv_spatial\.", "attn.attn.lk.dw_dilated."),
    (r"^attn\.spatial_gating_unit\.conv1\.", "attn.attn.conv1."),
    (r"^attn\.spatial_gating_unit\.fc\.(\d+)\.", r"attn.attn.fc.\1."),  # TAU's squeeze-excitation
    (r"^mlp\.fc([12])\.", r"mlp.fc\1."),
    (r"^mlp\.dwconv\.dwconv\.", "mlp.dw."),
]


def metaformer_keys(cfg: dict[str, Any], sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """gSTA / TAU (``MidMetaNet``): ``enc.<i>.block.*`` and ``enc.<i>.reduction.*`` -> ``blocks.<n>.*``.

    Our ``blocks`` Sequential: block 0 at 0, its 1x1 at 1, block i >= 1 at i + 1, the last 1x1 at N_T + 1.
    """
    n_t = int(cfg["N_T"])
    out: dict[str, Tensor] = {}
    for k, v in sd.items():
        m = re.match(r"^enc\.(\d+)\.(block|reduction)\.(.+)$", k)
        if not m:
            out[k] = v
            continue
        i, part, rest = int(m.group(1)), m.group(2), m.group(3)
        if part == "reduction":
            idx = 1 if i == 0 else n_t + 1 if i == n_t - 1 else None
            out[f"blocks.{idx}.{rest}" if idx is not None else k] = v
            continue
        new = _sub(_META_BLOCK_RULES, rest)
        if new in ("ls1", "ls2"):
            v = v.reshape(-1, 1, 1)  # OpenSTL (d,) -> ours (d, 1, 1)
        out[f"blocks.{i if i == 0 else i + 1}.{new}"] = v
    return out


# ---------------------------------------------------------------------------------------------
def _resolve(spec: str) -> Callable[..., Any]:
    mod, _, attr = spec.partition(":")
    return getattr(importlib.import_module(mod), attr)


def translator_for(cfg: dict[str, Any]) -> tuple[str, Callable[..., dict[str, Tensor]]]:
    """(our temporal module name, key function) for the config's ``model_type``."""
    model_type = str(cfg.get("model_type") or "gSTA").lower()
    if model_type not in SIMVP_TRANSLATORS:
        raise CheckpointError(f"unknown SimVP model_type '{cfg.get('model_type')}'; choose one of "
                              f"{', '.join(sorted(SIMVP_TRANSLATORS))}")
    temporal, spec = SIMVP_TRANSLATORS[model_type]
    try:
        fn = _resolve(spec)
    except (ImportError, AttributeError) as exc:
        raise CheckpointError(f"SimVP model_type '{model_type}' cannot be imported yet ({exc})") from None
    return temporal, fn


def build_model(method: str, cfg: dict[str, Any], temporal: str):
    """The stbench model with OpenSTL's sizes for ``cfg`` (weights not loaded)."""
    from stbench.models.compose import build
    from stbench.models.simvp_codec import SimVPDecoder
    from stbench.registry import TEMPORAL

    if temporal not in TEMPORAL:
        raise CheckpointError(f"SimVP translator '{cfg.get('model_type')}' needs the stbench temporal module "
                              f"'{temporal}', which is not registered; install or import it first")
    t_in, C, H, W = (int(x) for x in cfg["in_shape"])
    t_out = int(cfg["aft_seq_length"])
    n_s = int(cfg["N_S"])
    n_s -= n_s % 2  # OpenSTL builds N_S - 1 layers for an odd N_S
    k_enc, k_dec = int(cfg["spatio_kernel_enc"]), int(cfg["spatio_kernel_dec"])
    defaults = {"hid_S": int(cfg["hid_S"]), "N_S": n_s, "kernel": k_enc, "hid_T": int(cfg["hid_T"]),
                "N_T": int(cfg["N_T"]), "mlp_ratio": float(cfg["mlp_ratio"]), "drop": float(cfg["drop"]),
                "drop_path": float(cfg["drop_path"]),
                "ddr_alpha": float(cfg.get("alpha", 0.1)) if method == "tau" else 0.0, "rollout": "frame"}
    name = _MODEL_NAMES.get(temporal, temporal)  # a MetaVP model is registered under its translator's name
    try:
        model = build("simvp", temporal, in_shape=(t_in, C, H, W), t_out=t_out, defaults=defaults, model_name=name)
        if k_dec != k_enc:
            model.decoder = SimVPDecoder(latent_shape=model.encoder.latent_shape, out_shape=(C, H, W),
                                         skip_channels=model.encoder.skip_channels, N_S=n_s, kernel=k_dec)
            model.hparams["kernel_dec"] = k_dec
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"OpenSTL {method} config cannot be built: {exc}") from None
    return model


def convert(method: str, cfg: dict[str, Any], sd: dict[str, Tensor]):
    """OpenSTL ``SimVP`` (any ``model_type``) or ``TAU`` -> the stbench model with these weights, eval mode."""
    if method == "tau" and str(cfg.get("model_type") or "gsta").lower() == "gsta":
        # OpenSTL's TAU method builds whatever model_type says; its TAU configs say 'tau'. A config without
        # one arrives here with the parser default (gSTA), which no released TAU checkpoint used.
        cfg = {**cfg, "model_type": "tau"}
    temporal, translate = translator_for(cfg)
    model = build_model(method, cfg, temporal)
    hid = {k[len("hid."):]: v for k, v in sd.items() if k.startswith("hid.")}
    mapped = {_sub(_CODEC_RULES, k): v for k, v in sd.items() if not k.startswith("hid.")}
    mapped.update({f"temporal.{k}": v for k, v in translate(cfg, hid).items()})
    label = "TAU" if method == "tau" else f"SimVP ({cfg.get('model_type')})"
    return load_mapped(model, mapped, source=f"OpenSTL {label}")
