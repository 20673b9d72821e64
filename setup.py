"""The notebooks travel inside the wheel, as ``scotd_kit/notebooks/*.ipynb``: ``scotd-kit reproduce`` on a
pip-installed kit finds them there (a checkout or an editable install reads ``notebooks/`` itself).
Everything else is in pyproject.toml."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"


class BuildWithNotebooks(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "scotd_kit" / "notebooks"
        target.mkdir(parents=True, exist_ok=True)
        for nb in sorted(NOTEBOOKS.glob("*.ipynb")):
            shutil.copyfile(nb, target / nb.name)


setup(cmdclass={"build_py": BuildWithNotebooks})
