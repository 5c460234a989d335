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


def check_run(opts: Any, model_name: str, spec: Any, device: torch.device) -> None:
    """One run of the grid: its resolved recipe's numbers, its precision on ``device``, its model's arguments."""
    from stbench.precision import resolve_precision
    from stbench.recipes import load_recipe

    recipe = load_recipe(opts.dataset, model_name, opts.preset, opts.overrides, opts.sets)
    cfg = recipe.config
    check_counts(cfg, opts.overrides)
    precision = opts.precision or cfg.get("precision", "fp32")
    try:
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
