"""Forecasts of any horizon: :func:`rollout`, the one helper that ``stbench predict`` (and any caller that needs
a horizon other than the one a model was built for) uses.

``rollout(model, x, t_out)`` maps inputs ``x (B, T_in, C, H, W)`` to ``t_out`` predicted frames
``(B, t_out, C, H, W)``:

- An :class:`~stbench.models.base.STModel` (every built-in, composed and zoo model) reads its horizon from its
  ``t_out`` attribute on every forward, and already knows how to go past the horizon it was trained for: a
  parallel model feeds its predicted frames back through the whole model in blocks of T_in (``rollout="frame"``,
  as published; ``"latent"`` feeds the translator's output back instead), a recurrent model keeps stepping on
  its own predictions (:meth:`~stbench.models.base.RecurrentTemporal.forward`). :func:`rollout` sets that horizon
  for one forward and restores it, so the frames are exactly those of the same model built with ``t_out``,
  which is what ``stbench eval`` scores for a longer horizon.
- Any other module (a plugin's own model class with ``in_shape = (T_in, C, H, W)`` and ``t_out``, whose forward
  returns an object with ``.pred (B, t_out_trained, C, H, W)``) gets the block roll-out: predict the trained
  number of frames from the last T_in frames (inputs, then predictions), append them, repeat; the last block is
  cropped.

Neither mode nor gradients are changed here: callers wrap it in ``torch.no_grad()`` and ``model.eval()``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def rollout(model: Any, x: Tensor, t_out: int) -> Tensor:
    """``t_out`` predicted frames ``(B, t_out, C, H, W)`` from ``x (B, T_in, C, H, W)`` (see the module docstring)."""
    from stbench.models.base import STModel

    t_out = int(t_out)
    if t_out < 1:
        raise ValueError(f"t_out must be >= 1, got {t_out}")
    if isinstance(model, STModel):
        trained = model.t_out
        model.t_out = t_out
        try:
            return model(x).pred  # (B, t_out, C, H, W)
        finally:
            model.t_out = trained
    return block_rollout(model, x, t_out)


def block_rollout(model: Any, x: Tensor, t_out: int) -> Tensor:
    """Repeat the model's own forecast: the last T_in frames (inputs, then predictions) in, its trained number of
    frames out, until ``t_out`` frames exist; the last block is cropped."""
    t_in = int(model.in_shape[0])
    frames, made = x, []  # frames: (B, >= T_in, C, H, W), the history the next block reads its last T_in from
    n = 0
    while n < t_out:
        y = model(frames[:, -t_in:]).pred  # (B, T_block, C, H, W)
        made.append(y)
        n += y.shape[1]
        frames = torch.cat([frames[:, -t_in:], y], dim=1)
    return torch.cat(made, dim=1)[:, :t_out]  # (B, t_out, C, H, W)
