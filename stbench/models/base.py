"""The stbench contract as code: Encoder, TemporalModule, Decoder and the composed STModel.

Shapes (all explicit):
    inputs   (B, T_in, C, H, W)           targets (B, T_out, C, H, W)
    encoder  (N, C, H, W) -> (N, C_lat, H_lat, W_lat) [+ skip]          per frame, N = B*T
    temporal (B, T_in, C_lat, H_lat, W_lat) -> (B, T_out, C_lat, H_lat, W_lat)
    decoder  (N, C_lat, H_lat, W_lat) [+ skip] -> (N, C, H, W)            per frame

Parallel temporal modules map T_in -> T_in frames; STModel turns that into T_out frames in ONE
place (:meth:`STModel._parallel_forecast`). ``rollout="frame"`` (the default, as published: OpenSTL's
SimVP-family methods) feeds each block of T_in predicted FRAMES back through the whole model
(encoder, translator, decoder); ``rollout="latent"`` feeds the translator's latent output back
into the translator only. Either way the last block is cropped (T_out < T_in: one pass, cropped).
Recurrent temporal modules step frame by frame; the one time loop with scheduled sampling lives in
:class:`RecurrentTemporal` and :meth:`RecurrentTemporal.forward` produces all T_in + T_out - 1
next-frame predictions, of which the last T_out are the forecast.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

Shape = tuple[int, ...]
ROLLOUTS = ("frame", "latent")  # how a parallel model produces T_out > T_in frames (STModel.rollout)


class ShapeError(ValueError):
    pass


def check_shape(component: str, x: Tensor, expected: Shape) -> None:
    if tuple(x.shape) != tuple(expected):
        raise ShapeError(
            f"{component} returned shape {tuple(x.shape)}, expected {tuple(expected)} "
            "(check its constructor arguments against the latent shape it is given)"
        )


# ---------------------------------------------------------------------------------------------
# Encoder / decoder
# ---------------------------------------------------------------------------------------------
class Encoder(nn.Module):
    """Per-frame encoder. Subclasses set ``latent_shape`` and ``skip_channels`` in ``__init__``.

    Constructor contract: ``__init__(self, *, in_shape: (C, H, W), **hparams)``.
    ``forward(x (N, C, H, W)) -> (z (N, C_lat, H_lat, W_lat), skip (N, C_skip, H, W) | None)``.
    """

    latent_shape: Shape  # (C_lat, H_lat, W_lat)
    skip_channels: int = 0
    # True for a learned (not invertible) codec of a recurrent method that feeds its predictions back as
    # FRAMES (MAU, PhyDNet, SwinLSTM): the recurrent time loop then encodes each step's input frame and
    # decodes each step's output (see RecurrentTemporal.forward's ``codec``). False: the loop runs in
    # latent space, which equals frame feedback for a bijective codec such as the patch codec.
    frame_feedback: ClassVar[bool] = False

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:  # pragma: no cover - abstract
        raise NotImplementedError


class Decoder(nn.Module):
    """Per-frame decoder.

    Constructor contract: ``__init__(self, *, latent_shape, out_shape (C, H, W), skip_channels, **hparams)``.
    ``forward(z (N, C_lat, H_lat, W_lat), skip | None) -> (N, C, H, W)``.
    """

    def forward(self, z: Tensor, skip: Tensor | None) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# Temporal modules
# ---------------------------------------------------------------------------------------------
class TemporalModule(nn.Module):
    """Carries information across frames in latent space.

    Constructor contract: ``__init__(self, *, in_shape: (T_in, C_lat, H_lat, W_lat), t_out: int, **hparams)``.
    """

    recurrent: ClassVar[bool] = False


class ParallelTemporal(TemporalModule):
    """Sees all T_in frames at once: ``forward(z (B, T_in, C, H, W)) -> (B, T_in, C, H, W)``."""

    recurrent: ClassVar[bool] = False

    def forward(self, z: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# Older parameter layouts that saved weights may still have
# ---------------------------------------------------------------------------------------------
def split_fused_conv(module: nn.Module, fused: str, first: str, second: str) -> None:
    """Declare that ``module``'s ``first(a) + second(b)`` was once one convolution ``fused`` over
    ``cat([a, b])`` (the same function): weights saved that way load, the fused weight's input columns split at
    ``first``'s input channels (in ``load_state_dict`` and :func:`upgrade_state_dict`)."""
    module._older_layout = (fused, first, second)
    module.register_load_state_dict_pre_hook(_split)  # a module-level function: the model stays picklable


