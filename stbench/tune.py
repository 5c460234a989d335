"""``stbench tune``: the same tuning effort for every model, selected on the validation split only.

    stbench tune --models tau,predrnn --dataset mmnist --preset quick --grid lr=1e-3,3e-3,1e-2 --seeds 0,1
    stbench tune --models 'tau,convlstm' --grid lr=1e-4:1e-2 --grid batch_size=4,8 --trials 6

Every model gets exactly the same trials: the full grid (every combination of the ``--grid`` values, in order),
or with ``--trials K`` the same K settings drawn once from the space with a fixed seed (a value list is drawn
from uniformly; ``LO:HI`` is drawn log-uniformly when both are positive, else uniformly). Each trial is a normal
run (same preset, budget and launcher options) at the tuning seed, stopped after validation: its test split is
never evaluated. The setting with the best validation MSE of the selected weights is then trained with the
requested ``--seeds`` into the normal records, each of which keeps the trials (setting, validation MSE) and the
choice in ``config.tuning``; the leaderboard's Tuning column says "tuned on val, K trials".

Trial records live under ``<out>/tuning/<dataset>/<preset>/<setting>/`` (never in a leaderboard). Everything
resumes: completed trials and runs are skipped, an interrupted one continues with ``--resume`` semantics.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from stbench.console import make_console
from stbench.errors import UserError
from stbench.recipes import parse_value
from stbench.records import read_record
from stbench.runner import run_grid, run_paths

TUNE_SEED = 0  # the seed of every trial (the final runs use --seeds)
SELECT_ON = "val mse"  # the validation-split MSE of the selected (best-epoch) weights


@dataclass(frozen=True)
class Range:
    lo: float
    hi: float

    @property
    def log(self) -> bool:
        return self.lo > 0 and self.hi > 0

    def draw(self, rng: np.random.Generator) -> float:
        if self.log:
            v = math.exp(rng.uniform(math.log(self.lo), math.log(self.hi)))
        else:
            v = rng.uniform(self.lo, self.hi)
        return float(f"{v:.3g}")  # readable settings (3 significant digits), the same for every model


def parse_space(items: list[str]) -> dict[str, list[Any] | Range]:
    """``["lr=1e-3,3e-3", "batch_size=4,8", "model.hid_T=64:256"]`` -> {key: values or Range}."""
    space: dict[str, list[Any] | Range] = {}
    for item in items:
        key, sep, vals = item.partition("=")
        key = key.strip()
        if not sep or not key or not vals.strip():
            raise UserError(f"bad --grid '{item}'; write KEY=V1,V2,... or KEY=LO:HI, e.g. --grid lr=1e-3,3e-3,1e-2")
        if ":" in vals and "," not in vals:
            lo, _, hi = vals.partition(":")
            try:
                r = Range(float(lo), float(hi))
            except ValueError:
                raise UserError(f"bad range in --grid '{item}'; write KEY=LO:HI with numbers, "
                                "e.g. lr=1e-4:1e-2") from None
            if not r.lo < r.hi:
                raise UserError(f"bad range in --grid '{item}': LO must be below HI")
            space[key] = r
        else:
            space[key] = [parse_value(v.strip()) for v in vals.split(",") if v.strip()]
    if not space:
        raise UserError("stbench tune needs a search space; give --grid KEY=V1,V2,... (e.g. --grid lr=1e-3,3e-3)")
    return space


def settings(space: dict[str, list[Any] | Range], trials: int | None, seed: int = 0) -> list[dict[str, Any]]:
    """The trials every model gets: the whole grid, or ``trials`` settings drawn with ``seed`` (the same draw
    for every model, so the effort is identical)."""
    keys = list(space)
    if trials is None:
        ranges = [k for k in keys if isinstance(space[k], Range)]
        if ranges:
            raise UserError(f"--grid {ranges[0]}=LO:HI is a range: give --trials K to draw K settings from it")
        return [dict(zip(keys, combo)) for combo in itertools.product(*(space[k] for k in keys))]
    if trials < 1:
        raise UserError(f"--trials {trials}: give at least 1")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(trials):
        out.append({k: (v.draw(rng) if isinstance(v, Range) else v[int(rng.integers(len(v)))])
                    for k, v in space.items()})
    return out


def setting_label(setting: dict[str, Any]) -> str:
    """``{"lr": 0.001, "batch_size": 8}`` -> ``"lr=0.001,batch_size=8"`` (also a safe folder name)."""
    text = ",".join(f"{k}={v}" for k, v in setting.items())
    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", text)


@dataclass
class TuneOptions:
    run: Any  # stbench.runner.RunOptions: models, dataset, preset, budget, --seeds of the final runs, out, ...
    space: dict[str, list[Any] | Range]
    trials: int | None = None


def _trial_opts(opts: TuneOptions, model: str, setting: dict[str, Any]) -> Any:
    r = opts.run
    out = Path(r.out) / "tuning" / r.dataset / r.preset / setting_label(setting)
    return replace(r, models=[model], seeds=[TUNE_SEED], out=out, floors=False, evaluate_test=False,
                   resume=True, sets=[*r.sets, *(f"{k}={v}" for k, v in setting.items())], tuning=None)


def tune_model(opts: TuneOptions, model: str, con: Any) -> int:
    """The trials of one model, then its final runs with the chosen setting; 1 if anything failed."""
    r = opts.run
    trials = []
    for setting in settings(opts.space, opts.trials):
        t_opts = _trial_opts(opts, model, setting)
        con.print(f"[bold]tune {model}[/bold]: trial {len(trials) + 1} {setting_label(setting)}")
        run_grid(t_opts)
        path = run_paths(t_opts, model, TUNE_SEED)[0]
        rec = read_record(path)
        val = ((rec.val or {}).get("metrics") or {}).get("mse") if rec and rec.status == "completed" else None
        trials.append({"setting": setting, "val_mse": val, "status": rec.status if rec else "missing",
                       "record": str(path)})
    finite = [t for t in trials if isinstance(t["val_mse"], (int, float)) and math.isfinite(t["val_mse"])]
    if not finite:
        con.print(f"[red]tune {model}: no trial finished with a finite validation MSE; nothing to train[/red]")
        return 1
    best = min(finite, key=lambda t: t["val_mse"])
    tuning = {"selected_on": SELECT_ON, "space": {k: (f"{v.lo}:{v.hi}" if isinstance(v, Range) else v)
                                                  for k, v in opts.space.items()},
              "search": "grid" if opts.trials is None else f"random, {opts.trials} trials, seed {TUNE_SEED}",
              "trial_seed": TUNE_SEED, "trials": trials, "chosen": best["setting"]}
    con.print(f"[bold]tune {model}[/bold]: chose {setting_label(best['setting'])} (val MSE {best['val_mse']:.2f} "
              f"of {len(trials)} trials); training seeds {','.join(map(str, r.seeds))}")
    final = replace(r, models=[model], sets=[*r.sets, *(f"{k}={v}" for k, v in best["setting"].items())],
                    tuning=tuning)
    return run_grid(final)


def tune(opts: TuneOptions) -> int:
    con = make_console(quiet=opts.run.quiet)
    rc = 0
    for model in opts.run.models:
        rc |= tune_model(opts, model, con)
    return rc
