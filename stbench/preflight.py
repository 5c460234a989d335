"""Every value a run or an evaluation is asked for, checked before anything is written (issue 24).

``stbench run`` calls :func:`check_device` and :func:`check_options` before it sets anything up and
:func:`check_run` for every run of its grid before the first record (the floors) is written: the resolved
recipe's numbers (whether they came from a flag, ``--set`` or ``baselines/<dataset>.toml``), the precision
on the device at hand, and the model built once on the ``meta`` device (so ``--set model.nosuch=3`` is
refused here, not after the floors). ``stbench eval`` calls :func:`check_counts` and :func:`check_device`
before it reads the checkpoint. Each refusal is one line that names the value and the fix (exit 2).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from stbench.errors import RecipeError, StbenchError, UserError

# recipe key -> what it must be; the CLI flag of the same name is --key-with-dashes
WHOLE_POSITIVE = ("batch_size", "eval_batch_size", "epochs", "train_size", "val_size", "test_size", "accum_steps",
                  "train_batches")
POSITIVE = ("lr",)
NON_NEGATIVE = ("clip_grad", "weight_decay", "time_limit_s")


def _shown(key: str, value: Any, flags: dict[str, Any]) -> str:
    """``--batch-size 0`` when the value came from that flag, else ``batch_size 0 (recipe or --set)``."""
    if flags.get(key) is not None:
        return f"--{key.replace('_', '-')} {value}"
    return f"{key} {value} (from the recipe or --set {key}=...)"


def check_counts(values: dict[str, Any], flags: dict[str, Any] | None = None) -> None:
    """Raise :class:`RecipeError` for the first value in ``values`` (recipe keys) that is out of its range.
    ``flags``: the values the user gave as command-line flags (named as such in the message)."""
    flags = flags or {}
    for key, value in values.items():
        if value is None:
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if key in WHOLE_POSITIVE:
            ok = number and float(value).is_integer() and value >= 1
            need = "a whole number of at least 1"
        elif key in POSITIVE:
            ok = number and math.isfinite(value) and value > 0
            need = "a finite number above 0, e.g. 1e-3"
        elif key in NON_NEGATIVE:
            ok = number and math.isfinite(value) and value >= 0
            need = "a finite number of at least 0"
        else:
            continue
        if not ok:
            raise RecipeError(f"bad {_shown(key, value, flags)}: it must be {need}")


def check_device(name: str | None) -> torch.device:
    """The device ``--device`` names, or a :class:`UserError` (an unknown or unavailable device)."""
    from stbench.precision import resolve_device

    if name not in (None, "", "auto") and str(name).partition(":")[0] not in ("cpu", "cuda"):
        raise UserError(f"unknown --device {name}: stbench runs on cpu or cuda; use --device cpu, cuda, cuda:N or auto")
    try:
        return resolve_device(name)
    except ValueError as exc:
        raise UserError(str(exc).splitlines()[0]) from None


def check_options(opts: Any) -> None:
    """The run's options that are not recipe values: seeds, threads."""
    if opts.threads is not None and opts.threads < 1:
        raise UserError(f"bad --threads {opts.threads}: it must be at least 1 (or leave it out)")
    if not opts.seeds:
        raise UserError("no seed to run: pass --seeds as a comma list of integers, e.g. 0,1,2")


def check_run(opts: Any, model_name: str, spec: Any, device: torch.device | None) -> None:
    """One run of the grid: its resolved recipe's numbers, its precision on ``device`` (None: the device is
    elsewhere, e.g. a Slurm node; only the name is checked), its model's arguments."""
    from stbench.precision import PRECISIONS, resolve_precision
    from stbench.recipes import load_recipe, setting

    recipe = load_recipe(opts.dataset, model_name, opts.preset, opts.overrides, opts.sets)
    cfg = recipe.config
    check_counts(cfg, opts.overrides)
    precision = opts.precision or setting(cfg, "precision")
    try:
        if device is None and precision not in PRECISIONS:
            raise ValueError(f"unknown precision '{precision}'; choose one of {', '.join(PRECISIONS)}")
        if device is not None:
            resolve_precision(precision, device)
    except ValueError as exc:
        raise UserError(f"{str(exc).splitlines()[0]} (--precision {precision})") from None
    try:
        with torch.device("meta"):  # shapes and arguments only: nothing allocated
            recipe.build_model(model_name, spec=spec)
    except StbenchError:
        raise
    except Exception:  # noqa: BLE001 - not a bad argument of the user's: the run itself records it as failed
        pass


