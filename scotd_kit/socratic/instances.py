"""Training instances ``{"id", "input", "targets"}`` for the four Socratic CoT students.

* ``answer_only``: ``Q: {x}\\nA: `` -> ``So the answer is: {y}`` (the baseline);
* ``cot``: -> ``{gold rationale} So the answer is: {y}`` (GSM8K's solution, the stand-in's sub-answers
  joined, StrategyQA's facts joined);
* ``unified``: -> every pair, then the answer sentence (:func:`formats.unified_target`);
* ``qg`` / ``qa``: one instance per step of each decomposition (and a final ``<end>`` for QG).

Every builder takes :class:`~scotd_kit.socratic.decompositions.Decomposition` lists or examples;
the formats live in :mod:`scotd_kit.socratic.formats`.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

from ..curation import label_only_instances
from ..io import DataError
from ..prompts import student_input, target
from ..tasks import Example
from . import formats
from .decompositions import Decomposition

KINDS = ("answer_only", "cot", "unified", "iterative")


def gold_rationale(ex: Example) -> str:
    for key in ("rationale", "solution"):
        if ex.meta.get(key):
            return str(ex.meta[key])
    if ex.meta.get("facts"):
        return " ".join(ex.meta["facts"])
    raise DataError(f"example {ex.id!r}: no gold rationale (meta 'rationale', 'solution' or 'facts')")


def answer_only(examples: Sequence[Example]) -> list[dict]:
    return label_only_instances(examples)


def cot(examples: Sequence[Example]) -> list[dict]:
    return [{"id": str(ex.id), "input": student_input(ex.question), "targets": [target(gold_rationale(ex), ex.label)]}
            for ex in examples]


def unified(decompositions: Sequence[Decomposition]) -> list[dict]:
    """One instance per example; several decompositions of it become several targets."""
    targets: dict[str, list[str]] = defaultdict(list)
    first: dict[str, Example] = {}
    for d in decompositions:
        first.setdefault(str(d.example.id), d.example)
        t = formats.unified_target(d.pairs, d.example.label)
        if t not in targets[str(d.example.id)]:
            targets[str(d.example.id)].append(t)
    return [{"id": i, "input": student_input(ex.question), "targets": targets[i]} for i, ex in first.items()]


def qg(decompositions: Sequence[Decomposition]) -> list[dict]:
    out = []
    for k, d in enumerate(decompositions):
        ex, pairs = d.example, list(d.pairs)
        for i in range(len(pairs) + 1):
            nxt = pairs[i][0] if i < len(pairs) else None
            out.append({"id": f"{ex.id}/d{k}/qg{i}", "input": formats.qg_input(ex.question, pairs[:i]),
                        "targets": [formats.qg_target(nxt)]})
    return out


def qa(decompositions: Sequence[Decomposition]) -> list[dict]:
    out = []
    for k, d in enumerate(decompositions):
        ex, pairs = d.example, list(d.pairs)
        for i, (q, a) in enumerate(pairs):
            out.append({"id": f"{ex.id}/d{k}/qa{i}", "input": formats.qa_input(ex.question, pairs[:i], q),
                        "targets": [formats.qa_target(a)]})
    return out
