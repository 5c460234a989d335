"""``stbench eval``: evaluate a checkpoint (stbench's own, or OpenSTL's released weights) on the test split.

Python API::

    from stbench.evaluate import evaluate_checkpoint
    rec = evaluate_checkpoint("mmnist_tau_one_ep2000.pth", "tau", source="openstl", data_root="data/")
    rec.metrics["mse"]

The file is read with ``torch.load(..., weights_only=True)`` only: a file holding pickled Python objects
(or a corrupt one) is refused with a one-line :class:`~stbench.errors.CheckpointError`. An OpenSTL config
(``--config configs/mmnist/TAU.py``) is parsed for its literal assignments with :mod:`ast`; it is never
executed. Without ``--config`` the named stbench model's published (``paper``) architecture is assumed.
A ``.safetensors`` that ``stbench run`` kept is read with its model card (:mod:`stbench.weights`): model,
preset, data variant and test protocol come from the card, and a card that does not match the weights is refused.

The model is evaluated like a trained run (:func:`stbench.train.evaluate`, the published metric
convention) and profiled like one (params, fvcore FLOPs, throughput), and ONE record of kind
``evaluated`` is written beside the trained runs' records: ``<out>/records/<dataset>/<preset>/
<model>__evaluated_<checkpoint stem>-<sha256[:8]>.json``. Its preset is ``paper`` when the loaded architecture has
the paper preset's parameter count (so the report shows it beside the published numbers), else
``custom``. Nothing is written when anything fails before the evaluation; an evaluation whose metrics are NaN /
Inf is written as a ``failed`` record with the reason (``stbench eval`` exits 1).
"""

from __future__ import annotations

import ast
import copy
import hashlib
import io
import re
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import stbench
from stbench import train as T
from stbench.compile import choose_eval_compile, enable
from stbench.data import get_dataset, get_spec
from stbench.data.check import data_source
from stbench.errors import CheckpointError, UserError
from stbench.interop.openstl import METHODS, bare_state_dict, from_openstl, load_mapped, openstl_keys
from stbench.interop.predformer import load_predformer_checkpoint
from stbench.precision import PRECISIONS, make_precision
from stbench.preflight import check_counts, check_data_source, check_device, check_splits
from stbench.recipes import load_recipe
from stbench.records import RunRecord, cell_lock, check_writable, env_info, now_iso, read_record
from stbench.scoring import Scored, cost_profile, keep_test, new_record, score_test
from stbench.weights import card_path, check_normalisation, is_card_weights
from stbench.weights import load_model as load_card_model

SOURCES = ("stbench", "openstl", "predformer")

# ---------------------------------------------------------------------------------------------
# reading files (never executing them)
# ---------------------------------------------------------------------------------------------
def read_openstl_config(path: str | Path) -> dict[str, Any]:
    """The literal top-level assignments of an OpenSTL config ``.py`` (``hid_S = 64`` ...), by ``ast``.

    Anything that is not a literal (a call, a name, an import) is ignored, never evaluated.
    """
    path = Path(path)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except FileNotFoundError:
        raise UserError(f"config file '{path}' does not exist; pass an OpenSTL config such as "
                        "configs/mmnist/TAU.py") from None
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:
        raise UserError(f"config file '{path}' is not a readable Python file ({type(exc).__name__}); pass an "
                        "OpenSTL config such as configs/mmnist/TAU.py") from None
    cfg: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            target, value = node.target.id, node.value
        else:
            continue
        try:
            cfg[target] = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue  # not a literal: skipped, never executed
    return cfg


