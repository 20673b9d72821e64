"""SCoTD's central claims (issue 11): the paired statistics they rest on, the file they are written to,
and the file produced under the ``smoke`` profile (its values mean nothing there and are not asserted)."""
import csv

import pytest

from scotd_kit import claims
from scotd_kit.reproduce import Summary, write_summary
from scotd_kit.stats import paired_bootstrap


def test_paired_bootstrap_on_a_case_whose_distribution_is_known_exactly():
    """n = 2, a right on one example where b is wrong, both wrong on the other: a resample's difference is
    (#picks of the first example) / 2 ~ Binomial(2, 1/2) / 2, i.e. 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4;
    its 2.5% and 97.5% percentiles are 0 and 1, and about half the resamples give 0.5."""
    d = paired_bootstrap([True, False], [False, False], n_boot=20_000, seed=2)
    assert (d.diff, d.ci_low, d.ci_high, d.n) == (0.5, 0.0, 1.0, 2)


def test_a_claim_holds_only_when_its_interval_excludes_zero():
    a = [True] * 60 + [False] * 20 + [True] * 100 + [False] * 220     # +10 points, CI about [5.7, 14.3]
    b = [False] * 60 + [True] * 20 + [True] * 100 + [False] * 220
    c = claims.paired_claim("x", a, b)
    assert c.holds and c.ours == pytest.approx(10.0) and 4 < c.ci_low < 7 and 13 < c.ci_high < 16 and c.n == 400
    small = claims.paired_claim("y", [True] + b[1:], b)                     # one example apart: CI reaches 0
    assert small.ours > 0 and small.ci_low <= 0 and not small.holds
    flat = claims.paired_claim("z", b, b, rule="nonneg")                    # SC == greedy: holds (>=)
    assert flat.holds and flat.ours == 0.0
    assert not claims.paired_claim("w", b, a, rule="nonneg").holds


def test_teacher_signal_is_tested_against_chance():
    right = [True] * 120 + [False] * 80                 # 60% of 200 on a 3-way task
    assert claims.above_chance_claim("t", right, 1 / 3).holds
    assert not claims.above_chance_claim("t", [True] * 70 + [False] * 130, 1 / 3).holds   # 35%: not above
    assert claims.above_chance_claim("t", right, None).holds is None      # numbers: reported, not tested


def test_claims_csv_columns_and_the_table_on_top_of_the_summary(tmp_path):
    rows = [claims.paired_claim("2. SCoTD beats label-only", [True] * 30 + [False] * 10, [False] * 40),
            claims.unavailable("3. N beats 1", "no corpus")]
    (tmp_path / "claims.csv").write_text(claims.to_csv(rows))
    (tmp_path / "claims.md").write_text(claims.markdown(rows))
    read = claims.read_csv(tmp_path / "claims.csv")
    assert list(read[0]) == list(claims.COLUMNS)
    assert read[0]["holds"] == "yes" and read[0]["ours"] == "75.0" and read[0]["n"] == "40"
    assert read[1]["holds"] == "" and read[1]["ours"] == "" and "could not be made" in read[1]["detail"]
    write_summary(Summary("smoke", tmp_path))
    text = (tmp_path / "summary.md").read_text()
    assert text.index("central claims") < text.index("Notebooks run")
    assert "| 2. SCoTD beats label-only | 75.0 |" in text


def test_claims_file_is_produced_under_smoke(tmp_path, monkeypatch):
    """Real runs at smoke scale (the SmolLM2 teacher on a few examples, tiny random students): every claim
    gets a row; the values are not asserted."""
    from scotd_kit.experiments import Lab

    monkeypatch.setenv("SCOTD_RUNS_DIR", str(tmp_path / "runs"))
    out = claims.write(Lab("smoke"), tmp_path / "figures")
    rows = claims.read_csv(tmp_path / "figures" / "claims.csv")
    assert len(rows) == len(out) == 6
    assert [r["claim"][:2] for r in rows] == ["1.", "1.", "1.", "2.", "3.", "4."]
    assert all("could not be made" not in r["detail"] for r in rows), [r["detail"] for r in rows]
