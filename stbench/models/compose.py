"""Build an STModel from registered parts: any encoder/decoder pair with any temporal module.

    build("simvp", "tau", hid_S=64, N_S=4, hid_T=512, N_T=8, ddr_alpha=0.1)

Keyword arguments are routed to the component whose constructor accepts them; a keyword that no
component accepts is an error naming the model and the accepted keywords.
"""

from __future__ import annotations

import inspect
from typing import Any

from stbench.errors import ModelArgumentError
from stbench.models.base import STModel
from stbench.registry import DECODERS, ENCODERS, TEMPORAL

MODEL_KEYS = ("ddr_alpha", "l1_alpha", "loss_all_frames", "rollout")  # consumed by STModel itself


def accepted_kwargs(cls: type) -> set[str]:
    sig = inspect.signature(cls.__init__)
    return {n for n, p in sig.parameters.items() if p.kind == p.KEYWORD_ONLY}


def build(encoder: str, temporal: str, decoder: str | None = None, *,
          in_shape: tuple[int, int, int, int] = (10, 1, 64, 64), t_out: int = 10,
          defaults: dict[str, Any] | None = None, model_name: str | None = None, **overrides: Any) -> STModel:
    """``defaults`` are a named model's published hyperparameters (dropped where a swapped-in
    component does not take them); ``overrides`` come from the user and must be accepted."""
    decoder = decoder or encoder
    enc_cls, tmp_cls, dec_cls = ENCODERS.get(encoder), TEMPORAL.get(temporal), DECODERS.get(decoder)
    enc_keys = accepted_kwargs(enc_cls) - {"in_shape"}
    dec_keys = accepted_kwargs(dec_cls) - {"latent_shape", "out_shape", "skip_channels"}
    tmp_keys = accepted_kwargs(tmp_cls) - {"in_shape", "t_out"}
    known = enc_keys | dec_keys | tmp_keys | set(MODEL_KEYS)
    name = model_name or f"{temporal}@{encoder}"
    bad = sorted(set(overrides) - known)
    if bad:
        raise ModelArgumentError(
            f"model '{name}' does not take {', '.join(bad)}; it accepts: {', '.join(sorted(known))}"
        )
    kw = {k: v for k, v in (defaults or {}).items() if k in known}
    kw.update(overrides)
    t_in, C, H, W = in_shape
    enc = enc_cls(in_shape=(C, H, W), **{k: v for k, v in kw.items() if k in enc_keys})
    tmp = tmp_cls(in_shape=(t_in, *enc.latent_shape), t_out=t_out, **{k: v for k, v in kw.items() if k in tmp_keys})
    dec = dec_cls(latent_shape=enc.latent_shape, out_shape=(C, H, W), skip_channels=enc.skip_channels,
                  **{k: v for k, v in kw.items() if k in dec_keys})
    model = STModel(enc, tmp, dec, in_shape=in_shape, t_out=t_out,
                    names={"model": name, "encoder": encoder, "temporal": temporal, "decoder": decoder},
                    **{k: v for k, v in kw.items() if k in MODEL_KEYS})
    model.hparams = {"encoder": encoder, "temporal": temporal, "decoder": decoder,
                     "in_shape": list(in_shape), "t_out": t_out, **kw, "rollout": model.rollout}
    return model
