"""Evaluation: task-level extraction on tricky outputs, voting, accuracy arithmetic, CIs, real gold texts."""
import json
import math

import numpy as np
import pytest

from scotd_kit import evaluation as E
from scotd_kit.generation import Generation
from scotd_kit.io import read_jsonl
from scotd_kit.models import load_model
from scotd_kit.prompts import few_shot_prompt, student_input
from scotd_kit.tasks import Example, TaskSpec, get_task, load_split

from .conftest import shared_file


# --- task-level extraction of tricky outputs ---------------------------------------------------------
# (task, split, index of the fixture example, generated text, strict right, flexible right, in label set)
TRICKY = [
    # CSQA, gold (b) "library": the answer after the blank line is a recited demo and does not count
    ("commonsense_qa", "validation", 0, "Books are lent there. So the answer is: (b)\n\nQ: x\nA: So the answer is: (a)",
     True, True, True),
    ("commonsense_qa", "validation", 0, "So the answer is: (a) So the answer is: (B)", True, True, True),  # last, any case
    ("commonsense_qa", "validation", 0, "So the answer is: library", False, True, False),  # choice text, not label
    ("commonsense_qa", "validation", 0, "So the answer is: (f)", False, False, False),     # no such choice
    ("commonsense_qa", "validation", 0, "You borrow books at a library.", False, True, False),  # no marker
    ("commonsense_qa", "validation", 0, "Ünïcödé ✓ So the answer is: (b) ✓", False, True, False),
    # OBQA gold (a)
    ("openbookqa", "test", 0, "Plants make food from light. So the answer is: (A)", True, True, True),
    ("openbookqa", "test", 0, "So the answer is: (a) sunlight", False, True, False),
    # QuaRel gold (B) in upper case; SCoTD's lower-casing makes (b) right
    ("quarel", "validation", 0, "So the answer is: (b)", True, True, True),
    ("quarel", "validation", 0, "So the answer is: (A) or (B)", False, True, False),  # flexible: the last choice
    # GSM8K gold 7: "####" is a marker too; the latest marker wins
    ("gsm8k", "test", 0, "12 - 5 = 7\n#### 7", True, True, True),
    ("gsm8k", "test", 0, "#### 7 and then So the answer is: 8", False, False, True),
    ("gsm8k", "test", 0, "So the answer is: $7.", True, True, True),         # lm-eval's strict ignores $ and .
    ("gsm8k", "test", 0, "So the answer is: 7 pens", False, True, True),
    ("gsm8k", "test", 0, "So the answer is: seven", False, False, False),
    ("gsm8k", "test", 1, "So the answer is: 900.0", False, True, True),       # 900.0 is not "900" strictly
    ("gsm8k", "test", 1, "He pays 9 * 100 = 900 dollars.", False, True, True),  # no marker: last number
    ("svamp", "all", 1, "Half of one is 1/2. So the answer is: 1/2", False, True, True),  # gold 0.5
    # StrategyQA gold yes, with true/false aliases
    ("strategyqa", "train", 0, "Ice floats. So the answer is: yes", True, True, True),
    ("strategyqa", "train", 0, "So the answer is: Yes.", False, True, False),
    ("strategyqa", "train", 0, "So the answer is: true", False, True, False),
    ("strategyqa", "train", 0, "So the answer is: no", False, False, True),
    # IMDB contrast, gold positive / negative: "neutral" is the Fig. 6 failure (outside the label set)
    ("imdb", "test_contrast", 1, "So the answer is: neutral", False, False, False),
    ("imdb", "test_contrast", 1, "So the answer is: Negative", True, True, True),
    ("imdb", "test_contrast", 0, "not negative at all. So the answer is: positive", True, True, True),
    # ANLI gold "it is not possible to tell." with SCoTD's period (configs_data/complete/anli.py:137)
    ("anli_r3", "validation", 1, "So the answer is: it is not possible to tell.", True, True, True),
    ("anli_r3", "validation", 1, "So the answer is: it is not possible to tell", False, True, False),
    ("anli_r3", "validation", 1, "So the answer is: no.", False, False, True),
    ("anli_r3", "validation", 1, "It is not possible to tell.", True, True, True),   # no marker: the text itself
]


@pytest.mark.parametrize("task,split,i,text,strict,flexible,in_set", TRICKY,
                         ids=[f"{t[0]}-{n}" for n, t in enumerate(TRICKY)])
