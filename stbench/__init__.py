"""stbench: a benchmark suite for spatiotemporal predictive learning.

Stable Python API::

    import stbench
    stbench.list_models("tau*")                 # -> ["tau"] (tiny test variants only for "*tiny*")
    model = stbench.create_model("tau", t_out=20)
    model = stbench.create_model("convlstm@simvp")  # ConvLSTM over the SimVP encoder/decoder

    records = stbench.load_records("results")   # -> [RunRecord, ...] (schema in results/README.md)
    pred = stbench.predict("results/records/mmnist/quick/tau__seed0.safetensors", x, t_out=30)  # a kept model

Heavy modules (torch models) are imported on first use, not at ``import stbench``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    from stbench.models.base import STModel
    from stbench.records import RunRecord

__all__ = ["__version__", "list_models", "create_model", "resolve_model_name", "load_records", "predict"]


def list_models(pattern: str | None = None, *, include_tiny: bool | None = None) -> list[str]:
    """Registered model names matching a wildcard pattern (comma list allowed; see
    :func:`stbench.registry.match_names`, the one rule that ``stbench run --models`` and ``stbench list``
    use too). ``include_tiny`` forces tiny test variants in or out; by default a pattern includes them only
    when it says ``tiny``, and no pattern lists everything."""
    from stbench.registry import MODELS

    return MODELS.names(pattern, include_tiny=include_tiny)


def load_records(results_dir: str | Path = "results", *, warn: bool = True) -> list[RunRecord]:
    """Every readable run record under ``results_dir`` (``<dir>/records/**.json``), as
    :class:`stbench.records.RunRecord`; unreadable files are skipped with a warning on stderr."""
    import sys
    from pathlib import Path

    from stbench.records import read_records

    found, warnings = read_records(Path(results_dir))
    if warn:
        for w in warnings:
            print(f"stbench: warning: {w}", file=sys.stderr)
    return [rec for _, rec in found]


def predict(model_or_path: Any, array: Any, *, t_out: int | None = None, **kw: Any) -> Any:
    """Predicted frames, float32 ``(N, t_out, C, H, W)``, for ``array`` ``(N, T, C, H, W)`` or ``(T, C, H, W)``.

    ``model_or_path``: a ``.safetensors`` kept by ``stbench run`` (its model card gives the model and the dataset's
    normalisation, applied to ``array`` and undone on the result), or a model (``array`` on its scale). ``t_out``
    (default: the trained horizon) may exceed the trained one: rolled out as ``stbench eval`` does. Options:
    ``batch_size``, ``device``, ``model`` (must match the card). See :mod:`stbench.inference`.
    """
    from stbench.inference import predict as _predict

    return _predict(model_or_path, array, t_out=t_out, **kw)


def resolve_model_name(name: str) -> tuple[str, str | None, str | None]:
    """Split ``model[@encoder]`` into (model or temporal name, encoder, kind) and validate it.

    kind is ``"model"`` for a named model and ``"temporal"`` for a bare temporal module.
    """
    from stbench.registry import ENCODERS, MODELS, TEMPORAL

    base, _, enc = name.partition("@")
    if enc:
        ENCODERS.entry(enc)  # raises with "did you mean"
    if base in MODELS:
        return base, enc or None, "model"
    if base in TEMPORAL:
        return base, enc or None, "temporal"
    MODELS.entry(base)  # raises: unknown model, with suggestions
    raise AssertionError  # unreachable


def create_model(name: str, *, recipe_defaults: dict[str, Any] | None = None, **overrides: Any) -> STModel:
    """Build a model by name. ``None``-valued overrides are dropped, so a CLI flag that a model does
    not take cannot break it. Names: a registered model (``tau``), a model with its encoder/decoder
    swapped (``tau@patch``), or a registered temporal module over the SimVP codec (``mymodule``).

    ``overrides`` must be accepted by some component (else TypeError naming the accepted keys);
    ``recipe_defaults`` (a preset's architecture) are dropped where a swapped-in component lacks them.
    """
    from stbench.models.compose import build
    from stbench.registry import MODELS

    kw = {k: v for k, v in overrides.items() if v is not None}
    base, enc, kind = resolve_model_name(name)
    if kind == "model":
        if enc:
            kw["encoder"] = enc
        return MODELS.get(base)(recipe_defaults=recipe_defaults, **kw)
    return build(enc or "simvp", base, model_name=name, defaults=recipe_defaults, **kw)
