"""Replay of SCoTD's released corpora: a fixture in the exact released format, written here."""
import json
from collections import defaultdict

import pytest

from scotd_kit.io import DataError
from scotd_kit.sampling import sample_corpus
from scotd_kit.tasks import get_task
from scotd_kit.tasks.base import Example
from scotd_kit.tasks.commonsense_qa import format_question
from scotd_kit.teachers import ReplayTeacher, TeacherError, load_released, scotd_training_view

from .reliability_report import record

ANSWER_PREFIX, SUFFIX = " So the answer is: ", "\n\n"


# --- SCoTD's own code, transcribed (liunian-harold-li/scotd @ 21668aa) as the oracle -------------
def scotd_parse_rationale(prediction):                       # dataset/answer_cleaner.py
    prediction = prediction.split(SUFFIX)[0]
    return ANSWER_PREFIX.join(prediction.split(ANSWER_PREFIX)[:-1])


def scotd_getprediction(prediction):                         # dataset/hf_datasets.py CoTDataset
    while prediction.startswith("\n"):
        prediction = prediction[1:]
    prediction = prediction.split(SUFFIX)[0]
    prediction = prediction.split(ANSWER_PREFIX)[-1]
    prediction = prediction.strip("\n")
    if len(prediction) != 0 and prediction[0] == " ":
        prediction = prediction[1:]
    return prediction


def scotd_balanced_pool(examples, threshold=0.5):
    """SimpleDataPoolV3.get_rationale_data + CoTDataset.advanced_filter('all_correct_paths_balanced')
    + the target built in CoTDataset.__getitem__."""
    rationales = defaultdict(list)
    for e in examples:
        rationales[e["index"]].append(e)
    out = {}
    for i in sorted(rationales):
        valid = [j for j in rationales[i] if j["score"] >= threshold]
        if valid:
            out[i] = [f"{j['rationale'].strip(chr(10))}{ANSWER_PREFIX}{scotd_getprediction(j['response'])[:10]}{SUFFIX}"
                      for j in valid]
    return out


# --- the fixture -------------------------------------------------------------------------------
GOLD = ["(e)", "(b)", "(a)"]
CHOICES = ["alpha", "bravo", "charlie", "delta", "echo"]
RESPONSES = [   # (index, response); file order interleaves the instances, as a pooled dump may
    (0, " Blotters absorb ink. So the answer is: (e)"),
    (1, " Only a bravo fits. So the answer is: (b)\n\nQ: a recited next question"),
    (0, "\nIt is echo because echo. So the answer is: (E)"),
    (2, " It must be delta. So the answer is: (d)"),
    (0, " No marker in this one."),
    (1, " First thought. So the answer is: (a). Second thought. So the answer is: (b)"),
    (2, " Hmm. So the answer is: (c)"),
    (1, " Charlie? So the answer is: (c)"),
    (2, ""),
]


def released_record(index, response):
    pred = scotd_getprediction(response)
    return {"prompt": "Q: ...few-shot block...\nA: ", "response": response,
            "score": int(pred.lower() == GOLD[index].lower()), "index": index,
            "rationale": scotd_parse_rationale(response),
            "token_probs": [-0.1 * (k + 1) for k in range(3)], "tokens": ["a", "b", "c"]}


@pytest.fixture
def released(tmp_path):
    path = tmp_path / "fixture_released_format.json"
    path.write_text(json.dumps([released_record(i, r) for i, r in RESPONSES]))
    return path


@pytest.fixture
def examples():
    return [Example(id=f"q{i}", question=format_question(f"Question {i}?", CHOICES), label=g,
                    meta={"labels": ["(a)", "(b)", "(c)", "(d)", "(e)"], "choice_texts": CHOICES})
            for i, g in enumerate(GOLD)]


def test_fixture_exercises_the_cases():
    recs = [released_record(i, r) for i, r in RESPONSES]
    assert [r["score"] for r in recs] == [1, 1, 1, 0, 0, 1, 0, 0, 0]     # (E) vs (e): case-insensitive


def test_training_view_is_what_scotd_trains_on(released):
    records = load_released(released)
    view = scotd_training_view(records)
    assert {i: [r["target"] for r in v] for i, v in view.items()} == scotd_balanced_pool(records)
    assert list(view) == [0, 1]                                     # index 2 has no correct CoT: dropped
    assert view[0][1]["rationale"] == "It is echo because echo."     # leading newline stripped, as SCoTD does
    # SCoTD strips newlines only: the space a GPT-3 completion starts with stays, as it trained on it
    assert view[1][1]["rationale"] == " First thought. So the answer is: (a). Second thought."


