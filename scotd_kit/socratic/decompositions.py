"""Decomposition data: (sub-question, sub-answer) pairs per problem, from gold data or a teacher.

* **gold**: GSM8K socratic (``meta["steps"]``, calculator annotations already removed by the task)
  and the offline stand-in ``demo_socratic``.  StrategyQA's ``decomposition`` is sub-questions
  only (:func:`gold_sub_questions`); its sub-answers must come from a teacher.
* **teacher**: a few-shot prompt asks any kit teacher for numbered pairs and a final answer::

      Q: {problem}
      A: Sub-question 1: ...
      Sub-answer 1: ...
      Sub-question 2: ...
      Sub-answer 2: ... So the answer is: {y}

  sampled through :func:`scotd_kit.sampling.sample_corpus` (cached, resumable, ledgered), and kept
  only when the final answer matches gold and the steps parse.  The demos are the kit's own
  (written for this format; the paper's prompt is unpublished).
"""
from __future__ import annotations

import json
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..io import DataError
from ..tasks import Example, get_task, load_split
from .formats import Pair, clean

SOURCES = ("gold", "teacher")


@dataclass(frozen=True)
class Decomposition:
    example: Example
    pairs: tuple[Pair, ...]
    source: str          # "gold" | "teacher:<corpus line>"


class StepParseError(DataError):
    def __init__(self, category: str, message: str):
        super().__init__(message)
        self.category = category


@dataclass
class Report:
    """What became of the decompositions asked for: asked / kept, and why the rest were dropped."""

    asked: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)   # category -> count
    skipped: list[str] = field(default_factory=list)    # "<where>: <category>: <why>"

    def drop(self, category: str, where: str, why: str, name: bool = True) -> None:
        self.dropped[category] += 1
        if name:
            self.skipped.append(f"{where}: {category}: {why}")

    def as_dict(self) -> dict:
        return {"asked": self.asked, "kept": self.kept, "dropped": dict(self.dropped), "skipped": list(self.skipped)}


def gold_pairs(ex: Example) -> list[Pair]:
    """The gold pairs of one example (GSM8K socratic, demo_socratic), markers checked.

    Six GSM8K socratic records (0-based rows: train 480, 2617, 2815, 5402; test 1042, 1284) hold a
    step whose sub-answer was only a calculator annotation, empty once it is removed: an error here.
    """
    steps = ex.meta.get("steps")
    if not steps:
        raise StepParseError("empty", f"example {ex.id!r}: no gold (sub-question, sub-answer) steps in meta['steps']")
    pairs = [(clean(q, f"example {ex.id!r} step {i}"), clean(a, f"example {ex.id!r} step {i}"))
             for i, (q, a) in enumerate(steps, 1)]
    for i, (q, a) in enumerate(pairs, 1):
        if not q or not a:
            raise StepParseError("empty_step", f"example {ex.id!r}: step {i} has an empty "
                                               f"{'sub-question' if not q else 'sub-answer'}")
    return pairs


def gold_decompositions(examples: Sequence[Example]) -> tuple[list[Decomposition], "Report"]:
    """Gold decompositions of the examples that have a usable one; the others are counted and named."""
    kept, report = [], Report()
    for ex in examples:
        report.asked += 1
        try:
            kept.append(Decomposition(ex, tuple(gold_pairs(ex)), "gold"))
            report.kept += 1
        except StepParseError as e:
            report.drop(e.category, f"example {ex.id!r}", str(e))
        except DataError as e:
            report.drop("marker_in_text", f"example {ex.id!r}", str(e))
    return kept, report


def has_gold(examples: Sequence[Example]) -> bool:
    return bool(examples) and all(ex.meta.get("steps") for ex in examples)


def gold_sub_questions(ex: Example) -> list[str]:
    """StrategyQA's gold decomposition: sub-questions only."""
    subs = ex.meta.get("decomposition")
    if not subs:
        raise DataError(f"example {ex.id!r}: no gold sub-questions in meta['decomposition']")
    return [clean(q, f"example {ex.id!r}") for q in subs]


# --- teacher prompt ----------------------------------------------------------------------------

_MATH_DEMOS = [
    ("A baker makes 24 muffins in the morning and twice as many in the afternoon. He sells 50 muffins. "
     "How many muffins are left?",
     [("How many muffins does he make in the afternoon?", "He makes 24 * 2 = 48 muffins in the afternoon."),
      ("How many muffins does he make in total?", "He makes 24 + 48 = 72 muffins in total."),
      ("How many muffins are left?", "72 - 50 = 22 muffins are left.")], "22"),
    ("Tom reads 15 pages a day for 4 days and then 10 pages on the fifth day. How many pages did he read?",
     [("How many pages did Tom read in the first 4 days?", "He read 15 * 4 = 60 pages."),
      ("How many pages did he read in all?", "He read 60 + 10 = 70 pages in all.")], "70"),
]
_YESNO_DEMOS = [
    ("Could a cat fit inside a standard mailbox?",
     [("How big is a typical house cat?", "A house cat is about 45 cm long."),
      ("How big is a standard mailbox?", "A standard mailbox is about 48 cm deep."),
      ("Is 45 cm less than 48 cm?", "Yes.")], "yes"),
    ("Was the Eiffel Tower built before the telephone was invented?",
     [("When was the Eiffel Tower built?", "It was built in 1889."),
      ("When was the telephone invented?", "The telephone was invented in 1876."),
      ("Is 1889 before 1876?", "No.")], "no"),
]


