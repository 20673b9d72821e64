"""Profiles and runs that can be trusted: one set of training names, per-task defaults, run keys that
change with every setting that shapes a run, re-scoring without regenerating, honest comparisons."""
import json
from pathlib import Path

import pytest
from transformers import TrainingArguments

from scotd_kit import curation, evaluation, stages, training
from scotd_kit.report import cell
from scotd_kit.stages import NotAvailable
from scotd_kit.generation import Generation
from scotd_kit.profiles import differences_from_paper, get_profile
from scotd_kit.report import Cell
from scotd_kit.reproduce import parse_parameter, split_parameters
from scotd_kit.runs import sealed
from scotd_kit.tasks import get_task
from scotd_kit.teachers.base import Completion, RequestResult


# --- profiles ------------------------------------------------------------------------------------

def test_colab_gets_scotds_recipe_not_the_small_runs():
    """Before, colab silently got the small-run warm-up (10 steps) and Adam epsilon (1e-8)."""
    colab = stages.train_config(stages.settings("colab"))
    assert isinstance(colab, training.TrainConfig) and isinstance(colab, TrainingArguments)
    assert (colab.warmup_steps, colab.adam_epsilon, colab.max_grad_norm) == (500, 1e-5, 0.5)
    assert (colab.max_steps, colab.per_device_train_batch_size, colab.learning_rate) == (2000, 16, 2e-4)
    paper = stages.train_config(stages.settings("paper"))
    assert (paper.max_steps, paper.per_device_train_batch_size, paper.learning_rate, paper.max_length) == \
           (20_000, 32, 2e-5, 700)
    # one set of names: a profile override with TrainConfig's name reaches TrainingArguments
    args = stages.train_config(stages.settings("smoke", max_steps=7, train_args={"adam_beta2": 0.98})).training_arguments(
        "/tmp/unused", max_steps=7, seed=0, evaluate=False)
    assert (args.max_steps, args.adam_beta2, args.remove_unused_columns) == (7, 0.98, False)


def test_every_profile_covers_the_papers_tasks_where_it_runs_them():
    assert stages.tasks(stages.settings("smoke")) == ["commonsense_qa"]
    assert (stages.tasks(stages.settings("colab")) == stages.tasks(stages.settings("paper"))
            == ["commonsense_qa", "quarel", "openbookqa"])
    assert stages.tasks(stages.settings("paper"), ["openbookqa"]) == ["openbookqa"]


def test_each_task_declares_the_split_it_reports_on():
    # StrategyQA reports on its shipped dev.json: no labelled official test set exists
    assert [get_task(t).eval_split for t in ("gsm8k", "svamp", "strategyqa")] == ["test", "test", "validation"]
    assert get_task("commonsense_qa").eval_split == "validation"
    assert stages.eval_split(stages.settings("paper"), "gsm8k") == "test"
    assert stages.eval_split(stages.settings("paper", eval_split="train"), "gsm8k") == "train"    # a profile may override it


def test_a_profile_limits_each_task_it_names_apart():
    p = stages.settings("smoke", task_limits={"demo_arith": {"train": 9, "eval": 5}})
    assert len(stages.examples(p, "gsm8k", "train")) == 9 and len(stages.examples(p, "gsm8k")) == 5   # gsm8k -> demo_arith
    assert len(stages.examples(p, "commonsense_qa", "train")) == 6 == p.train_limit     # the others keep theirs
    assert get_profile("demo").limit("imdb", "train") == 12 and get_profile("demo").limit("demo_arith", "eval") == 200


def test_a_notebooks_own_settings_apply_under_the_callers_overrides():
    base = get_profile("smoke", notebook_settings={"fig7_downsampling": {"max_steps": 7, "strategies": ["random"]}})
    p = stages.settings(base, "fig7_downsampling")
    assert p.max_steps == 7 and p.strategies == ("random",)
    assert stages.settings(base, "fig7_downsampling", max_steps=2).max_steps == 2     # the caller's win
    assert (stages.settings(base, "fig2_cots_per_instance").max_steps == base.max_steps
            == stages.settings(base).max_steps)