def _split(module: nn.Module, state_dict: dict[str, Tensor], prefix: str, *_: Any) -> None:
    fused, first, second = module._older_layout
    w = state_dict.pop(prefix + fused + ".weight", None)
    if w is not None:
        n = getattr(module, first).in_channels
        state_dict[prefix + first + ".weight"], state_dict[prefix + second + ".weight"] = w[:, :n], w[:, n:]


def upgrade_state_dict(model: nn.Module, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """``state_dict`` (a copy) with any older layout (:func:`split_fused_conv`) rewritten to ``model``'s names, so
    that its keys can be checked against ``model.state_dict()`` before loading."""
    out = dict(state_dict)
    for path, m in model.named_modules():
        if hasattr(m, "_older_layout"):
            _split(m, out, f"{path}." if path else "")
    return out


# module -> what runs its one-time-step function instead of ``module.step`` (``runner(module, x, state)``):
# stbench.compile registers a compiled one for ``--compile``'s "cell" region; copies of a module are not in here
STEP_RUNNERS: weakref.WeakKeyDictionary[nn.Module, Callable[..., Any]] = weakref.WeakKeyDictionary()


class RecurrentTemporal(TemporalModule):
    """Steps frame by frame. Subclasses implement :meth:`init_state` and :meth:`step`.

    The time loop (this class's ``forward``) is shared by every recurrent module: step t reads
    ``x_t`` = the true frame for t < T_in, the model's own previous prediction afterwards; during
    training a ``mask`` (B, T_in + T_out - 2) of probabilities mixes the true frame ``frames[:, t]``
    into the input of step t >= 1 (scheduled sampling / reverse scheduled sampling). The mask is a
    device tensor: no host synchronisation or numpy inside the loop.
    """

    recurrent: ClassVar[bool] = True

    def init_state(self, x: Tensor) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any, Tensor | None]:  # pragma: no cover
        """One step: ``x (B, C, H, W) -> (y (B, C, H, W) next-frame prediction, state, aux | None)``.

        ``aux`` is an already-weighted auxiliary loss of this step (e.g. PredRNN.V2's decoupling
        loss), summed over steps by the loop, or None.
        """
        raise NotImplementedError

    def forward(
        self, frames: Tensor, t_out: int, mask: Tensor | None = None, codec: Any = None
    ) -> tuple[Tensor, Tensor | None]:
        """frames: (B, T_in, C, H, W) at test time, or (B, T_in + T_out - 1, ...) true frames
        when a training ``mask`` (B, T_in + T_out - 2) is given.
        Returns (all next-frame predictions (B, T_in + T_out - 1, C, H, W), aux loss or None).

        ``codec``: None (frames and predictions are latents), or ``(encode, decode)`` with
        ``encode(x (B, C, H, W)) -> (z, skip | None)`` and ``decode(y, skip) -> (B, C, H, W)``: frames and
        predictions are then pixel frames; each step encodes its input frame, steps in latent space and
        decodes its output with the skip of its own input (frame feedback, ``Encoder.frame_feedback``).
        """
        t_in = self.t_in
        steps = t_in + t_out - 1
        if mask is not None and frames.shape[1] < steps:
            raise ShapeError(f"{type(self).__name__}: a sampling mask needs {steps} true frames, "
                             f"got {frames.shape[1]}")
        x = frames[:, 0]
        enc0 = None if codec is None else codec[0](x)  # the first frame's latent sizes the zero states
        state = self.init_state(x if enc0 is None else enc0[0])
        outs: list[Tensor] = []
        aux_total: Tensor | None = None
        runner = STEP_RUNNERS.get(self)
        step = self.step if runner is None else (lambda inp, st: runner(self, inp, st))
        for t in range(steps):
            if t > 0:
                pred = outs[-1]
                if mask is not None:
                    m = mask[:, t - 1].view(-1, 1, 1, 1).to(pred.dtype)
                    # under autocast pred is bf16/fp16 while the encoded true frames stay fp32
                    x = torch.lerp(pred, frames[:, t].to(pred.dtype), m)  # m * true + (1 - m) * pred
                elif t < t_in:
                    x = frames[:, t]
                else:
                    x = pred
            if codec is None:
                y, state, aux = step(x, state)
            else:
                z, skip = enc0 if t == 0 else codec[0](x)
                y, state, aux = step(z, state)
                y = codec[1](y, skip)
            outs.append(y)
            if aux is not None:
                aux_total = aux if aux_total is None else aux_total + aux
        if aux_total is not None:
            aux_total = aux_total / steps
        return torch.stack(outs, dim=1), aux_total  # (B, T_in + T_out - 1, C, H, W)


