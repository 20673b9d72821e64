"""Reference points for Socratic CoT: only what PAPERS.md section 2 verifies, each with its attribution.

No cell of the paper's own tables has been read from the paper; the two below are quoted by a third
party, and the GPT-3 points are computed from OpenAI's released GSM8K solutions.  They are shown beside
the kit's numbers as attributed reference points, never as a cell's ``paper`` number: a quoted number
depends on its training data (the rationale source and teacher) and on the Socratic variant, and a
kit cell is shown next to one only when all of these match what the quote states.
"""
from __future__ import annotations

from dataclasses import dataclass

QUOTED_BY = "as quoted by Wang, Li & Lu (ACL 2024, arXiv 2407.18248), Table 3"


@dataclass(frozen=True)
class ReferencePoint:
    task: str                 # the kit task of the paper's column
    student: str
    kind: str                 # "cot" | "socratic"
    source: str               # what the student was trained on: "gold" (human rationales) | "teacher"
    teacher: str | None       # the teacher of the rationales / decompositions, as the quote names it
    variant: str | None       # Socratic: "unified" | "iterative"; None when the quote does not say
    accuracy: float           # percent
    attribution: str


QUOTED = (
    ReferencePoint("gsm8k_socratic", "gpt2-large", "cot", "gold", None, None, 14.1,
                   f"CoT on human (GSM8K gold) rationales, GSM8K test, {QUOTED_BY}"),
    ReferencePoint("gsm8k_socratic", "gpt2-large", "socratic", "teacher", "GPT-3 175B", None, 21.1,
                   f"Socratic CoT, GPT-3 175B teacher, variant not stated, GSM8K test, {QUOTED_BY}"),
)

GPT3_FINETUNED_GSM8K = {
    "GPT-3 6B fine-tuned": (21.7, "286/1319 GSM8K test, computed from OpenAI's example_model_solutions.jsonl "
                                  "(not the Socratic paper's table)"),
    "GPT-3 175B fine-tuned": (34.7, "458/1319 GSM8K test, computed from OpenAI's example_model_solutions.jsonl "
                                    "(not the Socratic paper's table)"),
}


def reference_point(task: str, student: str, kind: str, source: str | None = None,
                    teacher: str | None = None) -> ReferencePoint | None:
    """The quoted number a kit cell may be shown beside, or ``None``.

    ``kind`` is the kit's student (``answer_only | cot | unified | iterative``), ``source`` its
    training data (``gold`` | ``teacher``; the CoT baseline trains on gold rationales) and ``teacher``
    the kit's teacher spec.  A quote matches only when its source, teacher and variant are the cell's:
    a quote whose variant is not stated matches neither variant."""
    if kind == "cot":
        want = ("cot", source or "gold", None, None)
    elif kind in ("unified", "iterative"):
        want = ("socratic", source, teacher if source == "teacher" else None, kind)
    else:
        return None
    for p in QUOTED:
        if (p.task, p.student) == (task, student) and (p.kind, p.source, p.teacher, p.variant) == want:
            return p
    return None


def reference_columns(task: str, student: str, kind: str, source: str | None = None,
                      teacher: str | None = None) -> dict:
    """``{"reference", "reference_source"}`` for a notebook table row (``None`` and ``""`` without one)."""
    p = reference_point(task, student, kind, source, teacher)
    return {"reference": p.accuracy if p else None, "reference_source": p.attribution if p else ""}
