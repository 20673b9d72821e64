"""Corpus on disk, resume, top-up, torn lines, locking, ledger, budget, dry run, parse statuses."""
import json
import warnings

import pytest

from scotd_kit import ledger as ledger_mod
from scotd_kit.corpus import Corpus, CorpusLockedError, RECORD_FIELDS, TornLineWarning, load_corpus
from scotd_kit.exemplars import get_exemplars
from scotd_kit.ledger import Budget, Price, read_ledger
from scotd_kit.prompts import few_shot_prompt
from scotd_kit.sampling import BudgetWarning, sample_corpus, shared_prefix
from scotd_kit.tasks import get_task, list_tasks, load_split
from scotd_kit.tasks.base import Example
from scotd_kit.tasks.commonsense_qa import format_question
from scotd_kit.teachers import Completion, RequestResult, Teacher
from scotd_kit.teachers.base import approx_tokens


class ScriptedTeacher:
    """A deterministic in-process teacher that logs what it is asked."""

    local = False
    tokens_exact = True

    def __init__(self, texts=None, model_name="scripted"):
        self.id = f"scripted:{model_name}"
        self.model_name = model_name
        self.asked = []          # (instance_id, start, n) per request
        self.texts = texts       # optional: list of (text, finish_reason) cycled over samples

    def count_tokens(self, text):
        return approx_tokens(text)

    def sample(self, requests, settings):
        out = []
        for r in requests:
            self.asked.append((r.instance_id, r.start, r.n))
            comps = []
            for j in range(r.n):
                if self.texts:
                    text, reason = self.texts[(r.start + j) % len(self.texts)]
                else:
                    # seeded per sample, as the teacher contract asks (SampleRequest.sample_seeds)
                    text, reason = f"Sample {r.sample_seeds[j] % 997}. So the answer is: (a)", "stop"
                comps.append(Completion(text=text, finish_reason=reason, completion_tokens=10,
                                        prompt_tokens=approx_tokens(r.prompt), mean_logprob=-0.5))
            out.append(RequestResult(comps, prompt_tokens=approx_tokens(r.prompt), completion_tokens=10 * r.n))
        return out


@pytest.fixture
def examples():
    return load_split("demo_compare", "validation")[:4]


def run(path, teacher, examples, n, **kw):
    return sample_corpus("demo_compare", examples, teacher, n=n, corpus_path=path, progress=False, **kw)


def test_records_have_the_schema_and_are_keyed(tmp_path, examples):
    teacher = ScriptedTeacher()
    assert isinstance(teacher, Teacher)
    corpus = run(tmp_path / "c.jsonl", teacher, examples, 3, batch_size=2)
    recs = load_corpus(tmp_path / "c.jsonl")
    assert len(recs) == 12 and all(set(RECORD_FIELDS) <= set(r) for r in recs)
    r = recs[0]
    assert r["correct"] == (r["gold"] == "(a)") and r["answer"] == "(a)" and r["parse_status"] == "ok"
    assert r["rationale"].startswith("Sample ") and r["settings"]["temperature"] == 1.0
    assert corpus.count(examples[0].id) == 3 and list(corpus.by_instance()) == [e.id for e in examples]
    # a rerun asks for nothing; another temperature is another corpus key
    run(tmp_path / "c.jsonl", teacher, examples, 3)
    assert len(teacher.asked) == 4
    run(tmp_path / "c.jsonl", teacher, examples, 3, temperature=0.7)
    assert len(load_corpus(tmp_path / "c.jsonl")) == 24


def test_top_up_from_2_to_5_asks_only_for_3_more(tmp_path, examples):
    path = tmp_path / "c.jsonl"
    teacher = ScriptedTeacher()
    run(path, teacher, examples, 2)
    before = path.read_bytes()
    teacher.asked.clear()
    corpus = run(path, teacher, examples, 5)
    assert sorted(teacher.asked) == sorted((e.id, 2, 3) for e in examples)
    assert path.read_bytes().startswith(before)
    assert all([r["sample_index"] for r in v] == [0, 1, 2, 3, 4] for v in corpus.by_instance().values())
    led = read_ledger(corpus.ledger_path)
    assert [r["samples"] for r in led["runs"]] == [8, 12] and led["runs"][1]["cache_hits"] == 8


