"""Trained models you can keep: the weights of a run as safetensors, and a JSON model card that says what they are.

Every completed ``stbench run`` (unless ``--no-weights``) leaves, beside its record::

    <out>/records/<dataset>/<preset>/<model>__seed<s>.json           the run record
    <out>/records/<dataset>/<preset>/<model>__seed<s>.safetensors    the best-validation weights (the tested ones)
    <out>/records/<dataset>/<preset>/<model>__seed<s>.card.json      the model card

The card (``CARD_VERSION``) holds: the model name and its components, the input shape and trained horizon, the
run's resolved recipe (``config``: architecture under ``model`` / ``model_overrides``, training keys, ``data``)
and the built model's hyper-parameters, the dataset (name, variant, scale) and its **normalisation**, the
training budget, the seed, the test metrics with 95% bootstrap intervals over test sequences, params and FLOPs,
the stbench version and git commit, and the sha256 of the weights file. :func:`load_model` rebuilds the model
from the card alone (no ``--config``, no data files) and refuses, in one line, a card whose sha256 or whose
architecture (tensor names and shapes) does not match the weights. Weights are read with
``safetensors.torch.load_file`` only: nothing is unpickled.

Normalisation (:func:`normalisation`): what maps a user's raw array to the model's inputs, from what the dataset's
spec carries. ``zscore`` (weather: the training years' ``mean`` / ``std`` per channel, ``spec.metric_context``):
model value = (x - mean_c) / std_c, predictions mapped back with x = value * std_c + mean_c; with the
``climatology`` (weather's per-channel, per-pixel training mean, which ``wacc`` scores against) as base64 float32
(:func:`stbench.data.spec.encode_array`, about 11 kB per 32 x 64 channel), so ``stbench eval`` of the weights reads
only the test years (:meth:`stbench.data.spec.Dataset.set_statistics`). ``identity`` (every
other built-in dataset): inputs are on the dataset's scale (``[0, 1]`` for images); a uint8 array is divided by
255 first, as every dataset reads its uint8 files (:meth:`stbench.data.spec.Dataset.read`), and predictions are
mapped back to 0..255. :func:`to_model` / :func:`from_model` apply and undo it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from stbench.data.spec import encode_array
from stbench.errors import CheckpointError, DataError, UserError
from stbench.models.base import ROLLOUTS
from stbench.records import CARD_SUFFIX

CARD_VERSION = 1
WEIGHTS_SUFFIX = ".safetensors"


def paths_for(record_file: Path) -> tuple[Path, Path]:
    """(weights file, card file) beside a record ``<name>.json``."""
    record_file = Path(record_file)
    return record_file.with_suffix(WEIGHTS_SUFFIX), record_file.with_suffix(CARD_SUFFIX)


def card_path(weights: Path) -> Path:
    return Path(weights).with_suffix(CARD_SUFFIX)


def is_card_weights(path: str | Path) -> bool:
    """True for a ``.safetensors`` file or a ``.card.json`` (the pair :func:`load_model` reads)."""
    name = Path(path).name
    return name.endswith(WEIGHTS_SUFFIX) or name.endswith(CARD_SUFFIX)


# ---------------------------------------------------------------------------------------------
# normalisation: from the dataset's spec, into the card, applied and undone on arrays
# ---------------------------------------------------------------------------------------------
def normalisation(spec: Any) -> dict[str, Any]:
    """How raw values map to the model's inputs, from what ``spec`` carries (see the module docstring)."""
    ctx = dict(getattr(spec, "metric_context", None) or {})
    if ctx.get("mean") is not None and ctx.get("std") is not None:
        return {"kind": "zscore", "mean": [float(v) for v in np.ravel(ctx["mean"])],
                "std": [float(v) for v in np.ravel(ctx["std"])],
                "channels": list(ctx["channels"]) if ctx.get("channels") is not None else None,
                "climatology": encode_array(ctx["clim"]) if ctx.get("clim") is not None else None,
                "meaning": "model value = (x - mean_c) / std_c (statistics of the training split)"}
    return {"kind": "identity", "scale": [float(v) for v in spec.scale],
            "meaning": "inputs on the dataset's scale; uint8 arrays are divided by 255 when the scale is [0, 1]"}


def check_normalisation(norm: dict[str, Any] | None, spec: Any) -> None:
    """DataError unless the dataset ``spec`` scales its values as the card's ``norm`` says (the weights were trained
    on inputs scaled that way; ``stbench eval`` reads the dataset's own pipeline)."""
    if not norm:
        return
    have = normalisation(spec)
    same = have["kind"] == norm.get("kind")
    if same and have["kind"] == "zscore":
        same = (len(have["mean"]) == len(norm["mean"]) and np.allclose(have["mean"], norm["mean"], rtol=1e-4)
                and np.allclose(have["std"], norm["std"], rtol=1e-4))
    elif same:
        same = list(have["scale"]) == list(norm.get("scale", have["scale"]))
    if not same:
        show = {k: v for k, v in have.items() if k in ("kind", "mean", "std", "scale")}
        want = {k: v for k, v in norm.items() if k in ("kind", "mean", "std", "scale")}
        raise DataError(f"the data normalise as {show} but the model card says {want}: the weights were trained on "
                        "other data; score them on the files they were trained on")


