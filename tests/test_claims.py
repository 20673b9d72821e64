"""SCoTD's central claims: the paired statistics they rest on, the file they are written to,
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
    assert small.ours > 0 and small.ci_low <= 0 and small.holds is False


def test_claim_4a_holds_is_not_shown_or_fails_by_its_interval():
    """4a (SC helps the few-shot student): interval above 0 holds; an interval holding 0 is 'not shown at this
    scale' under the small profiles and 'no' at the paper's; an interval below 0 is 'no' everywhere."""
    base = [False] * 200 + [True] * 200
    gain = [True] * 40 + [False] * 160 + [True] * 200           # +10 points on 400: interval above 0
    tie = [True] + [False] * 199 + [True] * 199 + [False]       # one up, one down: 0, interval holds 0
    loss = [False] * 200 + [False] * 40 + [True] * 160          # -10 points
    assert claims.paired_claim("4a", gain, base, small=True).holds is True
    shown = claims.paired_claim("4a", tie, base, small=True)
    assert shown.holds == claims.NOT_SHOWN and shown.ci_low < 0 < shown.ci_high
    assert claims.verdict(shown.holds) == "not shown at this scale"
    assert claims.paired_claim("4a", tie, base, small=False).holds is False
    assert claims.paired_claim("4a", loss, base, small=True).holds is False


def test_claim_4b_holds_when_the_interval_holds_0_and_stays_above_minus_3():
    base = [False] * 200 + [True] * 200
    tie = [True] + [False] * 199 + [True] * 199 + [False]
    assert claims.paired_claim("4b", tie, base, rule="no_change").holds is True
    gain = [True] * 40 + [False] * 160 + [True] * 200
    assert claims.paired_claim("4b", gain, base, rule="no_change").holds is False           # SC changes it: up
    few = [False] * 50 + [True] * 50                            # 100 examples: 5 lost, 3 gained, -2 points
    drift = [True] * 3 + [False] * 47 + [False] * 5 + [True] * 45
    c = claims.paired_claim("4b", drift, few, rule="no_change")
    assert c.ci_high >= 0 and c.ci_low < -3 and c.holds is False


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
    write_summary(Summary("smoke", tmp_path, claims_made=True))
    text = (tmp_path / "summary.md").read_text()
    assert text.index("central claims") < text.index("Notebooks run")
    assert "| 2. SCoTD beats label-only | 75.0 |" in text


def test_claims_file_is_produced_under_smoke(tmp_path, monkeypatch):
    """Real runs at smoke scale (the SmolLM2 teacher on a few examples, tiny random students): every claim
    gets a row; the values are not asserted."""
    from scotd_kit import stages

    monkeypatch.setenv("SCOTD_RUNS_DIR", str(tmp_path / "runs"))
    out = claims.write(stages.settings("smoke"), tmp_path / "figures")
    rows = claims.read_csv(tmp_path / "figures" / "claims.csv")
    assert len(rows) == len(out) == 7
    assert [r["claim"][:3] for r in rows] == ["1. ", "1. ", "1. ", "2. ", "3. ", "4a.", "4b."]
    assert all("could not be made" not in r["detail"] for r in rows), [r["detail"] for r in rows]
    assert rows[5]["holds"] in ("yes", "no", "not shown at this scale") and rows[6]["holds"] in ("yes", "no")
    # claim 4 is read against the paper's own SC effect, which differs by setting (Table 3(a))
    assert "full -0.2 / +0.0 / -2.2, few-shot +4.5 / -0.4 / +13.4" in rows[5]["detail"]


def test_paired_bootstrap_of_seed_means_on_known_cases():
    """Scores that are shares of several seeds' students right on an example: a constant difference has
    a zero-width interval; differences of 2/3 and 0 on alternate examples average 1/3 with the normal
    approximation's interval (sd 1/3 over sqrt(200): about +-0.046)."""
    from scotd_kit.stats import seed_scores

    d = paired_bootstrap([1 / 3] * 50, [0.0] * 50, n_boot=2000)
    assert d.diff == pytest.approx(1 / 3) and d.ci_low == pytest.approx(1 / 3) and d.ci_high == pytest.approx(1 / 3)
    a, b = [2 / 3, 1 / 3] * 100, [0.0, 1 / 3] * 100
    d = paired_bootstrap(a, b, n_boot=20_000, seed=1)
    assert d.diff == pytest.approx(1 / 3)
    assert d.ci_low == pytest.approx(1 / 3 - 0.046, abs=0.01) and d.ci_high == pytest.approx(1 / 3 + 0.046, abs=0.01)
    with pytest.raises(ValueError, match="share of correct answers"):
        paired_bootstrap([1.5], [0.0])
    shares = seed_scores([{"q1": True, "q2": False}, {"q2": True, "q1": True}, {"q1": False, "q2": False}])
    assert shares == {"q1": pytest.approx(2 / 3), "q2": pytest.approx(1 / 3)}
    with pytest.raises(ValueError, match="different examples"):
        seed_scores([{"q1": True}, {"q2": True}])


def test_a_grid_point_averages_students_that_differ_only_by_their_seed(tmp_path, monkeypatch):
    """Under smoke with two grid seeds: two students (different directories), the point's accuracy is the
    mean of theirs, every example scores the share of them right on it, and the cell names the seeds."""
    from scotd_kit import stages

    monkeypatch.setenv("SCOTD_RUNS_DIR", str(tmp_path / "runs"))
    p = stages.settings("smoke", grid_seeds=(0, 1))
    task = "commonsense_qa"
    assert stages.grid_seeds(p) == (0, 1) and stages.grid_seeds(stages.settings("smoke")) == (0,)
    train = stages.instances(p, task, stages.corpus(p, task), setting="full", training="scotd", n=1)
    dirs = [stages.student(p, train, seed=s) for s in stages.grid_seeds(p)]
    assert dirs[0] != dirs[1]
    each = [stages.evaluate(p, d, task) for d in dirs]
    mean = stages.seed_mean(each, stages.grid_seeds(p), seed=p.seed)
    assert mean["per_seed"] == [e["accuracy"] for e in each]
    assert mean["accuracy"] == pytest.approx(sum(e["accuracy"] for e in each) / 2)
    assert set(mean["scores_by_id"].values()) <= {0.0, 0.5, 1.0} and len(mean["scores_by_id"]) == mean["n"]
    assert mean["run_dir"] == "; ".join(e["run_dir"] for e in each)
    from scotd_kit.report import cell

    row = cell(p, "fig2_cots_per_instance", "Fig. 2", "1x", task, mean)
    assert "mean of 2 students, seeds 0, 1" in row.note and row.ours == pytest.approx(100 * mean["accuracy"])
    claim3 = {c.claim[:2]: c for c in claims.compute(p)}["3."]
    assert "mean of 2 students (seeds 0, 1)" in claim3.detail
