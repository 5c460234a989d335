"""Regression tests for CLI bugs, each of which failed before its fix (in-process, no training)."""

from __future__ import annotations

import pytest

from stbench import cli
from stbench.errors import RecipeError


def test_global_debug_flag_survives_the_subcommand():
    """`stbench --debug run ...` used to end with debug off: the subcommand's own --debug default reset it."""
    args = cli.build_parser().parse_args(["--debug", "run", "--models", "tau"])
    assert args.debug is True
    assert cli.build_parser().parse_args(["run", "--models", "tau", "--debug"]).debug is True
    assert cli.build_parser().parse_args(["run", "--models", "tau"]).debug is False
    # and with it, a user error shows its traceback (raises) instead of the one-line message
    with pytest.raises(RecipeError, match="unknown preset 'fast'"):
        cli.main(["--debug", "run", "--models", "tau", "--preset", "fast"])


def test_run_and_profile_share_preset_and_precision_defaults():
    """`run` defaulted to quick / the preset's precision, `profile` to paper / fp32."""
    p = cli.build_parser()
    run = p.parse_args(["run", "--models", "tau"])
    prof = p.parse_args(["profile", "--models", "tau"])
    assert (run.preset, run.precision) == (prof.preset, prof.precision) == (None, None)
    from stbench.runner import RunOptions

    assert RunOptions.from_args(run, ["tau"]).preset == cli.DEFAULT_PRESET == "quick"


def test_bugs_keep_their_traceback(monkeypatch, capsys):
    """main() turned every ValueError / TypeError into a one-line usage error, hiding real bugs."""
    def broken(args):
        raise ValueError("a bug deep inside")

    monkeypatch.setattr(cli, "cmd_list", broken)
    with pytest.raises(ValueError, match="a bug deep inside"):
        cli.main(["list", "models"])
    # a user error is still one line, exit code 2
    assert cli.main(["run", "--models", "tau", "--preset", "fast"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["stbench: error: unknown preset 'fast'; choose one of paper, quick, smoke"]


def test_unknown_extra_metric_is_a_one_line_error(capsys):
    assert cli.main(["run", "--models", "tau", "--metrics", "+ssim_dr2"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown metric 'ssim_dr2'" in err[0] and "ssim_dr1" in err[0]
    assert cli.main(["run", "--models", "tau", "--metrics", "ssim_dr1"]) == cli.EXIT_USAGE
    assert "write +NAME" in capsys.readouterr().err
