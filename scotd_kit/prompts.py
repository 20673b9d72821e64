"""Prompt formats shared by teachers, students and evaluation (SCoTD, PAPERS.md section 1)."""
from __future__ import annotations

from typing import Iterable

from .answers import ANSWER_MARKER


def student_input(question: str) -> str:
    """The student's input: ``Q: {x}\\nA: `` with no in-context demonstrations."""
    return f"Q: {question}\nA: "


def target(rationale: str, label: str) -> str:
    """The student's target and the teacher's completion format: ``{rationale} So the answer is: {y}\\n\\n``."""
    return f"{rationale.strip()}{ANSWER_MARKER}{label}\n\n" if rationale.strip() else f"{ANSWER_MARKER.lstrip()}{label}\n\n"


def few_shot_block(demos: Iterable[tuple[str, str, str]]) -> str:
    """The demos of SCoTD's teacher prompt, ``Q: {x}\\nA: {rationale} So the answer is: {y}\\n\\n`` each:
    the prefix every instance's prompt shares (generation prefills it once)."""
    return "".join(student_input(x) + target(r, y) for x, r, y in demos)


def few_shot_prompt(demos: Iterable[tuple[str, str, str]], question: str) -> str:
    """SCoTD's teacher prompt: the few-shot block, then ``Q: {x}\\nA: ``."""
    return few_shot_block(demos) + student_input(question)