def read_checkpoint(path: str | Path) -> tuple[Any, str]:
    """(the loaded object, sha256 of the file); weights-only loading, one-line errors."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint '{path}' is a directory; pass the weights file inside it "
                              "(a .pth / .ckpt / .pt file)")
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist; pass the path of a .pth / .ckpt / .pt file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"checkpoint '{path}' cannot be read ({exc.strerror or exc})") from None
    sha = hashlib.sha256(data).hexdigest()
    if not (zipfile.is_zipfile(io.BytesIO(data)) or data[:1] == b"\x80"):  # torch.save's zip, or a legacy pickle
        raise CheckpointError(f"checkpoint '{path.name}' is corrupt or not a PyTorch file (neither torch.save's zip "
                              "archive nor a pickle); download or copy it again")
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every failure is one of the two user problems below
        if "weights only" in str(exc).lower() or "weights_only" in str(exc).lower():
            raise CheckpointError(f"refused to load '{path.name}': it is not a weights-only file (it holds pickled "
                                  "Python objects that loading would execute); re-save its state_dict with "
                                  "torch.save(model.state_dict(), ...) from code you trust") from None
        raise CheckpointError(f"checkpoint '{path.name}' is corrupt or not a PyTorch file ({type(exc).__name__}); "
                              "download or copy it again") from None
    return obj, sha


# ---------------------------------------------------------------------------------------------
# the paper recipe, resolved once per evaluation
# ---------------------------------------------------------------------------------------------
class PaperRecipes:
    """The ``paper`` recipes of one dataset, each resolved (and its architecture built on the meta device) at most
    once per evaluation; an error resolving one is raised again to every caller that needs it."""

    def __init__(self, dataset: str) -> None:
        self.dataset = dataset
        self._recipes: dict[str, Any] = {}
        self._models: dict[str, Any] = {}

    def recipe(self, model: str) -> Any:
        if model not in self._recipes:
            try:
                self._recipes[model] = load_recipe(self.dataset, model, "paper")
            except Exception as exc:  # noqa: BLE001 - kept, and raised to each caller that needs the recipe
                self._recipes[model] = exc
        got = self._recipes[model]
        if isinstance(got, Exception):
            raise got
        return got

    def meta_model(self, model: str) -> torch.nn.Module:
        """The paper architecture on the meta device (no memory, no initialisation): its sizes and parameter count."""
        if model not in self._models:
            try:
                with torch.device("meta"):
                    self._models[model] = self.recipe(model).build_model(model)
            except Exception as exc:  # noqa: BLE001 - as in recipe()
                self._models[model] = exc
        got = self._models[model]
        if isinstance(got, Exception):
            raise got
        return got


# ---------------------------------------------------------------------------------------------
# building the model
# ---------------------------------------------------------------------------------------------
def openstl_config_for(model: str, dataset: str, file_cfg: Mapping[str, Any] | None,
                       paper: PaperRecipes | None = None) -> tuple[str, dict[str, Any]]:
    """(OpenSTL method, merged config) for ``--model`` with an optional parsed ``--config``.

    Without a config file the stbench model's paper-preset sizes are written in OpenSTL's key names
    (:func:`stbench.interop.openstl.openstl_keys`), for every model of :data:`stbench.interop.openstl.METHODS`.
    The dataset supplies ``in_shape`` / ``pre_seq_length`` / ``aft_seq_length`` the file does not set.
    """
    paper = paper or PaperRecipes(dataset)
    known = METHODS.get(model.partition("@")[0])
    method = known.name if known else None
    flags = dict(known.flags) if known else {}
    cfg: dict[str, Any] = {}
    if file_cfg is None:
        if method is None:
            raise UserError(f"no OpenSTL method is known for stbench model '{model}'; pass its OpenSTL config "
                            "with --config (it names the method)")
        cfg.update(openstl_keys(paper.meta_model(model).hparams))
        cfg.update(flags)
    else:
        cfg.update(file_cfg)
        method = str(file_cfg.get("method") or method or "")
        if not method:
            raise UserError(f"the config names no 'method' and stbench model '{model}' has no known OpenSTL "
                            "method; add method = '...' to the config")
        if "model_type" not in cfg and "model_type" in flags:
            cfg["model_type"] = flags["model_type"]
    spec = get_spec(dataset)
    t_in = int(cfg.get("pre_seq_length") or spec.in_shape[0])
    cfg.setdefault("in_shape", [t_in, *list(spec.in_shape)[1:]])
    cfg.setdefault("pre_seq_length", int(cfg["in_shape"][0]))
    cfg.setdefault("aft_seq_length", int(spec.t_out))
    cfg.setdefault("total_length", int(cfg["pre_seq_length"]) + int(cfg["aft_seq_length"]))
    return method, cfg


def _state_dict_of(obj: Any, path: Path) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"checkpoint '{path.name}' holds a {type(obj).__name__}, not a state dict")
    if isinstance(obj.get("best_model"), Mapping):  # an stbench training checkpoint: its selected weights
        return obj["best_model"]
    if isinstance(obj.get("model"), Mapping):
        return obj["model"]
    if isinstance(obj.get("state_dict"), Mapping):
        return obj["state_dict"]
    return obj


def load_model(checkpoint: Path, obj: Any, model: str, dataset: str, source: str,
               config: str | Path | None, paper: PaperRecipes | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(the model in eval mode with the checkpoint's weights, the config that built it)."""
    paper = paper or PaperRecipes(dataset)
    if source == "openstl":
        file_cfg = read_openstl_config(config) if config else None
        method, cfg = openstl_config_for(model, dataset, file_cfg, paper)
        m = from_openstl(method, cfg, _state_dict_of(obj, checkpoint))
        built = m.names.get("model", "")
        if built != model.partition("@")[0]:
            raise UserError(f"--model {model} but the OpenSTL config describes {method} "
                            f"({cfg.get('model_type', '')}) = stbench model '{built}'; pass --model {built}")
        return m, {"source_config": {k: v for k, v in cfg.items() if _plain(v)}, "openstl_method": method}
    if source == "predformer":
        file_cfg = read_openstl_config(config) if config else None  # PredFormer's config files are OpenSTL-style
        if not isinstance(obj, Mapping):  # named by its type: printing a 200,000-element tensor is no message
            raise CheckpointError(f"checkpoint '{checkpoint.name}' holds a {type(obj).__name__}, not a state dict; "
                                  "save the model's state_dict()")
        m = load_predformer_checkpoint(obj, model.partition("@")[0], config=file_cfg)
        return m, {"source_config": {k: v for k, v in dict(m.source_config).items() if _plain(v)}}
    if config:
        raise UserError("--config reads an OpenSTL or PredFormer config file; use it with --from openstl|predformer")
    recipe = paper.recipe(model)
    m = recipe.build_model(model)
    sd = bare_state_dict(_state_dict_of(obj, checkpoint))
    m = load_mapped(m, sd, source=f"stbench checkpoint '{checkpoint.name}'")
    return m, {"source_config": copy.deepcopy(recipe.config)}


