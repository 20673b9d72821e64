"""SocraticLab end to end under smoke: the teacher path, caching, and what a run returns."""
import json

import pytest

from scotd_kit.socratic.pipeline import SocraticLab


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SCOTD_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_teacher_decompositions_through_a_local_teacher(runs):
    """A tiny random teacher keeps nothing: counted, warned, and its students are not trained."""
    slab = SocraticLab("smoke", teacher="tiny-gpt2")
    with pytest.warns(UserWarning, match="kept no decomposition"):
        assert slab.sources("demo_socratic") == ["gold"]
    kept, report = slab.decompositions("demo_socratic", "teacher")
    assert (len(kept), report["kept"], report["asked"]) == (0, 0, 6)
    assert sum(report["dropped"].values()) == 6
    corpus = next(runs.rglob("demo_socratic.jsonl"))
    assert len(corpus.read_text().splitlines()) == 6 and next(runs.rglob("*.ledger.json*"), None) is not None


def test_run_is_cached_and_keeps_every_step(runs):
    slab = SocraticLab("smoke")
    r = slab.run("demo_socratic", "iterative")
    assert r["n"] == 4 and len(r["records"]) == 4 and 0 <= r["accuracy"] <= 1
    assert all(rec["steps"] and rec["status"] for rec in r["records"])
    assert sum(v for k, v in r["categories"].items() if k in ("ended", "step_limit", "no_steps", "qg_malformed")) == 4
    files = sorted(p for p in runs.rglob("*") if p.is_file())
    again = SocraticLab("smoke").run("demo_socratic", "iterative")
    assert again["records"] == r["records"] and sorted(p for p in runs.rglob("*") if p.is_file()) == files
    from scotd_kit.socratic import tables

    stored = tables.stored_rows(SocraticLab("smoke").stored_runs())
    assert list(stored) == [("demo_socratic", "demo_socratic", "tiny-gpt2", "iterative", "gold")]
    assert stored[next(iter(stored))]["records"] == r["records"]
    # the training data of the cached students is recorded beside them
    done = [json.loads(p.read_text()) for p in runs.rglob("done.json")]
    assert {d["settings"]["role"] for d in done} == {"qg", "qa"}