def test_the_demos_notebook_settings_name_real_notebooks_and_settings():
    from scotd_kit.profiles import PROFILES, profile_fields
    from scotd_kit.reproduce import list_notebooks

    notebooks = {p.stem for p in list_notebooks(suite="scotd")}
    for profile in PROFILES.values():
        for name, own in profile.notebook_settings.items():
            assert name in notebooks and own and set(own) <= profile_fields(), (profile.name, name)
            get_profile(profile, **own)      # the values are accepted as settings


def test_the_two_papers_notebooks_run_as_two_suites(tmp_path):
    from scotd_kit import reproduce as rep

    everything = {p.stem for p in rep.list_notebooks()}
    scotd, socratic = ({p.stem for p in rep.list_notebooks(suite=s)} for s in ("scotd", "socratic"))
    assert scotd | socratic == everything and not scotd & socratic
    assert socratic == {n for n in everything if n.startswith("socratic_")} and "fig2_cots_per_instance" in scotd
    assert rep.Summary("demo", tmp_path, suite="socratic").summary_path == tmp_path / "socratic_summary.md"
    assert rep.Summary("demo", tmp_path, suite="scotd").summary_path == tmp_path / "summary.md"
    with pytest.raises(ValueError, match="unknown suite"):
        rep.list_notebooks(suite="scot")


def test_the_summary_says_what_the_demos_figures_cannot_show(tmp_path):
    from scotd_kit import reproduce as rep
    from scotd_kit.profiles import PROFILES

    notes = PROFILES["demo"].notebook_notes
    assert {"fig4_student_size", "fig5_imdb_contrast", "fig6_unseen_task"} <= set(notes)   # the three a CPU cannot show
    summary = rep.Summary("demo", tmp_path, suite="scotd",
                          runs=[rep.NotebookRun(n, True, 1.0, "") for n in ("fig4_student_size", "fig2_cots_per_instance")])
    rep.write_summary(summary)
    text = (tmp_path / "summary.md").read_text()
    assert notes["fig4_student_size"] in text and notes["fig5_imdb_contrast"] not in text   # the notebooks run


def test_a_summary_shows_this_runs_cells_and_claims_only(tmp_path, monkeypatch):
    """A rerun whose notebook fails must not show the previous run's cells as its results, nor a claims table
    it did not compute; the earlier cells are kept beside, not lost."""
    from scotd_kit import reproduce as rep

    out = tmp_path / "figures"

    def notebook(ok, value):
        def run(path, profile, output_dir, executed_dir, parameters=None, **kw):
            if ok:
                (output_dir / f"{path.stem}.cells.json").write_text(json.dumps([{"row": "r", "ours": value}]))
            return rep.NotebookRun(path.stem, ok, 0.1, "", "" if ok else "RuntimeError: boom")
        return run

    def reproduce(ok, value):
        monkeypatch.setattr(rep, "run_notebook", notebook(ok, value))
        rep.reproduce("smoke", ["fig4_student_size"], output_dir=tmp_path / "figures", progress=False,
                      executed_dir=tmp_path / "executed")
        return (out / "smoke" / "summary.md").read_text()

    assert "| r | 41.5 |" in reproduce(True, 41.5)
    (out / "smoke" / "claims.md").write_text("| 2. an old claim | 99.0 |\n")     # left by an earlier run
    failed = reproduce(False, 12.0)
    assert "41.5" not in failed and "failed: 1" in failed and "an old claim" not in failed
    kept = json.loads((out / "smoke" / "fig4_student_size.cells.previous.json").read_text())
    assert kept == [{"row": "r", "ours": 41.5}]


def test_a_new_demo_tokenizer_makes_new_students_and_evaluations(monkeypatch):
    from scotd_kit import models

    before = {n: models.model_key(n) for n in ("small-llama", "tiny-gpt2", "smollm2-135m-instruct")}
    monkeypatch.setattr(models, "DEMO_BPE_VERSION", models.DEMO_BPE_VERSION + 1)
    assert models.model_key("small-llama") != before["small-llama"]                 # its build changed
    assert models.model_key("tiny-gpt2") == before["tiny-gpt2"]                     # GPT-2's BPE did not
    assert before["smollm2-135m-instruct"] == "smollm2-135m-instruct"               # a real model: its name


