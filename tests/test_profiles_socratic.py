"""The Socratic CoT notebooks under the ``paper`` and ``colab`` profiles, offline and small (their SCoTD
siblings are in test_profiles_paper.py): the original GSM8K (socratic), StrategyQA and SVAMP files from
../shared/data, a tiny student saved as a local model directory standing in for the profile's GPT-2
students, and Socratic settings cut down through the notebooks' ``socratic`` parameter (what
``scotd-kit reproduce -p socratic='{...}'`` passes)."""
from pathlib import Path

import pandas as pd
import pytest

from scotd_kit.reproduce import list_notebooks, reproduce
from scotd_kit.socratic.settings import SETTINGS

from .conftest import shared_file

SOCRATIC_NOTEBOOKS = [p.stem for p in list_notebooks() if p.stem.startswith("socratic_")]
PAPER_TASKS = {"gsm8k_socratic", "strategyqa", "svamp"}     # the profile's columns (and tasks run)
FILES = ("gsm8k/train_socratic.jsonl", "gsm8k/test_socratic.jsonl", "strategyqa/train.json",
         "strategyqa/dev.json", "svamp/SVAMP.json")


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    for rel in FILES:
        shared_file(rel)
    from scotd_kit.models import load_model

    path = tmp_path_factory.mktemp("inputs") / "student"
    model, tok = load_model("tiny-gpt2")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def _small(student: str) -> dict:
    """Socratic settings that make a paper-shaped run small: one tiny local student for every size,
    a few problems, one optimizer step, short generations."""
    return {"sizes": [student], "size_grid": [student], "method": "full", "train_limit": 4, "eval_limit": 2,
            "train_steps": 1, "batch_size": 2, "learning_rate": 1e-3, "max_length": 128, "step_limit": 2,
            "qg_max_new_tokens": 6, "qa_max_new_tokens": 6, "answer_max_new_tokens": 6, "decode_batch_size": 4}


def _run(profile, student, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"socratic-{profile}")
    mp = pytest.MonkeyPatch()
    mp.setenv("SCOTD_RUNS_DIR", str(root / "runs"))
    try:
        return reproduce(profile, SOCRATIC_NOTEBOOKS, output_dir=root / "figures", executed_dir=root / "executed",
                         progress=False, parameters={"socratic": _small(student)})
    finally:
        mp.undo()


def _check(run, profile, student) -> pd.DataFrame:
    failures = [f"{r.name}: {r.error} ({r.executed})" for r in run.failed]
    assert not failures, "\n".join(failures)
    assert {r.name for r in run.runs} == set(SOCRATIC_NOTEBOOKS) and len(SOCRATIC_NOTEBOOKS) == 3
    cells = pd.concat([pd.read_json(p) for p in sorted(run.output_dir.glob("*.cells.json"))], ignore_index=True)
    assert set(cells.notebook) == set(SOCRATIC_NOTEBOOKS) and (cells.profile == profile).all()
    # the papers' own datasets ran, each as its own column: no demo stand-in, no task swapped for another
    assert not cells.task_run.str.startswith("demo").any() and (cells.task_run == cells.column).all()
    main = cells[cells.notebook == "socratic_main_table"]
    assert set(main.task_run) == PAPER_TASKS
    made = cells[cells.unavailable.fillna("") == ""]
    kinds = {t: set(main[main.task_run == t].row.str.split(" / ").str[1].str.split(" (", regex=False).str[0]) for t in PAPER_TASKS}
    made_kinds = {t: set(made[(made.notebook == "socratic_main_table") & (made.task_run == t)].row.str.split(" / ")
                         .str[1].str.split(" (", regex=False).str[0]) for t in PAPER_TASKS}
    # every task has a row per student kind; what its data cannot train (without a teacher) says why
    assert all(k == {"answer-only", "CoT", "Socratic unified", "Socratic iterative"} for k in kinds.values())
    assert made_kinds == {"gsm8k_socratic": kinds["gsm8k_socratic"],          # gold steps: every kind is trained
                          "strategyqa": {"answer-only", "CoT"}, "svamp": {"answer-only"}}
    missing = main[main.unavailable.fillna("") != ""]
    assert missing.note.str.startswith("cannot be made: no gold").all() and missing.ours.isna().all()
    assert missing[missing.row.str.contains("Socratic")].unavailable.str.contains("no teacher").all()
    assert (made.n == 2).all() and made.ours.between(0, 100).all()
    # no Socratic cell is compared with the paper (its settings are not verified): every made row says why,
    # no row carries a quoted number as its `paper`, and unverified settings read "kit default"
    assert cells["diff"].isna().all() and made.note.str.startswith("not comparable:").all()
    assert cells["paper"].isna().all() and made.note.str.contains("kit defaults", regex=False).all()
    assert not made.note.str.contains(r"=[^;]* \(paper:", regex=True).any()
    assert made.note.str.contains("train_steps=1 ").all() and made.note.str.contains(Path(student).name).all()
    grid = cells[cells.notebook == "socratic_qg_qa_sizes"]
    assert len(grid) == 1 and grid.row.iloc[0] == f"QG {student} / QA {student}"
    assert set(cells[cells.notebook == "socratic_gpt3_comparison"].task_run) == {"gsm8k_socratic"}
    summary = (run.output_dir / "summary.md").read_text()
    # the machine's facts (scotd-kit doctor) head the summary, then what the profile is
    # small settings: the title says it is no reproduction
    assert summary.startswith(f"# Notebooks, profile `{profile}`: a run at this profile's scale, not a reproduction"
                              f"\n\n## This machine")
    assert "\n\n**What this is**: " in summary
    assert "**Socratic settings overridden**: " in summary and "`train_steps=1`" in summary
    assert "failed: 0" in summary
    return cells


def test_paper_profile_runs_every_socratic_notebook(student, tmp_path_factory):
    cells = _check(_run("paper", student, tmp_path_factory), "paper", student)
    assert not cells.note.str.contains("paper profile").any()      # the profile itself is the paper's
    assert not cells.note.str.contains("method=").any()            # full fine-tuning, as the paper's


def test_colab_profile_runs_every_socratic_notebook(student, tmp_path_factory):
    cells = _check(_run("colab", student, tmp_path_factory), "colab", student)
    # colab's own departures from the paper are named too (LoRA by default; here full, as overridden)
    made = cells[cells.unavailable.fillna("") == ""]
    assert made.note.str.contains(f"learning_rate=0.001 (kit default: {SETTINGS['paper'].learning_rate})", regex=False).all()
