"""Every Socratic CoT text format, in one place (the kit's own reading; the paper's are unpublished).

Markers are plain text, not added special tokens: ``generation`` decodes with
``skip_special_tokens=True``, which would silently erase special tokens, and plain-text markers need
no embedding resizing.  ``tests/test_socratic.py`` checks that each marker round-trips through the
GPT-2 and SmolLM2 tokenizers unchanged and that none occurs in the datasets' own text.

The context both students read is the student input followed by the pairs so far, one line each::

    Q: {problem}
    A: <q> {sub-question 1}
    <a> {sub-answer 1}
    <q> {sub-question 2}
    <a> {sub-answer 2}

* **unified** student: input ``Q: {problem}\\nA: ``; target every pair, then the kit's answer
  sentence: ``<q> q1\\n<a> a1\\n<q> q2\\n<a> a2 So the answer is: {y}\\n\\n`` (so the SCoTD
  evaluation reads its final answer unchanged);
* **QG** (decomposer): input the context; target the next line ``<q> {sub-question}`` or ``<end>``;
* **QA** (solver): input the context + ``<q> {sub-question}\\n<a>``; target `` {sub-answer}``.

Training appends EOS to every target; at inference QG and QA also stop at a newline.
"""
from __future__ import annotations

import re
from typing import Sequence

from ..answers import ANSWER_MARKER, cut_generation
from ..io import DataError
from ..prompts import student_input, target

QUESTION = "<q>"
ANSWER = "<a>"
END = "<end>"
MARKERS = (QUESTION, ANSWER, END)
QG_STOP = ("\n", ANSWER)      # a QG that runs on into an answer is cut there
QA_STOP = ("\n", QUESTION)

Pair = tuple[str, str]
_SPACE = re.compile(r"\s+")
_SPLIT = re.compile("(" + "|".join(re.escape(m) for m in (QUESTION, ANSWER)) + ")")


def clean(text: str, where: str = "") -> str:
    """One line of step text: whitespace collapsed; a marker inside it is an error (it would not parse back)."""
    text = _SPACE.sub(" ", str(text)).strip()
    for m in MARKERS:
        if m in text:
            raise DataError(f"{where or 'step text'}: contains the marker {m!r}: {text[:80]!r}")
    return text


def steps_text(pairs: Sequence[Pair]) -> str:
    """``<q> q1\\n<a> a1\\n...`` -- each pair on two lines, each line ending with a newline."""
    return "".join(f"{QUESTION} {clean(q)}\n{ANSWER} {clean(a)}\n" for q, a in pairs)


def context(question: str, pairs: Sequence[Pair]) -> str:
    return student_input(question) + steps_text(pairs)


def qg_input(question: str, pairs: Sequence[Pair]) -> str:
    return context(question, pairs)


def qg_target(sub_question: str | None) -> str:
    """``<q> {sub-question}``, or ``<end>`` when no question is left (``None``)."""
    return END if sub_question is None else f"{QUESTION} {clean(sub_question)}"


def qa_input(question: str, pairs: Sequence[Pair], sub_question: str) -> str:
    return f"{context(question, pairs)}{QUESTION} {clean(sub_question)}\n{ANSWER}"


def qa_target(sub_answer: str) -> str:
    return f" {clean(sub_answer)}"


def unified_target(pairs: Sequence[Pair], label: str) -> str:
    if not pairs:
        raise DataError("a unified target needs at least one (sub-question, sub-answer) pair")
    return target(steps_text(pairs).rstrip("\n"), label)


# --- parsing ----------------------------------------------------------------------------------

def parse_qg(text: str) -> tuple[str, str | None]:
    """A QG generation -> ``("end", None)``, ``("question", q)`` or ``("malformed", text)``."""
    line = text.strip().split("\n", 1)[0].strip()
    if line.startswith(END):
        return "end", None
    if line.startswith(QUESTION):
        q = line[len(QUESTION):].split(ANSWER, 1)[0].split(END, 1)[0].strip()
        if q:
            return "question", q
    return "malformed", text


def parse_qa(text: str) -> str:
    """A QA generation -> the sub-answer (first line, cut at any marker)."""
    line = text.strip().split("\n", 1)[0]
    for m in MARKERS:
        line = line.split(m, 1)[0]
    return line.strip()


def parse_steps(text: str) -> tuple[list[Pair], bool]:
    """``<q> q <a> a ...`` text -> ``(pairs, well_formed)``; ``well_formed`` is False when the markers
    do not alternate question / answer from a question, or a pair has an empty part."""
    parts = [p.strip() for p in _SPLIT.split(text)]
    pairs, ok = [], not parts[0]
    tokens = parts[1:]
    for i in range(0, len(tokens) - 1, 4):
        chunk = tokens[i:i + 4]
        if len(chunk) < 4 or chunk[0] != QUESTION or chunk[2] != ANSWER or not chunk[1] or not chunk[3]:
            ok = False
            break
        pairs.append((_SPACE.sub(" ", chunk[1]), _SPACE.sub(" ", chunk[3])))
    if len(tokens) % 4:
        ok = False
    return pairs, ok and bool(pairs)


def parse_unified(text: str) -> tuple[list[Pair], str | None, bool]:
    """A unified generation -> ``(pairs, final answer or None, well_formed)``."""
    cut = " " + cut_generation(text)
    pos = cut.rfind(ANSWER_MARKER)
    body, final = (cut[:pos], cut[pos + len(ANSWER_MARKER):].strip()) if pos >= 0 else (cut, None)
    pairs, ok = parse_steps(body)
    return pairs, final, ok and final is not None
