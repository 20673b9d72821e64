"""Socratic CoT: formats round-trip, the teacher-decomposition parser, the iterative loop, GSM8K socratic."""
import json
import re

import pytest

from scotd_kit.io import DataError
from scotd_kit.socratic import decompositions as dec
from scotd_kit.socratic import formats, instances, loop
from scotd_kit.socratic.loop import LoopConfig, solve_iterative, solve_one
from scotd_kit.socratic.scoring import categories, score_trace
from scotd_kit.tasks import get_task, load_split

from .conftest import shared_file

PAIRS = [("How many apples are in the boxes?", "There are 3 * 4 = 12 apples."),
         ("How many apples does Ann have now?", "Ann has 5 + 12 = 17 apples.")]


# --- formats ----------------------------------------------------------------------------------

def test_unified_round_trip():
    text = formats.unified_target(PAIRS, "17")
    assert text.endswith(" So the answer is: 17\n\n")
    pairs, final, ok = formats.parse_unified(text)
    assert (pairs, final, ok) == (PAIRS, "17", True)


def test_iterative_round_trip_rebuilds_every_step():
    """QG / QA targets parse back to the pairs, and each context is the unified text so far."""
    ex = load_split("demo_socratic", "train", limit=1)[0]
    d, _ = dec.gold_decompositions([ex])
    qg, qa = instances.qg(d), instances.qa(d)
    pairs = list(d[0].pairs)
    assert len(qg) == len(pairs) + 1 and len(qa) == len(pairs)
    got = []
    for i, (g, a) in enumerate(zip(qg, qa)):
        kind, q = formats.parse_qg(g["targets"][0])
        assert kind == "question"
        assert a["input"] == g["input"] + g["targets"][0] + "\n" + formats.ANSWER
        got.append((q, formats.parse_qa(a["targets"][0])))
        assert formats.parse_steps(g["input"].split("A: ", 1)[1])[0] == pairs[:i]
    assert got == pairs
    assert formats.parse_qg(qg[-1]["targets"][0]) == ("end", None)


@pytest.mark.parametrize("text,ok", [("<q> a <a> b", True), ("<a> b <q> a", False), ("<q> a <q> b", False),
                                     ("<q> a", False), ("", False), ("junk <q> a <a> b", False),
                                     ("<q>  <a> b", False)])
def test_parse_steps_flags_malformed(text, ok):
    assert formats.parse_steps(text)[1] is ok


def test_marker_inside_step_text_is_an_error():
    with pytest.raises(DataError, match="marker"):
        formats.unified_target([("what is <a>?", "x")], "1")


@pytest.mark.parametrize("text,expected", [
    ("<end>", ("end", None)), (" <q> How many? \n<a> 3", ("question", "How many?")),
    ("<q> How many? <a> 3", ("question", "How many?")), ("How many?", ("malformed", "How many?")),
    ("<q>   ", ("malformed", "<q>   ")), ("", ("malformed", ""))])
def test_parse_qg(text, expected):
    assert formats.parse_qg(text) == expected


@pytest.mark.parametrize("name", ["tiny-gpt2", "smollm2-135m-instruct"])
def test_markers_survive_tokenisation(name):
    from scotd_kit.models import load_tokenizer

    tok = load_tokenizer(name)
    text = formats.qa_input("Ann has 5 apples.", PAIRS, "How many?") + formats.qa_target("12.") + formats.END
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False) == text
    for m in formats.MARKERS:   # plain text: never dropped as a special token
        assert m not in tok.all_special_tokens


def test_markers_absent_from_the_datasets_text():
    for task, split in [("gsm8k_socratic", "train"), ("strategyqa", "train"), ("svamp", "all")]:
        spec = get_task(task)
        shared_file(f"{spec.data_subdir}/{spec.files[split].path}")
        for ex in load_split(task, split, source="files"):
            text = ex.question + json.dumps(ex.meta)
            assert not any(m in text for m in formats.MARKERS), (task, ex.id)


# --- teacher decompositions ---------------------------------------------------------------------

GOOD = "Sub-question 1: How many?\nSub-answer 1: 3 * 4 = 12.\nSub-question 2: Total?\nSub-answer 2: 17."


def test_parse_numbered_good():
    assert dec.parse_numbered(GOOD) == [("How many?", "3 * 4 = 12."), ("Total?", "17.")]


