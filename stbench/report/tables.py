"""Records DataFrame -> one leaderboard per (dataset, preset): seeds aggregated, models ranked, best marked.

Rules (issue 6): records of different datasets or presets are never ranked together; only
``completed`` runs are ranked, failed / unfinished ones are listed with their reason; floors
(``kind == "floor"``) sit at the bottom and are never "best"; rows are sorted by MSE ascending;
published reference numbers join only ``paper``-preset leaderboards, in columns named ``published``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stbench.errors import StbenchError
from stbench.metrics import DEFAULT_METRICS, MetricDef, metric_def
from stbench.recipes import PRESETS as PRESET_ORDER  # leaderboards of a dataset come in this order
from stbench.records import RunRecord
from stbench.registry import PluginError, RegistryError
from stbench.report.paired import CI_LEVEL
from stbench.report.records import LoadedRecords
from stbench.report.references import REFERENCE_FIELDS, DatasetReferences

METRIC_ORDER = DEFAULT_METRICS  # the leaderboard's metric columns first, in this order
SORT_METRIC = "mse"  # rows are ranked by this metric (the first metric present if a dataset lacks it)
N_BOOTSTRAP = 1000  # resamples of the test sequences for the intervals of the means


class ConventionMismatchError(StbenchError):
    """Records of one leaderboard state different metric conventions: their numbers cannot be ranked together."""


def definition(metric: str) -> MetricDef | None:
    """The registered :class:`MetricDef` of ``metric`` (built-in or plugin); None when no one registers it here."""
    try:
        return metric_def(metric)
    except (RegistryError, PluginError):
        return None


def higher_is_better(metric: str, meta: dict[str, dict[str, Any]]) -> bool:
    """As the records' ``metrics_meta`` state it; else as the metric's definition does; a metric known to neither
    is lower-is-better (what :func:`stbench.metrics.metric_def` assumes for a bare registered function)."""
    if isinstance(meta.get(metric, {}).get("higher_is_better"), bool):
        return meta[metric]["higher_is_better"]
    d = definition(metric)
    return d.higher_is_better if d else False


def sort_metric(metrics: Sequence[str]) -> str | None:
    """The metric rows are ranked by: :data:`SORT_METRIC`, else the first of ``metrics`` (None if there is none)."""
    return SORT_METRIC if SORT_METRIC in metrics else (metrics[0] if metrics else None)


def bootstrap_ci(values: np.ndarray, n_boot: int = N_BOOTSTRAP, level: float = CI_LEVEL,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (one value per test sequence)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, len(v), size=(n_boot, len(v)))
    means = v[idx].mean(axis=1)
    a = (1 - level) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def pooled_ci(metric: str, seqs: dict[str, np.ndarray], n_boot: int = N_BOOTSTRAP,
              level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval of a POOLED metric (CSI ...): sequences resampled, their stored counts summed
    and the ratio taken per resample (:func:`stbench.metrics.pooled_resample`); NaN if it is not pooled."""
    from stbench.metrics import pooled_resample

    vals = pooled_resample(metric, seqs, n_boot) if seqs else None
    vals = vals[np.isfinite(vals)] if vals is not None else np.zeros(0)
    if len(vals) < 2:
        return math.nan, math.nan
    a = (1 - level) / 2
    return float(np.quantile(vals, a)), float(np.quantile(vals, 1 - a))


