"""Few-shot CoT exemplars ``(x, rationale, y)``: each task's own live with its spec (``TaskSpec.exemplars``,
in the task's module, with their provenance); this is the one lookup the pipeline calls."""
from __future__ import annotations

from .tasks import get_task, list_tasks

Exemplar = tuple[str, str, str]


def get_exemplars(task) -> list[Exemplar]:
    """The few-shot CoT exemplars of a task (a name or a TaskSpec): ``[(x, rationale, y), ...]``."""
    spec = get_task(task)
    demos = spec.few_shot_exemplars()
    if not demos:
        known = [t for t in list_tasks() if get_task(t).exemplars]
        raise KeyError(f"no built-in exemplars for task {spec.name!r} (tasks with exemplars: {', '.join(known)}); "
                       f"pass demos=[(x, rationale, y), ...] to sample_corpus")
    return demos


def exemplars_hash(demos) -> str:
    """A short fingerprint of an exemplar list (part of every corpus key that used it)."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps([list(d) for d in demos], ensure_ascii=False).encode()).hexdigest()[:16]
