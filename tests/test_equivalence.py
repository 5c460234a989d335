"""The function-equivalence evidence the report shows (stbench/interop/equivalence.json) still says what the code
does: every listed fixture exists and was measured within the bar, and re-measuring gives the recorded value.

The file is written only by ``python -m stbench.interop.equivalence``; re-run it after a converter or model change.
A fast sample of fixtures is re-measured on every run, all of them under ``-m slow``.
"""

from __future__ import annotations

import math

import pytest

from stbench.interop.equivalence import FIXTURES, REPO_FIXTURES, TOLERANCE, evidence_for, load_measured, measure
from stbench.registry import MODELS

FAST = ("simvp_convnext", "simvp_convmixer", "convlstm", "predrnn_v2", "simvp_swin")


def _same(recorded: float, now: float) -> bool:
    """Equal up to the last bits of fp32 rounding, which differ between CPU kinds (AVX2 / AVX-512) and threads:
    within a factor of 4 of each other, or both below 1e-7."""
    if max(recorded, now) < 1e-7:
        return True
    return recorded > 0 and now > 0 and abs(math.log(now / recorded)) <= math.log(4)


def test_file_lists_every_fixture_measured_within_the_bar():
    data = load_measured()
    assert data["tolerance"] == TOLERANCE and data["written_by"] == "python -m stbench.interop.equivalence"
    assert set(data["fixtures"]) == {f.name for f in FIXTURES}
    for f in FIXTURES:
        assert (REPO_FIXTURES / f.source / f"{f.name}.pt").is_file(), f.name
        assert 0 <= data["fixtures"][f.name] <= TOLERANCE, f.name
        assert all(m in MODELS for m in f.models), f.models


def test_every_published_zoo_model_has_evidence():
    for name in MODELS.names():
        ev = evidence_for(name)
        assert ev and all(e.passed for e in ev), f"{name}: no passing fixture"
    assert evidence_for("tau@patch") == []  # another architecture than the published one: no claim


def _check(name: str) -> None:
    fixture = next(f for f in FIXTURES if f.name == name)
    recorded = load_measured()["fixtures"][name]
    now = measure(fixture)
    assert now <= TOLERANCE
    assert _same(recorded, now), f"{name}: equivalence.json says {recorded:.2g}, measured now {now:.2g}; re-run " \
                                 "python -m stbench.interop.equivalence"


@pytest.mark.parametrize("name", FAST)
def test_recorded_value_is_what_the_code_measures(name):
    _check(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [f.name for f in FIXTURES if f.name not in FAST])
def test_recorded_value_is_what_the_code_measures_all(name):
    _check(name)
