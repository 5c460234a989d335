"""Training recipes: ``baselines/<dataset>.toml`` + the model's registry entry + the CLI -> the resolved
configuration of one run. This file is the ONE place a recipe is resolved; ``stbench recipe --explain``
prints the result with the source of every key.

Resolution order (later wins), key by key (a ``model`` / ``sampling`` / ``data`` table is merged key by key too):

1. ``[presets.<preset>]`` of ``baselines/<dataset>.toml``: the dataset's training defaults for the preset
   (budget or epochs, batch size, sizes of the splits, optimizer, precision), the same for every model;
2. ``presets[<preset>]`` on the model's registry entry (``@MODELS.register(..., presets={...})``, or the
   temporal module's entry for a bare temporal module such as a plugin): the method's own defaults
   (lr, sizes ``model = {...}``, ``sampling = {...}``), the same on every dataset;
3. ``[models.<model>.<preset>]`` of the TOML: a dataset-specific recipe (e.g. a published one);
4. the CLI (``--epochs``, ``--batch-size``, ``--set key=value``; ``--set model.x=...`` is a strict
   architecture override kept apart as ``model_overrides``).

Two fallbacks fill what no layer gave: ``lr`` (:data:`DEFAULTS`), and, for a recurrent model, ``sampling``
from the ``schedule`` on its registry entry. The other keys of :data:`DEFAULTS` are read with
:func:`setting` where they are used (train.py), so a recipe that leaves them out trains the same.

A recipe file may start with ``extends = "base.toml"`` (a path relative to its own folder): the file is then
the base with its own tables laid over it, key by key at any depth (arrays and values replace). Files are
parsed, never executed. ``model@encoder`` uses ``model``'s recipe.
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

# the recipe keys that take one of a closed set of values (stbench.precision and stbench.compile check them; the
# CLI offers them as its options' choices, without importing torch)
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
MEMORY_FORMATS = ("nchw", "channels_last", "auto")
COMPILE_MODES = ("off", "on", "auto", "step", "cell")  # step / cell: on, with that region (stbench.compile)


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


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in top.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def recipe_chain(path: Path) -> list[tuple[Path, dict[str, Any]]]:
    """``path`` and the files it ``extends``, nearest first: (file, its own parsed tables without ``extends``)."""
    chain: list[tuple[Path, dict[str, Any]]] = []
    seen: list[Path] = []
    path = Path(path).resolve()
    while True:
        if path in seen:
            loop = " -> ".join(p.name for p in [*seen, path])
            raise RecipeError(f"recipe files extend each other in a cycle ({loop}); remove the 'extends' that "
                              f"closes it in {seen[-1]}")
        seen.append(path)
        data = dict(_load_toml(path))
        parent = data.pop("extends", None)
        chain.append((path, data))
        if parent is None:
            return chain
        if not isinstance(parent, str) or not parent.endswith(".toml"):
            raise RecipeError(f"{path}: extends = {parent!r} must be a string naming a .toml file, e.g. "
                              f'extends = "weather_base.toml"')
        nxt = (path.parent / parent).resolve()
        if not nxt.is_file():
            raise RecipeError(f"{path} extends '{parent}', which does not exist ({nxt}); fix the path (it is "
                              f"relative to {path.parent})")
        path = nxt


def read_recipe_file(path: Path) -> dict[str, Any]:
    """One recipe file with its ``extends`` chain applied (the base first, each file laid over it)."""
    out: dict[str, Any] = {}
    for _, data in reversed(recipe_chain(path)):
        out = _deep_merge(out, data)
    return out


def recipe_path(dataset: str) -> Path:
    """The recipe file of ``dataset``: ``<dataset>.toml`` of :func:`baselines_dir`; failing that, the file its
    registry entry names (a plugin's dataset: ``DATASETS.register("x", recipe="x.toml")``, a path relative to
    the folder of the module that registers it), so a plugin ships its recipes beside its code."""
    root = baselines_dir()
    if not root.is_dir():
        raise RecipeError(f"no recipe directory at {root}; reinstall stbench or point STBENCH_BASELINES at baselines/")
    path = root / f"{dataset}.toml"
    return path if path.is_file() else (_registered_recipe(dataset) or path)


def _registered_recipe(dataset: str) -> Path | None:
    import importlib.util

    from stbench.registry import DATASETS, RegistryError

    try:
        entry = DATASETS.entry(dataset)
    except RegistryError:
        return None
    own = entry.meta.get("recipe")
    if not own:
        return None
    path = Path(own)
    if not path.is_absolute():
        spec = importlib.util.find_spec(entry.module) if entry.module else None
        if spec is None or not spec.origin:
            raise RecipeError(f"dataset '{dataset}' names its recipe {own!r} relative to a module stbench cannot "
                              "locate; give an absolute path in DATASETS.register(..., recipe=...)")
        path = Path(spec.origin).parent / path
    if not path.is_file():
        raise RecipeError(f"dataset '{dataset}' names its recipe file {path}, which does not exist; write it (see "
                          "baselines/mmnist.toml for the layout) or fix DATASETS.register(..., recipe=...)")
    return path


def dataset_recipes(dataset: str) -> dict[str, Any]:
    """The parsed ``baselines/<dataset>.toml`` (its ``extends`` applied); a dataset without one gets no recipes
    (see :func:`load_recipe`)."""
    path = recipe_path(dataset)
    return read_recipe_file(path) if path.is_file() else {}


# stbench's own defaults for keys a recipe may leave out. ``lr`` is written into the resolved config; the others
# are read with :func:`setting` where they are used.
DEFAULTS: dict[str, Any] = {
    "lr": 1e-3,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "scheduler": "onecycle",
    "final_div_factor": 1e4,  # onecycle
    "min_lr": 1e-6,  # cosine (OpenSTL's defaults)
    "warmup_lr": 1e-5,
    "warmup_epochs": 0,
    "accum_steps": 1,
    "clip_grad": 0.0,  # 0 = off
    "precision": "fp32",  # what a run trains in unless --precision says otherwise
}


def setting(cfg: dict[str, Any], key: str) -> Any:
    """``cfg[key]``, else stbench's default (:data:`DEFAULTS`): the one place a missing recipe key is filled."""
    value = cfg.get(key)
    return DEFAULTS[key] if value is None else value


