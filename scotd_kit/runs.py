"""How a run is keyed: a fingerprint of a plain spec that holds content, never a path.

A run directory is named by ``fingerprint(kind, spec)`` and holds that spec as ``spec.json`` (the key's
source, readable). The spec names every input the run reads by its content: the examples it is scored on
(:func:`examples_hash`, golds included), the instances a student trains on (:func:`instances_hash`), and a
model made by another run by its place in the run store (:func:`model_ref`), so moving the runs directory
moves the runs, and editing a data file makes new ones.
"""
from __future__ import annotations

import hashlib
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .io import write_json

SPEC_FILE = "spec.json"


def fingerprint(kind: str, spec: dict) -> str:
    """16 hex digits of the spec (key order does not matter)."""
    blob = json.dumps({"kind": kind, **spec}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def examples_hash(examples) -> str:
    """The examples' ids, questions and golds, in order: a changed gold or question is another run."""
    h = hashlib.sha256()
    for e in examples:
        h.update(json.dumps([str(e.id), e.question, e.label], ensure_ascii=False).encode() + b"\n")
    return h.hexdigest()[:16]


def instances_hash(instances) -> str:
    """Training instances' ids, inputs and targets, in order."""
    h = hashlib.sha256()
    for inst in instances:
        h.update(json.dumps([inst["id"], inst["input"], inst["targets"]], ensure_ascii=False).encode())
    return h.hexdigest()[:16]


def model_ref(model: str | Path, root: str | Path) -> str:
    """What a run that uses ``model`` is keyed by: a model inside the run store ``root`` by its place there
    (``run:students/<key>/final``), any other name or directory by :func:`scotd_kit.models.model_key`."""
    from .models import model_key

    try:
        inside = Path(model).resolve().relative_to(Path(root).resolve())
    except (ValueError, OSError):
        return model_key(model)
    return f"run:{inside.as_posix()}"


def write_spec(run_dir: str | Path, kind: str, spec: dict) -> None:
    """``spec.json`` in ``run_dir``: the kind and the spec its name is the fingerprint of."""
    plain = json.loads(json.dumps(spec, sort_keys=True, default=str))
    write_json(Path(run_dir) / SPEC_FILE, {"kind": kind, "fingerprint": fingerprint(kind, spec), "spec": plain})


# --- a finished run is sealed, and checked before it is served ---------------------------------------

CHECKSUMS = "checksums.json"
_verified: dict[str, int] = {}      # run dir -> mtime of its seal, checked once per process


class CorruptRun(RuntimeError):
    """A run directory whose files do not match its seal (cut, edited, or missing); the message names them."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(run_dir: Path, names) -> list[Path]:
    out = []
    for name in names:
        p = run_dir / name
        out += sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    return out


def seal(run_dir: str | Path, *names: str) -> None:
    """Record the size and sha256 of each named file (every file under a named folder) in ``checksums.json``:
    the run is finished, and :func:`verify` will serve it only as it is now."""
    run_dir = Path(run_dir)
    sums = {p.relative_to(run_dir).as_posix(): [p.stat().st_size, _sha256(p)] for p in _files(run_dir, names)}
    write_json(run_dir / CHECKSUMS, sums)
    _verified.pop(str(run_dir), None)


def sealed(run_dir: str | Path) -> bool:
    return (Path(run_dir) / CHECKSUMS).exists()


def verify(run_dir: str | Path) -> None:
    """Raise :class:`CorruptRun` naming each file that is missing, cut or changed since :func:`seal`."""
    run_dir = Path(run_dir)
    seal_path = run_dir / CHECKSUMS
    try:
        stamp = seal_path.stat().st_mtime_ns
        if _verified.get(str(run_dir)) == stamp:
            return
        sums = json.loads(seal_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CorruptRun(f"{seal_path}: unreadable seal ({type(e).__name__}: {e})") from e
    bad = []
    for name, (size, digest) in sums.items():
        p = run_dir / name
        if not p.is_file():
            bad.append(f"{p}: missing")
        elif p.stat().st_size != size:
            bad.append(f"{p}: {p.stat().st_size} bytes, sealed with {size}")
        elif _sha256(p) != digest:
            bad.append(f"{p}: content changed since the run finished")
    if bad:
        raise CorruptRun("; ".join(bad))
    _verified[str(run_dir)] = stamp


def set_aside(run_dir: str | Path, why: str) -> Path:
    """Move a run that cannot be served to ``<dir>.corrupt-<n>`` (kept for a look, never read again) and warn
    naming it and why; the caller then makes the run again in its place."""
    import warnings

    run_dir = Path(run_dir)
    n = 1
    while (aside := run_dir.with_name(f"{run_dir.name}.corrupt-{n}")).exists():
        n += 1
    run_dir.rename(aside)
    _verified.pop(str(run_dir), None)
    warnings.warn(f"{run_dir} is set aside as {aside.name} and made again: {why}", stacklevel=3)
    return aside


def checked(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a finished run that may be served: sealed and intact. A corrupt one is set
    aside (:func:`set_aside`) and False returned; an unsealed one (unfinished, or stored before runs were
    sealed) is left for the caller to judge."""
    if not sealed(run_dir):
        return False
    try:
        verify(run_dir)
    except CorruptRun as e:
        set_aside(run_dir, str(e))
        return False
    return True


# --- one writer per run directory --------------------------------------------------------------------

LOCK_FILE = ".lock"


@contextmanager
def writer_lock(run_dir: str | Path, *, enabled: bool = True) -> Iterator[None]:
    """Hold ``run_dir/.lock`` while a run writes there: a second process making the same run waits for the
    first (saying so on stderr), then finds its result instead of writing over it. The lock is the OS's
    (filelock): a writer that dies releases it. ``enabled=False`` (other ranks of one distributed run) is a
    no-op."""
    if not enabled:
        yield
        return
    from filelock import FileLock, Timeout

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run_dir / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"{run_dir} is being written by another process; waiting for it to finish "
              f"(lock file {run_dir / LOCK_FILE})", file=sys.stderr, flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