def test_demo_arith_exemplars_come_from_a_pool_of_their_own():
    from scotd_kit.tasks import load_split

    demos = get_task("demo_arith").few_shot_exemplars()
    seen = {e.question for s in ("train", "validation", "test") for e in load_split("demo_arith", s)}
    assert len(demos) == 4 and not {q for q, _, _ in demos} & seen


def test_exemplars_live_with_the_task_spec():
    spec = get_task("openbookqa")
    assert len(spec.few_shot_exemplars()) == 4 and spec.few_shot_exemplars()[0][2] == "(a)"
    mine = [("Q?", "Because.", "(b)")]
    assert stages.exemplars(stages.settings("paper", exemplars={"openbookqa": mine}), "openbookqa") == mine


def test_paper_settings_are_compared_and_others_say_why_not():
    assert differences_from_paper(get_profile("paper")) == []
    why = differences_from_paper(get_profile("colab"))
    assert any(w.startswith("student=") for w in why) and any(w.startswith("max_steps=2000") for w in why)
    colab_cell = cell(stages.settings("colab"), "nb", "Table 2(b)", "full / SCoTD", "commonsense_qa",
                      {"accuracy": 0.5, "accuracy_flexible": 0.6, "ci95": [0.4, 0.6], "n": 10, "malformed": 0.1,
                       "decoding": {"decoding": "greedy"}, "run_dir": "/r"}, 67.0)
    assert (colab_cell.diff is None and colab_cell.note.startswith("not comparable: ")
            and "student='facebook/opt-350m'" in colab_cell.note)
    assert (colab_cell.ours, colab_cell.ours_flexible, colab_cell.malformed, colab_cell.run) == (50.0, 60.0, None, "/r")
    paper_cell = cell(stages.settings("paper"), "nb", "Table 2(b)", "full / SCoTD", "commonsense_qa",
                      {"accuracy": 0.6, "accuracy_flexible": 0.6, "ci95": [0.5, 0.7], "n": 1221,
                       "malformed": 0.0, "decoding": {"decoding": "greedy"}}, 67.0)
    assert paper_cell.diff == -7.0 and paper_cell.note == ""
    gone = cell(stages.settings("paper"), "nb", "Table 2(b)", "full / greedy-CoT", "commonsense_qa",
                NotAvailable("no greedy"), 68.2)
    assert gone.ours is None and gone.diff is None and gone.note == "cannot be made: no greedy"
    assert Cell("nb", "T", "r", "c", 1.0, 2.0, "paper", "c", not_comparable="eval_limit=5").diff is None


def test_greedy_cots_never_come_from_a_sampled_release(tmp_path):
    p = stages.settings("paper", teacher=f"replay:{tmp_path}")
    with pytest.raises(NotAvailable, match="no greedy CoT"):
        stages.teacher_spec(p, "commonsense_qa", greedy=True)
    with pytest.raises(NotAvailable, match="csqa_30x.json"):
        stages.teacher_spec(p, "commonsense_qa")                 # the directory lacks the file
    with pytest.raises(NotAvailable, match="cover"):
        stages.teacher_spec(p, "imdb")
    assert isinstance(stages.corpus(p, "imdb"), NotAvailable)   # as a stage: the reason, passed on
    (tmp_path / "csqa_30x.json").write_text("[]")
    assert stages.teacher_spec(p, "commonsense_qa") == f"replay:{tmp_path / 'csqa_30x.json'}"
    assert stages.teacher_spec(stages.settings("paper", teacher=f"replay:{tmp_path}", greedy_teacher="my-model"),
                               "commonsense_qa", greedy=True) == "my-model"