def test_torn_last_line_is_reported_truncated_and_asked_again(tmp_path, examples):
    path = tmp_path / "c.jsonl"
    teacher = ScriptedTeacher()
    run(path, teacher, examples, 2)
    good = path.read_bytes()
    lines = good.splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][:25])          # the crash cut the last record
    with pytest.warns(TornLineWarning, match=rf"{path.name}:8: torn last line"):
        assert len(Corpus(path).records()) == 7
    teacher.asked.clear()
    with pytest.warns(TornLineWarning, match=rf"{path.name}:8: .*truncated"):
        run(path, teacher, examples, 2)
    assert teacher.asked == [(examples[-1].id, 1, 1)]
    now = path.read_bytes().splitlines(keepends=True)
    assert now[:-1] == lines[:-1]                                  # the complete lines are untouched
    # the re-asked sample has the lost one's key AND its text: its seed is (seed, instance, index) alone
    assert json.loads(now[-1])["key"] == json.loads(lines[-1])["key"]
    assert json.loads(now[-1])["text"] == json.loads(lines[-1])["text"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(Corpus(path).records()) == 8


def test_a_corrupt_complete_line_is_an_error_naming_file_and_line(tmp_path, examples):
    path = tmp_path / "c.jsonl"
    run(path, ScriptedTeacher(), examples, 1)
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = "{not json}\n"
    path.write_text("".join(lines))
    with pytest.raises(ValueError, match=rf"{path.name}:2: corpus line is not valid JSON"):
        Corpus(path).records()


def test_a_second_run_on_the_same_corpus_is_refused(tmp_path, examples):
    path = tmp_path / "c.jsonl"
    with Corpus(path).writer():
        with pytest.raises(CorpusLockedError, match="being written by another sampling run"):
            run(path, ScriptedTeacher(), examples, 1)
    run(path, ScriptedTeacher(), examples, 1)                     # released afterwards


def test_dry_run_estimates_and_spends_nothing(tmp_path, examples):
    path = tmp_path / "c.jsonl"
    teacher = ScriptedTeacher(model_name="priced")
    est = run(path, teacher, examples, 3, max_new_tokens=50, dry_run=True,
              prices={"priced": Price(prompt_per_1m=2.0, completion_per_1m=10.0)}).estimate
    assert not path.exists() and teacher.asked == []
    prompt_tokens = sum(approx_tokens(few_shot_prompt(get_exemplars("demo_compare"), e.question)) for e in examples)
    assert (est.samples_needed, est.cache_hits, est.requests) == (12, 0, 4)
    assert est.prompt_tokens == prompt_tokens and est.completion_tokens == 12 * 50
    assert est.cost_usd == pytest.approx((prompt_tokens * 2.0 + 600 * 10.0) / 1e6)
    run(path, teacher, examples, 1)
    est = run(path, teacher, examples, 3, dry_run=True).estimate
    assert (est.samples_needed, est.cache_hits, est.observed_completion_mean) == (8, 4, 10.0)
    assert est.cost_usd is None and "unknown" in str(est)          # no price set for this model


def test_budget_stops_cleanly_and_a_rerun_continues(tmp_path, examples):
    path = tmp_path / "c.jsonl"
    teacher = ScriptedTeacher()
    per_instance = approx_tokens(few_shot_prompt(get_exemplars("demo_compare"), examples[0].question)) + 20
    with pytest.warns(BudgetWarning, match="budget"):
        corpus = run(path, teacher, examples, 2, batch_size=1, max_new_tokens=10,
                     budget=Budget(tokens=int(per_instance * 2.5)))
    assert corpus.stopped == "budget"
    led = read_ledger(corpus.ledger_path)
    assert led["runs"][-1]["stopped"] == "budget"
    assert led["totals"]["prompt_tokens"] + led["totals"]["completion_tokens"] <= per_instance * 2.5
    assert 1 <= len(corpus.by_instance()) < 4 and all(len(v) == 2 for v in corpus.by_instance().values())
    corpus = run(path, teacher, examples, 2, batch_size=1, max_new_tokens=10)      # no budget: it finishes
    assert corpus.stopped is None and len(corpus.records()) == 8
    with pytest.raises(ValueError, match="needs a price"):
        run(tmp_path / "d.jsonl", ScriptedTeacher(model_name="unpriced"), examples, 1, budget={"dollars": 1.0})
    ledger_mod.set_price("cheap", 1.0, 1.0)
    try:
        with pytest.warns(BudgetWarning):
            c = run(tmp_path / "e.jsonl", ScriptedTeacher(model_name="cheap"), examples, 1, batch_size=1,
                    max_new_tokens=10, budget=Budget(dollars=per_instance * 1.5 / 1e6))
        assert len(c.records()) == 1 and read_ledger(c.ledger_path)["totals"]["cost_usd"] <= per_instance * 1.5 / 1e6
    finally:
        ledger_mod.PRICES.pop("cheap")


def test_empty_truncated_and_answerless_samples_are_stored_with_their_status(tmp_path, examples):
    name = examples[0].meta["choice_texts"][0]                    # the text of choice (a)
    texts = [("", "stop"), (f"{name} has more and then", "length"), (f"I think it is {name}.", "stop"),
             (f"{name} has 3. So the answer is: (a)", "eos"), ("  \n ", "stop")]
    corpus = run(tmp_path / "c.jsonl", ScriptedTeacher(texts), examples[:1], 5)
    recs = corpus.by_instance()[examples[0].id]
    assert [r["parse_status"] for r in recs] == ["empty", "length", "no_marker", "ok", "empty"]
    assert [r["answer"] for r in recs] == [None, None, None, "(a)", None]
    assert recs[2]["answer_flexible"] == "(a)" and recs[2]["rationale"] == ""
    assert recs[3]["rationale"] == f"{name} has 3."


def test_prompts_follow_scotd_and_share_one_prefix():
    demos = get_exemplars("commonsense_qa")
    prompt = few_shot_prompt(demos, "Q?")
    assert prompt.startswith(shared_prefix(demos)) and prompt.endswith("\n\nQ: Q?\nA: ")
    assert prompt.count(" So the answer is: ") == 7 and shared_prefix(demos).endswith("(c)\n\n")


def test_exemplars_match_scotd_and_score_correct_under_every_task():
    # SCoTD's own strings (configs_data/complete/commonsenseqa.py), rebuilt by the kit's formatter
    csqa = get_exemplars("commonsense_qa")
    assert csqa[0][0] == ("What do people use to absorb extra ink from a fountain pen?\nAnswer Choices:\n"
                          "(a) shirt pocket\n(b) calligrapher's hand\n(c) inkwell\n(d) desk drawer\n(e) blotter")
    assert csqa[3][0].startswith("Sammy wanted to go to where the people were.  Where")
    assert get_exemplars("openbookqa")[0][0] == "Poison causes harm to which of the following? (a) a Tree (b) a robot (c) a house (d) a car"
    assert [len(get_exemplars(t)) for t in ("commonsense_qa", "openbookqa", "quarel")] == [7, 4, 5]
    for name in list_tasks():
        task = get_task(name)
        for x, r, y in get_exemplars(name):
            s = task.score(f"{r} So the answer is: {y}", Example("x", x, y, {}))
            assert s["strict_correct"] and s["flexible_correct"], (name, y)
    demo = load_split("demo_compare", "train")[0]
    assert get_exemplars("demo_compare")[0] == (demo.question, demo.meta["rationale"], demo.label)
    assert format_question("a?", ["x"]) == "a?\nAnswer Choices:\n(a) x"


def test_a_marker_less_teacher_cot_equal_to_gold_is_correct_as_scotds_score_but_gives_no_target(tmp_path, examples):
    """SCoTD's corpus ``score`` is its reader's match, so a teacher text that is just the gold label
    passes the supervised filter (and counts in filter_stats); the kit has no rationale/marker target
    for it (``answer`` None), so build_instances leaves it out."""
    from scotd_kit import curation

    gold = examples[0].label
    texts = [(gold, "stop"), (f"x. So the answer is: {gold}", "stop"), ("(z) maybe", "stop")]
    corpus = run(tmp_path / "c.jsonl", ScriptedTeacher(texts), examples[:1], 3)
    recs = corpus.by_instance()[examples[0].id]
    assert [(r["parse_status"], r["answer"], r["correct"]) for r in recs] == [
        ("no_marker", None, True), ("ok", gold, True), ("no_marker", None, False)]
    assert len(curation.filter_correct(recs)) == 2 and curation.filter_stats(recs)["kept"] == 2
    inst = curation.build_instances(recs, examples[:1], "full")
    assert [i["targets"] for i in inst] == [[f"x. So the answer is: {gold}\n\n"]]
