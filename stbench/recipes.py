"""Training recipes: ``baselines/<dataset>.toml`` -> the resolved configuration of one run.

Resolution order (later wins): ``[presets.<preset>]`` -> ``[models.<model>.<preset>]`` -> CLI
overrides (``--epochs``, ``--set key=value``). ``model@encoder`` uses ``model``'s recipe; a bare
temporal module (e.g. a plugin) uses the preset's defaults. This file is the ONE place defaults
are resolved.
"""

from __future__ import annotations

import copy
import os
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from stbench.errors import RecipeError

PRESETS = ("paper", "quick", "smoke")


def baselines_dir() -> Path:
    """Where the recipe files are: ``$STBENCH_BASELINES`` if set; else the copy an installed package
    carries (``stbench/_baselines``, made at build time from ``baselines/``, see setup.py); else
    ``baselines/`` of the source checkout (editable installs, tests)."""
    env = os.environ.get("STBENCH_BASELINES")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    packaged = here / "_baselines"
    if packaged.is_dir():
        return packaged
    return here.parent / "baselines"


@lru_cache(maxsize=16)
def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"recipe file {path} is not valid TOML: {exc}") from None


def dataset_recipes(dataset: str) -> dict[str, Any]:
    root = baselines_dir()
    if not root.is_dir():
        raise RecipeError(f"no recipe directory at {root}; reinstall stbench or point STBENCH_BASELINES at baselines/")
    path = root / f"{dataset}.toml"
    if not path.is_file():
        return {"presets": {p: {} for p in PRESETS}, "models": {}}
    return _load_toml(path)


def references(dataset: str, model: str) -> list[dict[str, Any]]:
    """Published numbers for a model (never measured values)."""
    base = model.partition("@")[0]
    return list(dataset_recipes(dataset).get("models", {}).get(base, {}).get("reference", []))


def parse_value(text: str) -> Any:
    """A --set value: TOML scalar/array syntax (1e-3, true, [32, 32], "x"), else a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_set(cfg: dict[str, Any], item: str) -> None:
    key, sep, val = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise RecipeError(f"malformed override '{item}'; write KEY=VALUE, e.g. --set model.hid_T=256")
    parts = key.split(".")
    node = cfg
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise RecipeError(f"malformed override '{item}': '{p}' is not a table")
    node[parts[-1]] = parse_value(val.strip())


@dataclass
class Recipe:
    dataset: str
    model: str
    preset: str
    config: dict[str, Any] = field(default_factory=dict)  # training keys + model + sampling
    references: list[dict[str, Any]] = field(default_factory=list)

    @property
    def model_kw(self) -> dict[str, Any]:
        return dict(self.config.get("model", {}))

    def build_model(self, name: str | None = None, **overrides: Any):
        """The model at this recipe's architecture and the dataset's shapes."""
        import stbench
        from stbench.data import get_spec

        spec = get_spec(self.dataset, **self.config.get("data", {}))
        user = dict(self.config.get("model_overrides", {}))
        user.update(overrides)
        return stbench.create_model(name or self.model, in_shape=tuple(spec.in_shape), t_out=spec.t_out,
                                    recipe_defaults=self.model_kw, **user)


def load_recipe(dataset: str, model: str, preset: str, overrides: dict[str, Any] | None = None,
                sets: list[str] | None = None) -> Recipe:
    if preset not in PRESETS:
        raise RecipeError(f"unknown preset '{preset}'; choose one of {', '.join(PRESETS)}")
    data = dataset_recipes(dataset)
    cfg: dict[str, Any] = copy.deepcopy(data.get("presets", {}).get(preset, {}))
    base = model.partition("@")[0]
    mrec = data.get("models", {}).get(base, {})
    for k, v in copy.deepcopy(mrec.get(preset, {})).items():
        cfg[k] = v
    cfg.setdefault("lr", 1e-3)
    for k, v in (overrides or {}).items():
        if v is not None:
            cfg[k] = v
    user_sets: dict[str, Any] = {}
    for item in sets or []:
        apply_set(user_sets, item)
    # --set model.x=... are strict architecture overrides; other keys override the recipe
    model_over = user_sets.pop("model", {})
    for k, v in user_sets.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k].update(v)
        else:
            cfg[k] = v
    if model_over:
        cfg["model_overrides"] = model_over
    return Recipe(dataset, model, preset, cfg, list(mrec.get("reference", [])))