@pytest.mark.parametrize("text,category", [
    ("", "empty"), ("   \n ", "empty"),
    ("First we count.\nSub-answer 1: 3", "unnumbered_line"),
    ("Sub-question 2: a\nSub-answer 2: b", "bad_numbering"),
    ("Sub-question 1: a\nSub-question 2: b", "bad_numbering"),
    ("Sub-answer 1: b", "bad_numbering"),
    ("Sub-question 1: a", "missing_answer"),
    ("Sub-question 1: a\nSub-answer 1: ", "empty_step")])
def test_parse_numbered_malformed(text, category):
    with pytest.raises(dec.StepParseError) as e:
        dec.parse_numbered(text)
    assert e.value.category == category


def _record(iid, rationale, correct=True, status="ok", sample_index=0):
    return {"instance_id": iid, "sample_index": sample_index, "rationale": rationale, "parse_status": status,
            "correct_flexible": correct, "answer_flexible": "17" if correct else "3"}


def test_read_teacher_decompositions_counts_and_names_lines(tmp_path):
    exs = load_split("demo_socratic", "train", limit=3)
    a, b, c = (e.id for e in exs)
    lines = [json.dumps(_record(a, GOOD)), json.dumps(_record(b, GOOD, correct=False)),
             json.dumps(_record(c, "Sub-question 1: a")), "{not json", json.dumps(_record("nope", GOOD)),
             json.dumps(_record(c, GOOD, status="no_marker")), json.dumps(_record(c, GOOD, sample_index=5))]
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(lines) + "\n" + json.dumps(_record(c, GOOD)))   # torn last line
    with pytest.warns(UserWarning, match="skipped"):
        kept, report = dec.read_teacher_decompositions(path, exs, n=1)
    assert [d.example.id for d in kept] == [a] and kept[0].source == f"teacher:{path}:1"
    assert report.asked == 6 and report.kept == 1
    assert report.dropped == {"wrong_answer": 1, "missing_answer": 1, "bad_json": 1, "unknown_instance": 1,
                              "no_final_answer": 1}
    assert [s.split(": ")[0] for s in report.skipped] == [f"{path}:3", f"{path}:4", f"{path}:5"]


def test_teacher_prompt_goes_through_the_sampling_engine(tmp_path):
    """A scripted teacher: the corpus is written, a rerun asks nothing, and the records parse."""
    from scotd_kit.teachers.base import Completion, RequestResult

    exs = load_split("demo_socratic", "train", limit=4)[1:]

    class Scripted:
        id, model_name, local = "scripted", "scripted", True
        calls = 0

        def sample(self, requests, settings):
            Scripted.calls += 1
            out = []
            for r in requests:
                ex = next(e for e in exs if e.id == r.instance_id)
                body = dec.numbered(dec.gold_pairs(ex)) if ex.id != exs[0].id else "Sub-question 1: oops"
                out.append(RequestResult([Completion(f"{body} So the answer is: {ex.label}", "stop")]))
            return out

        def count_tokens(self, text):
            return len(text.split())

    path = tmp_path / "teacher.jsonl"
    dec.sample_teacher_decompositions("demo_socratic", exs, Scripted(), corpus_path=path, progress=False)
    assert Scripted.calls == 1 and "Sub-question 1:" in dec.teacher_demos("demo_socratic")[0][1]
    dec.sample_teacher_decompositions("demo_socratic", exs, Scripted(), corpus_path=path, progress=False)
    assert Scripted.calls == 1   # cached: nothing asked again
    with pytest.warns(UserWarning):
        kept, report = dec.read_teacher_decompositions(path, exs)
    assert (report.asked, report.kept, report.dropped) == (3, 2, {"missing_answer": 1})
    assert [list(d.pairs) for d in kept] == [dec.gold_pairs(e) for e in exs[1:]]


# --- GSM8K socratic on the real files -------------------------------------------------------------

def test_gsm8k_socratic_conversion_is_exact_on_the_real_files():
    """Every record's steps, re-joined as ``q ** a`` lines, are the original answer with the
    ``<<calc>>`` annotations removed (blank lines aside), and the unified text parses back to them."""
    n_ok = {}
    for split in ("train", "test"):
        n_ok[split] = 0
        path = shared_file(f"gsm8k/{split}_socratic.jsonl")
        raw = [json.loads(l) for l in path.read_text().splitlines()]
        examples = load_split("gsm8k_socratic", split, source="files")
        assert len(examples) == len(raw)
        for rec, ex in zip(raw, examples):
            body, final = rec["answer"].rsplit("####", 1)
            expected = [l for l in re.sub(r"<<[^<>]*>>", "", body).strip().split("\n") if l.strip()]
            assert [f"{q} ** {a}".strip() for q, a in ex.meta["steps"]] == [l.strip() for l in expected], ex.id
            assert not any("<<" in q + a for q, a in ex.meta["steps"])
            assert ex.label == final.strip().replace(",", "")
            if all(a for _, a in ex.meta["steps"]):
                pairs = dec.gold_pairs(ex)
                assert formats.parse_unified(formats.unified_target(pairs, ex.label)) == (pairs, ex.label, True)
                n_ok[split] += 1
        kept, report = dec.gold_decompositions(examples)
        assert report.kept == len(kept) == n_ok[split] and report.dropped == {"empty_step": len(raw) - n_ok[split]}
        assert all("empty sub-answer" in s for s in report.skipped)
    # six records hold a step that was only a calculator annotation (see decompositions.gold_pairs)
    assert n_ok == {"train": 7473 - 4, "test": 1319 - 2}