def test_reproduce_parameters_read_like_papermills():
    assert parse_parameter("max_steps=100") == ("max_steps", 100)
    assert parse_parameter("tasks=[commonsense_qa, openbookqa]") == ("tasks", ["commonsense_qa", "openbookqa"])
    assert parse_parameter("teacher=replay:/data/x") == ("teacher", "replay:/data/x")
    assert parse_parameter('split_map={"imdb": {"train": "dev_original"}}')[1] == {"imdb": {"train": "dev_original"}}
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_parameter("oops")
    assert split_parameters({"task": "quarel", "max_steps": 5}) == {"task": "quarel", "overrides": {"max_steps": 5}}
    with pytest.raises(TypeError, match="unknown profile setting"):
        get_profile("paper", max_stepz=5)


# --- run keys --------------------------------------------------------------------------------------

class FakeTeacher:
    """Answers every instance with fixed CoTs (half right), counting the samples it was asked for."""
    local = True

    def __init__(self, spec):
        self.id, self.model_name, self.asked = f"fake:{spec}", spec, 0

    def count_tokens(self, text):
        return len(text.split())

    def sample(self, requests, settings):
        out = []
        for req in requests:
            self.asked += req.n
            texts = [f" Reason {req.start + j}. So the answer is: {'(a)' if (req.start + j) % 2 else '(b)'}"
                     for j in range(req.n)]
            out.append(RequestResult(completions=[Completion(text=t, finish_reason="stop") for t in texts],
                                     prompt_tokens=0, completion_tokens=0, calls=1))
        return out


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    teachers = []

    def make(spec, dtype=None):
        teachers.append(FakeTeacher(spec))
        return teachers[-1]

    trained = []

    def fake_fine_tune(model, instances, *, output_dir, method, config, seed):
        trained.append(output_dir)
        final = output_dir / "final"
        final.mkdir(parents=True)
        (final / "model.safetensors").write_bytes(b"weights of a student")
        return training.FineTuneResult(model_dir=final, method=method, steps=1, losses=[], tokens=0,
                                       train_seconds=0.0, tokens_per_second=0.0)

    monkeypatch.setattr("scotd_kit.teachers.teacher_from_spec", make)
    monkeypatch.setattr(training, "fine_tune", fake_fine_tune)
    monkeypatch.setenv("SCOTD_RUNS_DIR", str(tmp_path))
    return teachers, trained


def _asked(teachers):
    return sum(t.asked for t in teachers)


def _student(p, task="commonsense_qa", *, setting="full", training="scotd", seed=None, **how):
    """Corpus, filter and training, as a notebook chains them."""
    records = None if (setting, training) == ("full", "label_only") else stages.corpus(p, task)
    return stages.student(p, stages.instances(p, task, records, setting=setting, training=training, **how), seed=seed)


def test_a_changed_teacher_setting_or_exemplar_makes_a_new_corpus_and_student(fakes):
    teachers, trained = fakes
    p = stages.settings("smoke")
    first = _student(p, setting="few_shot")
    asked = _asked(teachers)
    assert asked == 6 * 3
    assert _student(p, setting="few_shot") == first and _asked(teachers) == asked   # cached
    hotter = stages.settings("smoke", teacher_temperature=1.0)
    assert _student(hotter, setting="few_shot") != first          # a new corpus, a new student
    assert _asked(teachers) == 2 * asked
    assert len({r["settings"]["temperature"] for r in stages.corpus(hotter, "commonsense_qa")}) == 1   # never mixed
    other = [("Q: x?", "Because.", "(a)")]
    _student(stages.settings("smoke", exemplars={"commonsense_qa": other}), setting="few_shot")
    assert _asked(teachers) == 3 * asked and len(trained) == 3
    # the training config is part of the student's key too
    _student(stages.settings("smoke", train_args={"adam_beta2": 0.95}), setting="few_shot")
    assert len(trained) == 4 and _asked(teachers) == 3 * asked


