"""A built wheel carries the recipes and runs outside the repository (issue 12).

The wheel is built from a copy of the files a release contains (so the repository gets no build/ or
egg-info litter), installed with ``--no-deps`` on top of the test environment into its own directory,
and its ``stbench`` script runs the smoke preset and the report from a directory outside the repository.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pip(*args: str) -> None:
    r = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_wheel_ships_recipes_and_runs_outside_the_repo(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for d in ("stbench", "baselines"):
        shutil.copytree(ROOT / d, src / d, ignore=shutil.ignore_patterns("__pycache__", "_baselines"))
    _pip("wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src))
    (wheel,) = (tmp_path / "dist").glob("stbench-*.whl")

    # every recipe file of baselines/ is in the wheel, byte for byte
    expected = sorted(p.name for p in (ROOT / "baselines").glob("*.toml"))
    assert "mmnist.toml" in expected
    with zipfile.ZipFile(wheel) as z:
        shipped = sorted(Path(n).name for n in z.namelist() if n.startswith("stbench/_baselines/"))
        assert shipped == expected
        for name in expected:
            assert z.read(f"stbench/_baselines/{name}") == (ROOT / "baselines" / name).read_bytes()

    site = tmp_path / "site"
    _pip("install", "-q", "--no-deps", "--no-index", "--target", str(site), str(wheel))
    work = tmp_path / "elsewhere"  # outside the repository, nothing of it on the path
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("STBENCH_BASELINES", "PYTHONPATH")}
    env.update(PYTHONPATH=str(site), OMP_NUM_THREADS="1")
    stbench = [str(site / "bin" / "stbench")]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*stbench, *args], cwd=work, env=env, capture_output=True, text=True)

    r = subprocess.run([sys.executable, "-c", "import stbench.recipes as r; print(r.__file__, r.baselines_dir())"],
                       cwd=work, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    mod, recipes = r.stdout.split()
    assert Path(mod).is_relative_to(site) and Path(recipes) == site / "stbench" / "_baselines"

    r = run("run", "--models", "tau", "--preset", "smoke", "--no-profile", "--epochs", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    rec = json.loads((work / "results/records/mmnist/smoke/tau__seed0.json").read_text())
    assert rec["status"] == "completed" and rec["config"]["batch_size"] == 4  # the smoke recipe was found
    r = run("report", "--format", "md")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (work / "results/report/leaderboard_mmnist_smoke.md").is_file()