def numbered(pairs: Sequence[Pair]) -> str:
    """The teacher's rationale format: ``Sub-question i: ...`` / ``Sub-answer i: ...`` lines."""
    return "\n".join(f"Sub-question {i}: {q}\nSub-answer {i}: {a}" for i, (q, a) in enumerate(pairs, 1))


def teacher_demos(task) -> list[tuple[str, str, str]]:
    """Few-shot demos ``(x, numbered pairs, y)`` for the decomposition prompt of ``task``."""
    spec = get_task(task)
    if spec.name == "demo_socratic":   # its own first training problems, like the SCoTD demo tasks
        return [(ex.question, numbered(gold_pairs(ex)), ex.label) for ex in load_split(spec, "train", limit=3)]
    demos = _YESNO_DEMOS if spec.answer_type == "label" else _MATH_DEMOS
    return [(x, numbered(p), y) for x, p, y in demos]


PARSE_ERRORS = ("empty", "unnumbered_line", "bad_numbering", "missing_answer", "empty_step")
_LINE = re.compile(r"^\s*Sub-(question|answer)\s*(\d+)\s*:\s*(.*?)\s*$", re.I)


def parse_numbered(text: str) -> list[Pair]:
    """A teacher rationale -> pairs; :class:`StepParseError` (with a ``category``) when it does not parse."""
    lines = [l for l in str(text).split("\n") if l.strip()]
    if not lines:
        raise StepParseError("empty", "the decomposition is empty")
    pairs: list[Pair] = []
    pending: str | None = None
    for line in lines:
        m = _LINE.match(line)
        if not m:
            raise StepParseError("unnumbered_line", f"a line is neither 'Sub-question i:' nor 'Sub-answer i:': {line[:80]!r}")
        kind, num, body = m.group(1).lower(), int(m.group(2)), m.group(3)
        expected = len(pairs) + 1
        if num != expected or (kind == "question") != (pending is None):
            raise StepParseError("bad_numbering", f"expected {'question' if pending is None else 'answer'} "
                                                  f"{expected}, found {kind} {num}")
        if not body:
            raise StepParseError("empty_step", f"sub-{kind} {num} is empty")
        if kind == "question":
            pending = body
        else:
            pairs.append((clean(pending), clean(body)))
            pending = None
    if pending is not None:
        raise StepParseError("missing_answer", f"sub-question {len(pairs) + 1} has no sub-answer")
    return pairs


# --- teacher sampling and reading -------------------------------------------------------------

def sample_teacher_decompositions(task, examples: Sequence[Example], teacher, *, corpus_path, n: int = 1,
                                  temperature: float = 0.0, max_new_tokens: int = 256, seed: int = 0,
                                  batch_size: int = 8, progress: bool = True, **kw):
    """Ask ``teacher`` for ``n`` decompositions per example, into the corpus at ``corpus_path``."""
    from ..sampling import sample_corpus

    return sample_corpus(task, examples, teacher, n=n, corpus_path=corpus_path, temperature=temperature,
                         max_new_tokens=max_new_tokens, demos=teacher_demos(task), seed=seed,
                         batch_size=batch_size, progress=progress, **kw)


def read_teacher_decompositions(corpus_path, examples: Sequence[Example], *, n: int | None = None
                                ) -> tuple[list[Decomposition], Report]:
    """Kept decompositions of a teacher corpus, and a report counting every dropped record by category.

    Kept: the final answer matches gold (flexible reading: numbers as numbers), the answer marker is
    there, and the steps parse.  A record that is not valid JSON, names an unknown instance, or does
    not parse is skipped and named by its corpus line -- never fatal, never silently lost.
    """
    path = Path(corpus_path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no teacher corpus (run sample_teacher_decompositions first)")
    by_id = {str(ex.id): ex for ex in examples}
    report, kept = Report(), []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(keepends=True), 1):
        if not line.endswith("\n") or not line.strip():
            continue   # a torn tail: the next sampling run asks for it again
        where = f"{path}:{lineno}"
        category, why, decomposition = _judge(line, where, by_id, n)
        if category == "not_asked":
            continue
        report.asked += 1
        if category is None:
            kept.append(decomposition)
            report.kept += 1
            continue
        # the usual teacher misses are counted only; anything else is named by its line
        report.drop(category, where, why, name=category not in ("wrong_answer", "no_final_answer"))
    if report.skipped:
        shown = "; ".join(report.skipped[:3])
        warnings.warn(f"{len(report.skipped)} teacher decomposition record(s) skipped: {shown}"
                      + (" ..." if len(report.skipped) > 3 else ""), stacklevel=2)
    return kept, report


def _judge(line: str, where: str, by_id: dict, n: int | None):
    """``(category or None, why, decomposition or None)`` for one corpus line."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as e:
        return "bad_json", str(e), None
    if not isinstance(rec, dict):
        return "bad_json", "not a JSON object", None
    if n is not None and int(rec.get("sample_index", 0)) >= n:
        return "not_asked", "", None
    ex = by_id.get(str(rec.get("instance_id")))
    if ex is None:
        return "unknown_instance", f"instance {rec.get('instance_id')!r} is not among the examples", None
    if rec.get("parse_status") != "ok":
        return "no_final_answer", str(rec.get("parse_status")), None
    if not rec.get("correct_flexible"):
        return "wrong_answer", f"{rec.get('answer_flexible')!r} vs gold {ex.label!r}", None
    try:
        pairs = parse_numbered(rec.get("rationale", ""))
    except StepParseError as e:
        return e.category, str(e), None
    except DataError as e:   # a marker inside a step
        return "marker_in_text", str(e), None
    return None, "", Decomposition(ex, tuple(pairs), f"teacher:{where}")