def test_a_scorer_change_rescores_stored_generations(fakes, monkeypatch):
    p = stages.settings("smoke")
    calls = []

    def fake_generate(model, tok, prompts, config, **kw):
        calls.append(len(prompts))
        return [[Generation(text=" So the answer is: (a)" if i % 2 else "no marker", token_ids=[1], logprobs=[0.0],
                            finish_reason="stop", prompt_tokens=1) for _ in range(config.n)]
                for i in range(len(prompts))]

    monkeypatch.setattr(evaluation, "generate", fake_generate)
    monkeypatch.setattr(stages, "_load", lambda model, dtype=None: (None, None))
    first = stages.evaluate(p, "tiny-gpt2", "commonsense_qa")
    assert calls == [4] and stages.evaluate(p, "tiny-gpt2", "commonsense_qa") == first and calls == [4]
    monkeypatch.setattr(evaluation, "SCORER_VERSION", "test-next")
    monkeypatch.setattr(evaluation, "generate", None)              # regenerating would fail
    again = stages.evaluate(p, "tiny-gpt2", "commonsense_qa")
    assert again["decoding"]["scorer"] == "test-next" and again["n"] == first["n"]
    assert (again["accuracy"], again["run_dir"]) == (first["accuracy"], first["run_dir"])


def _answer_a(monkeypatch):
    """Students that always answer (a); a generate of None afterwards proves nothing is generated again."""
    def fake_generate(model, tok, prompts, config, **kw):
        return [[Generation(text=" So the answer is: (a)", token_ids=[1], logprobs=[0.0], finish_reason="stop",
                            prompt_tokens=1) for _ in range(config.n)] for _ in prompts]

    monkeypatch.setattr(evaluation, "generate", fake_generate)
    monkeypatch.setattr(stages, "_load", lambda model, dtype=None: (None, None))


def _golds_all_a(monkeypatch):
    """Correct the answer key: every gold becomes (a), as a user's fixed data file would."""
    import dataclasses

    examples = stages.examples
    monkeypatch.setattr(stages, "examples", lambda p, task, split=None: [
        dataclasses.replace(e, label="(a)") for e in examples(p, task, split)])


def test_a_corrected_answer_key_is_a_new_evaluation_never_the_old_number(fakes, monkeypatch):
    """Reliability 28.1: the evaluation key held no hash of the examples, so flipped golds served the old score."""
    _answer_a(monkeypatch)
    p = stages.settings("smoke")
    student = _student(p)
    first = stages.evaluate(p, student, "commonsense_qa")
    _golds_all_a(monkeypatch)
    fixed = stages.evaluate(p, student, "commonsense_qa")
    assert fixed["run_dir"] != first["run_dir"] and fixed["accuracy"] == 1.0 != first["accuracy"]
    spec = json.loads((Path(fixed["run_dir"]) / "spec.json").read_text())
    assert spec["kind"] == "eval" and spec["spec"]["model"].startswith("run:students/")   # a place, not a path


def test_corpus_verdicts_follow_a_corrected_answer_key_and_the_student_retrains(fakes, monkeypatch):
    """Reliability 28.2: records kept the verdict of the gold they were sampled under, and the student's key
    did not change, so the old student was served."""
    teachers, trained = fakes
    p = stages.settings("smoke")
    before = stages.corpus(p, "commonsense_qa")
    student = _student(p)
    asked = _asked(teachers)
    _golds_all_a(monkeypatch)
    after = stages.corpus(p, "commonsense_qa")
    assert _asked(teachers) == asked                                   # the texts are reused, not sampled again
    assert [r["correct"] for r in after] == [r["answer"] == "(a)" for r in after] != [r["correct"] for r in before]
    assert _student(p) != student and len(trained) == 2


def test_a_moved_runs_directory_serves_every_run_from_its_new_place(fakes, monkeypatch, tmp_path):
    """Reliability 28.6 / runs-are-data: keys held absolute paths; after a move every evaluation looked for
    the old student and the student stage returned a path in the old directory."""
    import shutil

    teachers, trained = fakes
    _answer_a(monkeypatch)
    p = stages.settings("smoke")
    first = stages.evaluate(p, _student(p), "commonsense_qa")
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    shutil.move(str(tmp_path), moved)
    monkeypatch.setenv("SCOTD_RUNS_DIR", str(moved))
    monkeypatch.setattr(evaluation, "generate", None)               # evaluating again would fail
    student = _student(p)
    assert student.is_relative_to(moved) and student.is_dir() and len(trained) == 1
    again = stages.evaluate(p, student, "commonsense_qa")
    assert again["accuracy"] == first["accuracy"] and again["run_dir"].startswith(str(moved))


