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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # pragma: no cover
    from stbench.records import RunRecord

from stbench.errors import CheckpointError, UserError
from stbench.weights import card_path, check_normalisation, is_card_weights

SOURCES = ("stbench", "openstl", "predformer")

# stbench named model -> (OpenSTL method, config keys that pick its translator / test-time flags)
OPENSTL_METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "simvp": ("SimVP", {"model_type": "IncepU"}),
    "gsta": ("SimVP", {"model_type": "gSTA"}),
    "tau": ("TAU", {"model_type": "tau"}),
    "convlstm": ("ConvLSTM", {"reverse_scheduled_sampling": 0}),
    "predrnn": ("PredRNN", {"reverse_scheduled_sampling": 0}),
    "predrnn_v2": ("PredRNNv2", {"reverse_scheduled_sampling": 1}),
}
# our hyper-parameter name -> OpenSTL's (for a config derived from a stbench preset)
_OPENSTL_KEYS = {"hid_S": "hid_S", "N_S": "N_S", "hid_T": "hid_T", "N_T": "N_T", "mlp_ratio": "mlp_ratio",
                 "drop": "drop", "drop_path": "drop_path", "kernel": "spatio_kernel_enc",
                 "num_hidden": "num_hidden", "filter_size": "filter_size", "patch_size": "patch_size",
                 "decouple_beta": "decouple_beta", "ddr_alpha": "alpha"}


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
# building the model
# ---------------------------------------------------------------------------------------------
def _paper_recipe(dataset: str, model: str):
    from stbench.recipes import load_recipe

    return load_recipe(dataset, model, "paper")