def test_task_extraction_of_tricky_outputs(fixture_data_dir, task, split, i, text, strict, flexible, in_set):
    spec = get_task(task)
    ex = load_split(spec, split, data_dir=fixture_data_dir)[i]
    s = spec.score(text, ex)
    assert (s["strict_correct"], s["flexible_correct"], s["in_label_set"]) == (strict, flexible, in_set), s


def test_demo_tasks_extraction():
    spec = get_task("demo_compare")
    ex = load_split(spec, "test")[0]
    name = ex.meta["choice_texts"]["abc".index(ex.label[1])]
    assert spec.score(f"So the answer is: {ex.label.upper()}", ex)["strict_correct"]
    assert spec.score(f"{name} has the most.", ex)["flexible_correct"]
    arith = load_split("demo_arith", "test")[0]
    assert get_task("demo_arith").score(f"So the answer is: {arith.label}.0", arith)["flexible_correct"]


# --- voting -------------------------------------------------------------------------------------------

def test_majority_vote_ties_go_to_the_first_seen():
    assert E.majority_vote(["(b)", "(a)", "(a)", "(b)"]) == "(b)"
    assert E.majority_vote(["(a)", "(b)", "(b)"]) == "(b)"
    assert E.majority_vote([None, "(a)", None, "(a)"]) is None             # malformed is a vote, seen first
    assert E.majority_vote([None, "(a)", None, "(a)"], drop_none=True) == "(a)"
    assert E.majority_vote([None, None], drop_none=True) is None
    assert E.majority_vote([]) is None


# --- a fake model: generate() returns texts we choose --------------------------------------------------

class FakeGenerate:
    """Stands in for scotd_kit.generation.generate: ``texts[prompt]`` are the samples of that prompt."""

    def __init__(self, texts: dict[str, list[str]]):
        self.texts, self.calls = texts, []

    def __call__(self, model, tokenizer, prompts, config, *, prefix="", seeds=None, batch_size=64, progress=False,
                 space_boundary=False):
        self.calls.append(dict(prompts=list(prompts), config=config, prefix=prefix, seeds=seeds))
        out = []
        for p in prompts:
            texts = self.texts[p][:config.n]
            assert len(texts) == config.n, f"the fake needs {config.n} texts for {p!r}"
            out.append([Generation(text=t, token_ids=[1], logprobs=[0.0],
                                   finish_reason="length" if len(t) > 1000 else "stop", prompt_tokens=3)
                        for t in texts])
        return out


def ex(i, label="(a)"):
    return Example(id=f"e{i}", question=f"question {i}\nAnswer Choices:\n(a) x\n(b) y\n(c) z", label=label,
                   meta={"labels": ["(a)", "(b)", "(c)"], "choice_texts": ["x", "y", "z"]})


def fake(monkeypatch, examples, texts):
    g = FakeGenerate({student_input(e.question): t for e, t in zip(examples, texts)})
    monkeypatch.setattr(E, "generate", g)
    return g


def test_greedy_accuracy_arithmetic(monkeypatch, tmp_path):
    exs = [ex(0), ex(1), ex(2, "(b)"), ex(3, "(c)"), ex(4)]
    texts = [["So the answer is: (a)"], ["So the answer is: (A)"], ["it must be y"],   # flexible only
             ["So the answer is: maybe"], ["Ünïcödé " * 500 + "(b" * 300]]             # outside the set; runaway
    g = fake(monkeypatch, exs, texts)
    r = E.evaluate(None, None, "demo_compare", exs, out_dir=tmp_path, progress=False)
    assert (r.n, r.accuracy, r.accuracy_flexible) == (5, 2 / 5, 3 / 5)
    assert r.out_of_label_set == 3 / 5 and r.malformed == 2 / 5
    assert [rec["correct_strict"] for rec in r.records] == [True, True, False, False, False]
    assert r.records[1]["strict"] == ["(A)"] and r.records[2]["vote_flexible"] == "(b)"
    assert r.records[4]["finish_reasons"] == ["length"]
    cfg = g.calls[0]["config"]
    assert (cfg.do_sample, cfg.n, cfg.max_new_tokens, cfg.stop, g.calls[0]["prefix"]) == (False, 1, 256, ("\n\n",), "")
    # saved: summary + one record per example, and the summary says how it was made
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["accuracy"] == 0.4 and summary["decoding"]["decoding"] == "greedy"
    assert set(summary["versions"]) >= {"torch", "transformers"}
    assert [rec["id"] for _, rec in read_jsonl(tmp_path / "records.jsonl")] == [e.id for e in exs]
    assert "records" not in r.summary()