@pytest.mark.parametrize("damage", ["zeroed weights", "cut lab.json", "edited accuracy", "cut records"])
def test_a_damaged_run_is_set_aside_and_made_again_never_served(fakes, monkeypatch, damage):
    """Reliability 28.5: an edited accuracy or zeroed weights were served silently; a cut lab.json or summary
    failed every rerun with a bare JSONDecodeError; a cut records.jsonl whose scored summary was missing (as
    after a scorer upgrade) was re-scored into a permanent summary of part of the examples."""
    teachers, trained = fakes
    _answer_a(monkeypatch)
    p = stages.settings("smoke")
    student = _student(p)
    first = stages.evaluate(p, student, "commonsense_qa")
    run = Path(first["run_dir"])
    if damage == "zeroed weights":
        weights = student / "model.safetensors"
        weights.write_bytes(bytes(len(weights.read_bytes())))
    elif damage == "cut lab.json":
        lab_json = student.parent / stages.STUDENT_RUN_FILE
        lab_json.write_text(lab_json.read_text()[:20])
    elif damage == "edited accuracy":
        scored = next(run.glob("summary-*.json"))
        scored.write_text(scored.read_text().replace('"accuracy": ', '"accuracy": 0.99 + 0 * ', 1))
    else:
        next(run.glob("summary-*.json")).unlink()
        records = run / "records.jsonl"
        records.write_text("".join(records.read_text().splitlines(keepends=True)[:2]))
    with pytest.warns(UserWarning, match="set aside .* made again"):
        again = stages.evaluate(p, _student(p), "commonsense_qa")
    assert again["accuracy"] == first["accuracy"] and again["n"] == first["n"]
    assert len(trained) == (2 if damage in ("zeroed weights", "cut lab.json") else 1)
    assert any(p.name.startswith(run.name + ".corrupt-") or p.name.startswith(student.parent.name + ".corrupt-")
               for p in run.parent.parent.rglob("*.corrupt-1"))


def test_the_pipeline_never_overwrites_fine_tunes_result(tmp_path, monkeypatch):
    """Before, the pipeline wrote its own result.json over fine_tune's, and resuming fine_tune then crashed."""
    monkeypatch.setenv("SCOTD_RUNS_DIR", str(tmp_path))
    p = stages.settings("smoke", max_steps=1)
    model_dir = _student(p, training="label_only")
    run = model_dir.parent
    saved = json.loads((run / "result.json").read_text())
    assert saved["steps"] == 1 and "losses" in saved                  # fine_tune's own schema
    assert json.loads((run / stages.STUDENT_RUN_FILE).read_text())["model_dir"] == "final"   # run-relative
    assert model_dir == run / "final"
    instances = stages.instances(p, "commonsense_qa", training="label_only")
    again = training.fine_tune(p.student, instances, output_dir=run, method="full",
                               config=stages.train_config(p), seed=0)
    assert again.steps == 1 and again.model_dir == model_dir
    # moved with its result.json (which names the old place), the run answers with its new final/
    import shutil

    moved = tmp_path / "moved"
    shutil.move(str(run), moved)
    resumed = training.fine_tune(p.student, instances, output_dir=moved, method="full",
                                 config=stages.train_config(p), seed=0)
    assert resumed.steps == 1 and resumed.model_dir == moved / "final"


# --- the papers' designs, at the filter stage -----------------------------------------------------------

def test_fig3_fractions_are_of_the_examples_before_filtering_and_shared_by_every_line(fakes):
    p = stages.settings("smoke", train_limit=20)
    corpus = stages.corpus(p, "commonsense_qa")
    half = {e.id for e in curation.subset_instances(stages.examples(p, "commonsense_qa", "train"), 0.5, seed=0)}
    label_only = {i["id"] for i in stages.instances(p, "commonsense_qa", training="label_only", fraction=0.5)}
    scotd = {i["id"] for i in stages.instances(p, "commonsense_qa", corpus, training="scotd", n=3, fraction=0.5)}
    one = {i["id"] for i in stages.instances(p, "commonsense_qa", corpus, training="scotd", n=1, fraction=0.5)}
    assert label_only == half and len(half) == 10
    assert scotd <= half and one <= half               # the filter may drop some, never bring others in
    assert scotd                                       # half of the fake teacher's CoTs are right


