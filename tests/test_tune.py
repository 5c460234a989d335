"""stbench tune: every model gets the same trials, selection reads the validation split only, the final runs keep
the trials and the choice, and the leaderboard says how each row was tuned."""

from __future__ import annotations

import json

import pytest

from stbench.errors import UserError
from stbench.tune import Range, parse_space, setting_label, settings


def test_space_and_settings():
    space = parse_space(["lr=1e-3,3e-3", "batch_size=4,8"])
    assert space == {"lr": [1e-3, 3e-3], "batch_size": [4, 8]}
    grid = settings(space, None)
    assert grid == [{"lr": 1e-3, "batch_size": 4}, {"lr": 1e-3, "batch_size": 8},
                    {"lr": 3e-3, "batch_size": 4}, {"lr": 3e-3, "batch_size": 8}]
    assert setting_label(grid[1]) == "lr=0.001,batch_size=8"
    # a fixed random search: the same K settings every time (so every model gets the same ones)
    rnd = parse_space(["lr=1e-4:1e-2"])
    assert isinstance(rnd["lr"], Range) and rnd["lr"].log
    a, b = settings(rnd, 5), settings(rnd, 5)
    assert a == b and len(a) == 5 and all(1e-4 <= s["lr"] <= 1e-2 for s in a)
    for bad in (["lr"], ["lr="], ["lr=1:x"], ["lr=3:1"], []):
        with pytest.raises(UserError):
            parse_space(bad)
    with pytest.raises(UserError, match="--trials"):
        settings(rnd, None)


def test_tune_selects_on_validation_and_records_the_trials(tmp_path, monkeypatch):
    from stbench import train as T
    from stbench.cli import main
    from stbench.report import build_report

    calls = []
    real_test = T.test

    def spy(model, dataset, cfg, *a, **kw):
        calls.append(cfg["lr"])
        return real_test(model, dataset, cfg, *a, **kw)

    monkeypatch.setattr(T, "test", spy)
    rc = main(["tune", "--models", "convlstm", "--preset", "smoke", "--grid", "lr=1e-4,3e-3", "--out", str(tmp_path),
               "--no-profile", "--no-weights", "--test-size", "4"])
    assert rc == 0
    trials = []
    for lr in ("0.0001", "0.003"):
        path = tmp_path / "tuning/mmnist/smoke" / f"lr={lr}" / "records/mmnist/smoke/convlstm__seed0.json"
        rec = json.loads(path.read_text())
        assert rec["kind"] == "trial" and rec["status"] == "completed" and not rec["metrics"]
        trials.append(rec["val"]["metrics"]["mse"])
    final = json.loads((tmp_path / "records/mmnist/smoke/convlstm__seed0.json").read_text())
    tuning = final["config"]["tuning"]
    assert [t["val_mse"] for t in tuning["trials"]] == trials
    best_lr = [1e-4, 3e-3][trials.index(min(trials))]  # the argmin of the validation MSEs, by hand
    assert tuning["chosen"] == {"lr": best_lr} and final["config"]["lr"] == best_lr
    assert calls == [best_lr]  # the test split was evaluated once: by the final run, never by a trial
    res = build_report(tmp_path, tmp_path / "out", formats=["md"], plots=False)
    row = res.leaderboards["mmnist", "smoke"].set_index("model").loc["convlstm"]
    assert row["tuning"] == "tuned on val, 2 trials"
    # resumable: a second call finds every trial and the final run completed and trains nothing
    calls.clear()
    assert main(["tune", "--models", "convlstm", "--preset", "smoke", "--grid", "lr=1e-4,3e-3", "--out",
                 str(tmp_path), "--no-profile", "--no-weights", "--test-size", "4"]) == 0
    assert calls == []