def test_self_consistency_votes(monkeypatch):
    exs = [ex(0), ex(1), ex(2), ex(3, "(b)"), ex(4)]
    A, B, bad = "So the answer is: (a)", "So the answer is: (b)", "I am not sure."
    texts = [[A, B, A, B, B],            # (b) wins 3-2: wrong
             [B, A, A, B, bad],          # 2-2 tie: (b) seen first wins: wrong
             [bad, bad, bad, A, A],      # the same malformed text three times outvotes (a), as in SCoTD
             [B, "so y", "x", "y y", "z"],  # scattered malformed texts: (b) wins with one vote
             [A, A, "garbage1", "garbage2", "garbage3"]]   # the case: (a)
    fake(monkeypatch, exs, texts)
    r = E.evaluate(None, None, "demo_compare", exs, decoding="self_consistency", k=5, progress=False)
    # a winning malformed text is the answer SCoTD's reader gives (wrong: no label is "i am not sure.")
    assert [rec["vote_strict"] for rec in r.records] == ["(b)", "(b)", "i am not sure.", "(b)", "(a)"]
    assert [rec["in_label_set"] for rec in r.records] == [True, True, False, True, True]
    assert [rec["correct_strict"] for rec in r.records] == [False, False, False, True, True]
    assert r.malformed == 11 / 25  # 1 + 3 + 4 + 3 texts without a marker, reported beside the accuracy
    dropped = E.evaluate(None, None, "demo_compare", exs, decoding="self_consistency", k=5, drop_malformed=True,
                         progress=False)
    assert [rec["vote_strict"] for rec in dropped.records] == ["(b)", "(b)", "(a)", "(b)", "(a)"]
    assert [rec["vote_flexible"] for rec in dropped.records] == ["(b)", "(b)", "(a)", "(b)", "(a)"]


def test_malformed_samples_do_not_form_one_none_bloc():
    """Before: every marker-less sample voted for one shared None; SCoTD's reader scatters them."""
    spec = get_task("demo_compare")
    e = ex(0)
    rec = E.score_example(spec, e, "p", ["So the answer is: (a)", "So the answer is: (a)", "garbage1", "garbage2",
                                         "garbage3"], ["stop"] * 5)
    assert rec["vote_strict"] == "(a)" and rec["correct_strict"]


def _sc(texts, label="(a)", **kw):
    return E.score_example(get_task("demo_compare"), ex(0, label), "p", texts, ["stop"] * len(texts), **kw)


def test_sc_vote_follows_scotds_code():
    """SCoTD's simple_main.py: Counter(AnswerCleaner(text) for each sample).most_common(1), ties to the
    first seen, then a lower-cased match with gold. Marker-less samples vote with their cut text."""
    # the case, written bare: the two bare "(a)" are two votes for (a)
    rec = _sc(["(a)", "(a)", "garbage1", "garbage2", "garbage3"])
    assert (rec["vote_strict"], rec["correct_strict"], rec["marker_found"]) == ("(a)", True, [False] * 5)
    # two bare "(b)" outvote one "So the answer is: (a)", as Counter(["(b)", "(b)", "(a)"]) does
    rec = _sc(["(b)", "(b)", "So the answer is: (a)"])
    assert (rec["vote_strict"], rec["correct_strict"]) == ("(b)", False)
    assert _sc(["(b)", "(b)", "So the answer is: (a)"], label="(b)")["correct_strict"]
    # a bare "(a)" and a marked "(a)" are one answer: 2 votes against one (b)
    rec = _sc(["So the answer is: (b)", "(a)", "It is x. So the answer is: (a)"])
    assert (rec["vote_strict"], rec["correct_strict"]) == ("(a)", True)
    # drop_malformed=True: marker-less samples do not vote at all
    rec = _sc(["(b)", "(b)", "So the answer is: (a)"], drop_malformed=True)
    assert (rec["vote_strict"], rec["correct_strict"]) == ("(a)", True)
    rec = _sc(["(a)", "(a)", "garbage1"], drop_malformed=True)
    assert (rec["vote_strict"], rec["correct_strict"]) == (None, False)


