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


def cache_dir() -> Path:
    """Root of converted models, corpora and run results (``SCOTD_CACHE_DIR``)."""
    env = os.environ.get("SCOTD_CACHE_DIR")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "scotd_kit"
    root.mkdir(parents=True, exist_ok=True)
    return root
