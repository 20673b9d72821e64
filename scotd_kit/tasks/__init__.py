"""Task registry: every module in this package that defines ``TASK`` is a task.

Adding a dataset = adding one module with one :class:`TaskSpec`; nothing else changes.
"""
from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from pathlib import Path

from ..io import DataError
from ..paths import data_dir
from .base import Example, FileSplit, HubSplit, TaskSpec

__all__ = ["Example", "FileSplit", "HubSplit", "TaskSpec", "get_task", "list_tasks", "load_split",
           "UnknownTaskError", "UnknownSplitError", "DataError"]


class UnknownTaskError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; this one reads as a sentence
        return self.args[0]


class UnknownSplitError(KeyError):
    def __str__(self) -> str:
        return self.args[0]


@lru_cache(maxsize=1)
def _registry() -> dict[str, TaskSpec]:
    tasks = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for spec in getattr(module, "TASKS", ()) or (getattr(module, "TASK", None),):
            if spec is not None:
                tasks[spec.name] = spec
    return tasks


def list_tasks() -> list[str]:
    return sorted(_registry())


def get_task(name: str | TaskSpec) -> TaskSpec:
    if isinstance(name, TaskSpec):
        return name
    try:
        return _registry()[name]
    except KeyError:
        raise UnknownTaskError(f"unknown task {name!r}; known tasks: {', '.join(list_tasks())}") from None


def _file_path(spec: TaskSpec, split: str, root: Path | None) -> Path:
    return Path(root or data_dir()) / spec.data_subdir / spec.files[split].path


def load_split(task: str | TaskSpec, split: str, *, source: str = "auto", data_dir: str | Path | None = None,
               limit: int | None = None, seed: int = 0) -> list[Example]:
    """Load one split of a task as :class:`Example` objects.

    ``source``: ``"files"`` reads the original published files under ``data_dir`` (default
    :func:`scotd_kit.paths.data_dir`), ``"hub"`` loads the hub copy through ``datasets``,
    ``"auto"`` takes the files when they are there and the hub otherwise.  Generated (demo)
    tasks ignore ``source`` and use ``seed``.  ``limit`` keeps the first ``limit`` examples.
    """
    spec = get_task(task)
    if split not in spec.splits:
        raise UnknownSplitError(f"task {spec.name!r} has no split {split!r}; available: {', '.join(spec.splits)}")
    if source not in ("auto", "files", "hub"):
        raise ValueError(f"source must be 'auto', 'files' or 'hub', not {source!r}")
    if split in spec.generated_splits:
        examples = spec.generate(split, seed)
    else:
        use_files = split in spec.files and (source == "files" or (
            source == "auto" and _file_path(spec, split, data_dir).exists()))
        if use_files and _file_path(spec, split, data_dir).exists():
            examples = _load_files(spec, split, data_dir, limit)
        elif source == "files":
            where = _file_path(spec, split, data_dir) if split in spec.files else None
            raise FileNotFoundError(
                f"task {spec.name!r} split {split!r}: " + (f"{where} does not exist; set SCOTD_DATA_DIR or pass data_dir="
                if where else f"no original file is known (file splits: {', '.join(spec.files) or 'none'})"))
        elif split in spec.hub:
            examples = _load_hub(spec, split, limit)
        else:
            path = _file_path(spec, split, data_dir)
            raise FileNotFoundError(f"task {spec.name!r} split {split!r} is only published as a file, "
                                    f"and {path} does not exist; set SCOTD_DATA_DIR or pass data_dir=")
    return examples[:limit] if limit is not None else examples


def _load_files(spec: TaskSpec, split: str, root, limit) -> list[Example]:
    fs = spec.files[split]
    path = _file_path(spec, split, root)
    out, seen = [], {}
    for lineno, record in fs.reader(path):
        ex = spec.from_file(record, f"{path}:{lineno}")
        if ex.id in seen:   # corpus records and results are keyed by id: a duplicate would merge two questions
            raise DataError(f"{path}:{lineno}: id {ex.id!r} already used on line {seen[ex.id]}")
        seen[ex.id] = lineno
        out.append(ex)
        if limit is not None and len(out) >= limit:
            break
    return out


def _load_hub(spec: TaskSpec, split: str, limit) -> list[Example]:
    import datasets  # heavy; only the hub path needs it

    hs = spec.hub[split]
    try:
        ds = datasets.load_dataset(hs.path, hs.name, split=hs.split)
    except Exception as e:  # offline, missing, renamed: say how to get the data instead
        raise FileNotFoundError(
            f"could not load {spec.name!r} split {split!r} from the hub ({hs.path}, {hs.name}, {hs.split}): "
            f"{type(e).__name__}: {str(e)[:300]}. Offline, put the original files under SCOTD_DATA_DIR "
            f"(see shared/data/SOURCES.md) and use source='files'.") from e
    out = []
    for i, record in enumerate(ds):
        out.append(spec.from_hub(dict(record), f"{hs.path}[{hs.split}] row {i}"))
        if limit is not None and len(out) >= limit:
            break
    return out
