"""Build hook, nothing else (the project is described in pyproject.toml).

The recipes live at the top level in ``baselines/*.toml``, the one copy in the repository. A built
package carries them as ``stbench/_baselines/*.toml``: every ``*.toml`` in ``baselines/`` is copied
at build time, so a new dataset's recipe file needs no change here. An editable install reads
``baselines/`` in place. ``stbench.recipes.baselines_dir`` says which copy is used.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPyWithRecipes(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        dst = Path(self.build_lib) / "stbench" / "_baselines"
        self.mkpath(str(dst))
        for src in sorted((ROOT / "baselines").glob("*.toml")):
            self.copy_file(str(src), str(dst / src.name))


setup(cmdclass={"build_py": BuildPyWithRecipes})