# ---------------------------------------------------------------------------------------------
# Composed model
# ---------------------------------------------------------------------------------------------
@dataclass
class ModelOutput:
    pred: Tensor  # (B, T_out, C, H, W) the forecast
    all_frames: Tensor | None = None  # (B, T_in + T_out - 1, C, H, W) recurrent next-frame outputs
    aux_loss: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)


class STModel(nn.Module):
    """encoder + temporal module + decoder + loss.

    ``forward(inputs (B, T_in, C, H, W), targets=None, sampling_mask=None) -> ModelOutput``.
    ``targets`` are read only when a ``sampling_mask`` is given (training of a recurrent module);
    at evaluation the model never sees them.
    """

    def __init__(
        self,
        encoder: Encoder,
        temporal: TemporalModule,
        decoder: Decoder,
        *,
        in_shape: Shape,
        t_out: int,
        ddr_alpha: float = 0.0,
        l1_alpha: float = 0.0,
        loss_all_frames: bool = True,
        names: dict[str, str] | None = None,
        rollout: str = "frame",
    ) -> None:
        super().__init__()
        self.encoder, self.temporal, self.decoder = encoder, temporal, decoder
        self.in_shape = tuple(in_shape)  # (T_in, C, H, W)
        self.t_out = int(t_out)
        self.ddr_alpha = float(ddr_alpha)
        self.l1_alpha = float(l1_alpha)  # + alpha * L1 on the same frames as the MSE (E3D-LSTM's published loss)
        self.loss_all_frames = loss_all_frames  # recurrent: MSE over all T_in + T_out - 1 outputs
        self.names = dict(names or {})  # model / encoder / temporal / decoder names for records
        self.rollout = rollout
        t_in = self.in_shape[0]
        self._lat = (t_in, *encoder.latent_shape)
        if not hasattr(temporal, "t_in"):
            temporal.t_in = t_in

    @property
    def recurrent(self) -> bool:
        return self.temporal.recurrent

    @property
    def rollout(self) -> str:
        """How T_out frames are produced: ``"frame"`` or ``"latent"`` (parallel models, see the module
        docstring), ``"recurrent"`` (a recurrent module steps frame by frame; nothing to choose)."""
        return "recurrent" if self.recurrent else self._rollout

    @rollout.setter
    def rollout(self, mode: str) -> None:
        if mode not in ROLLOUTS:
            raise ValueError(f"rollout must be one of {', '.join(ROLLOUTS)}, got {mode!r}")
        self._rollout = mode

    def _encode(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        # x: (B, T, C, H, W) -> z (B, T, C_lat, H_lat, W_lat), skip (B, T, C_s, H, W) | None
        B, T = x.shape[:2]
        z, skip = self.encoder(x.flatten(0, 1))
        check_shape(f"encoder '{self.names.get('encoder', type(self.encoder).__name__)}'",
                    z, (B * T, *self.encoder.latent_shape))
        z = z.unflatten(0, (B, T))
        if skip is not None:
            skip = skip.unflatten(0, (B, T))
        return z, skip

    def _decode(self, z: Tensor, skip: Tensor | None) -> Tensor:
        # z: (B, T, C_lat, H', W'), skip (B, T, C_s, H, W) | None -> (B, T, C, H, W)
        B, T = z.shape[:2]
        y = self.decoder(z.flatten(0, 1), None if skip is None else skip.flatten(0, 1))
        C, H, W = self.in_shape[1:]
        check_shape(f"decoder '{self.names.get('decoder', type(self.decoder).__name__)}'", y, (B * T, C, H, W))
        return y.unflatten(0, (B, T))

    @staticmethod
    def _skip_for(skip: Tensor | None, n: int, offset: int = 0) -> Tensor | None:
        """Skip features for n output frames: the skip of input frame (offset + j) mod T_in.

        For a parallel module with T_out == T_in this is exactly SimVP's alignment (output j gets
        input j's first-layer features).
        """
        if skip is None:
            return None
        t_in = skip.shape[1]
        idx = (torch.arange(n, device=skip.device) + offset) % t_in
        if n == t_in and offset == 0:
            return skip
        return skip.index_select(1, idx)

    def _parallel_rollout(self, z: Tensor) -> Tensor:
        """Latent roll-out (``rollout="latent"``): the translator's output is its next input."""
        B, t_in = z.shape[:2]
        chunks, cur, produced = [], z, 0
        name = f"temporal module '{self.names.get('temporal', type(self.temporal).__name__)}'"
        while produced < self.t_out:
            y = self.temporal(cur)  # (B, T_in, C_lat, H_lat, W_lat)
            check_shape(name, y, tuple(z.shape))
            chunks.append(y)
            produced += t_in
            cur = y
        out = chunks[0] if len(chunks) == 1 else torch.cat(chunks, dim=1)
        return out[:, : self.t_out]  # (B, T_out, C_lat, H_lat, W_lat)

    def _frame_rollout(self, inputs: Tensor) -> Tensor:
        """Published long-horizon roll-out: the whole model maps T_in frames to the next T_in frames,
        its predicted frames are the next input. Frames past T_out are never decoded."""
        t_in = self.in_shape[0]
        name = f"temporal module '{self.names.get('temporal', type(self.temporal).__name__)}'"
        chunks, cur, produced = [], inputs, 0
        while produced < self.t_out:
            z, skip = self._encode(cur)  # (B, T_in, C_lat, H', W'), skip of these input frames
            y = self.temporal(z)  # (B, T_in, C_lat, H', W')
            check_shape(name, y, tuple(z.shape))
            need = min(t_in, self.t_out - produced)
            if need < t_in:  # last block: decode only the frames that are kept (per-frame decoder)
                y, skip = y[:, :need], None if skip is None else skip[:, :need]
            cur = self._decode(y, skip)  # (B, need, C, H, W)
            chunks.append(cur)
            produced += need
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks, dim=1)  # (B, T_out, C, H, W)

    def _parallel_forecast(self, inputs: Tensor) -> Tensor:
        """THE one place where a parallel module's T_in -> T_in map becomes T_out frames."""
        if self._rollout == "frame":
            return self._frame_rollout(inputs)
        z, skip = self._encode(inputs)  # (B, T_in, C_lat, H', W')
        zf = self._parallel_rollout(z)  # (B, T_out, C_lat, H', W')
        return self._decode(zf, self._skip_for(skip, self.t_out))

    def forward(self, inputs: Tensor, targets: Tensor | None = None,
                sampling_mask: Tensor | None = None) -> ModelOutput:
        # inputs (B, T_in, C, H, W)
        t_in = self.in_shape[0]
        if tuple(inputs.shape[1:]) != self.in_shape:
            expected = ", ".join(map(str, self.in_shape))
            raise ShapeError(f"model input has shape {tuple(inputs.shape)}, expected (B, {expected})")
        if not self.recurrent:
            return ModelOutput(pred=self._parallel_forecast(inputs))  # (B, T_out, C, H, W)
        # recurrent: true frames are encoded only when a training mask asks for them
        if sampling_mask is not None:
            if targets is None:
                raise ValueError("a sampling mask needs the targets (teacher frames)")
            frames = torch.cat([inputs, targets[:, :-1]], dim=1)  # (B, T_in + T_out - 1, C, H, W)
        else:
            frames = inputs
        if getattr(self.encoder, "frame_feedback", False):
            return self._frame_feedback_forward(frames, sampling_mask)
        z, skip = self._encode(frames)
        zs, aux = self.temporal(z, self.t_out, sampling_mask)  # (B, T_in + T_out - 1, C_lat, ...)
        steps = t_in + self.t_out - 1
        name = f"temporal module '{self.names.get('temporal', type(self.temporal).__name__)}'"
        check_shape(name, zs, (inputs.shape[0], steps, *self.encoder.latent_shape))
        if skip is not None:  # output of step t gets the skip of the latest observed input frame
            idx = torch.arange(steps, device=skip.device).clamp(max=t_in - 1)
            skip = skip[:, :t_in].index_select(1, idx)
        frames_out = self._decode(zs, skip)  # (B, T_in + T_out - 1, C, H, W)
        return ModelOutput(pred=frames_out[:, t_in - 1:], all_frames=frames_out, aux_loss=aux)

    def _frame_feedback_forward(self, frames: Tensor, sampling_mask: Tensor | None) -> ModelOutput:
        """Recurrent forward with the codec inside the time loop (``Encoder.frame_feedback``): the loop
        feeds back decoded frames, as MAU, PhyDNet and SwinLSTM do; frames (B, T, C, H, W)."""
        t_in = self.in_shape[0]
        enc_name = f"encoder '{self.names.get('encoder', type(self.encoder).__name__)}'"
        dec_name = f"decoder '{self.names.get('decoder', type(self.decoder).__name__)}'"

        def encode(x: Tensor) -> tuple[Tensor, Tensor | None]:  # (B, C, H, W) -> (B, C_lat, H', W')
            z, skip = self.encoder(x)
            check_shape(enc_name, z, (x.shape[0], *self.encoder.latent_shape))
            return z, skip

        def decode(y: Tensor, skip: Tensor | None) -> Tensor:  # (B, C_lat, H', W') -> (B, C, H, W)
            out = self.decoder(y, skip)
            check_shape(dec_name, out, (y.shape[0], *self.in_shape[1:]))
            return out

        frames_out, aux = self.temporal(frames, self.t_out, sampling_mask, codec=(encode, decode))
        return ModelOutput(pred=frames_out[:, t_in - 1:], all_frames=frames_out, aux_loss=aux)

    # -- loss ----------------------------------------------------------------------------------
    def loss(self, out: ModelOutput, inputs: Tensor, targets: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Training loss: MSE (+ alpha * L1) (+ alpha * DDR) (+ the temporal module's weighted aux loss).

        Recurrent models with ``loss_all_frames`` are supervised on all T_in + T_out - 1 next-frame
        outputs, as published for ConvLSTM / PredRNN.
        """
        from stbench.models.losses import ddr_loss

        parts: dict[str, Tensor] = {}
        if out.all_frames is not None and self.loss_all_frames:
            pred, true = out.all_frames.float(), torch.cat([inputs[:, 1:], targets], dim=1)  # (B, T_in+T_out-1, ...)
        else:
            pred, true = out.pred.float(), targets
        parts["mse"] = torch.mean((pred - true) ** 2)
        total = parts["mse"]
        if self.l1_alpha > 0:
            parts["l1"] = torch.mean((pred - true).abs())
            total = total + self.l1_alpha * parts["l1"]
        if self.ddr_alpha > 0:
            parts["ddr"] = ddr_loss(out.pred.float(), targets)
            total = total + self.ddr_alpha * parts["ddr"]
        if out.aux_loss is not None:
            parts["aux"] = out.aux_loss.float()
            total = total + parts["aux"]
        return total, {k: v.detach() for k, v in parts.items()}
