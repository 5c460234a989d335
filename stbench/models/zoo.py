"""Named compositions: the published models with their Moving MNIST configs and their recipe
defaults per preset (``presets=`` on the registry entry: ``paper`` = published training keys at the
published sizes, ``quick`` = a CPU-sized version, ``smoke`` = tiny sizes for tests; a test builds a
model at them with ``tests/conftest.py:smoke_model``). ``create_model("tau@patch")`` is the
named model ``tau`` with its encoder/decoder swapped for ``patch``; a bare temporal-module name
(e.g. a plugin) composes with the SimVP codec.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any

from stbench.models.base import STModel
from stbench.models.compose import build
from stbench.registry import MODELS


def named(name: str, own_encoder: str, temporal: str, defaults: dict[str, Any], /, *,
          encoder: str | None = None, decoder: str | None = None,
          in_shape: tuple[int, int, int, int] | None = None, t_out: int | None = None,
          recipe_defaults: dict[str, Any] | None = None, **overrides: Any) -> STModel:
    """The published model ``name``: ``temporal`` between the ``own_encoder`` codec, at its published sizes
    ``defaults``. Every registered model builder is one call of this, taking the keywords below.

    encoder / decoder: swap the codec (``create_model("tau@patch")``; the model is then labelled ``tau@patch``).
    in_shape (T_in, C, H, W) / t_out: the data's shape (default: Moving MNIST's, see
    :func:`stbench.models.compose.build`). recipe_defaults: a preset's sizes, laid over ``defaults``; both are
    dropped where a swapped-in component does not take them. overrides: the user's keywords, which some
    component must accept.
    """
    enc = encoder or own_encoder
    data = {k: v for k, v in (("in_shape", in_shape), ("t_out", t_out)) if v is not None}
    defaults = {**defaults, **(recipe_defaults or {})}
    label = name if enc == own_encoder else f"{name}@{enc}"
    return build(enc, temporal, decoder, defaults=defaults, model_name=label, **data, **overrides)


def named_model(name: str, own_encoder: str, temporal: str, defaults: dict[str, Any]) -> Callable[..., STModel]:
    """The builder the registry keeps for the published model ``name``: a call of :func:`named` whose signature
    lists what it takes (``help(stbench.models.zoo.tau)``): :func:`named`'s keywords, then the published sizes
    ``defaults`` (any of them, or another keyword of its components, overrides)."""
    def build(**kw: Any) -> STModel:
        return named(name, own_encoder, temporal, defaults, **kw)

    keywords = [p for p in inspect.signature(named).parameters.values() if p.kind is p.KEYWORD_ONLY]
    sizes = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v) for k, v in defaults.items()]
    build.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [*keywords, *sizes, inspect.Parameter("overrides", inspect.Parameter.VAR_KEYWORD)], return_annotation=STModel)
    build.__name__ = build.__qualname__ = name
    build.__module__ = sys._getframe(1).f_globals.get("__name__", __name__)
    build.__doc__ = (f"The published ``{name}``: the ``{temporal}`` temporal module between the ``{own_encoder}`` "
                     "codec, at its published sizes; see :func:`stbench.models.zoo.named` for the keywords.")
    return build


# -- parallel (SimVP family) -------------------------------------------------------------------
SIMVP = dict(hid_S=64, N_S=4, hid_T=512, N_T=8)
META = dict(SIMVP, mlp_ratio=8.0, drop_path=0.0)


SMOKE = dict(hid_S=8, N_S=2, hid_T=16, N_T=2)
QUICK = dict(hid_S=16, N_S=4, hid_T=128, N_T=4)
# the SimVP family trains at batch 4 in `quick`: more, smaller steps in the same CPU budget (TAU 162 -> 119
# test MSE against batch 16 in an earlier 5-epoch preset); the Moving MNIST budget (epochs, sequences) is
# the dataset's: baselines/mmnist.toml
SIMVP_PRESETS = {"paper": {"lr": 1e-3},
                 "quick": {"lr": 3e-3, "batch_size": 4, "model": QUICK},
                 "smoke": {"lr": 1e-3, "model": SMOKE}}
META_PRESETS = {"paper": {"lr": 1e-3},
                "quick": {"lr": 3e-3, "batch_size": 4, "model": dict(QUICK, mlp_ratio=4.0)},
                "smoke": {"lr": 1e-3, "model": dict(SMOKE, mlp_ratio=2.0)}}


simvp = named_model("simvp", "simvp", "incepu", SIMVP)
MODELS.register(family="parallel", paper="SimVP (CVPR 2022), IncepU translator", presets=SIMVP_PRESETS)(simvp)


gsta = named_model("gsta", "simvp", "gsta", META)
MODELS.register(family="parallel", paper="SimVP v2 gSTA translator (OpenSTL)", presets=META_PRESETS)(gsta)


tau = named_model("tau", "simvp", "tau", dict(META, ddr_alpha=0.1))
MODELS.register(family="parallel", paper="TAU (CVPR 2023)", presets=META_PRESETS)(tau)

