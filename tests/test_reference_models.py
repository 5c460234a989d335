"""benchmarks/reference_models.py, the yardstick of benchmarks/reference_step.py (issue 28): a ratio
"stbench step / reference step" only means something if both build the same published architecture. The
independent check available without running either: the same number of parameters at the published Moving MNIST
size (those of stbench are pinned to OpenSTL's own counts in test_models / test_metavp)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import stbench

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "reference_models.py"
_spec = importlib.util.spec_from_file_location("reference_models", _PATH)
reference_models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference_models)


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", reference_models.NAMES)
def test_reference_has_the_published_parameter_count(name: str) -> None:
    assert _count(reference_models.build(name)) == _count(stbench.create_model(name))


def test_unknown_model_is_refused() -> None:
    with pytest.raises(KeyError, match="no reference implementation"):
        reference_models.build("mmvp")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "e3dlstm" else n
                                  for n in reference_models.NAMES])  # E3D-LSTM: ~20 s on 2 cores
def test_reference_runs_its_published_size(name: str) -> None:
    """Each reference's training loss at the published size (batch 1): the yardstick runs, and to a finite loss."""
    torch.manual_seed(0)
    x, y = torch.rand(2, 1, 10, 1, 64, 64)
    mask = torch.zeros(1, 18)  # recurrent ones: every step after T_in fed its own prediction
    with torch.no_grad():
        loss = reference_models.build(name)(x, y, mask)
    assert loss.ndim == 0 and torch.isfinite(loss) and loss > 0


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, _PATH.with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["convlstm", "mim", "predrnnpp"])
def test_concat_vs_split_times_the_older_form_of_the_same_function(name: str) -> None:
    """benchmarks/concat_vs_split.py rebuilds the cells' older form (one convolution over the concatenated inputs,
    under the older key): it must be that form (the keys) and the same function (the forecast)."""
    import copy

    from conftest import smoke_model

    concat_vs_split = _load("concat_vs_split")
    torch.manual_seed(0)
    new = smoke_model(name, in_shape=(4, 1, 16, 16), t_out=3).eval()
    old = copy.deepcopy(new)
    assert concat_vs_split.concat_form(old) >= 1
    gone, added = set(new.state_dict()) - set(old.state_dict()), set(old.state_dict()) - set(new.state_dict())
    assert added and all(k.endswith(("conv_xh.weight", "conv_xz.weight")) for k in added)
    assert len(gone) == 2 * len(added)  # each fused weight replaces two per-source ones
    x = torch.rand(2, 4, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(old(x).pred, new(x).pred, rtol=1e-5, atol=1e-5)


def test_conv_and_rest_counts_the_convolutions_it_was_given() -> None:
    """reference_step.py --profile splits a step into convolutions and the rest: three convolutions forward and
    backward are three calls each, and a step with only element-wise work has no convolution time."""
    common = _load("_common")
    conv = torch.nn.Conv2d(4, 4, 3, padding=1)
    x = torch.rand(2, 4, 8, 8, requires_grad=True)

    def three_convs() -> None:
        conv(conv(conv(x))).sum().backward()

    split = common.conv_and_rest(three_convs, steps=2)
    assert (split["conv_fwd_calls"], split["conv_bwd_calls"]) == (3, 3)
    assert split["conv_ms"] > 0 and split["other_ms"] > 0
    plain = common.conv_and_rest(lambda: torch.tanh(x).sum().backward())
    assert (plain["conv_ms"], plain["conv_fwd_calls"]) == (0, 0) and plain["other_ms"] > 0
