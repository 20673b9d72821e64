"""stats.paired_bootstrap against cases whose answer is known."""
import numpy as np
import pytest

from scotd_kit.stats import paired_bootstrap


def test_identical_systems_have_zero_difference_and_a_zero_width_interval():
    c = [True, False, True, True, False] * 20
    d = paired_bootstrap(c, c, n_boot=2000)
    assert (d.diff, d.ci_low, d.ci_high) == (0.0, 0.0, 0.0)


def test_a_always_right_where_b_is_wrong():
    d = paired_bootstrap([True] * 50, [False] * 50, n_boot=500)
    assert (d.accuracy_a, d.accuracy_b, d.diff, d.ci_low, d.ci_high) == (1.0, 0.0, 1.0, 1.0, 1.0)


def test_interval_matches_the_normal_approximation_of_the_paired_difference():
    """n = 400: a right alone on 60, b alone on 20. The difference is 0.1 with standard error
    sqrt((p10 + p01 - (p10 - p01)^2) / n) = sqrt((0.2 - 0.01) / 400) = 0.0218; the bootstrap's 95%
    interval must sit within a few thousandths of 0.1 +- 1.96 * 0.0218."""
    a = [True] * 60 + [False] * 20 + [True] * 100 + [False] * 220
    b = [False] * 60 + [True] * 20 + [True] * 100 + [False] * 220
    d = paired_bootstrap(a, b, n_boot=40_000, seed=1)
    se = np.sqrt((0.2 - 0.01) / 400)
    assert d.diff == pytest.approx(0.1)
    assert d.ci_low == pytest.approx(0.1 - 1.96 * se, abs=0.004)
    assert d.ci_high == pytest.approx(0.1 + 1.96 * se, abs=0.004)
    # pairing matters: an unpaired interval (independent samples) would be wider
    unpaired_se = np.sqrt(0.4 * 0.6 / 400 + 0.3 * 0.7 / 400)
    assert d.ci_high - d.ci_low < 2 * 1.96 * unpaired_se


def test_same_seed_same_interval_and_bad_input():
    a, b = [True, False, True, False], [False, False, True, True]
    assert paired_bootstrap(a, b, seed=3) == paired_bootstrap(a, b, seed=3)
    with pytest.raises(ValueError, match="same examples"):
        paired_bootstrap([True], [True, False])
    with pytest.raises(ValueError, match="at least one"):
        paired_bootstrap([], [])