# --- the iterative loop -----------------------------------------------------------------------------

QG, QA = ("qg", None), ("qa", None)   # (model, tokenizer) pairs the scripted generate tells apart


class _ScriptedModels:
    """Stands in for ``generation.generate``: QG asks ``plan[problem]`` questions then ends (or
    misbehaves), QA answers with a number; records every call's batch size."""

    def __init__(self, plan):
        self.plan, self.batches = plan, []

    def __call__(self, model, tokenizer, prompts, config, *, batch_size=64, **kw):
        self.batches.append((model, len(prompts)))
        return [[self._one(model, p)] for p in prompts]

    def _one(self, role, prompt):
        problem = prompt.split("\n", 1)[0][3:]
        asked = prompt.count(formats.QUESTION)
        want = self.plan[problem]
        if role == "qg":
            if want == "malformed":
                text = "no marker here"
            elif want == "forever" or asked < want:
                text = f"{formats.QUESTION} step {asked + 1} of {problem}?"
            else:
                text = formats.END
        else:
            text = f" {problem} step {asked} gives {asked * 10}." if "nonum" not in problem else " none"
        return _Gen(text)


class _Gen:   # text + finish_reason is all the loop reads of a generation
    def __init__(self, text):
        self.text, self.finish_reason = text, "eos"


def test_loop_outcomes_and_continuous_batching(monkeypatch):
    plan = {"p0": 1, "p1": 3, "p2": 0, "p3": "malformed", "p4": "forever", "p5": 2, "p6nonum": 1}
    fake = _ScriptedModels(plan)
    monkeypatch.setattr(loop, "generate", fake)
    cfg = LoopConfig(max_steps=4)
    traces = solve_iterative(QG, QA, list(plan), cfg, batch_size=3)
    status = {q: t.status for q, t in zip(plan, traces)}
    assert status == {"p0": "ended", "p1": "ended", "p2": "no_steps", "p3": "qg_malformed", "p4": "step_limit",
                      "p5": "ended", "p6nonum": "ended"}
    assert [len(t.pairs) for t in traces] == [1, 3, 0, 0, 4, 2, 1]
    assert traces[1].final == "p1 step 3 gives 30." and traces[4].final is None
    assert all(n <= 3 for _, n in fake.batches)
    # p0 ends after one step: a waiting problem joins, so the second QG call is full again
    assert [n for role, n in fake.batches if role == "qg"][:2] == [3, 3]
    one = [solve_one(QG, QA, q, cfg) for q in plan]
    assert [t.as_dict() for t in one] == [t.as_dict() for t in traces]
    for b in (1, 2, 7):
        assert [t.as_dict() for t in solve_iterative(QG, QA, list(plan), cfg, batch_size=b)] == \
               [t.as_dict() for t in traces]
    spec = get_task("demo_socratic")
    from scotd_kit.tasks import Example
    recs = [score_trace(spec, Example(q, q, "30" if q == "p1" else "10"), t) for q, t in zip(plan, traces)]
    assert [r["correct"] for r in recs] == [True, True, False, False, False, False, False]
    cats = categories(recs)
    assert (cats["ended"], cats["no_steps"], cats["qg_malformed"], cats["step_limit"]) == (4, 1, 1, 1)
    assert cats["qa_no_number_steps"] == 1


@pytest.fixture(scope="module")
def tiny_pair():
    from scotd_kit.models import load_model

    return load_model("tiny-gpt2"), load_model("tiny-llama")   # QG and QA of different architectures