def test_fig6_students_train_with_demonstrations_in_the_test_format(fakes):
    p = stages.settings("smoke")
    demos = stages.exemplars(p, "commonsense_qa")
    cot = stages.instances(p, "commonsense_qa", stages.corpus(p, "commonsense_qa"), training="scotd",
                           demonstrations=True)
    plain = stages.instances(p, "commonsense_qa", training="label_only", demonstrations=True)
    x, r, y = demos[0]
    assert cot[0]["input"].startswith(f"Q: {x}\nA: {r} So the answer is: {y}\n\n")     # CoT demos for SCoTD
    assert plain[0]["input"].startswith(f"Q: {x}\nA: So the answer is: {y}\n\n")        # label-only demos
    assert cot[0]["input"].endswith("\nA: ") and cot[0]["input"].count("Q: ") == len(demos) + 1


def test_multitask_instances_keep_every_task_and_pass_on_what_cannot_be_made(fakes):
    p = stages.settings("smoke")
    a = stages.instances(p, "commonsense_qa", training="label_only")
    b = stages.instances(p, "gsm8k", training="label_only")
    both = stages.multitask([a, b])
    assert list(both) == [*a, *b] and both.tasks == ("commonsense_qa", "gsm8k") and both.corpora == (None, None)
    gone = NotAvailable("no corpus for gsm8k")
    assert stages.multitask([a, gone]) is gone
    assert stages.student(p, gone) is gone and stages.evaluate(p, gone, "gsm8k") is gone   # passed on, not raised
    with pytest.raises(ValueError, match="one way"):
        stages.multitask([a, stages.instances(p, "gsm8k", training="label_only", fraction=0.5)])


def test_fig7_downsamples_the_correct_cots_only(fakes):
    p = stages.settings("smoke", n_cots=3, downsample_k=1)
    corpus = stages.corpus(p, "commonsense_qa")
    gold = {e.id: e.label for e in stages.examples(p, "commonsense_qa", "train")}
    for strategy in ("random", "open_endedness"):   # likelihood needs log-probs the fake lacks (curation tests)
        insts = stages.instances(p, "commonsense_qa", corpus, strategy=strategy)
        assert insts and all(t.endswith(f"{gold[i['id']]}\n\n") for i in insts for t in i["targets"])
        assert sum(len(i["targets"]) for i in insts) == len(insts)      # k=1 per instance
    with pytest.raises(ValueError, match="correct CoTs"):
        stages.instances(p, "commonsense_qa", corpus, setting="few_shot", strategy="random")
    with pytest.raises(ValueError, match="needs the greedy corpus"):
        stages.instances(p, "commonsense_qa", corpus, training="greedy_cot")
    with pytest.raises(ValueError, match="N=5 CoTs per instance from a corpus of 3"):
        stages.instances(p, "commonsense_qa", corpus, n=5)


def test_one_model_in_memory_and_released_before_a_student_trains(fakes, monkeypatch):
    """(Where a model is placed is load_model's: tests/test_hardware.py.)"""
    class Model:
        pass

    loads = []
    monkeypatch.setattr(training, "load_any", lambda m, dtype=None: loads.append(m) or (Model(), "tok"))
    stages.release()
    model, _ = stages._load("a")
    assert stages._load("a")[0] is model and loads == ["a"]
    stages._load("b")                                     # "a" is dropped, not cached beside "b"
    assert [held[0] for held in stages._HELD] == ["b"]
    _student(stages.settings("smoke"), training="label_only")
    assert stages._HELD == []                             # nothing held while a student trains