def _plain(v: Any) -> bool:
    return isinstance(v, (str, int, float, bool, type(None))) or (
        isinstance(v, (list, tuple)) and all(isinstance(x, (str, int, float, bool)) for x in v))


def preset_of(model: torch.nn.Module, name: str, dataset: str, paper: PaperRecipes | None = None) -> str:
    """``paper`` when the loaded architecture has the paper preset's parameter count, else ``custom``."""
    try:
        reference = (paper or PaperRecipes(dataset)).meta_model(name)
    except Exception:  # noqa: BLE001 - a model without a paper preset is simply not the paper architecture
        return "custom"
    return "paper" if _count(reference) == _count(model) else "custom"


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def epochs_of(checkpoint: Path, cfg: Mapping[str, Any], preset: str, dataset: str, model: str,
              paper: PaperRecipes | None = None) -> int | None:
    """Training epochs behind the weights, used to pick the matching published row: OpenSTL's release
    name ``..._ep<N>.pth``, else the config's ``epochs`` / ``epoch``, else (paper architecture) the
    paper preset's epochs."""
    m = re.search(r"_ep(\d+)$", checkpoint.stem)
    if m:
        return int(m.group(1))
    for key in ("epochs", "epoch"):
        if isinstance(cfg.get(key), int) and not isinstance(cfg.get(key), bool):
            return int(cfg[key])
    if preset == "paper":
        return (paper or PaperRecipes(dataset)).recipe(model).config.get("epochs")
    return None