def openstl_config_for(model: str, dataset: str, file_cfg: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """(OpenSTL method, merged config) for ``--model`` with an optional parsed ``--config``.

    Without a config file the stbench model's paper-preset sizes are written in OpenSTL's key names.
    The dataset supplies ``in_shape`` / ``pre_seq_length`` / ``aft_seq_length`` the file does not set.
    """
    from stbench.data import get_spec

    cfg: dict[str, Any] = {}
    base = model.partition("@")[0]
    method, extra = OPENSTL_METHODS.get(base, (None, {}))
    if file_cfg is None:
        if method is None:
            raise UserError(f"no OpenSTL method is known for stbench model '{model}'; pass its OpenSTL config "
                            "with --config (it names the method)")
        recipe = _paper_recipe(dataset, model)
        with torch.device("meta"):
            hp = recipe.build_model(model).hparams
        for ours, theirs in _OPENSTL_KEYS.items():
            if ours in hp:
                v = hp[ours]
                cfg[theirs] = ",".join(map(str, v)) if isinstance(v, (list, tuple)) else v
        if "spatio_kernel_enc" in cfg:
            cfg["spatio_kernel_dec"] = cfg["spatio_kernel_enc"]
        cfg.update(extra)
    else:
        cfg.update(file_cfg)
        method = str(file_cfg.get("method") or method or "")
        if not method:
            raise UserError(f"the config names no 'method' and stbench model '{model}' has no known OpenSTL "
                            "method; add method = '...' to the config")
        if "model_type" not in cfg and "model_type" in extra:
            cfg["model_type"] = extra["model_type"]
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
               config: str | Path | None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(the model in eval mode with the checkpoint's weights, the config that built it)."""
    from stbench.interop.openstl import bare_state_dict, from_openstl, load_mapped

    if source == "openstl":
        file_cfg = read_openstl_config(config) if config else None
        method, cfg = openstl_config_for(model, dataset, file_cfg)
        m = from_openstl(method, cfg, _state_dict_of(obj, checkpoint))
        built = m.names.get("model", "")
        if built != model.partition("@")[0]:
            raise UserError(f"--model {model} but the OpenSTL config describes {method} "
                            f"({cfg.get('model_type', '')}) = stbench model '{built}'; pass --model {built}")
        return m, {"source_config": {k: v for k, v in cfg.items() if _plain(v)}, "openstl_method": method}
    if source == "predformer":
        from stbench.interop.predformer import load_predformer_checkpoint

        file_cfg = read_openstl_config(config) if config else None  # PredFormer's config files are OpenSTL-style
        if not isinstance(obj, Mapping):  # named by its type: printing a 200,000-element tensor is no message
            raise CheckpointError(f"checkpoint '{checkpoint.name}' holds a {type(obj).__name__}, not a state dict; "
                                  "save the model's state_dict()")
        m = load_predformer_checkpoint(obj, model.partition("@")[0], config=file_cfg)
        return m, {"source_config": {k: v for k, v in dict(m.source_config).items() if _plain(v)}}
    if config:
        raise UserError("--config reads an OpenSTL or PredFormer config file; use it with --from openstl|predformer")
    recipe = _paper_recipe(dataset, model)
    m = recipe.build_model(model)
    sd = bare_state_dict(_state_dict_of(obj, checkpoint))
    m = load_mapped(m, sd, source=f"stbench checkpoint '{checkpoint.name}'")
    return m, {"source_config": copy.deepcopy(recipe.config)}


def _plain(v: Any) -> bool:
    return isinstance(v, (str, int, float, bool, type(None))) or (
        isinstance(v, (list, tuple)) and all(isinstance(x, (str, int, float, bool)) for x in v))


def preset_of(model: torch.nn.Module, name: str, dataset: str) -> str:
    """``paper`` when the loaded architecture has the paper preset's parameter count, else ``custom``."""
    try:
        with torch.device("meta"):
            paper = _paper_recipe(dataset, name).build_model(name)
    except Exception:  # noqa: BLE001 - a model without a paper preset is simply not the paper architecture
        return "custom"
    return "paper" if _count(paper) == _count(model) else "custom"


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def epochs_of(checkpoint: Path, cfg: Mapping[str, Any], preset: str, dataset: str, model: str) -> int | None:
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
        return _paper_recipe(dataset, model).config.get("epochs")
    return None


# ---------------------------------------------------------------------------------------------
def evaluate_checkpoint(checkpoint: str | Path, model: str | None = None, *, dataset: str | None = None,
                        data_root: str | None = None,
                        source: str = "stbench", config: str | Path | None = None, out: str | Path = "results",
                        device: str = "auto", precision: str = "fp32", test_size: int | None = None,
                        batch_size: int | None = None, profile: bool = True, rollout: str | None = None,
                        console: Any = None, force: bool = False, compile: str | None = None) -> RunRecord:
    """Evaluate ``checkpoint`` as stbench model ``model``; write and return its ``evaluated`` record.

    The record is named by the file's stem and sha256; a completed one is never replaced unless ``force``
    (the same weights on the same data: it is returned; on other data: refused), and a lock beside it keeps a
    second process from writing it at the same time.

    A ``.safetensors`` written by ``stbench run`` (with its ``.card.json``) needs no ``model`` / ``dataset`` /
    ``config``: the card gives them (``model`` and ``dataset``, if given, must agree with it)."""
    import stbench
    from stbench import train as T
    from stbench.data import get_dataset
    from stbench.data.check import data_source
    from stbench.metrics import convention_for, metrics_meta
    from stbench.precision import make_precision
    from stbench.profile import INFER_BATCH
    from stbench.records import (
        N_EXAMPLES,
        RunRecord,
        atomic_write_npz,
        cell_lock,
        check_writable,
        env_info,
        nonfinite_metrics,
        now_iso,
        read_record,
    )

    if source not in SOURCES:
        raise UserError(f"unknown --from '{source}'; choose one of {', '.join(SOURCES)}")
    from stbench.precision import PRECISIONS
    from stbench.preflight import check_counts, check_data_source, check_device, check_splits

    check_counts({"test_size": test_size, "batch_size": batch_size}, {"test_size": test_size, "batch_size": batch_size})
    check_device(device)  # before the checkpoint is read: every argument first (issue 24)
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision '{precision}'; choose one of {', '.join(PRECISIONS)}")
    checkpoint = Path(checkpoint)
    t0 = time.perf_counter()
    started = now_iso()
    if is_card_weights(checkpoint):  # stbench's .safetensors + model card: model, preset and data from the card
        net, card = _card_model(checkpoint, model, dataset, source, config)
        model, dataset, preset, sha = card["model"], card["dataset"]["name"], card["preset"], card["weights"]["sha256"]
        checkpoint = checkpoint.with_name(card["weights"]["file"])
        cfg_info = {"source_config": copy.deepcopy(card["config"]), "card": card_path(checkpoint).name}
        paper_cfg = dict(card["config"])  # the run's own recipe: its data variant, test size and eval batch
    else:
        if model is None:
            raise UserError("--model is required for a .pth / .ckpt / .pt checkpoint (only a .safetensors with its "
                            "model card names its own model)")
        dataset = dataset or "mmnist"
        stbench.resolve_model_name(model)  # unknown name: "did you mean"
        obj, sha = read_checkpoint(checkpoint)
        net, cfg_info = load_model(checkpoint, obj, model, dataset, source, config)
        del obj
        preset = preset_of(net, model.partition("@")[0] if source != "stbench" else model, dataset)
        paper_cfg = _paper_recipe(dataset, model).config if preset == "paper" else {}
    if rollout is not None:
        net.rollout = rollout
    data_kw = dict(paper_cfg.get("data", {}))
    ds_kw = dict(data_kw)
    if net.t_out != _spec_t_out(dataset, ds_kw):
        ds_kw["t_out"] = net.t_out  # e.g. an OpenSTL config with aft_seq_length = 20
    ds = get_dataset(dataset, data_root=data_root, **ds_kw)
    check_splits(ds, ("test",))
    if tuple(ds.spec.in_shape) != tuple(net.in_shape) or int(ds.spec.t_out) != int(net.t_out):
        raise UserError(f"the checkpoint's model takes {tuple(net.in_shape)} -> {net.t_out} frames but dataset "
                        f"'{dataset}' gives {tuple(ds.spec.in_shape)} -> {ds.spec.t_out}; pick the matching "
                        "--dataset or --config")
    if is_card_weights(checkpoint):  # the weights' inputs must be scaled as they were in training
        check_normalisation(card.get("normalisation"), ds.spec)
    out = Path(out)
    check_writable(out)
    dev = check_device(device)
    prec = make_precision(precision, dev, model=net)
    test_size = test_size if test_size is not None else paper_cfg.get("test_size")
    bs = int(batch_size or paper_cfg.get("eval_batch_size", 16))
    src_cfg = cfg_info.get("source_config", {})
    epochs = epochs_of(checkpoint, src_cfg, preset, dataset, model)

    prof = None
    if profile:
        from stbench.profile import profile_model

        pm = copy.deepcopy(net)
        prof = profile_model(pm, name=model, device=dev, precision=prec, batch=INFER_BATCH, infer_batch=INFER_BATCH,
                             warmup=2, reps=5, train=False, flops=True, published_fps=False).as_dict()
        del pm
    net = prec.prepare(net.to(dev))
    compile_choice = _compile_choice(net, compile, prec, bs, ds, test_size, dev, model, console)
    t_eval = time.perf_counter()
    res, examples = T.evaluate(net, ds.batches("test", bs, limit=test_size), dev, prec,
                               metrics=tuple(ds.spec.metrics), keep=N_EXAMPLES, per_sequence=True,
                               context=ds.spec.metric_context)
    eval_s = time.perf_counter() - t_eval
    per_sequence = res.pop("per_sequence", None)
    bad = nonfinite_metrics({k: v for k, v in res.items() if k != "per_frame"}, res.get("per_frame"))
    if bad:  # recorded as failed, with the reason; nothing of the result is kept (issue 24)
        res, examples, per_sequence = {}, None, None
    rec = RunRecord(model=model, dataset=dataset, preset=preset, seed=0, kind="evaluated",
                    status="failed" if bad else "completed",
                    reason=f"non-finite test metrics: {', '.join(bad[:4])}; the weights make predictions that "
                           "overflow or are NaN" if bad else None,
                    family="recurrent" if net.recurrent else "parallel", encoder=net.names.get("encoder", "-"),
                    temporal=net.names.get("temporal", "-"), decoder=net.names.get("decoder", "-"),
                    metrics={k: v for k, v in res.items() if k != "per_frame"} or None,
                    per_frame=res.get("per_frame"),
                    metrics_meta=metrics_meta(ds.spec.metrics), convention=convention_for(ds.spec.metrics),
                    profile=prof,
                    checkpoint={"file": checkpoint.name, "sha256": sha, "source": source}, source=source,
                    rollout=net.rollout, env=env_info(dev, prec.name),
                    config={"epochs": epochs, "test_size": test_size, "eval_batch_size": bs, "data": data_kw,
                            "data_root": data_root, "model_hparams": getattr(net, "hparams", {}), "device": str(dev),
                            "rollout": net.rollout, "compile_choice": compile_choice, **cfg_info})
    rec.config["data_source"] = data = dict(data_source(dataset, data_root))
    rpath = rec.path(out)
    rec.run_id = f"{dataset}/{preset}/{rpath.stem}"  # the record file's own name (checkpoint name sanitised)
    with cell_lock(rpath):
        check_data_source(rpath, data, force=force)
        old = read_record(rpath)
        if old is not None and old.status == "completed" and not force:
            if console is not None:
                console.print(f"[dim]already evaluated ({rpath}); --force replaces it[/dim]")
            return old
        if examples is not None:
            ex_path = rpath.with_suffix(".examples.npz")
            atomic_write_npz(ex_path, examples)
            rec.examples = {"file": ex_path.name, "indices": list(range(len(examples["inputs"])))}
        rec.timing.update(started_at=started, finished_at=now_iso(), eval_s=round(eval_s, 3),
                          total_s=round(time.perf_counter() - t0, 3))
        rec.write(out, per_sequence=per_sequence)
    if console is not None and rec.status == "completed":
        m = rec.metrics or {}
        console.print(f"{model} ({source} checkpoint {checkpoint.name}, rollout {net.rollout}): "
                      + ", ".join(f"{k.upper()} {v:.4g}" for k, v in m.items() if isinstance(v, (int, float)))
                      + f"  -> {rpath}")
    return rec


def _compile_choice(net: Any, asked: str | None, prec: Any, bs: int, ds: Any, test_size: int | None, dev: Any,
                    model: str, console: Any) -> dict[str, Any]:
    """``--compile`` for the evaluation forward (stbench/compile.py): resolved, said in one line, enabled."""
    from stbench.compile import choose_eval_compile, enable

    try:
        c = choose_eval_compile(net, asked, prec=prec, batch=bs, batches=max(1, ds.num_batches("test", bs,
                                limit=test_size)), device=dev, model_name=model)
    except ValueError as exc:
        raise UserError(str(exc).splitlines()[0]) from None
    say = print if console is None else (lambda line: console.print(line, markup=False, highlight=False))
    if c.asked != "off":
        say(c.line())
    enable(net, train=False, eval=c.eval, name=model, say=say)
    return c.as_dict()


def _card_model(checkpoint: Path, model: str | None, dataset: str | None, source: str,
                config: str | Path | None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(model, card) of stbench's own ``.safetensors`` + card (:func:`stbench.weights.load_model`)."""
    from stbench.weights import load_model as load_card_model

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
    from stbench.data import get_spec

    return int(get_spec(dataset, **data_kw).t_out)
