"""Reliability (docs/reliability.md), property tests: whatever the input, a clear DataError or a scored "no answer" --
never a bare exception, never silent loss.  ``SCOTD_TEST_HEAVY=1`` tries ten times as many inputs."""
import json
import os
import warnings
from fractions import Fraction

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from scotd_kit import answers  # noqa: E402
from scotd_kit.corpus import Corpus, TornLineWarning  # noqa: E402
from scotd_kit.io import DataError, read_json_records, read_jsonl, read_table  # noqa: E402
from scotd_kit.tasks import get_task, list_tasks  # noqa: E402
from scotd_kit.tasks.base import Example  # noqa: E402
from scotd_kit.teachers.replay import load_released, scotd_prediction, scotd_training_view  # noqa: E402

from . import fixture_records as F  # noqa: E402
from .reliability_report import record  # noqa: E402

GENERATIONS = "generations (every task's extractor)"
N = 400 if os.environ.get("SCOTD_TEST_HEAVY") == "1" else 40
SETTINGS = settings(max_examples=N, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
COUNTS: dict[str, list[int]] = {}      # property -> [tried, refused (DataError) or "no answer"]


def tally(name: str, error: bool) -> None:
    c = COUNTS.setdefault(name, [0, 0])
    c[0] += 1
    c[1] += error


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    for name, (tried, refused) in COUNTS.items():
        outcome = (f"{refused} scored 'no answer', {tried - refused} answered; no exception" if name == GENERATIONS
                   else f"{refused} refused with a DataError naming the file (and line), {tried - refused} read; "
                        f"no other exception, no record invented or dropped")
        record(f"test_reliability_properties.py ({name})", f"generated inputs: {name}", tried, outcome, 0)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=4), max_leaves=12)
VALID = {"commonsense_qa": F.CSQA[0], "openbookqa": F.OBQA[0], "quarel": F.QUAREL[0], "gsm8k": F.GSM8K[0],
         "gsm8k_socratic": F.GSM8K_SOCRATIC[0], "svamp": F.SVAMP[0], "strategyqa": F.STRATEGYQA[0],
         "anli_r3": F.ANLI[0], "sst2": {"sentence": "good .", "label": "1"},
         "imdb": {"Sentiment": "Positive", "Text": "Fine."}}


def _mutate(rec, path, value):
    """``rec`` with the field at ``path`` (a list of keys / indices, followed as far as it goes) set to ``value``."""
    rec = json.loads(json.dumps(rec))
    node = rec
    for step in path[:-1]:
        nxt = node.get(step) if isinstance(node, dict) else None
        if not isinstance(nxt, (dict, list)):
            break
        node = nxt
    if isinstance(node, dict) and path:
        node[path[-1] if path[-1] in node or not node else sorted(node)[len(str(path[-1])) % len(node)]] = value
    elif isinstance(node, list) and node:
        node[len(path) % len(node)] = value
    return rec


@pytest.mark.parametrize("task", sorted(VALID))
@SETTINGS
@given(path=st.lists(st.sampled_from(["question", "choices", "stem", "id", "answer", "label", "text", "answerKey",
                                      "Answer", "facts", "answer_index", "Body", "qid", "uid", 0, 1]), max_size=3),
       value=json_values)
def test_task_records_convert_or_raise_a_data_error(task, path, value):
    spec = get_task(task)
    rec = _mutate(VALID[task], path, value)
    try:
        ex = spec.from_file(rec, "f.jsonl:7")
    except DataError as e:
        assert "f.jsonl:7" in str(e)
        return tally("task records", True)
    assert isinstance(ex, Example) and all(isinstance(x, str) and x for x in (ex.id, ex.question, ex.label))
    tally("task records", False)


@SETTINGS
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_file_readers_read_or_raise_a_data_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("r") / "f"
    path.write_bytes(data)
    for reader in (read_jsonl, read_json_records, read_table):
        try:
            rows = list(reader(path))
        except DataError as e:
            assert str(path) in str(e)
            tally("raw file bytes", True)
            continue
        assert all(isinstance(n, int) and isinstance(r, dict) for n, r in rows)
        tally("raw file bytes", False)