def test_cli_passes_parameters_to_reproduce(monkeypatch, tmp_path):
    from scotd_kit import cli, reproduce as rep

    seen = {}

    def fake(profile, select, output_dir, executed_dir, parameters, suite):
        seen.update(profile=profile, parameters=parameters, suite=suite)
        return rep.Summary(profile, tmp_path)

    monkeypatch.setattr(rep, "reproduce", fake)
    assert cli.main(["reproduce", "--profile", "colab", "-p", "max_steps=10", "-p", "tasks=[quarel]",
                     "-p", "task=quarel"]) == 0
    assert seen == {"profile": "colab", "parameters": {"max_steps": 10, "tasks": ["quarel"], "task": "quarel"},
                    "suite": "all"}
    assert cli.main(["reproduce", "--suite", "socratic"]) == 0 and seen["suite"] == "socratic"
    assert cli.main(["reproduce", "-p", "nonsense"]) == 2


def test_the_sampled_corpus_brings_table_2bs_greedy_corpus_with_it(monkeypatch, tmp_path):
    """A local teacher decodes each instance's greedy CoT in the calls that sample its corpus: Table 2(b)'s
    greedy corpus, a run of its own (its own key and spec), is then complete and asks the teacher nothing."""
    from scotd_kit.teachers.local import LocalTeacher

    monkeypatch.setenv("SCOTD_RUNS_DIR", str(tmp_path))
    asked = []
    sample = LocalTeacher.sample
    monkeypatch.setattr(LocalTeacher, "sample", lambda self, reqs, s: asked.append(reqs) or sample(self, reqs, s))
    p = stages.settings("smoke", train_limit=3)
    sampled = stages.corpus(p, "commonsense_qa")
    assert asked and all(r.greedy for reqs in asked for r in reqs)
    calls = len(asked)
    greedy = stages.corpus(p, "commonsense_qa", greedy=True)
    assert len(asked) == calls                                   # nothing decoded again
    assert greedy.run_dir != sampled.run_dir and (greedy.run_dir / "spec.json").exists()
    assert len(greedy) == 3 and {r["settings"]["temperature"] for r in greedy} == {0.0}
    assert {r["instance_id"] for r in greedy} == {r["instance_id"] for r in sampled}
    teacher = LocalTeacher(p.teacher)
    assert stages._greedy_alongside(p, "commonsense_qa", teacher).parent == greedy.run_dir
    assert stages._greedy_alongside(p, "imdb", teacher) is None          # no Table 2(b) there: nothing alongside


def test_a_self_consistency_evaluation_brings_the_greedy_one_with_it(monkeypatch, tmp_path):
    """stages.evaluate(self_consistency) decodes the greedy evaluation of the same model and prompts in the same
    calls when that run has no texts yet: a run of its own (its key, spec and seal), served afterwards without
    decoding, with what a greedy evaluation of its own makes."""
    from scotd_kit import evaluation

    monkeypatch.setenv("SCOTD_RUNS_DIR", str(tmp_path / "a"))
    p = stages.settings("smoke", eval_limit=4)
    calls = []
    evaluate = evaluation.evaluate
    monkeypatch.setattr(evaluation, "evaluate", lambda *a, **k: calls.append(k) or evaluate(*a, **k))
    sc = stages.evaluate(p, p.student, "commonsense_qa", decoding="self_consistency")
    assert len(calls) == 1 and calls[0]["greedy_dir"] is not None
    greedy = stages.evaluate(p, p.student, "commonsense_qa")
    assert len(calls) == 1 and greedy["run_dir"] != sc["run_dir"] and sealed(greedy["run_dir"])
    assert json.loads((Path(greedy["run_dir"]) / "spec.json").read_text())["spec"]["decoding"] == "greedy"
    monkeypatch.setenv("SCOTD_RUNS_DIR", str(tmp_path / "b"))            # the greedy run made on its own
    alone = stages.evaluate(p, p.student, "commonsense_qa")
    assert len(calls) == 2 and calls[1]["greedy_dir"] is None
    assert Path(alone["run_dir"]).name == Path(greedy["run_dir"]).name
    assert (Path(alone["records_path"]).read_text() == Path(greedy["records_path"]).read_text())
    drop = ("records_path", "run_dir")
    assert {k: v for k, v in alone.items() if k not in drop} == {k: v for k, v in greedy.items() if k not in drop}