def test_replay_teacher_fills_a_kit_corpus_with_scotds_records(released, examples, tmp_path):
    teacher = ReplayTeacher(released)
    corpus = sample_corpus(get_task("commonsense_qa"), examples, teacher, n=3, corpus_path=tmp_path / "c.jsonl",
                           progress=False)
    original = load_released(released)
    by_index = defaultdict(list)
    for r in original:
        by_index[r["index"]].append(r)
    groups = corpus.by_instance()
    assert list(groups) == ["q0", "q1", "q2"]
    for ex_pos, (iid, recs) in enumerate(groups.items()):
        src = by_index[ex_pos]
        assert [r["index"] for r in recs] == [ex_pos] * 3
        assert [r["text"] for r in recs] == [s["response"] for s in src]             # file order kept
        assert [r["correct"] for r in recs] == [s["score"] == 1 for s in src]
        assert [r["scotd_score"] for r in recs] == [s["score"] for s in src]
        assert [r["rationale"] for r in recs] == [s["rationale"].strip("\n") for s in src]
        assert all(r["mean_logprob"] == pytest.approx(-0.2) for r in recs)
        # the kit's own strict reading agrees with SCoTD's score on these records
        task = get_task("commonsense_qa")
        assert [task.score(s["response"], examples[ex_pos])["strict_correct"] for s in src] == \
               [bool(s["score"]) for s in src]
    assert [r["parse_status"] for r in groups["q0"]] == ["ok", "ok", "no_marker"]
    assert groups["q2"][2]["parse_status"] == "empty"
    # the view SCoTD trains on (correct records, grouped by index) is recovered from the kit corpus
    kept = {iid: [r["rationale"] for r in recs if r["correct"]] for iid, recs in groups.items()}
    view = scotd_training_view(original)
    assert {f"q{i}": [r["rationale"] for r in v] for i, v in view.items()} == {k: v for k, v in kept.items() if v}


def test_replay_errors_name_the_file_and_record(released, examples, tmp_path):
    with pytest.raises(TeacherError, match="index 0 has 3 samples"):
        sample_corpus("commonsense_qa", examples, ReplayTeacher(released), n=4, corpus_path=tmp_path / "c.jsonl",
                      progress=False)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([released_record(0, "x"), {"prompt": "p", "response": "r"}]))
    with pytest.raises(DataError, match=r"bad.json: record 2: missing field\(s\) score, index, rationale"):
        load_released(bad)


# --- typed reading: a field of the wrong type is a DataError naming the file and the record ---------------
WRONG_TYPES = [("score", "1"), ("score", None), ("score", True), ("score", float("nan")), ("rationale", None),
               ("rationale", 3), ("prompt", ["p"]), ("token_probs", ["a"]), ("token_probs", "abc"),
               ("token_probs", [True]), ("tokens", "abc"), ("index", True), ("index", -1)]


REFUSED = []


@pytest.fixture(scope="module", autouse=True)
def report_wrong_types():
    yield
    if REFUSED:
        record("test_a_field_of_the_wrong_type_is_a_data_error_naming_file_and_record",
               "released SCoTD corpus: a field of the wrong type (score \"1\" / null / true / NaN, rationale null, "
               "token_probs [\"a\"], index true / -1, ...)", len(REFUSED),
               f"{len(REFUSED)} refused with a DataError naming the file, the record and the field; none read, "
               f"none merged into another index", 0)


@pytest.mark.parametrize("field,value", WRONG_TYPES, ids=[f"{f}={v!r}" for f, v in WRONG_TYPES])
def test_a_field_of_the_wrong_type_is_a_data_error_naming_file_and_record(tmp_path, field, value):
    recs = [released_record(0, " a. So the answer is: (e)"), released_record(1, " b. So the answer is: (b)"),
            released_record(1, " c. So the answer is: (c)")]
    recs[1][field] = value
    bad = tmp_path / "bad_30x.json"
    bad.write_text(json.dumps(recs))
    with pytest.raises(DataError, match=rf"bad_30x.json: record 2: '{field}' must be"):
        load_released(bad)
    REFUSED.append(field)


def test_optional_fields_may_be_absent_or_null(tmp_path):
    recs = [released_record(0, " a. So the answer is: (e)") for _ in range(3)]
    del recs[0]["token_probs"], recs[0]["tokens"]
    recs[1]["token_probs"], recs[1]["tokens"] = None, None
    recs[2]["score"] = 0.75                                  # a fractional score is SCoTD's own kind of number
    path = tmp_path / "ok_30x.json"
    path.write_text(json.dumps(recs))
    assert [r["score"] for r in load_released(path)] == [1, 1, 0.75]
