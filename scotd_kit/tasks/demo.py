"""Offline demo tasks, generated here: no download, deterministic for a seed.

They stand in for the papers' datasets in the ``demo`` and ``smoke`` profiles, and are labelled as
such wherever their numbers appear.  ``demo_compare`` is multiple choice in CSQA's format;
``demo_arith`` is two-step arithmetic with a numeric answer (GSM8K's shape, far easier).
Each example carries a gold rationale in ``meta["rationale"]`` (SCoTD's target format without the
answer sentence), which tests and the label-only / gold-CoT baselines can use.
"""
from __future__ import annotations

import random

from .. import answers
from .base import Example, TaskSpec
from .commonsense_qa import format_question as csqa_format

SIZES = {"train": 1000, "validation": 200, "test": 200}
NAMES = ["Anna", "Ben", "Carl", "Dora", "Emma", "Finn", "Gina", "Hugo", "Ivy", "Jack", "Kate", "Liam"]
THINGS = ["apples", "marbles", "books", "stamps", "coins", "pencils", "shells", "stickers", "cards", "cookies"]


def _rng(task: str, split: str, seed: int) -> random.Random:
    return random.Random(f"{task}/{split}/{seed}")  # str seeds are stable across processes


def _compare(rng: random.Random, i: int, split: str) -> Example:
    names = rng.sample(NAMES, 3)
    counts = rng.sample(range(1, 20), 3)
    thing = rng.choice(THINGS)
    most = rng.random() < 0.5
    pick = counts.index(max(counts) if most else min(counts))
    word = "most" if most else "fewest"
    stem = (" ".join(f"{n} has {c} {thing}." for n, c in zip(names, counts))
            + f" Who has the {word} {thing}?")
    extreme = "largest" if most else "smallest"
    rationale = (f"{names[0]} has {counts[0]}, {names[1]} has {counts[1]} and {names[2]} has {counts[2]}. "
                 f"{counts[pick]} is the {extreme} number, so {names[pick]} has the {word}.")
    label = f"({'abc'[pick]})"
    return Example(id=f"compare-{split}-{i}", question=csqa_format(stem, names), label=label,
                   meta={"labels": ["(a)", "(b)", "(c)"], "choice_texts": names, "rationale": rationale})


def _arith(rng: random.Random, i: int, split: str) -> Example:
    name = rng.choice(NAMES)
    thing = rng.choice(THINGS)
    start, gain = rng.randint(2, 20), rng.randint(2, 15)
    loss = rng.randint(1, start + gain - 1)
    other = rng.choice([n for n in NAMES if n != name])
    question = (f"{name} has {start} {thing}. {name} gets {gain} more {thing} and then gives {loss} to {other}. "
                f"How many {thing} does {name} have now?")
    mid, end = start + gain, start + gain - loss
    rationale = (f"{name} starts with {start} {thing}. After getting {gain} more, {name} has {start} + {gain} = {mid}. "
                 f"After giving away {loss}, {name} has {mid} - {loss} = {end}.")
    return Example(id=f"arith-{split}-{i}", question=question, label=str(end), meta={"rationale": rationale})


def _generator(task: str, make):
    def generate(split: str, seed: int) -> list[Example]:
        rng = _rng(task, split, seed)
        return [make(rng, i, split) for i in range(SIZES[split])]
    return generate


DEMO_SHOTS = 4


def _exemplars(task: str, make):
    """The first training examples with their gold rationales."""
    def build() -> list[tuple[str, str, str]]:
        rng = _rng(task, "train", 0)
        examples = [make(rng, i, "train") for i in range(DEMO_SHOTS)]
        return [(ex.question, ex.meta["rationale"], ex.label) for ex in examples]
    return build


TASKS = (
    TaskSpec(name="demo_compare", description="offline demo: who has the most/fewest (3-way multiple choice)",
             answer_type=answers.CHOICE, labels=("(a)", "(b)", "(c)"),
             generate=_generator("demo_compare", _compare), generated_splits=tuple(SIZES),
             exemplars=_exemplars("demo_compare", _compare)),
    TaskSpec(name="demo_arith", description="offline demo: two-step arithmetic word problems (numeric answer)",
             answer_type=answers.NUMBER,
             generate=_generator("demo_arith", _arith), generated_splits=tuple(SIZES),
             exemplars=_exemplars("demo_arith", _arith)),
)