# ---------------------------------------------------------------------------------------------
# stbench eval, in named stages
# ---------------------------------------------------------------------------------------------
@dataclass
class EvalOptions:
    """How ``stbench eval`` evaluates a checkpoint (its options, in the CLI's names)."""

    dataset: str | None = None  # default: the card's dataset, else mmnist
    data_root: str | None = None
    source: str = "stbench"  # whose checkpoint: stbench | openstl | predformer (SOURCES)
    config: str | Path | None = None  # an OpenSTL / PredFormer config file, read by ast
    out: str | Path = "results"
    device: str = "auto"
    precision: str = "fp32"
    test_size: int | None = None
    batch_size: int | None = None
    profile: bool = True
    rollout: str | None = None
    force: bool = False
    compile: str | None = None  # off | on | auto: the evaluation forward (stbench/compile.py)


@dataclass
class Loaded:
    """A checkpoint's model with what the evaluation needs to know about it."""

    net: torch.nn.Module
    model: str  # the stbench model name
    dataset: str
    preset: str  # paper | custom (or, from a model card, the run's preset)
    sha256: str
    checkpoint: Path  # the weights file
    config: dict[str, Any]  # the record's source_config (+ openstl_method / card)
    recipe: dict[str, Any]  # the recipe whose data variant, test size and eval batch apply ({} for custom)
    epochs: int | None  # training epochs behind the weights (epochs_of): picks the matching published row
    card: dict[str, Any] | None = None


def evaluate_checkpoint(checkpoint: str | Path, model: str | None = None, opts: EvalOptions | None = None, *,
                        console: Any = None, **options: Any) -> RunRecord:
    """Evaluate ``checkpoint`` as stbench model ``model``; write and return its ``evaluated`` record.

    ``opts`` (or its fields as keywords: ``dataset=``, ``source=``, ``out=`` ...) are :class:`EvalOptions`.
    The record is named by the file's stem and sha256; a completed one is never replaced unless ``force``
    (the same weights on the same data: it is returned; on other data: refused), and a lock beside it keeps a
    second process from writing it at the same time.

    A ``.safetensors`` written by ``stbench run`` (with its ``.card.json``) needs no ``model`` / ``dataset`` /
    ``config``: the card gives them (``model`` and ``dataset``, if given, must agree with it)."""
    opts = opts if opts is not None else EvalOptions(**options)
    check_eval_options(opts)  # before the checkpoint is read: every argument first (issue 24)
    t0, started = time.perf_counter(), now_iso()
    loaded = load(Path(checkpoint), model, opts)
    ds = open_test_split(loaded, opts)
    rec, scored = score(loaded, ds, opts, console)
    rec.timing["started_at"] = started
    return write_evaluation(rec, scored, loaded, opts, t0, console)


def check_eval_options(opts: EvalOptions) -> None:
    if opts.source not in SOURCES:
        raise UserError(f"unknown --from '{opts.source}'; choose one of {', '.join(SOURCES)}")
    counts = {"test_size": opts.test_size, "batch_size": opts.batch_size}
    check_counts(counts, counts)
    check_device(opts.device)
    if opts.precision not in PRECISIONS:
        raise UserError(f"unknown precision '{opts.precision}'; choose one of {', '.join(PRECISIONS)}")