def check_data_source(record: Path, source: dict[str, Any], *, force: bool, resume: bool = False) -> None:
    """Refuse when ``record`` is completed (or is being resumed) but was computed on other data than ``source``
    (:func:`stbench.data.check.data_source`): a record's identity includes its data (issue 24)."""
    from stbench.data.check import describe_source, same_source, source_of_record
    from stbench.records import read_record

    old = read_record(record)
    if old is None or force or not (old.status == "completed" or resume):
        return
    theirs = source_of_record(old.config)
    if not same_source(theirs, source):
        raise UserError(f"{record} holds a run on {describe_source(theirs)}, not on {describe_source(source)}; "
                        "use another --out, or --force to replace it")


CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "scaler", "state", "meta")


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _recipe_view(cfg: dict[str, Any], derived: tuple[str, ...]) -> dict[str, Any]:
    """A recipe as compared on --resume: ``model.<k>`` for the architecture overrides, without what the
    runner derives (the budget's plan, the measured precision and layout)."""
    view = {k: v for k, v in cfg.items() if k not in derived and k != "model_overrides"
            and not k.startswith(("precision_", "memory_format_"))}
    view.update({f"model.{k}": v for k, v in (cfg.get("model_overrides") or {}).items()})
    return view


def check_resume(ckpt: Any, path: Path, cfg: dict[str, Any], model: torch.nn.Module, *,
                 flags: dict[str, Any], derived: tuple[str, ...], precision: str | None = None) -> None:
    """Refuse (one line, naming the first difference) to resume ``ckpt`` into another recipe, architecture or
    ``--precision`` than the one it was trained with; nothing is written before this check (issue 24)."""
    from stbench.errors import CheckpointError

    fix = "resume with the original settings, or start over with --force"
    if not isinstance(ckpt, dict) or not all(k in ckpt for k in CHECKPOINT_KEYS):
        what = (f"a {type(ckpt).__name__}" if not isinstance(ckpt, dict) else
                "a bare state dict" if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()) else
                f"a dict without {', '.join(k for k in CHECKPOINT_KEYS if k not in ckpt)}")
        raise CheckpointError(f"{path} is not an stbench training checkpoint (it holds {what}); --resume needs the "
                              "checkpoint `stbench run` wrote there; start over with --force")
    stored = dict((ckpt.get("meta") or {}).get("cfg") or {})
    was = (stored.get("precision_choice") or {}).get("precision")
    if precision not in (None, "auto") and was and precision != was:  # a resumed run keeps its measured choice
        raise CheckpointError(f"--resume: {path.name} was trained in {was} but this run asks for --precision "
                              f"{precision}; {fix}")
    old = _recipe_view(stored, derived)
    new = _recipe_view(cfg, derived)
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            shown = f"--{key.replace('_', '-')}" if flags.get(key) is not None else key
            raise CheckpointError(f"--resume: {path.name} was trained with {key} = {_short(old.get(key))} but this "
                                  f"run asks for {shown} = {_short(new.get(key))}; {fix}")
    theirs = ckpt["model"]
    ours = model.state_dict()
    for key in [*ours, *(k for k in theirs if k not in ours)]:
        a, b = theirs.get(key), ours.get(key)
        sa = tuple(a.shape) if isinstance(a, torch.Tensor) else None
        sb = tuple(b.shape) if isinstance(b, torch.Tensor) else None
        if sa != sb:
            raise CheckpointError(f"--resume: {path.name} holds another architecture ({key}: "
                                  f"{sa or 'absent'} in the checkpoint, {sb or 'absent'} in the model asked for); "
                                  f"{fix}")


def check_splits(dataset: Any, splits: tuple[str, ...] = ("train", "val", "test")) -> None:
    """Refuse a dataset with an empty split (e.g. trajectories shorter than one window) in one line."""
    from stbench.errors import DataError

    for split in splits:
        if dataset.num_samples(split) < 1:
            raise DataError(f"dataset '{dataset.spec.name}' has no {split} sequences (files with too few frames for "
                            f"one window of {dataset.spec.in_shape[0]} + {dataset.spec.t_out}, or an empty split); "
                            "check the files with `stbench data check`, or ask for shorter windows")


def check_launch(opts: Any) -> None:
    """``--launcher slurm|submitit-local``: every value of every cell checked here, before the manifest is
    written or a job submitted (the device and precision are the compute node's: names only)."""
    from stbench.data import get_spec
    from stbench.recipes import load_recipe

    check_options(opts)
    data_kw = dict(load_recipe(opts.dataset, opts.models[0], opts.preset, opts.overrides, opts.sets).config
                   .get("data", {}))
    spec = get_spec(opts.dataset, **data_kw)
    for model_name in dict.fromkeys(opts.models):
        check_run(opts, model_name, spec, None)
