"""Training recipes: registry defaults + ``baselines/<dataset>.toml`` -> the resolved configuration of one run.

Resolution order (later wins), key by key (a ``model`` / ``sampling`` table is merged key by key too):

1. the dataset's own defaults, ``presets[<preset>]`` on its registry entry (``@DATASETS.register("x",
   presets={...})``), then ``[presets.<preset>]`` of ``baselines/<dataset>.toml``: the preset's
   dataset-level training defaults (epochs, batch size, sizes of the splits, optimizer, precision);
2. the component's own defaults on its registry entry: ``presets[<preset>]`` of the named model (or of
   the temporal module, for a bare temporal module such as a plugin), the same shape as a TOML table:
   training keys, ``model = {...}`` sizes, ``sampling = {...}``;
3. ``[models.<model>.<preset>]`` of the TOML (a dataset-specific recipe, e.g. a published one);
4. CLI overrides (``--epochs``, ``--set key=value``).

A recurrent model with no ``sampling`` after all that gets the ``schedule`` on its registry entry.
``model@encoder`` uses ``model``'s recipe. This file is the ONE place defaults are resolved.
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
DEFAULT_PRESET = "quick"  # what `stbench run` and `stbench profile` use without --preset


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
    """The parsed ``baselines/<dataset>.toml``; a dataset without one gets no recipes (see :func:`load_recipe`)."""
    root = baselines_dir()
    if not root.is_dir():
        raise RecipeError(f"no recipe directory at {root}; reinstall stbench or point STBENCH_BASELINES at baselines/")
    path = root / f"{dataset}.toml"
    if not path.is_file():
        return {}
    return _load_toml(path)


REQUIRED_KEYS = ("epochs", "batch_size")


def eval_batch_size(cfg: dict[str, Any]) -> int:
    """Batch size for validation and test: the recipe's ``eval_batch_size``, else its training batch size."""
    return int(cfg.get("eval_batch_size") or cfg["batch_size"])


def registry_defaults(model: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(``presets`` dict, ``schedule``) on the registry entry of ``model`` (``name[@encoder]``), falling back
    to the temporal module's entry (a bare temporal module, or a named model that declares none)."""
    from stbench.registry import MODELS, TEMPORAL

    base = model.partition("@")[0]
    presets: dict[str, Any] = {}
    schedule = None
    entries = []
    if base in MODELS:
        entries.append(MODELS.entry(base).meta)
    if base in TEMPORAL:
        entries.append(TEMPORAL.entry(base).meta)
    for meta in entries:
        presets = presets or dict(meta.get("presets") or {})
        schedule = schedule or meta.get("schedule")
    return presets, schedule


def dataset_defaults(dataset: str) -> dict[str, Any]:
    """``presets`` on the dataset's registry entry (empty for an unknown dataset; the runner names it)."""
    from stbench.registry import DATASETS

    return dict(DATASETS.entry(dataset).meta.get("presets") or {}) if dataset in DATASETS else {}


def _merge(cfg: dict[str, Any], table: dict[str, Any]) -> None:
    for k, v in copy.deepcopy(table).items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k].update(v)
        else:
            cfg[k] = v


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

    def build_model(self, name: str | None = None, *, spec: Any = None, data_root: str | None = None,
                    **overrides: Any):
        """The model at this recipe's architecture and the dataset's shapes: those of ``spec`` (the run's
        dataset, already built from its files) when given, else of a spec built with ``data_root`` (datasets
        whose shapes come from their files, e.g. ``well``, need it), else of the dataset without files."""
        import stbench

        if spec is None:
            spec = self.dataset_spec(data_root)
        user = dict(self.config.get("model_overrides", {}))
        user.update(overrides)
        return stbench.create_model(name or self.model, in_shape=tuple(spec.in_shape), t_out=spec.t_out,
                                    recipe_defaults=self.model_kw, **user)

    def dataset_spec(self, data_root: str | None = None) -> Any:
        """The spec of this recipe's dataset variant (``data`` options), read from ``data_root`` when given."""
        from stbench.data import get_spec

        return get_spec(self.dataset, data_root=data_root, **self.config.get("data", {}))


def load_recipe(dataset: str, model: str, preset: str, overrides: dict[str, Any] | None = None,
                sets: list[str] | None = None) -> Recipe:
    """The resolved recipe of one run (see the module docstring for the order)."""
    if preset not in PRESETS:
        raise RecipeError(f"unknown preset '{preset}'; choose one of {', '.join(PRESETS)}")
    data = dataset_recipes(dataset)
    base = model.partition("@")[0]
    entry_presets, schedule = registry_defaults(model)
    cfg: dict[str, Any] = {}
    _merge(cfg, dataset_defaults(dataset).get(preset, {}))
    _merge(cfg, data.get("presets", {}).get(preset, {}))
    _merge(cfg, entry_presets.get(preset, {}))
    mrec = data.get("models", {}).get(base, {})
    _merge(cfg, mrec.get(preset, {}))
    cfg.setdefault("lr", 1e-3)
    overrides = dict(overrides or {})
    if overrides.get("budget") is None and overrides.get("epochs") is not None:
        cfg.pop("budget", None)  # --epochs asks for that many epochs instead of the preset's budget
    for k, v in overrides.items():
        if v is not None:
            cfg[k] = v
    user_sets: dict[str, Any] = {}
    for item in sets or []:
        apply_set(user_sets, item)
    # --set model.x=... are strict architecture overrides; other keys override the recipe
    model_over = user_sets.pop("model", {})
    _merge(cfg, user_sets)
    if model_over:
        cfg["model_overrides"] = model_over
    if "sampling" not in cfg and schedule:
        cfg["sampling"] = dict(schedule)
    missing = [k for k in REQUIRED_KEYS if k not in cfg and not (k == "epochs" and cfg.get("budget"))]
    if missing and not data:
        from stbench.registry import DATASETS

        DATASETS.entry(dataset)  # an unknown dataset: "unknown dataset 'x'; did you mean ..." first
    if missing:
        where = (f"{baselines_dir() / (dataset + '.toml')} has no [presets.{preset}] with them"
                 if data else f"there is no recipe file {baselines_dir() / (dataset + '.toml')}")
        raise RecipeError(f"no {', '.join(missing)} for {model} on {dataset} (preset {preset}): {where}; add one, "
                          f"or pass {' '.join('--' + k.replace('_', '-') + ' N' for k in missing)}")
    return Recipe(dataset, model, preset, cfg, list(mrec.get("reference", [])))