def per_sequence_runs(g: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per-sequence test values of a model's runs, per metric: (seeds, sequences), rows in seed order; empty
    when any run lacks them (each read by :meth:`stbench.records.RunRecord.per_sequence_arrays`)."""
    arrays = []
    for path, rec in zip(g["path"], g["record"]):
        found = RunRecord(**rec).per_sequence_arrays(Path(path))
        if found is None:
            return {}
        arrays.append(found)
    if not arrays:
        return {}
    out = {}
    for m in arrays[0]:
        vals = [a.get(m) for a in arrays]
        if all(v is not None and v.shape == vals[0].shape for v in vals):
            out[m] = np.stack(vals)
    return out


@dataclass
class Leaderboard:
    dataset: str
    preset: str
    # one row per model: rank, model, kind, family, encoder, temporal, decoder, n, seeds, params, flops,
    # infer_seq_per_s, train_s, epochs, <m>_mean, <m>_std, best_<m> per metric, and on `paper` <m>_published
    table: pd.DataFrame
    metrics: list[str]
    higher_is_better: dict[str, bool]
    runs: pd.DataFrame  # the completed record rows behind `table` (plots read per-run data from here)
    unfinished: pd.DataFrame  # failed / running runs: model, seed, status, reason, path
    published: pd.DataFrame | None = None  # paper only: model, source, epochs, params_m, ... (never measured)
    throughput_device: str | None = None  # short device name for the throughput header ("cpu", "cuda", "mixed")
    notes: list[str] = field(default_factory=list)  # footnotes, the metric convention excluded
    convention: str | None = None  # the metric convention stated by the records (identical in all of them)
    metrics_meta: dict[str, dict[str, Any]] = field(default_factory=dict)  # metric -> its definition (label...)
    provenance: str = ""  # where the numbers come from: runs, dates, stbench version / commit, devices
    warnings: list[str] = field(default_factory=list)
    budget: str | None = None  # the training budget every ranked row had ("samples=4000"); None: none stated
    budget_split: bool = False  # the (dataset, preset) holds records of several budgets: one board per budget
    horizon: int | None = None  # `stbench eval --t-out N` records: rolled out to N frames, never ranked with trained
    trained_t_out: int | None = None  # ... by models trained to predict this many frames

    @property
    def key(self) -> tuple[str, ...]:
        key = (self.dataset, self.preset, self.budget or "") if self.budget_split else (self.dataset, self.preset)
        return (*key, f"t{self.horizon}") if self.horizon else key

    @property
    def title(self) -> str:
        rolled = f", rolled out to {self.horizon} frames (trained {self.trained_t_out})" if self.horizon else ""
        return f"{self.dataset}, preset {self.preset}" + (f", budget {self.budget}" if self.budget else "") + rolled

    @property
    def slug(self) -> str:
        def safe(name: str) -> str:
            return "".join(c if c.isalnum() or c in "-._" else "-" for c in name)

        extra = f"_{safe(self.budget or 'unknown')}" if self.budget_split else ""
        extra += f"_t{self.horizon}" if self.horizon else ""
        return f"{safe(self.dataset)}_{safe(self.preset)}{extra}"


def _order_key(dataset: str, preset: str) -> tuple[str, int, str]:
    rank = PRESET_ORDER.index(preset) if preset in PRESET_ORDER else len(PRESET_ORDER)
    return dataset, rank, preset


def _first_number(values: pd.Series) -> float:
    vals = values.dropna()
    return float(vals.iloc[0]) if len(vals) else math.nan


def _mean(values: pd.Series) -> float:
    vals = values.dropna()
    return float(vals.mean()) if len(vals) else math.nan


def _aggregate(runs: pd.DataFrame, metrics: list[str]) -> tuple[pd.DataFrame, dict[tuple[str, Any], Any]]:
    """One row per model (and evaluated checkpoint); also each row's per-sequence values by seed, keyed by
    (model, checkpoint), for the paired statistics."""
    rows, per_seq = [], {}
    # an evaluated checkpoint (stbench eval) is a row of its own beside the trained runs of its model
    ckpt = runs["checkpoint"] if "checkpoint" in runs else pd.Series([None] * len(runs), index=runs.index)
    for (model, checkpoint), g in runs.assign(checkpoint=ckpt.fillna("")).groupby(["model", "checkpoint"],
                                                                                   sort=False):
        g = g.sort_values("seed")
        first = g.iloc[0]
        row: dict[str, Any] = {
            "model": model, "checkpoint": checkpoint or None,
            "kind": first["kind"], "family": first["family"], "encoder": first["encoder"],
            "temporal": first["temporal"], "decoder": first["decoder"], "n": len(g),
            "seeds": ",".join(str(s) for s in g["seed"]),
            "params": _first_number(g["params"]), "flops": _first_number(g["flops"]),
            "infer_seq_per_s": _mean(g["infer_seq_per_s"]), "train_s": _mean(g["train_s"]),
            "epochs": _first_number(g["epochs"]),
            "budget": first.get("budget"), "samples_seen": _mean(g["samples_seen"]),
            "train_flops": _mean(g["train_flops"]), "tuning": first.get("tuning"),
        }
        by_seed = per_sequence_runs(g)
        per_seq[(model, checkpoint or None)] = by_seed
        seqs = {m: v.mean(axis=0) for m, v in by_seed.items()}
        for m in metrics:
            vals = g[m].dropna() if m in g else pd.Series(dtype=float)
            row[f"{m}_mean"] = float(vals.mean()) if len(vals) else math.nan
            row[f"{m}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else math.nan
            row[f"{m}_ci_lo"], row[f"{m}_ci_hi"] = bootstrap_ci(seqs[m]) if m in seqs else pooled_ci(m, seqs)
        rows.append(row)
    return pd.DataFrame(rows), per_seq


def _rank(table: pd.DataFrame, metrics: list[str], higher: dict[str, bool],
          per_seq: dict[tuple[str, Any], Any] | None = None) -> pd.DataFrame:
    """Trained models sorted by the sort metric, floors after them. A model's rank is its position, except that
    the members of a tie group (:mod:`stbench.report.paired`) share the rank of the group's best model."""
    is_floor = table["kind"] == "floor"
    by = sort_metric(metrics)
    if by is None:
        models, floors = table[~is_floor].sort_values("model"), table[is_floor].sort_values("model")
        ranks = pd.array(range(1, len(models) + 1), dtype="Int64")
    else:
        col, asc = f"{by}_mean", not higher[by]
        models = table[~is_floor].sort_values([col, "model"], ascending=[asc, True], na_position="last")
        floors = table[is_floor].sort_values([col, "model"], ascending=[asc, True], na_position="last")
        finite = models[col].where(models[col].apply(math.isfinite))  # NaN / inf: listed, never ranked
        ranks = finite.rank(method="min", ascending=asc).astype("Int64")
    tied = [False] * len(models)
    if by is not None and per_seq:
        models, ranks, tied = _paired(models, by, higher[by], ranks, per_seq)
    models = models.assign(rank=ranks, tied=tied)
    floors = floors.assign(rank=pd.array([pd.NA] * len(floors), dtype="Int64"), tied=False)
    out = pd.concat([models, floors], ignore_index=True)
    for m in metrics:
        col = out[f"{m}_mean"]
        ranked = col[(out["kind"] != "floor") & col.apply(math.isfinite)]
        best = (ranked.max() if higher[m] else ranked.min()) if len(ranked) else math.nan
        out[f"best_{m}"] = (out["kind"] != "floor") & (col == best)
    return out[["rank"] + [c for c in out.columns if c != "rank"]]


def _paired(models: pd.DataFrame, metric: str, higher: bool, ranks: pd.Series,
            per_seq: dict[tuple[str, Any], Any]) -> tuple[pd.DataFrame, pd.Series, list[bool]]:
    """Paired differences to the best model (``<metric>_diff``, ``_diff_lo``, ``_diff_hi``, ``_p_holm``) and tie
    groups from :func:`stbench.report.paired.paired_ranking`, for the rows whose per-sequence values exist."""
    from stbench.report.paired import paired_ranking

    keys = list(zip(models["model"], models["checkpoint"].where(models["checkpoint"].notna(), None)))
    usable = [i for i, k in enumerate(keys)
              if metric in per_seq.get(k, {}) and not pd.isna(ranks.iloc[i])]
    lengths = {per_seq[keys[i]][metric].shape[1] for i in usable}
    out, tied = list(ranks), [False] * len(models)
    cols = {c: [math.nan] * len(models) for c in ("diff", "diff_lo", "diff_hi", "p_holm")}
    if len(usable) >= 2 and len(lengths) == 1:
        labels = [str(i) for i in usable]
        res = paired_ranking(labels, [per_seq[keys[i]][metric] for i in usable], higher_is_better=higher)
        pos = [int(lbl) for lbl in res.models]  # row indices in the paired ranking's order (the same means)
        leader_rank: dict[int, Any] = {}
        for j, (row, g) in enumerate(zip(pos, res.groups)):
            leader_rank.setdefault(g, out[row])
            out[row] = leader_rank[g]
            tied[row] = res.groups.count(g) > 1
            d, lo, hi = res.diff(j, 0)
            cols["diff"][row], cols["diff_lo"][row], cols["diff_hi"][row] = d, lo, hi
            cols["p_holm"][row] = float(res.p_adj[j, 0]) if j else math.nan
    models = models.assign(**{f"{metric}_{c}": v for c, v in cols.items()})
    return models, pd.Series(out, index=ranks.index, dtype="Int64"), tied


def _device_notes(runs: pd.DataFrame, lb: Leaderboard) -> None:
    prof = runs[runs["infer_seq_per_s"].notna()]
    if prof.empty:
        return
    described = []
    for (dev, name, prec, batch), g in prof.groupby(["device", "device_name", "precision", "infer_batch"],
                                                     dropna=False, sort=False):
        parts = [str(name) if isinstance(name, str) else str(dev)]
        if isinstance(dev, str) and isinstance(name, str) and dev != name:
            parts[0] = f"{name} [{dev}]"
        if isinstance(prec, str):
            parts.append(prec)
        if not (isinstance(batch, float) and math.isnan(batch)):
            parts.append(f"batch {int(batch)}")
        described.append((", ".join(parts), sorted(set(g["model"]))))
    devices = {str(d).split(":")[0] for d in prof["device"].dropna()}
    if len(described) == 1:
        lb.throughput_device = next(iter(devices)) if len(devices) == 1 else None
        lb.notes.append(f"Throughput: eval-mode forward, sequences/s, median after warm-up, on {described[0][0]}.")
    else:
        lb.throughput_device = "mixed"
        where = "; ".join(f"{', '.join(models)}: {desc}" for desc, models in described)
        lb.notes.append(f"Throughput: eval-mode forward, sequences/s, median after warm-up, measured on different "
                        f"devices or settings, NOT comparable across them ({where}).")
        lb.warnings.append(f"{lb.dataset}/{lb.preset}: throughput measured on different devices or settings "
                           f"({len(described)} kinds); it is not comparable across them")


def _precision_notes(runs: pd.DataFrame, lb: Leaderboard) -> None:
    """Say when the trained runs of one board used different training precisions (bf16 and fp32 runs are ranked
    together as equals, which they are only approximately), and which models mix them across their seeds."""
    trained = runs[(runs["kind"] == "model") & runs["precision"].notna()]
    if trained["precision"].nunique() < 2:
        return
    by_prec = "; ".join(f"{prec}: {', '.join(sorted(set(g['model'])))}"
                        for prec, g in trained.groupby("precision", sort=True))
    mixed = [f"{m} ({', '.join(f'seed {int(r.seed)} {r.precision}' for r in g.sort_values('seed').itertuples())})"
             for m, g in trained.groupby("model", sort=True) if g["precision"].nunique() > 1]
    lb.notes.append(f"Training precision differs between runs ({by_prec}); they are ranked together"
                    + (f"; seeds of one model in different precisions: {'; '.join(mixed)}." if mixed else "."))
    if mixed:
        lb.warnings.append(f"{lb.dataset}/{lb.preset}: {len(mixed)} model(s) average seeds trained in different "
                           f"precisions ({', '.join(m.split(' ')[0] for m in mixed)})")


def _attach_published(lb: Leaderboard, refs: DatasetReferences) -> None:
    """Paper preset only: a `<m>_published` column per metric and a table of the matching references."""
    if refs.path is None:
        lb.notes.append(f"Published: no baselines/{lb.dataset}.toml found, so no published numbers are shown.")
        return
    default_epochs = refs.preset_epochs.get("paper")
    table = lb.table
    pub_rows: list[dict[str, Any]] = []
    values: dict[str, list[float]] = {k: [] for k in REFERENCE_FIELDS}  # per row of `table`
    sources: list[str | None] = []
    missing: list[str] = []
    for _, row in table.iterrows():
        epochs = int(row["epochs"]) if not math.isnan(row["epochs"]) else default_epochs
        refs_here = [] if row["kind"] == "floor" else refs.matching(row["model"], epochs)
        first = refs_here[0] if refs_here else None
        for k in REFERENCE_FIELDS:
            values[k].append(first.values.get(k, math.nan) if first else math.nan)
        sources.append(first.source if first else None)
        if row["kind"] != "floor" and not refs_here:
            missing.append(f"{row['model']} ({epochs} epochs)" if epochs else row["model"])
        for ref in refs_here:
            pub_rows.append({"model": row["model"], "source": ref.source, "epochs": ref.epochs,
                             **{k: ref.values.get(k, math.nan) for k in REFERENCE_FIELDS}})
    for m in lb.metrics:
        if m in values and any(not math.isnan(v) for v in values[m]):
            table[f"{m}_published"] = values[m]
    table["published_source"] = sources
    lb.published = pd.DataFrame(pub_rows, columns=["model", "source", "epochs", *REFERENCE_FIELDS])
    if pub_rows:
        lb.notes.append(f"Published: reference numbers from baselines/{refs.path.name} whose epochs match the run's "
                        "epochs, shown beside the measured ones; they were NOT measured here.")
    if missing:
        lb.notes.append(f"No published number at the run's epochs for: {', '.join(missing)}.")


def _provenance(part: pd.DataFrame) -> str:
    """'3 runs (2 completed) · finished 2026-03-01 · stbench 0.1.0 (git 1a2b3c4) · on <device>'."""
    done = int((part["status"] == "completed").sum())
    bits = [f"{len(part)} run{'s' if len(part) != 1 else ''} ({done} completed)"]
    dates = sorted({str(t)[:10] for t in part["finished_at"].dropna() if t})
    if dates:
        bits.append(f"finished {dates[0]}" + (f" to {dates[-1]}" if dates[-1] != dates[0] else ""))
    envs = [r.get("env") or {} for r in part["record"]]
    versions = sorted({str(e["stbench"]) for e in envs if e.get("stbench")})
    commits = sorted({str(e["git_commit"])[:7] + ("+dirty" if e.get("git_dirty") else "")
                      for e in envs if e.get("git_commit")})
    if versions:
        bits.append(f"stbench {', '.join(versions)}" + (f" (git {', '.join(commits)})" if commits else ""))
    trained = part[part["kind"] != "floor"]  # floors are evaluated on the CPU wherever the models ran
    devices = sorted({str(d) for d in (trained if len(trained) else part)["device_name"].dropna()})
    if devices:
        bits.append(f"on {'; '.join(devices)}")
    return " · ".join(bits)


def build_leaderboards(loaded: LoadedRecords, references: Callable[[str], DatasetReferences]) -> list[Leaderboard]:
    """One :class:`Leaderboard` per (dataset, preset, training budget) found, ordered by dataset then paper, quick,
    smoke, then budget. Records of different budgets are never ranked together; floors join every board."""
    df = loaded.frame
    boards = []
    keys = sorted({(d, p) for d, p in zip(df["dataset"], df["preset"])}, key=lambda k: _order_key(*k))
    for dataset, preset in keys:
        both = df[(df["dataset"] == dataset) & (df["preset"] == preset)]
        for horizon, whole in _horizons(both):
            budgets = _budgets(whole)
            for budget in budgets:
                lb = _board(whole, dataset, preset, budget, len(budgets) > 1, loaded, references)
                lb.horizon = horizon
                if horizon:
                    lb.trained_t_out = _trained_t_out(whole)
                if len(budgets) > 1 and budget == budgets[0] and not horizon:
                    lb.warnings.append(f"{dataset}/{preset}: the records hold {len(budgets)} different training "
                                       f"budgets ({', '.join(b or 'unknown' for b in budgets)}); they are ranked "
                                       "separately, one leaderboard per budget")
                boards.append(lb)
    return boards


def _horizons(part: pd.DataFrame) -> list[tuple[int | None, pd.DataFrame]]:
    """The records at the trained horizon (floors included), then each horizon of ``stbench eval --t-out N``
    records apart (no floors): a roll-out to N frames is never ranked with trained N' -> N' rows."""
    h = part["horizon"] if "horizon" in part else pd.Series([None] * len(part), index=part.index)
    out = [(None, part[h.isna()])] if h.isna().any() else []
    return out + [(int(v), part[h == v]) for v in sorted(set(h.dropna()))]


def _trained_t_out(part: pd.DataFrame) -> int | None:
    vals = {(r.get("horizon") or {}).get("trained_t_out") for r in part["record"]}
    return next(iter(vals)) if len(vals) == 1 else None


def _budgets(part: pd.DataFrame) -> list[str | None]:
    """The training budgets of the trained / evaluated records, fewest samples first (None: not stated)."""
    rows = part[part["kind"] != "floor"]
    found = {b if isinstance(b, str) else None: s for b, s in zip(rows["budget"], rows["samples_seen"])}
    if not found:
        return [None]
    return sorted(found, key=lambda b: (b is None, found[b] if math.isfinite(found[b]) else math.inf, b or ""))


def _board(whole: pd.DataFrame, dataset: str, preset: str, budget: str | None, split: bool,
           loaded: LoadedRecords, references: Callable[[str], DatasetReferences]) -> Leaderboard:
    """The leaderboard of one (dataset, preset, budget): its records plus the floors."""
    same = whole["budget"].where(whole["budget"].notna(), None) == budget if budget else whole["budget"].isna()
    part = whole[same | (whole["kind"] == "floor")]
    runs = part[part["status"] == "completed"].copy()
    conventions = sorted({c for c in runs["convention"].dropna()})
    if len(conventions) > 1:
        raise ConventionMismatchError(
            f"{dataset}/{preset}: the records state {len(conventions)} different metric conventions, so they "
            "cannot be ranked together; re-run the older runs with --force, or report them from separate "
            "--results directories")
    names = [*METRIC_ORDER, *(m for m in loaded.metric_names if m not in METRIC_ORDER)]
    present = [m for m in names if m in runs.columns and runs[m].notna().any()]
    higher = {m: higher_is_better(m, loaded.metrics_meta) for m in present}
    unfinished = part[part["status"] != "completed"][["model", "seed", "status", "reason", "path"]]
    unfinished = unfinished.sort_values(["model", "seed"]).reset_index(drop=True)
    if runs.empty:
        table = pd.DataFrame(columns=["rank", "model", "kind", "family", "n"])
    else:
        agg, per_seq = _aggregate(runs, present)
        table = _rank(agg, present, higher, per_seq)
    lb = Leaderboard(dataset=dataset, preset=preset, table=table, metrics=present, higher_is_better=higher,
                     runs=runs, unfinished=unfinished, provenance=_provenance(part),
                     convention=conventions[0] if conventions else None, metrics_meta=loaded.metrics_meta,
                     budget=budget, budget_split=split)
    if not runs.empty:
        if (table["n"] > 1).any():
            lb.notes.append("Seeds: mean ± sample standard deviation (ddof = 1) over n seeds; n = 1 shows "
                            "the single run.")
        if (table["kind"] == "evaluated").any():
            lb.notes.append("Evaluated: rows marked 'evaluated' are released or saved weights scored here by "
                            "`stbench eval` (checkpoint file named), not trained in this run.")
        floors = sorted(set(table.loc[table["kind"] == "floor", "model"]))
        lb.notes.append("The best value of each metric among trained models is marked"
                        + (f"; floors ({', '.join(floors)}) are sanity baselines, listed last and never ranked."
                           if floors else "."))
        conventions = sorted({c for c in runs["flops_convention"].dropna()})
        if conventions:
            lb.notes.append(f"FLOPs: {'; '.join(conventions)}.")
        _device_notes(runs, lb)
        _precision_notes(runs, lb)
        if runs["train_s"].notna().any():
            lb.notes.append("Train time: wall-clock training time of one run (mean over seeds).")
        by = sort_metric(present)
        if by and table.get(f"{by}_diff", pd.Series(dtype=float)).notna().any():
            lb.notes.append(f"Δ vs best: the paired difference in {by} to the best model, with its {CI_LEVEL:.0%} "
                            "interval from one bootstrap of the shared test sequences (seeds resampled too). '=' "
                            "after a rank: a tie group, the group's best model and every next model that differs "
                            "significantly from none of its members (Holm-adjusted over all pairs, alpha 0.05); a "
                            "group never holds two models that differ significantly (docs/protocol.md).")
        if any(c in table.columns for c in (f"{m}_ci_lo" for m in present)) and \
                table[[f"{m}_ci_lo" for m in present]].notna().any().any():
            lb.notes.append(f"[lo, hi]: {CI_LEVEL:.0%} percentile bootstrap interval of the mean over test "
                            f"sequences ({N_BOOTSTRAP} resamples; seeds averaged per sequence first).")
        sort_col = f"{SORT_METRIC}_mean"
        if sort_col in table.columns:
            unranked = table.loc[(table["kind"] != "floor") & ~table[sort_col].apply(math.isfinite), "model"]
            if len(unranked):
                lb.warnings.append(f"{dataset}/{preset}: no finite {SORT_METRIC} for {', '.join(unranked)}; "
                                   "listed last, unranked")
        if preset == "paper":
            _attach_published(lb, references(dataset))
    return lb
