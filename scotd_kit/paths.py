"""Where the kit reads data from and caches things to.

Both can be moved with environment variables so that a cluster user can point the kit at
scratch space, and the tests can point it at a temporary directory.
"""
from __future__ import annotations

import os
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Root of the papers' datasets in their original published formats.

    ``SCOTD_DATA_DIR`` wins; otherwise ``../shared/data`` beside the checkout (the layout of
    ``shared/data/SOURCES.md``), which may not exist on a user's machine: loaders then fall
    back to the hub.
    """
    env = os.environ.get("SCOTD_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return _REPO_ROOT.parent / "shared" / "data"


def cache_root() -> Path:
    """Where converted models, corpora and run results live (``SCOTD_CACHE_DIR``); not created."""
    env = os.environ.get("SCOTD_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "scotd_kit"


def cache_dir() -> Path:
    """:func:`cache_root`, created."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    return root


def runs_root() -> Path:
    """Where runs are stored, one folder per profile: ``SCOTD_RUNS_DIR`` (a batch run or the tests keep their
    runs apart from the user's cache) or the cache's ``runs``; not created."""
    env = os.environ.get("SCOTD_RUNS_DIR")
    return Path(env).expanduser() if env else cache_root() / "runs"


# a wheel carries the notebooks inside the package (setup.py copies them in); a checkout has them beside it
PACKAGE_NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"
CHECKOUT_NOTEBOOKS = _REPO_ROOT / "notebooks"
NOTEBOOKS_DIR = next((d for d in (PACKAGE_NOTEBOOKS, CHECKOUT_NOTEBOOKS) if any(d.glob("*.ipynb"))),
                     CHECKOUT_NOTEBOOKS)


class NotebooksNotFoundError(FileNotFoundError):
    """No notebook where the kit looked; the message names every place."""


def find_notebooks_dir(notebooks_dir: str | Path | None = None) -> Path:
    """``notebooks_dir`` if given, else the notebooks the package carries, else a checkout's; an error
    naming every place looked at when none holds a notebook."""
    places = [Path(notebooks_dir)] if notebooks_dir else [PACKAGE_NOTEBOOKS, CHECKOUT_NOTEBOOKS]
    for d in places:
        if any(d.glob("*.ipynb")):
            return d
    raise NotebooksNotFoundError(
        f"no notebooks (*.ipynb) in {' or '.join(str(d) for d in places)}; "
        + ("name a directory that holds the kit's notebooks" if notebooks_dir else
           "this installation of scotd-kit lacks its notebooks: reinstall it from its wheel or a checkout "
           "(pip install --force-reinstall scotd-kit), or pass --notebooks-dir DIR"))