def _corpus(tmp_path_factory):
    from scotd_kit.sampling import sample_corpus
    from scotd_kit.tasks import load_split

    from .test_corpus import ScriptedTeacher
    path = tmp_path_factory.mktemp("corpus") / "c.jsonl"
    sample_corpus("demo_compare", load_split("demo_compare", "validation")[:3], ScriptedTeacher(), n=2,
                  corpus_path=path, progress=False)
    return path.read_bytes()


@pytest.fixture(scope="module")
def corpus_bytes(tmp_path_factory):
    return _corpus(tmp_path_factory)


@SETTINGS
@given(cut=st.integers(0, 10 ** 6), pos=st.integers(0, 10 ** 6), junk=st.binary(max_size=12),
       kind=st.sampled_from(["truncate", "insert", "overwrite"]))
def test_the_corpus_reader_keeps_every_intact_record_or_names_the_bad_line(tmp_path_factory, corpus_bytes, cut, pos,
                                                                          junk, kind):
    good = corpus_bytes
    cut, pos = cut % (len(good) + 1), pos % (len(good) + 1)
    data = {"truncate": good[:cut], "insert": good[:pos] + junk + good[pos:],
            "overwrite": good[:pos] + junk + good[pos + len(junk):]}[kind]
    path = tmp_path_factory.mktemp("c") / "c.jsonl"
    path.write_bytes(data)
    original = [json.loads(line) for line in good.splitlines()]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TornLineWarning)
            got = Corpus(path).records()
    except DataError as e:
        assert f"{path}:" in str(e)
        return tally("corpus files cut or corrupted", True)
    assert all(r in original for r in got)                       # nothing invented
    if kind == "truncate":                                      # a crash loses at most the torn line
        assert got == original[:len(got)] and len(got) >= data.count(b"\n")
    tally("corpus files cut or corrupted", False)


released = st.lists(st.fixed_dictionaries({"prompt": st.text(max_size=20), "response": st.text(max_size=40),
                                           "score": st.floats(0, 1), "index": st.integers(0, 5),
                                           "rationale": st.text(max_size=20)}), max_size=5)


@SETTINGS
@given(records=released | json_values)
def test_the_replay_reader_reads_or_raises_a_data_error(tmp_path_factory, records):
    path = tmp_path_factory.mktemp("replay") / "x_30x.json"
    path.write_text(json.dumps(records))
    try:
        recs = load_released(path)
    except DataError as e:
        assert str(path) in str(e)
        return tally("released SCoTD corpora", True)
    view = scotd_training_view(recs)
    assert all(isinstance(k, int) for k in view)
    assert all(isinstance(scotd_prediction(r["response"]), str) for r in recs)
    tally("released SCoTD corpora", False)


texts = st.text(max_size=200) | st.from_regex(r"[\s\S]{0,40} So the answer is: [\s\S]{0,30}", fullmatch=True) | \
    st.from_regex(r"[-+\u2212]?[$]?[0-9][0-9,\u202f ]{0,12}(\.[0-9]{0,4})?(e[0-9]{1,5})?( [0-9]/[0-9]{1,3})?%?",
                  fullmatch=True)


@SETTINGS
@given(text=texts, task=st.sampled_from(sorted(set(list_tasks()))))
def test_every_extractor_scores_any_text(text, task):
    spec = get_task(task)
    gold = {answers.NUMBER: "12", answers.CHOICE: (spec.labels or ("(a)",))[0]}.get(spec.answer_type,
                                                                                   (spec.labels or ("yes",))[0])
    score = spec.score(text, Example("x", "q", gold, {}))
    assert isinstance(score["strict_correct"], bool) and isinstance(score["flexible_correct"], bool)
    value = answers.parse_number(text)
    assert value is None or isinstance(value, Fraction)
    if value is not None:
        assert answers.parse_number(answers.format_number(value)) == value
    tally(GENERATIONS, score["flexible"] is None)