REQUIRED_KEYS = ("epochs", "batch_size")


def eval_batch_size(cfg: dict[str, Any]) -> int:
    """Batch size for validation and test: the recipe's ``eval_batch_size``, else its training batch size."""
    return int(cfg.get("eval_batch_size") or cfg["batch_size"])


def registry_defaults(model: str, *, with_owner: bool = False) -> Any:
    """(``presets`` dict, ``schedule``) on the registry entry of ``model`` (``name[@encoder]``), falling back
    to the temporal module's entry (a bare temporal module, or a named model that declares none); with
    ``with_owner``, a third item names the entry that gave the presets (for ``stbench recipe --explain``)."""
    from stbench.registry import MODELS, TEMPORAL

    base = model.partition("@")[0]
    presets: dict[str, Any] = {}
    schedule = None
    owner = "registry entry"
    entries = []
    if base in MODELS:
        entries.append(("MODELS", MODELS.entry(base)))
    if base in TEMPORAL:
        entries.append(("TEMPORAL", TEMPORAL.entry(base)))
    for reg, entry in entries:
        if not presets and entry.meta.get("presets"):
            presets = dict(entry.meta["presets"])
            owner = f"{reg} entry '{base}' ({getattr(entry.obj, '__module__', entry.source)})"
        schedule = schedule or entry.meta.get("schedule")
    return (presets, schedule, owner) if with_owner else (presets, schedule)


def _merge(cfg: dict[str, Any], table: dict[str, Any], sources: dict[str, str] | None = None,
           label: Any = None) -> None:
    """Lay ``table`` over ``cfg``: a table over a table merges key by key (one level), anything else replaces.
    With ``sources``, note ``label(path)`` as the source of every key path it sets (``"model.hid_S"``)."""
    for k, v in copy.deepcopy(table).items():
        path = (k,)
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k].update(v)
            subs = [(*path, kk) for kk in v]
        else:
            cfg[k] = v
            if sources is not None:
                for key in [key for key in sources if key == k or key.startswith(k + ".")]:
                    del sources[key]
            subs = [(*path, kk) for kk in v] if isinstance(v, dict) and v else [path]
        if sources is not None:
            for sub in subs:
                sources[".".join(sub)] = label(sub)


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
    return resolve(dataset, model, preset, overrides, sets)[0]