def test_greedy_marker_less_text_equal_to_gold_is_strict_correct(monkeypatch):
    """SCoTD's greedy scoring reads a bare "(a)" as the answer (a); the malformed share still counts it."""
    exs = [ex(0), ex(1), ex(2, "(b)"), ex(3)]
    fake(monkeypatch, exs, [["(a)"], ["\n(A)\n\nQ: next"], ["(a)"], ["I would say (a)"]])
    r = E.evaluate(None, None, "demo_compare", exs, progress=False)
    assert [rec["correct_strict"] for rec in r.records] == [True, True, False, False]
    assert [rec["vote_strict"] for rec in r.records] == ["(a)", "(a)", "(a)", "i would say (a)"]
    assert [rec["correct_flexible"] for rec in r.records] == [True, True, False, True]
    assert (r.accuracy, r.malformed, r.out_of_label_set) == (0.5, 1.0, 0.25)
    dropped = E.evaluate(None, None, "demo_compare", exs, drop_malformed=True, progress=False)
    assert dropped.accuracy == 0.0 and dropped.malformed == 1.0


def test_rescore_under_the_new_reader_changes_a_stored_old_result(monkeypatch, tmp_path):
    """A result stored by scorer 2 (marker-less = no answer) is re-scored from its texts by today's reader."""
    exs = [ex(0)]
    fake(monkeypatch, exs, [["(a)"]])
    r = E.evaluate(None, None, "demo_compare", exs, progress=False)
    old = [{**r.records[0], "vote_strict": None, "correct_strict": False}]
    monkeypatch.setattr(E, "generate", None)
    again = E.rescore("demo_compare", exs, old, {**r.decoding, "scorer": "2-scotd-vote"})
    assert again.accuracy == 1.0 and again.decoding["scorer"] == E.SCORER_VERSION != "2-scotd-vote"


def test_rescore_recomputes_from_stored_texts_without_generating(monkeypatch, tmp_path):
    exs = [ex(0), ex(1, "(b)")]
    A, B = "So the answer is: (a)", "So the answer is: (b)"
    fake(monkeypatch, exs, [[A, A, "x"], ["nope", B, B]])
    r = E.evaluate(None, None, "demo_compare", exs, decoding="self_consistency", k=3, out_dir=tmp_path,
                   progress=False)
    monkeypatch.setattr(E, "generate", None)           # any generation would fail now
    stored = [rec for _, rec in read_jsonl(tmp_path / "records.jsonl")]
    again = E.rescore("demo_compare", exs, stored, r.decoding)
    assert (again.accuracy, again.malformed, again.n) == (r.accuracy, r.malformed, 2) == (1.0, 2 / 6, 2)
    assert again.decoding["scorer"] == E.SCORER_VERSION


def test_self_consistency_settings_and_seeds(monkeypatch):
    exs = [ex(0), ex(1)]
    g = fake(monkeypatch, exs, [["(a)"] * 30] * 2)
    E.evaluate(None, None, "demo_compare", exs, decoding="self_consistency", seed=1, progress=False)
    E.evaluate(None, None, "demo_compare", exs[::-1], decoding="self_consistency", seed=1, progress=False)
    cfg = g.calls[0]["config"]
    assert (cfg.do_sample, cfg.n, cfg.temperature, cfg.top_k, cfg.top_p) == (True, 30, 0.7, 50, 1.0)
    assert g.calls[0]["seeds"] == g.calls[1]["seeds"][::-1]  # an example's seed follows its id
    assert len(set(g.calls[0]["seeds"])) == 2


def test_prompting_baseline_prefix_and_no_cot(monkeypatch):
    demos = [("q one", "Because.", "(a)"), ("q two", "Since so.", "(c)")]
    exs = [ex(0), ex(1, "(b)")]
    g = fake(monkeypatch, exs, [["(a)"], ["So the answer is: (b)"]])
    r = E.evaluate(None, None, "demo_compare", exs, demos=demos, cot=False, progress=False)
    prefix = g.calls[0]["prefix"]
    assert prefix + student_input(exs[0].question) == few_shot_prompt([(x, "", y) for x, _, y in demos], exs[0].question)
    assert "Because." not in prefix and prefix.endswith("\n\n")
    assert r.accuracy == 1.0  # the bare "(a)" is read as the answer in the no-CoT baseline
    E.evaluate(None, None, "demo_compare", exs, demos=demos, progress=False)
    assert g.calls[1]["prefix"] + student_input("z") == few_shot_prompt(demos, "z")
    student = E.evaluate(None, None, "demo_compare", exs, progress=False)
    # a student's bare "(a)" is read as (a) too (SCoTD's reader), but it counts as malformed; the
    # no-CoT baseline is not asked for a marker, so its bare answers are not
    assert (student.accuracy, student.malformed, r.malformed) == (1.0, 0.5, 0.0)
    with pytest.raises(ValueError, match="demo 1 must be"):
        E.evaluate(None, None, "demo_compare", exs, demos=[demos[0], ("only two", "(a)")], progress=False)


