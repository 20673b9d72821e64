"""Offline demo tasks, generated here: no download, deterministic for a seed.

They stand in for the papers' datasets in the ``demo`` and ``smoke`` profiles, and are labelled as
such wherever their numbers appear.  ``demo_compare`` is multiple choice in CSQA's format;
``demo_arith`` is two-step arithmetic with a numeric answer (GSM8K's shape, far easier); it reports on
``test``, its ``validation`` split being where the demo's settings were tuned (docs/demo_design.md).
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
    # terse but still one step per sentence: the teacher gets as many right as with "Liam starts with 16
    # cookies. After getting 3 more, ..." (27 % vs 29 % of samples, 43 % coverage either way) in 41 tokens
    # instead of 54, sampling 1.5x faster (docs/demo_design.md, "The rationale form")
    rationale = f"{name} has {start} + {gain} = {mid}. After giving away {loss}, {name} has {mid} - {loss} = {end}."
    return Example(id=f"arith-{split}-{i}", question=question, label=str(end), meta={"rationale": rationale})


def _change(rng: random.Random, i: int, split: str, k: int = 3) -> Example:
    """Who has the most / fewest after each person gains or loses a few: the answer needs every new count.

    Counts are small (2-9, changes 1-6) so that a 135M teacher's arithmetic is mostly right; the final
    counts are distinct, and the start counts never point at the answer (a student must compute)."""
    while True:
        names = rng.sample(NAMES, k)
        thing = rng.choice(THINGS)
        starts = [rng.randint(2, 9) for _ in range(k)]
        deltas = [rng.choice([1, -1]) * rng.randint(1, 6) for _ in range(k)]
        ends = [s + d for s, d in zip(starts, deltas)]
        if min(ends) < 1 or len(set(ends)) < k:
            continue
        most = rng.random() < 0.5
        pick = ends.index(max(ends) if most else min(ends))
        if len(set(starts)) == k and starts.index(max(starts) if most else min(starts)) == pick:
            continue
        break
    word = "most" if most else "fewest"
    parts = [f"{n} has {s} {thing} and {'gets' if d > 0 else 'gives away'} {abs(d)}."
             for n, s, d in zip(names, starts, deltas)]
    steps = [f"{n} has {s} {'+' if d > 0 else '-'} {abs(d)} = {e}." for n, s, d, e in zip(names, starts, deltas, ends)]
    stem = " ".join(parts) + f" Who has the {word} {thing} now?"
    rationale = (" ".join(steps) + f" {ends[pick]} is the {'largest' if most else 'smallest'}, "
                 f"so {names[pick]} has the {word}.")
    labels = [f"({c})" for c in "abcdefgh"[:k]]
    return Example(id=f"change-{split}-{i}", question=csqa_format(stem, names), label=labels[pick],
                   meta={"labels": labels, "choice_texts": names, "rationale": rationale})


def _generator(task: str, make, sizes: dict = SIZES):
    def generate(split: str, seed: int) -> list[Example]:
        rng = _rng(task, split, seed)
        return [make(rng, i, split) for i in range(sizes[split])]   # a longer split keeps the shorter one's start
    return generate


DEMO_SHOTS = 4


def _exemplars(task: str, make):
    """The first training examples with their gold rationales."""
    def build() -> list[tuple[str, str, str]]:
        rng = _rng(task, "train", 0)
        examples = [make(rng, i, "train") for i in range(DEMO_SHOTS)]
        return [(ex.question, ex.meta["rationale"], ex.label) for ex in examples]
    return build


def _pool_exemplars(task: str, make, shots: int = DEMO_SHOTS, group: int = 0):
    """The ``group``-th run of ``shots`` examples of a pool of their own (never a train / validation / test
    example), with their gold rationales: exemplars never come from the training or evaluation slice."""
    def build() -> list[tuple[str, str, str]]:
        rng = _rng(task, "exemplars", 0)
        pool = [make(rng, i, "exemplars") for i in range(shots * (group + 1))]
        return [(ex.question, ex.meta["rationale"], ex.label) for ex in pool[shots * group:]]
    return build


def _balanced_exemplars(task: str, make, shots: int = DEMO_SHOTS, labels: tuple = ("(a)", "(b)", "(c)")):
    """``shots`` exemplars from a pool of their own (never a train / validation / test example), their gold
    labels as even as the label set allows, in a shuffled order: a 135M teacher copies the label of
    unbalanced exemplars ("(c)" on 48 of 48 questions after exemplars labelled b, c, c, c)."""
    def build() -> list[tuple[str, str, str]]:
        rng = _rng(task, "exemplars", 0)
        pool = [make(rng, i, "exemplars") for i in range(16 * shots)]
        chosen: list[Example] = []
        for j in range(shots):
            want = labels[j % len(labels)]
            chosen.append(next(e for e in pool if e.label == want and e not in chosen))
        rng.shuffle(chosen)
        return [(ex.question, ex.meta["rationale"], ex.label) for ex in chosen]
    return build


TASKS = (
    TaskSpec(name="demo_compare", description="offline demo: who has the most/fewest (3-way multiple choice)",
             answer_type=answers.CHOICE, labels=("(a)", "(b)", "(c)"),
             generate=_generator("demo_compare", _compare), generated_splits=tuple(SIZES),
             exemplars=_exemplars("demo_compare", _compare)),
    TaskSpec(name="demo_arith", description="offline demo: two-step arithmetic word problems (numeric answer)",
             answer_type=answers.NUMBER,
             # more training questions than the other stand-ins: the demo's students learn from the ones the
             # teacher gets right (about a third), so coverage, not N, limits them (docs/demo_design.md, "Temperature 0.3")
             generate=_generator("demo_arith", _arith, {**SIZES, "train": 2000}), generated_splits=tuple(SIZES),
             eval_split="test",
             # group 3 of the pool's first 8: the teacher's best correct-CoT yield on 80 validation questions
             # (16.9 % of samples against 11.6-16.6 %; docs/demo_design.md, "Exemplars")
             exemplars=_pool_exemplars("demo_arith", _arith, group=3)),
    TaskSpec(name="demo_change", description="offline stand-in: who has the most/fewest after each one gains or "
                                             "loses some (3-way multiple choice; the answer needs computed counts)",
             answer_type=answers.CHOICE, labels=("(a)", "(b)", "(c)"),
             generate=_generator("demo_change", _change), generated_splits=tuple(SIZES), eval_split="test",
             exemplars=_balanced_exemplars("demo_change", _change)),
)
