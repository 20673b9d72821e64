"""Paired comparisons of two systems scored on the same examples.

``paired_bootstrap`` resamples EXAMPLES (with replacement) and recomputes both accuracies on each
resample, so the interval of the difference accounts for the two systems being right or wrong on
the same items (two independent intervals would be too wide when they agree often, and say
nothing about the difference itself).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class PairedDifference:
    accuracy_a: float
    accuracy_b: float
    diff: float                 # accuracy_a - accuracy_b
    ci_low: float               # percentile bootstrap 95% interval of diff
    ci_high: float
    n: int
    n_boot: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def paired_bootstrap(correct_a: Sequence[float], correct_b: Sequence[float], n_boot: int = 10_000,
                     seed: int = 0) -> PairedDifference:
    """Accuracy of ``a`` minus accuracy of ``b`` on the same examples, with a 95% paired bootstrap CI.

    An example's score is 1/0 (right/wrong), or for a system averaged over several students that
    differ only by their training seed, the share of them that got it right (:func:`seed_scores`).
    With 0/1 scores only the examples where the two disagree move the difference: a resample's
    difference is ``(#a-only - #b-only) / n``, where the counts are a multinomial draw over the four
    outcome kinds -- the same distribution as resampling indices, drawn in O(n_boot). Fractional
    scores resample the examples' differences directly.
    """
    import numpy as np

    a, b = _scores(correct_a), _scores(correct_b)
    if len(a) != len(b):
        raise ValueError(f"paired_bootstrap needs the same examples: {len(a)} vs {len(b)} outcomes")
    if not a:
        raise ValueError("paired_bootstrap needs at least one example")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, not {n_boot}")
    n = len(a)
    rng = np.random.default_rng(seed)
    if all(x in (0.0, 1.0) for x in a + b):
        a_only = sum(x > y for x, y in zip(a, b))
        b_only = sum(y > x for x, y in zip(a, b))
        probs = [a_only / n, b_only / n, 1 - (a_only + b_only) / n]
        probs[2] = max(0.0, probs[2])
        draws = rng.multinomial(n, probs, size=n_boot)
        diffs = (draws[:, 0] - draws[:, 1]) / n
    else:
        diffs = resampled_means(np.subtract(a, b), n_boot, rng)
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    acc_a, acc_b = sum(a) / n, sum(b) / n
    return PairedDifference(acc_a, acc_b, acc_a - acc_b, float(lo), float(hi), n, n_boot)


def _scores(values: Sequence[float]) -> list[float]:
    out = [float(x) for x in values]
    bad = next((x for x in out if not 0.0 <= x <= 1.0), None)
    if bad is not None:
        raise ValueError(f"a score is a share of correct answers in [0, 1], not {bad}")
    return out


def resampled_means(values, n_boot: int, rng):
    """Means of ``n_boot`` resamples (with replacement) of ``values``, drawn in chunks to bound memory."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    n, chunk = len(values), max(1, 2_000_000 // max(1, len(values)))
    return np.concatenate([values[rng.integers(0, n, size=(min(chunk, n_boot - i), n))].mean(axis=1)
                           for i in range(0, n_boot, chunk)])


def seed_scores(per_seed: Sequence[dict[str, bool]]) -> dict[str, float]:
    """``{example id: share of the students that got it right}`` for students that differ only by their
    training seed, each given as ``{example id: correct}`` over the same examples."""
    if not per_seed:
        raise ValueError("seed_scores needs at least one student")
    ids = list(per_seed[0])
    for i, other in enumerate(per_seed[1:], 1):
        if set(other) != set(ids):
            raise ValueError(f"students scored on different examples: seed #{i} has {len(other)} examples, "
                             f"#0 has {len(ids)}, {len(set(other) & set(ids))} shared")
    return {k: sum(bool(s[k]) for s in per_seed) / len(per_seed) for k in ids}