def resolve(dataset: str, model: str, preset: str, overrides: dict[str, Any] | None = None,
            sets: list[str] | None = None) -> tuple[Recipe, dict[str, str]]:
    """:func:`load_recipe`, and the source of every key of its config (``"model.hid_S"`` -> where it came from)."""
    if preset not in PRESETS:
        raise RecipeError(f"unknown preset '{preset}'; choose one of {', '.join(PRESETS)}")
    path = recipe_path(dataset)
    chain = recipe_chain(path) if path.is_file() else []
    data = read_recipe_file(path) if chain else {}
    base = model.partition("@")[0]
    entry_presets, schedule, owner = registry_defaults(model, with_owner=True)
    cfg: dict[str, Any] = {}
    src: dict[str, str] = {}

    def in_file(*table: str) -> Any:
        def label(sub: tuple[str, ...]) -> str:
            full = (*table, *sub)
            for file, raw in chain:  # the nearest file of the extends chain that sets it
                node: Any = raw
                for part in full:
                    node = node.get(part) if isinstance(node, dict) else None
                if node is not None:
                    return f"{file.name} [{'.'.join(table)}]"
            return f"{path.name} [{'.'.join(table)}]"
        return label

    _merge(cfg, data.get("presets", {}).get(preset, {}), src, in_file("presets", preset))
    _merge(cfg, entry_presets.get(preset, {}), src, lambda _: f"{owner} presets['{preset}']")
    mrec = data.get("models", {}).get(base, {})
    _merge(cfg, mrec.get(preset, {}), src, in_file("models", base, preset))
    if "lr" not in cfg:
        cfg["lr"], src["lr"] = DEFAULTS["lr"], "stbench default (recipes.DEFAULTS)"
    overrides = dict(overrides or {})
    if overrides.get("budget") is None and overrides.get("epochs") is not None and "budget" in cfg:
        del cfg["budget"], src["budget"]  # --epochs asks for that many epochs instead of the preset's budget
    for k, v in overrides.items():
        if v is not None:  # a flag replaces the key whole (a table too)
            cfg.pop(k, None)
            _merge(cfg, {k: v}, src, lambda _, k=k: f"command line (--{k.replace('_', '-')})")
    for item in sets or []:
        one: dict[str, Any] = {}
        apply_set(one, item)
        # --set model.x=... are strict architecture overrides; other keys override the recipe
        model_over = one.pop("model", {})
        _merge(cfg, one, src, lambda _, item=item: f"command line (--set {item})")
        if model_over:
            _merge(cfg, {"model_overrides": model_over}, src, lambda _, item=item: f"command line (--set {item})")
    if "sampling" not in cfg and schedule:
        _merge(cfg, {"sampling": dict(schedule)}, src, lambda _: f"{owner} schedule (no recipe gave sampling)")
    missing = [k for k in REQUIRED_KEYS if k not in cfg and not (k == "epochs" and cfg.get("budget"))]
    if missing and not data:
        from stbench.registry import DATASETS

        DATASETS.entry(dataset)  # an unknown dataset: "unknown dataset 'x'; did you mean ..." first
    if missing:
        where = (f"{path} has no [presets.{preset}] with them" if data else
                 f"there is no recipe file {path} (a plugin's dataset names its own: "
                 "DATASETS.register(..., recipe='x.toml'))")
        raise RecipeError(f"no {', '.join(missing)} for {model} on {dataset} (preset {preset}): {where}; add one, "
                          f"or pass {' '.join('--' + k.replace('_', '-') + ' N' for k in missing)}")
    return Recipe(dataset, model, preset, cfg, list(mrec.get("reference", []))), src


def show(dataset: str, model: str, preset: str, sets: list[str] | None = None, *, explain_keys: bool = False,
         as_json: bool = False) -> str:
    """``stbench recipe``: the resolved recipe as TOML-like text (with ``explain_keys``, the source of every key),
    or as JSON (``{"config": ..., "sources": ...}``)."""
    import json

    from stbench.registry import MODELS, TEMPORAL

    base = model.partition("@")[0]
    if base not in MODELS and base not in TEMPORAL:
        MODELS.entry(base)  # "unknown model 'x'; did you mean ..."
    recipe, sources = resolve(dataset, model, preset, sets=sets)
    if as_json:
        return json.dumps({"model": model, "dataset": dataset, "preset": preset, "config": recipe.config,
                           **({"sources": sources} if explain_keys else {})}, indent=2, sort_keys=True)
    if explain_keys:
        return explain(recipe, sources)
    return "\n".join(f"{k} = {_fmt(v)}" for k, v in sorted(recipe.config.items()))


def explain(recipe: Recipe, sources: dict[str, str]) -> str:
    """The resolved recipe as text, one key a line with its source; the stbench defaults that apply to keys the
    recipe leaves out are listed after it."""
    rows: list[tuple[str, Any]] = []
    for k, v in sorted(recipe.config.items()):
        if isinstance(v, dict) and v:
            rows += [(f"{k}.{kk}", vv) for kk, vv in sorted(v.items())]
        else:
            rows.append((k, v))
    unset = [k for k in DEFAULTS if k not in recipe.config]
    lines = [(k, _fmt(v), sources.get(k) or sources.get(k.split(".")[0], "?")) for k, v in rows]
    lines += [(k, _fmt(DEFAULTS[k]), "stbench default, the recipe leaves it out (recipes.DEFAULTS)") for k in unset]
    kw = max((len(k) for k, _, _ in lines), default=0)
    vw = min(max((len(v) for _, v, _ in lines), default=0), 40)
    out = [f"# {recipe.model} on {recipe.dataset}, preset {recipe.preset}: key = value  # source "
           "(order: stbench/recipes.py)"]
    out += [f"{k.ljust(kw)} = {v.ljust(vw)}  # {where}" for k, v, where in lines]
    if recipe.references:
        out.append(f"# {len(recipe.references)} published reference(s): [[models.{recipe.model.partition('@')[0]}"
                   f".reference]] of {recipe.dataset}.toml")
    return "\n".join(out)


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_fmt(v)}" for k, v in value.items()) + " }"
    return repr(value)