def test_bad_arguments_and_scoring_errors_name_the_record(monkeypatch):
    exs = [ex(0)]
    fake(monkeypatch, exs, [["So the answer is: (a)"]])
    with pytest.raises(ValueError, match="decoding must be one of"):
        E.evaluate(None, None, "demo_compare", exs, decoding="beam")
    with pytest.raises(TypeError, match=r"examples\[0\]"):
        E.evaluate(None, None, "demo_compare", [{"id": 1}])
    broken = TaskSpec(name="broken", description="", answer_type="bool")
    with pytest.raises(RuntimeError, match="example 'e0' of task 'broken'"):
        E.evaluate(None, None, broken, exs, progress=False)
    empty = E.evaluate(None, None, "demo_compare", [], progress=False)
    assert empty.n == 0 and math.isnan(empty.accuracy)


def test_contrast_consistency(monkeypatch, tmp_path):
    orig = [Example(id=str(i), question=f"orig {i}", label=l, meta={"labels": ["positive", "negative"]})
            for i, l in enumerate(["positive", "negative", "positive", "negative"])]
    cont = [Example(id=str(i), question=f"cont {i}", label=l, meta={"labels": ["positive", "negative"]})
            for i, l in enumerate(["negative", "positive", "negative", "positive"])]
    say = lambda y: [f"So the answer is: {y}"]  # noqa: E731
    fake(monkeypatch, orig + cont, [say("positive"), say("negative"), say("positive"), say("positive"),
                                    say("negative"), say("negative"), say("positive"), say("positive")])
    r = E.evaluate_contrast(None, None, orig, cont, out_dir=tmp_path, progress=False)
    assert (r.original.accuracy, r.contrast.accuracy) == (0.75, 0.5)
    assert r.consistency == 0.25  # only pair 0 is right on both sides; pair 3 right only on the contrast
    assert json.loads((tmp_path / "summary.json").read_text())["consistency"] == 0.25
    assert (tmp_path / "contrast" / "records.jsonl").exists()
    with pytest.raises(ValueError, match="pair by position"):
        E.evaluate_contrast(None, None, orig, cont[:3])


# --- bootstrap -------------------------------------------------------------------------------------------

def test_bootstrap_ci_properties():
    assert E.bootstrap_ci([True] * 20) == (1.0, 1.0)
    assert E.bootstrap_ci([False] * 20) == (0.0, 0.0)
    assert all(math.isnan(v) for v in E.bootstrap_ci([]))
    data = [True] * 240 + [False] * 160
    lo, hi = E.bootstrap_ci(data, n_boot=4000, seed=1)
    assert E.bootstrap_ci(data, n_boot=4000, seed=1) == (lo, hi)
    assert lo < 0.6 < hi
    # the normal approximation: 0.6 +- 1.96 * sqrt(0.6 * 0.4 / 400) = 0.6 +- 0.048
    assert lo == pytest.approx(0.552, abs=0.01) and hi == pytest.approx(0.648, abs=0.01)
    # against the textbook bootstrap written out by hand (resample indices, average, percentiles)
    rng = np.random.default_rng(7)
    arr = np.array(data, dtype=float)
    means = arr[rng.integers(0, len(arr), size=(4000, len(arr)))].mean(1)
    assert (lo, hi) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])), abs=0.01)
    # four times the data, half the width
    wide, narrow = E.bootstrap_ci(data, n_boot=4000), E.bootstrap_ci(data * 4, n_boot=4000)
    assert (narrow[1] - narrow[0]) == pytest.approx((wide[1] - wide[0]) / 2, rel=0.15)


# --- real models: greedy does not depend on batch size; sampling is seeded -------------------------------

@pytest.fixture(scope="module")
def tiny():
    model, tok = load_model("tiny-gpt2")
    return model.eval(), tok


def test_greedy_independent_of_batch_size(tiny):
    exs = load_split("demo_compare", "test")[:6]
    runs = [E.evaluate(*tiny, "demo_compare", exs, max_new_tokens=12, batch_size=b, progress=False)
            for b in (1, 4, 64)]
    assert runs[0].records == runs[1].records == runs[2].records
    assert all(len(r["texts"]) == 1 for r in runs[0].records)


