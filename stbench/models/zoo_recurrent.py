"""Named recurrent models: ConvLSTM, PredRNN and PredRNN.V2 with their Moving MNIST configs
(patch 4, 4 x 128 hidden, filter 5), their recipe defaults per preset and their published
scheduled-sampling ``schedule`` on the registry entry (used when a recipe has no ``sampling``); the
``smoke`` preset carries the tiny test sizes. ``create_model("convlstm@simvp")`` runs the same temporal
module over the SimVP encoder/decoder.
"""

from __future__ import annotations

from typing import Any

from stbench.models.zoo import named_model
from stbench.registry import MODELS

RNN = dict(patch_size=4, num_hidden=(128, 128, 128, 128), filter_size=5)

# published schedules (PredRNN / PredRNN-V2 papers' code; kinds in stbench.models.sampling)
LINEAR = {"kind": "linear", "start": 1.0, "rate": 2e-5, "stop_iter": 50_000}
REVERSE = {"kind": "reverse", "r_sampling_step_1": 25_000, "r_sampling_step_2": 50_000, "r_exp_alpha": 5_000.0}
# the same two as the seed models' paper presets write them (records carry these exact tables)
PAPER_LINEAR = {k: v for k, v in LINEAR.items() if k != "start"}  # start 1.0 is the schedule's default
PAPER_REVERSE = {**REVERSE, "r_exp_alpha": 5000}
QUICK_RNN = {"num_hidden": [32, 32], "filter_size": 5}
SMOKE_RNN = {"num_hidden": [8, 8], "filter_size": 3}
SMOKE_LINEAR = {"kind": "linear", "rate": 0.1, "stop_iter": 10}
# quick: the published schedules laid over the run's budget (stbench.budget.resolve_sampling): eta falls to 0
# after two thirds of the optimizer steps (PredRNN.V2: r_eta rises over the second third), whatever the budget.
# The fractions are written to 4 decimals, as every committed quick record carries them (one value for every
# dataset: the TOMLs no longer restate them)
QUICK_LINEAR = {"kind": "linear", "relative": True, "stop_iter": 0.6667}
QUICK_REVERSE = {"kind": "reverse", "relative": True, "r_sampling_step_1": 0.3333, "r_sampling_step_2": 0.6667,
                 "r_exp_alpha": 0.0667}
# OpenSTL's configs/mmnist sizes, written into the paper preset of the PredRNN-family zoo (predrnnpp.py, mim.py,
# e3dlstm.py)
PAPER_RNN_MODEL = {"num_hidden": [128, 128, 128, 128], "filter_size": 5, "patch_size": 4}


def rnn_presets(quick_sampling: dict[str, Any] = QUICK_LINEAR, *, paper_sampling: dict[str, Any] = LINEAR,
                paper_lr: float = 5e-4, paper_model: dict[str, Any] | None = None,
                quick_model: dict[str, Any] = QUICK_RNN,
                smoke_sampling: dict[str, Any] = SMOKE_LINEAR) -> dict[str, dict[str, Any]]:
    """The presets of a recurrent model. paper: published lr and schedule (and sizes, when given); quick: 2 x 32
    hidden, the schedule relative to the run's steps (the amount of training is the dataset preset's budget, the
    same for every model); smoke: 2 x 8 hidden."""
    paper = {"lr": paper_lr, "sampling": paper_sampling, **({"model": paper_model} if paper_model else {})}
    return {"paper": paper,
            "quick": {"lr": 2e-3, "sampling": quick_sampling, "model": quick_model},
            "smoke": {"lr": 1e-3, "sampling": smoke_sampling, "model": SMOKE_RNN}}


CONVLSTM_PRESETS = rnn_presets(paper_sampling=PAPER_LINEAR)
PREDRNN_PRESETS = rnn_presets(paper_sampling=PAPER_LINEAR)
PREDRNN_V2_PRESETS = rnn_presets(
    QUICK_REVERSE,
    smoke_sampling={"kind": "reverse", "r_sampling_step_1": 5, "r_sampling_step_2": 10, "r_exp_alpha": 5},
    paper_sampling=PAPER_REVERSE)


convlstm = named_model("convlstm", "patch", "convlstm", RNN)
MODELS.register(family="recurrent", paper="ConvLSTM (NeurIPS 2015), ConvLSTM-S of OpenSTL",
                presets=CONVLSTM_PRESETS, schedule=LINEAR)(convlstm)


predrnn = named_model("predrnn", "patch", "predrnn", RNN)
MODELS.register(family="recurrent", paper="PredRNN (NeurIPS 2017)", presets=PREDRNN_PRESETS, schedule=LINEAR)(predrnn)


predrnn_v2 = named_model("predrnn_v2", "patch", "predrnn_v2", dict(RNN, decouple_beta=0.1))
MODELS.register(family="recurrent", paper="PredRNN.V2 (TPAMI 2022)", presets=PREDRNN_V2_PRESETS,
                schedule=REVERSE)(predrnn_v2)

