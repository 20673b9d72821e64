"""The Socratic stages end to end under smoke: the teacher path, caching, and what a run returns."""
import json

import pytest

from scotd_kit.socratic import pipeline
from scotd_kit.socratic.settings import socratic_settings


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SCOTD_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_teacher_decompositions_through_a_local_teacher(runs):
    """A tiny random teacher keeps nothing: counted, warned, and its students are not trained."""
    s = socratic_settings("smoke", teacher="tiny-gpt2")
    with pytest.warns(UserWarning, match="kept no decomposition"):
        assert pipeline.sources(s, "demo_socratic") == ["gold"]
    kept, report = pipeline.decompositions(s, "demo_socratic", "teacher")
    assert (len(kept), report["kept"], report["asked"]) == (0, 0, 6)
    assert sum(report["dropped"].values()) == 6
    corpus = next(runs.rglob("demo_socratic.jsonl"))
    assert len(corpus.read_text().splitlines()) == 6 and next(runs.rglob("*.ledger.json*"), None) is not None


def test_run_is_cached_and_keeps_every_step(runs):
    s = socratic_settings("smoke")
    r = pipeline.evaluate(s, "demo_socratic", "iterative")
    assert r["n"] == 4 and len(r["records"]) == 4 and 0 <= r["accuracy"] <= 1
    assert all(rec["steps"] and rec["status"] for rec in r["records"])
    assert sum(v for k, v in r["categories"].items() if k in ("ended", "step_limit", "no_steps", "qg_malformed")) == 4
    files = sorted(p for p in runs.rglob("*") if p.is_file())
    again = pipeline.evaluate(socratic_settings("smoke"), "demo_socratic", "iterative")
    assert again["records"] == r["records"] and sorted(p for p in runs.rglob("*") if p.is_file()) == files
    from scotd_kit.socratic import tables

    stored = tables.stored_rows(pipeline.stored_runs(s))
    assert list(stored) == [("demo_socratic", "demo_socratic", "tiny-gpt2", "iterative", "gold")]
    assert stored[next(iter(stored))]["records"] == r["records"]
    # the training data of the cached students is recorded beside them
    done = [json.loads(p.read_text()) for p in runs.rglob("done.json")]
    assert {d["settings"]["role"] for d in done} == {"qg", "qa"}


def test_socratic_runs_follow_their_data_and_settings(runs, monkeypatch):
    """Reliability 28.3: students and evaluations were not keyed by their data (a corrected answer key was
    served the old students and golds), and teacher decompositions were keyed by the teacher's name alone, so
    another budget read the first one's records with its own ("asked 12" when 6 were asked)."""
    import dataclasses

    s = socratic_settings("smoke")
    first = pipeline.evaluate(s, "demo_socratic", "unified")
    students = sorted(runs.rglob("done.json"))
    examples = pipeline.examples
    monkeypatch.setattr(pipeline, "examples", lambda s, task, split=None: [
        dataclasses.replace(e, label="7") for e in examples(s, task, split)])
    fixed = pipeline.evaluate(s, "demo_socratic", "unified")
    assert len(sorted(runs.rglob("done.json"))) == len(students) + 1           # retrained on the new golds
    assert {r["gold"] for r in fixed["records"]} == {"7"} != {r["gold"] for r in first["records"]}
    monkeypatch.setattr(pipeline, "examples", examples)
    for budget in (24, 12):
        budgeted = socratic_settings("smoke", teacher="tiny-gpt2", teacher_max_new_tokens=budget)
        _, report = pipeline.decompositions(budgeted, "demo_socratic", "teacher")
        assert report["asked"] == 6
    specs = [json.loads(p.read_text()) for p in runs.rglob("spec.json")]
    assert sorted(s["spec"]["max_new_tokens"] for s in specs if s["kind"] == "socratic-decompositions") == [12, 24]
