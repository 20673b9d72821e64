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
from pathlib import Path

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