def load(checkpoint: Path, model: str | None, opts: EvalOptions) -> Loaded:
    """Stage 1: the weights as a stbench model (a card's, or a .pth / .ckpt / .pt read weights-only)."""
    if is_card_weights(checkpoint):  # stbench's .safetensors + model card: model, preset and data from the card
        net, card = _card_model(checkpoint, model, opts.dataset, opts.source, opts.config)
        weights = checkpoint.with_name(card["weights"]["file"])
        model, dataset, preset = card["model"], card["dataset"]["name"], card["preset"]
        epochs = epochs_of(weights, card["config"], preset, dataset, model)
        return Loaded(net, model, dataset, preset, card["weights"]["sha256"], weights,
                      {"source_config": copy.deepcopy(card["config"]), "card": card_path(weights).name},
                      dict(card["config"]), epochs, card)  # the run's own recipe: data variant, test size, eval batch
    if model is None:
        raise UserError("--model is required for a .pth / .ckpt / .pt checkpoint (only a .safetensors with its "
                        "model card names its own model)")
    dataset = opts.dataset or "mmnist"
    stbench.resolve_model_name(model)  # unknown name: "did you mean"
    paper = PaperRecipes(dataset)
    obj, sha = read_checkpoint(checkpoint)
    net, cfg_info = load_model(checkpoint, obj, model, dataset, opts.source, opts.config, paper)
    del obj
    preset = preset_of(net, model.partition("@")[0] if opts.source != "stbench" else model, dataset, paper)
    recipe = paper.recipe(model).config if preset == "paper" else {}
    epochs = epochs_of(checkpoint, cfg_info.get("source_config", {}), preset, dataset, model, paper)
    return Loaded(net, model, dataset, preset, sha, checkpoint, cfg_info, recipe, epochs)


def open_test_split(loaded: Loaded, opts: EvalOptions) -> Any:
    """Stage 2: the test split the weights are scored on (the model's horizon; refused when the shapes differ)."""
    net, dataset = loaded.net, loaded.dataset
    if opts.rollout is not None:
        net.rollout = opts.rollout
    ds_kw = dict(loaded.recipe.get("data", {}))
    if net.t_out != _spec_t_out(dataset, ds_kw):
        ds_kw["t_out"] = net.t_out  # e.g. an OpenSTL config with aft_seq_length = 20
    ds = get_dataset(dataset, data_root=opts.data_root, **ds_kw)
    if loaded.card is not None:  # training statistics (weather's mean / std, climatology) from the card
        ds.set_statistics(loaded.card.get("normalisation") or {})
    check_splits(ds, ("test",))  # the test split only: no training file is opened
    if tuple(ds.spec.in_shape) != tuple(net.in_shape) or int(ds.spec.t_out) != int(net.t_out):
        raise UserError(f"the checkpoint's model takes {tuple(net.in_shape)} -> {net.t_out} frames but dataset "
                        f"'{dataset}' gives {tuple(ds.spec.in_shape)} -> {ds.spec.t_out}; pick the matching "
                        "--dataset or --config")
    if loaded.card is not None:  # the weights' inputs must be scaled as they were in training
        check_normalisation(loaded.card.get("normalisation"), ds.spec)
    return ds


def score(loaded: Loaded, ds: Any, opts: EvalOptions, console: Any = None) -> tuple[RunRecord, Scored | None]:
    """Stage 3: the record of the weights, profiled and scored on the test split (the stage ``stbench run`` shares,
    :mod:`stbench.scoring`); non-finite metrics make it a ``failed`` record (scored: None)."""
    check_writable(Path(opts.out))
    dev = check_device(opts.device)
    net = loaded.net
    prec = make_precision(opts.precision, dev, model=net)
    cfg = {"test_size": opts.test_size if opts.test_size is not None else loaded.recipe.get("test_size"),
           "eval_batch_size": int(opts.batch_size or loaded.recipe.get("eval_batch_size", 16))}
    metrics = tuple(ds.spec.metrics)
    rec = new_record(net, metrics, model=loaded.model, dataset=loaded.dataset, preset=loaded.preset, seed=0,
                     kind="evaluated", status="completed", checkpoint={"file": loaded.checkpoint.name,
                     "sha256": loaded.sha256, "source": opts.source}, source=opts.source, env=env_info(dev, prec.name),
                     config={"epochs": loaded.epochs, **cfg, "data": dict(loaded.recipe.get("data", {})),
                             "data_root": opts.data_root, "model_hparams": getattr(net, "hparams", {}),
                             "device": str(dev), "rollout": net.rollout, **loaded.config})
    rec.config["data_source"] = dict(data_source(loaded.dataset, opts.data_root, ("test",)))  # the files scored
    if opts.profile:
        rec.profile = cost_profile(copy.deepcopy(net), loaded.model, dev, prec)
    net = prec.prepare(net.to(dev))
    rec.config["compile_choice"] = _compile_choice(net, opts.compile, prec, cfg["eval_batch_size"], ds,
                                                   cfg["test_size"], dev, loaded.model, console)
    try:
        return rec, score_test(net, ds, cfg, dev, prec, metrics)
    except T.NonFiniteMetrics as exc:  # recorded as failed, with the reason; nothing of the result is kept
        rec.status, rec.reason = "failed", str(exc)
        return rec, None


