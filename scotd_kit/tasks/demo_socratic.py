"""Offline stand-in for Socratic CoT: generated multi-step arithmetic with sub-questions.

A STAND-IN, not a dataset of the paper: it lets the ``smoke`` / ``demo`` profiles run the whole
Socratic pipeline offline (its numbers are labelled with the task actually run).  Each problem is
two or three steps; ``meta["steps"]`` holds its ``(sub_question, sub_answer)`` decomposition in
GSM8K socratic's shape (each sub-answer a sentence whose last number is that step's result),
``meta["rationale"]`` the sub-answers joined (the gold CoT).  Deterministic for a seed.
"""
from __future__ import annotations

import random

from .. import answers
from .base import Example, TaskSpec
from .demo import NAMES, THINGS

SIZES = {"train": 1000, "test": 200}


def _boxes(rng: random.Random) -> tuple[str, list[tuple[str, str]], int]:
    name, other = rng.sample(NAMES, 2)
    thing = rng.choice(THINGS)
    have, boxes, per_box = rng.randint(2, 20), rng.randint(2, 5), rng.randint(2, 9)
    bought = boxes * per_box
    total = have + bought
    gives = rng.randint(1, total - 1)
    end = total - gives
    question = (f"{name} has {have} {thing}. {name} buys {boxes} boxes with {per_box} {thing} in each box. "
                f"Then {name} gives {gives} {thing} to {other}. How many {thing} does {name} have now?")
    steps = [(f"How many {thing} are in the boxes?", f"There are {boxes} * {per_box} = {bought} {thing} in the boxes."),
             (f"How many {thing} does {name} have after buying the boxes?",
              f"{name} has {have} + {bought} = {total} {thing}."),
             (f"How many {thing} does {name} have now?", f"{name} has {total} - {gives} = {end} {thing} now.")]
    return question, steps, end


def _more(rng: random.Random) -> tuple[str, list[tuple[str, str]], int]:
    name, other = rng.sample(NAMES, 2)
    thing = rng.choice(THINGS)
    have, more = rng.randint(2, 30), rng.randint(1, 20)
    theirs = have + more
    together = have + theirs
    question = (f"{name} has {have} {thing}. {other} has {more} more {thing} than {name}. "
                f"How many {thing} do {name} and {other} have together?")
    steps = [(f"How many {thing} does {other} have?", f"{other} has {have} + {more} = {theirs} {thing}."),
             (f"How many {thing} do {name} and {other} have together?",
              f"Together they have {have} + {theirs} = {together} {thing}.")]
    return question, steps, together


def _generate(split: str, seed: int) -> list[Example]:
    rng = random.Random(f"demo_socratic/{split}/{seed}")   # str seeds are stable across processes
    out = []
    for i in range(SIZES[split]):
        question, steps, value = (_boxes if rng.random() < 0.5 else _more)(rng)
        out.append(Example(id=f"socratic-{split}-{i}", question=question, label=str(value),
                           meta={"steps": steps, "rationale": " ".join(a for _, a in steps)}))
    return out


def _exemplars() -> list[tuple[str, str, str]]:
    """The first four training examples with their gold rationales (as the other demo tasks)."""
    return [(ex.question, ex.meta["rationale"], ex.label) for ex in _generate("train", 0)[:4]]


TASK = TaskSpec(name="demo_socratic",
                description="offline stand-in: 2-3 step arithmetic with sub-questions (Socratic CoT demo)",
                answer_type=answers.NUMBER, generate=_generate, generated_splits=tuple(SIZES), eval_split="test",
                exemplars=_exemplars)
