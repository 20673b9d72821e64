"""Task specs Socratic CoT relies on: declared evaluation splits, SVAMP's split, the stand-in task."""
import pytest

from scotd_kit.socratic import decompositions as dec
from scotd_kit.socratic import instances
from scotd_kit.tasks import get_task, load_split
from scotd_kit.tasks.svamp import split_of

from .conftest import shared_file


def test_each_socratic_task_declares_its_evaluation_split():
    expected = {"gsm8k": "test", "gsm8k_socratic": "test", "svamp": "test", "strategyqa": "validation",
                "demo_socratic": "test"}
    for name, split in expected.items():
        spec = get_task(name)
        assert spec.eval_split == split and split in spec.splits, name


def test_svamp_split_is_deterministic_disjoint_and_complete():
    shared_file("svamp/SVAMP.json")
    train, test, every = (load_split("svamp", s, source="files") for s in ("train", "test", "all"))
    assert (len(train), len(test)) == (715, 285)
    assert {e.id for e in train} | {e.id for e in test} == {e.id for e in every}
    assert not {e.id for e in train} & {e.id for e in test}
    assert all(split_of(e.id) == "test" for e in test)
    assert split_of("chal-1") == split_of("chal-1")


def test_stand_in_task_is_deterministic_and_its_steps_give_the_answer():
    a = load_split("demo_socratic", "train", limit=50)
    assert a == load_split("demo_socratic", "train", limit=50)
    assert a != load_split("demo_socratic", "train", limit=50, seed=1)
    from scotd_kit.answers import format_number, last_number

    for ex in a:
        assert 2 <= len(ex.meta["steps"]) <= 3
        assert format_number(last_number(ex.meta["steps"][-1][1])) == ex.label


def test_strategyqa_gold_sub_questions_and_facts_rationale():
    shared_file("strategyqa/dev.json")
    ex = load_split("strategyqa", "validation", limit=1)[0]
    assert dec.gold_sub_questions(ex) == ex.meta["decomposition"]
    assert instances.gold_rationale(ex) == " ".join(ex.meta["facts"])
    assert instances.cot([ex])[0]["targets"][0].endswith(f"So the answer is: {ex.label}\n\n")
    with pytest.raises(Exception, match="no gold"):
        dec.gold_pairs(ex)   # sub-questions only: sub-answers must come from a teacher


def test_instance_builders_shapes():
    exs = load_split("demo_socratic", "train", limit=3)
    decs, report = dec.gold_decompositions(exs)
    assert report.kept == 3 and not report.dropped
    n_steps = sum(len(d.pairs) for d in decs)
    assert len(instances.qg(decs)) == n_steps + 3 and len(instances.qa(decs)) == n_steps
    unified = instances.unified(decs + decs[:1])   # a repeated decomposition is one target, not two
    assert [len(u["targets"]) for u in unified] == [1, 1, 1]
    assert instances.answer_only(exs)[0]["targets"] == [f"So the answer is: {exs[0].label}\n\n"]