def test_self_consistency_is_deterministic_and_subset_independent(tiny):
    exs = load_split("demo_compare", "test")[:4]
    kw = dict(decoding="self_consistency", k=5, max_new_tokens=8, seed=3, progress=False)
    a = E.evaluate(*tiny, "demo_compare", exs, **kw)
    b = E.evaluate(*tiny, "demo_compare", exs[2:], batch_size=7, **kw)
    assert [r["texts"] for r in a.records[2:]] == [r["texts"] for r in b.records]
    assert len(set(a.records[0]["texts"])) > 1  # five different samples
    c = E.evaluate(*tiny, "demo_compare", exs, **{**kw, "seed": 4})
    assert [r["texts"] for r in c.records] != [r["texts"] for r in a.records]


# --- the real files: gold answer texts fed back through the extractor score 100% ------------------------

def test_gsm8k_gold_solutions_score_100(monkeypatch):
    """Every GSM8K gold answer text is read right, strictly and flexibly -- except the handful whose
    original text holds a blank line: SCoTD's rule (and the decoding's stop) ends a generation there,
    before the "#### N" line. Those are exactly the failures; the kit's solutions collapse them."""
    for split in ("train", "test"):
        path = shared_file(f"gsm8k/{split}.jsonl")
        exs = load_split("gsm8k", split, source="files")
        raw = [r["answer"] for _, r in read_jsonl(path)]
        finals = [a.rsplit("####", 1)[1].strip() for a in raw]
        blank = sorted(e.id for e, a in zip(exs, raw) if "\n\n" in a.strip())
        assert len(blank) <= 0.002 * len(exs), blank  # 4 of 7,473 in train, 2 of 1,319 in test
        # the original answer text (with <<calc>> annotations): exactly the blank-line ones fail
        fake(monkeypatch, exs, [[t] for t in raw])
        r = E.evaluate(None, None, "gsm8k", exs, progress=False)
        wrong = sorted(rec["id"] for rec in r.records if not (rec["correct_strict"] and rec["correct_flexible"]))
        assert wrong == blank, split
        assert r.accuracy == r.accuracy_flexible == 1 - len(blank) / len(exs)
        # the kit's solution (blank lines collapsed, so it is a usable target) + the "#### N" line: all right
        fake(monkeypatch, exs, [[e.meta["solution"] + "\n#### " + f] for e, f in zip(exs, finals)])
        r = E.evaluate(None, None, "gsm8k", exs, progress=False)
        assert r.accuracy == r.accuracy_flexible == 1.0, split


def test_strategyqa_gold_facts_score_100(monkeypatch):
    shared_file("strategyqa/train.json")
    exs = load_split("strategyqa", "train", source="files") + load_split("strategyqa", "validation", source="files")
    fake(monkeypatch, exs, [[" ".join(e.meta["facts"]) + " So the answer is: " + e.label] for e in exs])
    r = E.evaluate(None, None, "strategyqa", exs, progress=False)
    assert (r.n, r.accuracy, r.accuracy_flexible, r.out_of_label_set) == (len(exs), 1.0, 1.0, 0.0)


def test_greedy_decoded_alongside_self_consistency_is_the_greedy_evaluation(tiny, tmp_path):
    """evaluate(self_consistency, greedy_dir=) decodes each example's greedy completion in the calls that sample it
    and saves the greedy evaluation there: the records and summary a greedy evaluation makes, the samples those of
    a call without it."""
    exs = load_split("demo_compare", "test")[:5]
    kw = dict(max_new_tokens=10, seed=3, progress=False)
    both = E.evaluate(*tiny, "demo_compare", exs, decoding="self_consistency", k=3, out_dir=tmp_path / "sc",
                      greedy_dir=tmp_path / "greedy", **kw)
    sc = E.evaluate(*tiny, "demo_compare", exs, decoding="self_consistency", k=3, **kw)
    greedy = E.evaluate(*tiny, "demo_compare", exs, **kw)
    assert both.records == sc.records and all(len(r["texts"]) == 3 for r in both.records)
    saved = [r for _, r in read_jsonl(tmp_path / "greedy" / "records.jsonl")]
    assert saved == greedy.records
    assert json.loads((tmp_path / "greedy" / "summary.json").read_text()) == json.loads(json.dumps(greedy.summary()))
    with pytest.raises(ValueError, match="greedy_dir"):
        E.evaluate(*tiny, "demo_compare", exs, greedy_dir=tmp_path / "g2", out_dir=tmp_path / "x", **kw)
