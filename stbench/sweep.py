"""``stbench sweep``: the models x budgets x seeds grid of one dataset and preset, for the compute study.

    stbench sweep --models 'simvp,tau,convlstm,predrnn' --budgets samples=2e3,6e3,2e4 --seeds 0,1 --preset quick
    stbench sweep --models tau,predrnn --budgets flops=1e15,1e16 --preset paper --launcher slurm ...

Every cell is a normal ``stbench run --budget B`` (the same runner, records, ``--resume`` and launchers): a budget
other than the preset's own writes its records under ``records/<dataset>/<preset>/<budget>/``
(:func:`stbench.budget.budget_dir`), so the runs of one model at several budgets never overwrite each other, and
``stbench report`` draws the compute study from them (:mod:`stbench.report.compute`). Budgets run smallest
first as given, so a sweep that is stopped early already holds complete lower budgets.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from stbench.budget import Budget
from stbench.errors import UserError
from stbench.runner import run_grid


def parse_budgets(text: str | None) -> list[str]:
    """``"samples=4e3,1.2e4,4e4"`` -> ``["samples=4000", "samples=12000", "samples=40000"]``: an item without
    ``KIND=`` takes the kind of the item before it; duplicates are dropped; one-line errors."""
    if not text or not text.strip():
        raise UserError("stbench sweep needs --budgets, e.g. --budgets samples=2e3,6e3,2e4")
    labels, kind = [], None
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        if "=" not in item:
            if kind is None:
                raise UserError(f"bad --budgets '{text}': the first item needs its kind, e.g. samples=2e3,6e3,2e4")
            item = f"{kind}={item}"
        b = Budget.parse(item)
        kind = b.kind
        labels.append(b.label)
    return list(dict.fromkeys(labels))


def budget_options(run: Any, budget: str) -> Any:
    """The :class:`~stbench.runner.RunOptions` of one budget of the sweep: ``--budget budget``."""
    return replace(run, budget=budget, overrides={**run.overrides, "budget": budget})


def sweep(run: Any, budgets: list[str]) -> int:
    """Run the grid at each budget (here, one after the other); 1 when any run failed."""
    rc = 0
    for i, budget in enumerate(budgets):
        rc |= run_grid(budget_options(run, budget) if i == 0 else replace(budget_options(run, budget),
                                                                          preset_given=True))
    return rc