def _per_channel(values: list[float], channels: int, what: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    if v.size == 1:
        v = np.repeat(v, channels)
    if v.size != channels:
        raise CheckpointError(f"the card's normalisation has {v.size} {what} values for a {channels}-channel model; "
                              "the card is damaged: re-export it with stbench run")
    return v.reshape(1, 1, channels, 1, 1)  # (1, 1, C, 1, 1)


def to_model(x: np.ndarray, norm: dict[str, Any] | None) -> np.ndarray:
    """Raw ``(N, T, C, H, W)`` -> the model's float32 values."""
    kind = (norm or {}).get("kind", "identity")
    if kind == "zscore":
        c = x.shape[2]
        return ((x.astype(np.float32) - _per_channel(norm["mean"], c, "mean")) / _per_channel(norm["std"], c, "std"))
    if kind != "identity":
        raise CheckpointError(f"unknown normalisation kind '{kind}' in the card; upgrade stbench to read it")
    if x.dtype == np.uint8 and tuple((norm or {}).get("scale", (0.0, 1.0))) == (0.0, 1.0):
        return np.divide(x, np.float32(255.0), dtype=np.float32)
    return x.astype(np.float32)


def from_model(y: np.ndarray, norm: dict[str, Any] | None, raw_dtype: np.dtype) -> np.ndarray:
    """The model's float32 ``(N, T, C, H, W)`` -> raw units (the inverse of :func:`to_model`), float32."""
    kind = (norm or {}).get("kind", "identity")
    if kind == "zscore":
        c = y.shape[2]
        return y * _per_channel(norm["std"], c, "std") + _per_channel(norm["mean"], c, "mean")
    if np.dtype(raw_dtype) == np.uint8 and tuple((norm or {}).get("scale", (0.0, 1.0))) == (0.0, 1.0):
        return y * np.float32(255.0)
    return y


# ---------------------------------------------------------------------------------------------
# saving (the runner, after the test of a completed run)
# ---------------------------------------------------------------------------------------------
def state_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict as plain, contiguous, unshared CPU tensors (what safetensors can store)."""
    model = getattr(model, "module", model)  # a DDP wrapper's model
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}


def _intervals(per_sequence: dict[str, Any] | None) -> dict[str, list[float]]:
    if not per_sequence:
        return {}
    from stbench.report.tables import bootstrap_ci  # the report's interval, so card and leaderboard agree

    out = {}
    for k, v in per_sequence.items():
        lo, hi = bootstrap_ci(np.asarray(v, dtype=np.float64))
        if np.isfinite(lo) and np.isfinite(hi):
            out[k] = [lo, hi]
    return out


def build_card(model: torch.nn.Module, rec: Any, spec: Any, *, weights_file: Path, sha256: str, size: int,
               per_sequence: dict[str, Any] | None) -> dict[str, Any]:
    """The model card of a completed run's weights (see the module docstring)."""
    from stbench.report.tables import CI_LEVEL, N_BOOTSTRAP

    net = getattr(model, "module", model)
    cfg = dict(rec.config or {})
    prof = rec.profile or {}
    env = rec.env or {}
    return {
        "card_version": CARD_VERSION,
        "weights": {"file": Path(weights_file).name, "sha256": sha256, "bytes": size, "format": "safetensors"},
        "record": Path(rec.path(Path("."))).name, "run_id": rec.run_id,
        "model": rec.model, "family": rec.family, "encoder": rec.encoder, "temporal": rec.temporal,
        "decoder": rec.decoder, "rollout": rec.rollout,
        "in_shape": [int(v) for v in net.in_shape], "t_out": int(net.t_out),
        "preset": rec.preset, "seed": rec.seed,
        "config": cfg, "model_hparams": cfg.get("model_hparams", getattr(net, "hparams", {})),
        "dataset": {"name": rec.dataset, "params": dict(getattr(spec, "params", {}) or {}),
                    "scale": [float(v) for v in spec.scale], "description": getattr(spec, "description", "")},
        "normalisation": normalisation(spec),
        "budget": getattr(rec, "budget", None),
        "test": {"metrics": dict(rec.metrics or {}), "intervals": _intervals(per_sequence),
                 "interval": f"{CI_LEVEL:.0%} percentile bootstrap of the mean over test sequences "
                             f"({N_BOOTSTRAP} resamples)" if per_sequence else None,
                 "n_sequences": int(len(next(iter(per_sequence.values())))) if per_sequence else None,
                 "per_frame": rec.per_frame, "convention": rec.convention},
        "val": rec.val,
        "cost": {"params": int(prof.get("params") or sum(p.numel() for p in net.parameters())),
                 "flops": prof.get("flops"), "flops_convention": prof.get("flops_convention")},
        "stbench": {"version": env.get("stbench"), "git_commit": env.get("git_commit"),
                    "git_dirty": env.get("git_dirty"), "torch": env.get("torch")},
    }


def save_model(model: torch.nn.Module, rec: Any, spec: Any, record_file: Path,
               per_sequence: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``<record>.safetensors`` and ``<record>.card.json`` (each atomically, weights first); returns the card."""
    from safetensors.torch import save

    from stbench.records import atomic_write_bytes, atomic_write_json

    wpath, cpath = paths_for(record_file)
    data = save(state_tensors(model), metadata={"format": "pt", "stbench_model": rec.model})
    atomic_write_bytes(wpath, data)
    card = build_card(model, rec, spec, weights_file=wpath, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                      per_sequence=per_sequence)
    atomic_write_json(cpath, card)
    return card


# ---------------------------------------------------------------------------------------------
# loading (stbench eval / stbench predict / stbench.predict)
# ---------------------------------------------------------------------------------------------
def read_card(path: str | Path) -> tuple[dict[str, Any], Path]:
    """(the card, the weights file) for a ``.safetensors`` or ``.card.json`` path; one-line errors."""
    path = Path(path)
    if path.name.endswith(CARD_SUFFIX):
        cfile, wfile = path, path.with_name(path.name[: -len(CARD_SUFFIX)] + WEIGHTS_SUFFIX)
    else:
        wfile, cfile = path, card_path(path)
    if not wfile.is_file():
        raise CheckpointError(f"weights file '{wfile}' does not exist; pass the .safetensors that stbench run wrote "
                              "beside its record")
    if not cfile.is_file():
        raise CheckpointError(f"no model card '{cfile.name}' beside '{wfile.name}'; the card says which model the "
                              "weights are: keep the two files together (stbench run writes both)")
    try:
        card = json.loads(cfile.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"model card '{cfile.name}' is not readable JSON ({type(exc).__name__})") from None
    missing = [k for k in ("card_version", "model", "in_shape", "t_out", "config", "dataset", "weights", "preset")
               if not isinstance(card, dict) or k not in card]
    if missing:
        raise CheckpointError(f"model card '{cfile.name}' lacks {', '.join(missing)}; it is not an stbench card")
    bad = [k for k in ("config", "dataset", "weights") if not isinstance(card[k], dict)]
    if bad or not isinstance(card["model"], str) or not isinstance(card["in_shape"], list):
        raise CheckpointError(f"model card '{cfile.name}' is malformed ({', '.join(bad) or 'model / in_shape'} of "
                              "the wrong type); it is not an stbench card")
    if not isinstance(card["card_version"], int) or card["card_version"] > CARD_VERSION:
        raise CheckpointError(f"model card '{cfile.name}' has card_version {card['card_version']!r}, newer than "
                              f"this stbench's {CARD_VERSION}; upgrade stbench")
    return card, wfile


def _check_tensors(net: torch.nn.Module, tensors: dict[str, torch.Tensor], card: dict[str, Any], name: str) -> None:
    want = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in tensors.items()}
    missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    bad = sorted(k for k in set(want) & set(have) if want[k] != have[k])
    if missing or extra or bad:
        what = (f"'{bad[0]}' is {have[bad[0]]} in the weights but {want[bad[0]]} in the card's model" if bad else
                f"tensor '{missing[0]}' of the card's model is missing from the weights" if missing else
                f"the weights hold '{extra[0]}', which the card's model has no place for")
        raise CheckpointError(f"'{name}' does not match its card ({card['model']}, preset {card['preset']}): {what} "
                              f"({len(missing)} missing, {len(extra)} unexpected, {len(bad)} of another shape); "
                              "the card belongs to other weights")


def load_model(path: str | Path, *, model: str | None = None,
               device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """(the model of a ``.safetensors`` + card pair with its weights loaded, in eval mode, the card).

    ``model``, if given, must be the card's model. The weights file must have the card's sha256 and exactly the
    tensors (names and shapes) of the model the card describes; anything else is refused in one line.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from stbench.models.base import upgrade_state_dict
    from stbench.recipes import Recipe

    card, wfile = read_card(path)
    if model is not None and model != card["model"]:
        raise UserError(f"--model {model} but the card of '{wfile.name}' describes '{card['model']}'; drop --model "
                        f"or pass --model {card['model']}")
    data = wfile.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if sha != card["weights"].get("sha256"):
        raise CheckpointError(f"'{wfile.name}' has sha256 {sha[:12]}... but its card names "
                              f"{str(card['weights'].get('sha256'))[:12]}...: the weights were changed or the card "
                              "belongs to other weights")
    try:
        tensors = load_file(str(wfile), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"'{wfile.name}' is not a readable safetensors file "
                              f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    del data
    shapes = SimpleNamespace(in_shape=tuple(int(v) for v in card["in_shape"]), t_out=int(card["t_out"]))
    recipe = Recipe(card["dataset"]["name"], card["model"], card["preset"], dict(card["config"]))
    net = recipe.build_model(card["model"], spec=shapes)
    tensors = upgrade_state_dict(net, tensors)  # weights saved before a layer's parameters were renamed
    _check_tensors(net, tensors, card, wfile.name)
    net.load_state_dict(tensors)
    if not net.recurrent and card.get("rollout") in ROLLOUTS:
        net.rollout = card["rollout"]
    return net.to(device).eval(), card
