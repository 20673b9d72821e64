"""Scoring Socratic students with one rule for all four: the final answer's flexible match.

The iterative student's final answer is its last sub-answer, a sentence (``Natalia sold 48+24 = 72
clips``); SCoTD's strict rule (text after ``So the answer is:``) cannot read it, so every student
here -- answer-only, CoT, unified, iterative -- is scored by the task's flexible reading (numbers
as numbers: the last number of the sentence; yes / no found in it).  Strict matches of the
marker-writing students stay in their records.

Bad output is counted per category (:func:`categories`), never dropped: an iterative trace that
did not end, a sub-answer with no number on a numeric task, a unified generation whose steps do
not parse.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

from .. import answers
from ..tasks import Example, TaskSpec
from .formats import parse_unified
from .loop import Trace


def score_trace(spec: TaskSpec, ex: Example, trace: Trace) -> dict:
    final = trace.final
    extraction = spec.extract(final, ex) if final is not None else answers.Extraction(None, None, False)
    no_number = (sum(answers.last_number(a) is None for _, a in trace.pairs)
                 if spec.answer_type == answers.NUMBER else 0)
    return {"id": str(ex.id), "gold": ex.label, "status": trace.status, "final": final,
            "answer": extraction.flexible,
            "correct": answers.flexible_match(extraction, ex.label, spec.answer_type) if final is not None else False,
            "n_steps": len(trace.pairs), "qa_no_number": no_number, "pairs": [list(p) for p in trace.pairs],
            "steps": trace.steps}


def score_generated(record: dict, unified: bool) -> dict:
    """A record of :func:`scotd_kit.evaluation.evaluate` (greedy) in this module's shape."""
    text = record["texts"][0]
    out = {"id": record["id"], "gold": record["gold"], "text": text, "finish_reason": record["finish_reasons"][0],
           "answer": record["vote_flexible"], "correct": bool(record["correct_flexible"]),
           "correct_strict": bool(record["correct_strict"])}
    if unified:
        pairs, _, ok = parse_unified(text)
        out.update(n_steps=len(pairs), pairs=[list(p) for p in pairs], well_formed=ok)
    return out


def categories(records: Sequence[dict]) -> dict:
    """Counts of every kind of bad output (zero counts included, so a table shows them)."""
    c = Counter()
    for r in records:
        if "status" in r:                       # iterative
            c[r["status"]] += 1
            c["qa_no_number_steps"] += r["qa_no_number"]
        if r.get("finish_reason") == "length":
            c["length"] += 1
        if "well_formed" in r:
            c["unified_malformed"] += not r["well_formed"]
        c["no_answer"] += r.get("answer") is None
    return dict(c)


def summary(records: Sequence[dict], seed: int = 0) -> dict:
    from ..evaluation import bootstrap_ci

    correct = [bool(r["correct"]) for r in records]
    n = len(correct)
    lo, hi = bootstrap_ci(correct, seed=seed)
    return {"n": n, "accuracy": sum(correct) / n if n else math.nan, "ci95": [lo, hi],
            "categories": categories(records)}
