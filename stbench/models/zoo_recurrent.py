"""Named recurrent models: ConvLSTM, PredRNN and PredRNN.V2 with their Moving MNIST configs
(patch 4, 4 x 128 hidden, filter 5), plus tiny variants for fast tests. Their published training
schedules are in :data:`stbench.models.sampling.DEFAULT_SCHEDULES`. ``create_model("convlstm@simvp")``
runs the same temporal module over the SimVP encoder/decoder.
"""

from __future__ import annotations

from typing import Any

from stbench.models.base import STModel
from stbench.models.zoo import _named
from stbench.registry import MODELS

RNN = dict(patch_size=4, num_hidden=(128, 128, 128, 128), filter_size=5)
RNN_TINY = dict(patch_size=4, num_hidden=(8, 8), filter_size=3)


@MODELS.register(family="recurrent", paper="ConvLSTM (NeurIPS 2015), ConvLSTM-S of OpenSTL")
def convlstm(**kw: Any) -> STModel:
    return _named("convlstm", "patch", "convlstm", RNN, kw)


@MODELS.register(family="recurrent", paper="PredRNN (NeurIPS 2017)")
def predrnn(**kw: Any) -> STModel:
    return _named("predrnn", "patch", "predrnn", RNN, kw)


@MODELS.register(family="recurrent", paper="PredRNN.V2 (TPAMI 2022)")
def predrnn_v2(**kw: Any) -> STModel:
    return _named("predrnn_v2", "patch", "predrnn_v2", dict(RNN, decouple_beta=0.1), kw)


@MODELS.register(family="recurrent", tiny=True)
def convlstm_tiny(**kw: Any) -> STModel:
    return _named("convlstm_tiny", "patch", "convlstm", RNN_TINY, kw)


@MODELS.register(family="recurrent", tiny=True)
def predrnn_tiny(**kw: Any) -> STModel:
    return _named("predrnn_tiny", "patch", "predrnn", RNN_TINY, kw)


@MODELS.register(family="recurrent", tiny=True)
def predrnn_v2_tiny(**kw: Any) -> STModel:
    return _named("predrnn_v2_tiny", "patch", "predrnn_v2", dict(RNN_TINY, decouple_beta=0.1), kw)