def test_loop_on_tiny_models_terminates_and_ignores_batch_size(tiny_pair):
    qg, qa = tiny_pair
    questions = [ex.question for ex in load_split("demo_socratic", "test", limit=5)]
    cfg = LoopConfig(max_steps=2, qg_max_new_tokens=6, qa_max_new_tokens=6)
    traces = solve_iterative(qg, qa, questions, cfg, batch_size=4)
    assert all(t.status in loop.STATUSES for t in traces)
    assert all(len(t.pairs) <= cfg.max_steps and t.steps for t in traces)
    again = solve_iterative(qg, qa, questions, cfg, batch_size=2)
    one = [solve_one(qg, qa, q, cfg) for q in questions]
    assert [t.as_dict() for t in again] == [t.as_dict() for t in traces] == [t.as_dict() for t in one]


def test_socratic_settings_overrides_and_differences_from_the_paper():
    from scotd_kit.socratic.settings import SETTINGS, UNVERIFIED, differences_from_paper, socratic_settings

    s = socratic_settings("paper", sizes=["/models/student"], train_steps=1)
    assert s.sizes == ("/models/student",) and s.train_steps == 1
    with pytest.raises(TypeError, match="unknown Socratic setting.*max_steps"):
        socratic_settings("paper", max_steps=1)
    assert differences_from_paper("paper", SETTINGS["paper"], "gpt2-large") == [UNVERIFIED]
    colab = differences_from_paper("colab", SETTINGS["colab"], "gpt2")
    assert "method='lora' (kit default: 'full')" in colab and not any("student" in d for d in colab)
    small = differences_from_paper("smoke", SETTINGS["smoke"], "tiny-gpt2")
    assert small[0] == "smoke profile" and any(d.startswith("student 'tiny-gpt2'") for d in small)


# ---------------------------------------------------------------- what the Socratic paper verifiably says

def test_unverified_socratic_settings_read_kit_default_and_no_cell_is_comparable():
    """PAPERS.md section 2: no code was released and the paper's hyperparameters are not verified, so the
    paper profile's epochs, batch, learning rate, step limit, ... are the kit's choices: a note never says
    "(paper: 5)", and even the paper profile's own settings leave every cell not comparable (no diff)."""
    from scotd_kit.report import Cell
    from scotd_kit.socratic.settings import SETTINGS, differences_from_paper, socratic_settings

    paper = differences_from_paper("paper", SETTINGS["paper"], "gpt2-large")
    assert paper and any("kit default" in d for d in paper)
    notes = differences_from_paper("paper", socratic_settings("paper", train_epochs=1, learning_rate=2e-4), "gpt2")
    assert "train_epochs=1 (kit default: 5)" in notes and "learning_rate=0.0002 (kit default: 0.0001)" in notes
    assert not any("(paper:" in d and not d.startswith("student ") for d in notes)
    cell = Cell("socratic_main_table", "Socratic main table", "gpt2-large / CoT", "gsm8k_socratic", 15.0, None,
                "paper", "gsm8k_socratic", not_comparable="; ".join(paper))
    assert cell.diff is None and cell.note.startswith("not comparable:")


def test_quoted_socratic_numbers_are_keyed_by_source_teacher_and_variant():
    """21.1 is Socratic CoT with a GPT-3 175B teacher, variant not stated, quoted second-hand: no kit cell
    (gold decompositions, or another teacher, unified or iterative) is shown next to it; 14.1 is CoT on human
    (gold) rationales, which is what the kit's CoT student trains on."""
    from scotd_kit.socratic import reference

    for kind in ("unified", "iterative"):
        for source, teacher in (("gold", None), ("teacher", "openai:gpt-4o-mini"), ("teacher", "gpt2-xl")):
            assert reference.reference_point("gsm8k_socratic", "gpt2-large", kind, source, teacher) is None
    cot = reference.reference_point("gsm8k_socratic", "gpt2-large", "cot", "gold")
    assert cot is not None and cot.accuracy == 14.1 and "Wang, Li & Lu" in cot.attribution
    assert reference.reference_point("gsm8k_socratic", "gpt2-medium", "cot", "gold") is None
    socratic = [p for p in reference.QUOTED if p.kind == "socratic"]
    assert [(p.accuracy, p.teacher, p.variant) for p in socratic] == [(21.1, "GPT-3 175B", None)]
    assert all(p.attribution for p in reference.QUOTED)


def test_socratic_notebooks_show_quotes_as_attributed_references_only():
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "notebooks"
    for path in sorted(root.glob("socratic_*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        text = "\n".join("".join(c["source"]) for c in cells)
        assert "reference.quoted(" not in text, path          # the (task, student, kind) lookup ignored the source
        assert "ref[0]" not in text, path                     # a quoted number is never a cell's `paper`
        assert "different sizes" not in text, path            # not recorded in PAPERS.md
