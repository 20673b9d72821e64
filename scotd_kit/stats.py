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


def paired_bootstrap(correct_a: Sequence[bool], correct_b: Sequence[bool], n_boot: int = 10_000,
                     seed: int = 0) -> PairedDifference:
    """Accuracy of ``a`` minus accuracy of ``b`` on the same examples, with a 95% paired bootstrap CI.

    Only the examples where the two disagree move the difference: a resample's difference is
    ``(#a-only - #b-only) / n``, where the counts are a multinomial draw over the four outcome
    kinds -- the same distribution as resampling indices, drawn in O(n_boot).
    """
    import numpy as np

    a, b = [bool(x) for x in correct_a], [bool(x) for x in correct_b]
    if len(a) != len(b):
        raise ValueError(f"paired_bootstrap needs the same examples: {len(a)} vs {len(b)} outcomes")
    if not a:
        raise ValueError("paired_bootstrap needs at least one example")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, not {n_boot}")
    n = len(a)
    a_only = sum(x and not y for x, y in zip(a, b))
    b_only = sum(y and not x for x, y in zip(a, b))
    probs = [a_only / n, b_only / n, 1 - (a_only + b_only) / n]
    probs[2] = max(0.0, probs[2])
    draws = np.random.default_rng(seed).multinomial(n, probs, size=n_boot)
    diffs = (draws[:, 0] - draws[:, 1]) / n
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    acc_a, acc_b = sum(a) / n, sum(b) / n
    return PairedDifference(acc_a, acc_b, acc_a - acc_b, float(lo), float(hi), n, n_boot)
