"""Published reference numbers from ``baselines/<dataset>.toml`` (``[[models.<model>.reference]]``).

They are REFERENCES, never measured values: the report shows them beside measured ``paper``-preset
rows only, labelled as published, and picks the reference whose ``epochs`` equal the run's epochs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stbench.errors import RecipeError
from stbench.metrics import DEFAULT_METRICS
from stbench.recipes import read_recipe_file

# keys of a [[models.<model>.reference]] entry that hold numbers (params in M, FLOPs in G, FPS as published),
# then the published metrics: the default ones, the ones every paper table reports
REFERENCE_FIELDS = ("params_m", "flops_g", "fps", *DEFAULT_METRICS)


@dataclass(frozen=True)
class Reference:
    model: str
    source: str
    epochs: int | None
    values: dict[str, float] = field(default_factory=dict)  # the REFERENCE_FIELDS the entry states


@dataclass
class DatasetReferences:
    path: Path | None
    by_model: dict[str, list[Reference]] = field(default_factory=dict)
    preset_epochs: dict[str, int] = field(default_factory=dict)  # [presets.<p>].epochs

    def matching(self, model: str, epochs: int | None) -> list[Reference]:
        """References for ``model`` (``model@encoder`` has none: another architecture) at ``epochs``."""
        if "@" in model or epochs is None:
            return []
        return [r for r in self.by_model.get(model, []) if r.epochs == epochs]


def default_baselines_dir() -> Path:
    from stbench.recipes import baselines_dir

    return baselines_dir()


def load_references(baselines_dir: Path | None, dataset: str) -> tuple[DatasetReferences, list[str]]:
    """Reference numbers of one dataset, and warnings (unreadable file). A missing file is no error."""
    if baselines_dir is None:
        return DatasetReferences(None), []
    path = Path(baselines_dir) / f"{dataset}.toml"
    if not path.is_file():
        return DatasetReferences(None), []
    try:
        data: dict[str, Any] = read_recipe_file(path)  # with its `extends` chain
    except (OSError, RecipeError) as exc:
        return DatasetReferences(path), [f"could not read published references from {path}: {exc}"]
    out = DatasetReferences(path)
    for preset, cfg in (data.get("presets") or {}).items():
        if isinstance(cfg, dict) and isinstance(cfg.get("epochs"), int):
            out.preset_epochs[preset] = cfg["epochs"]
    for model, mcfg in (data.get("models") or {}).items():
        refs = mcfg.get("reference") if isinstance(mcfg, dict) else None
        for ref in refs or []:
            if not isinstance(ref, dict):
                continue
            values = {k: float(ref[k]) for k in REFERENCE_FIELDS if isinstance(ref.get(k), (int, float))}
            epochs = ref.get("epochs") if isinstance(ref.get("epochs"), int) else None
            out.by_model.setdefault(model, []).append(
                Reference(model=model, source=str(ref.get("source", "published")), epochs=epochs, values=values))
    return out, []