def write_evaluation(rec: RunRecord, scored: Scored | None, loaded: Loaded, opts: EvalOptions, t0: float,
                     console: Any = None) -> RunRecord:
    """Stage 4: the record (and its example strips) under the cell's lock; a completed evaluation of the same
    weights is kept unless ``force``."""
    out = Path(opts.out)
    rpath = rec.path(out)
    rec.run_id = f"{rec.dataset}/{rec.preset}/{rpath.stem}"  # the record file's own name (checkpoint name sanitised)
    with cell_lock(rpath):
        check_data_source(rpath, rec.config["data_source"], force=opts.force)
        old = read_record(rpath)
        if old is not None and old.status == "completed" and not opts.force:
            if console is not None:
                console.print(f"[dim]already evaluated ({rpath}); --force replaces it[/dim]")
            return old
        if scored is not None:
            keep_test(rec, scored, rpath)
        rec.timing.update(finished_at=now_iso(), total_s=round(time.perf_counter() - t0, 3))
        rec.write(out, per_sequence=scored.per_sequence if scored is not None else None)
    if console is not None and rec.status == "completed":
        m = rec.metrics or {}
        console.print(f"{rec.model} ({opts.source} checkpoint {loaded.checkpoint.name}, rollout {rec.rollout}): "
                      + ", ".join(f"{k.upper()} {v:.4g}" for k, v in m.items() if isinstance(v, (int, float)))
                      + f"  -> {rpath}")
    return rec


def _compile_choice(net: Any, asked: str | None, prec: Any, bs: int, ds: Any, test_size: int | None, dev: Any,
                    model: str, console: Any) -> dict[str, Any]:
    """``--compile`` for the evaluation forward (stbench/compile.py): resolved, said in one line, enabled."""
    try:
        c = choose_eval_compile(net, asked, prec=prec, batch=bs, batches=max(1, ds.num_batches("test", bs,
                                limit=test_size)), device=dev, model_name=model)
    except ValueError as exc:
        raise UserError(str(exc).splitlines()[0]) from None
    say = print if console is None else (lambda line: console.print(line, markup=False, highlight=False))
    if c.asked != "off":
        say(c.line())
    enable(net, train=False, eval=c.eval, name=model, say=say, region=c.region, device=dev)
    return c.as_dict()


def _card_model(checkpoint: Path, model: str | None, dataset: str | None, source: str,
                config: str | Path | None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(model, card) of stbench's own ``.safetensors`` + card (:func:`stbench.weights.load_model`)."""
    if source != "stbench":
        raise UserError(f"'{checkpoint.name}' is stbench's own weights with a model card; drop --from {source}")
    if config:
        raise UserError("--config is not needed with a .safetensors: its model card gives the architecture")
    net, card = load_card_model(checkpoint, model=model)
    if dataset is not None and dataset != card["dataset"]["name"]:
        raise UserError(f"--dataset {dataset} but the card says the model was trained on '{card['dataset']['name']}';"
                        " drop --dataset")
    return net, card


def _spec_t_out(dataset: str, data_kw: dict[str, Any]) -> int:
    return int(get_spec(dataset, **data_kw).t_out)
