"""Every notebook under the ``paper`` and ``colab`` profiles, offline and small: a tiny student saved as a
local model directory, the original CSQA / OBQA files from ../shared/data, and a replay directory in
SCoTD's released format built from their first training rows.  QuaRel's files are absent here, so the
runs cover CSQA and OBQA (``-p tasks=...``); what needs a teacher the release lacks (IMDB, ANLI, SST-2,
greedy CoTs, N=50) must say that it cannot be made, not crash and not invent a number.  The SCoTD
notebooks are run here; the Socratic CoT notebooks, with their own settings, under both profiles in
test_profiles_socratic.py."""
import json
from pathlib import Path

import pandas as pd
import pytest

from scotd_kit import answers
from scotd_kit.reproduce import list_notebooks, reproduce
from scotd_kit.tasks import load_split

from .conftest import shared_file

SCOTD_NOTEBOOKS = [p.stem for p in list_notebooks() if not p.stem.startswith("socratic_")]
N_TRAIN, PER_INSTANCE = 4, 4     # released CoTs per instance: fewer than N=50, so the ablation row is unavailable
TASKS = {"commonsense_qa": "csqa_30x.json", "openbookqa": "openbook_30x.json"}


def _released(task: str, n: int) -> list[dict]:
    """Records in the released format for the first ``n`` train rows: 3 correct CoTs and 1 wrong each."""
    out = []
    for index, ex in enumerate(load_split(task, "train", source="files", limit=n)):
        wrong = next(l for l in ex.meta["labels"] if l != ex.label)
        for j, (answer, score) in enumerate([(ex.label, 1), (wrong, 0), (ex.label, 1), (ex.label, 1)]):
            rationale = f"Reason {j} about {ex.question.split()[0].lower()} and more words {index}."
            out.append({"prompt": "Q: ...\nA: ", "response": f" {rationale}{answers.ANSWER_MARKER}{answer}",
                        "score": score, "index": index, "rationale": f" {rationale}",
                        "token_probs": [-0.1 * (j + 1)] * 3, "tokens": ["a", "b", "c"]})
    return out


@pytest.fixture(scope="module")
def offline_inputs(tmp_path_factory):
    for rel in ("commonsenseqa/train_rand_split.jsonl", "openbookqa/Main/train.jsonl", "imdb_contrast/dev_original.tsv",
                "anli/R3/dev.jsonl", "sst2/dev.tsv"):
        shared_file(rel)
    from scotd_kit.models import load_model

    root = tmp_path_factory.mktemp("inputs")
    student = root / "student"
    model, tok = load_model("tiny-gpt2")
    model.save_pretrained(student)
    tok.save_pretrained(student)
    release = root / "release"
    release.mkdir()
    for task, name in TASKS.items():
        (release / name).write_text(json.dumps(_released(task, N_TRAIN)))
    return {"student": str(student), "release": str(release)}


def _small(inputs, **more) -> dict:
    """Parameter overrides that make a paper-shaped run small (passed as `scotd-kit reproduce -p` would)."""
    return {"teacher": f"replay:{inputs['release']}", "student": inputs["student"],
            "student_sizes": [inputs["student"]], "tasks": list(TASKS), "train_limit": N_TRAIN, "eval_limit": 2,
            "n_cots": 3, "n_grid": [3], "fractions": [0.5, 1.0], "downsample_k": 2, "max_steps": 1,
            "per_device_train_batch_size": 2, "max_length": 160, "student_max_new_tokens": 6, "sc_k": 2,
            "teacher_max_new_tokens": 8, "multitask": ["anli_r3", "commonsense_qa"],
            # offline: IMDB trains on its dev reviews, ANLI R3 on its dev set (their train splits are hub-only)
            "split_map": {"imdb": {"train": "dev_original", "validation": "test_original"},
                          "anli_r3": {"train": "validation"}}, **more}


def _run(profile, inputs, tmp_path_factory, **more):
    root = tmp_path_factory.mktemp(profile)
    mp = pytest.MonkeyPatch()
    mp.setenv("SCOTD_RUNS_DIR", str(root / "runs"))
    try:
        return reproduce(profile, SCOTD_NOTEBOOKS, output_dir=root / "figures", executed_dir=root / "executed",
                         progress=False, parameters=_small(inputs, **more))
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def paper_run(offline_inputs, tmp_path_factory):
    return _run("paper", offline_inputs, tmp_path_factory)


@pytest.fixture(scope="module")
def colab_run(offline_inputs, tmp_path_factory):
    # one task keeps it short; colab names a teacher for greedy CoTs (the tiny student stands in)
    return _run("colab", offline_inputs, tmp_path_factory, tasks=["openbookqa"], multitask=["openbookqa"],
                fractions=[1.0], greedy_teacher=offline_inputs["student"])


def _cells(run) -> pd.DataFrame:
    return pd.concat([pd.read_json(p) for p in sorted(run.output_dir.glob("*.cells.json"))], ignore_index=True)


def _check_run(run, profile, tasks=tuple(TASKS)):
    failures = [f"{r.name}: {r.error} ({r.executed})" for r in run.failed]
    assert not failures, "\n".join(failures)
    assert {r.name for r in run.runs} == set(SCOTD_NOTEBOOKS) and len(SCOTD_NOTEBOOKS) == 12
    cells = _cells(run)
    measured = cells[cells.profile == profile]
    assert set(measured.task_run) >= set(tasks)                   # the papers' own tasks ran, not demo stand-ins
    # small settings are never compared with the paper: every row says why
    assert measured["diff"].isna().all()
    assert measured.note.str.startswith(("not comparable:", "cannot be made:")).all()
    assert measured.note.str.contains("max_steps=1 ").any()
    made = measured[measured.unavailable.fillna("") == ""]
    acc = made[made.table.str.startswith(("Table", "Fig"))]
    assert acc.ours.notna().all() and acc.ours_flexible.notna().all() and acc.n.notna().all()
    assert all(Path(r).is_dir() and (Path(r) / "records.jsonl").exists() for r in acc.run)  # traced to its run
    summary = (run.output_dir / "summary.md").read_text()
    # the machine's facts (scotd-kit doctor) head the summary, then what the profile is
    # small settings: the title says it is no reproduction
    assert summary.startswith(f"# Notebooks, profile `{profile}`: a run at this profile's scale, not a reproduction"
                              f"\n\n## This machine")
    assert "\n\n**What this is**: " in summary
    assert "Settings differ from the paper's" in summary
    return measured


def test_paper_profile_runs_every_notebook(paper_run):
    cells = _check_run(paper_run, "paper")
    t2b = cells[cells.notebook == "table2b_distillation"]
    assert set(t2b.column) == set(TASKS)                          # every task of the profile, not CSQA alone
    greedy = t2b[t2b.row.str.contains("greedy-CoT")]
    assert greedy.unavailable.str.contains("no greedy CoT").all()   # never a T=1 sample passed off as greedy
    assert t2b[t2b.row.str.startswith("few-shot") & ~t2b.row.str.contains("greedy")].malformed.notna().all()
    assert t2b[t2b.row == "full / SCoTD"].ours.notna().all()
    filt = t2b[t2b.table == "§3.1 filter"]
    assert list(filt.ours.round(1)) == [33.3, 33.3] and list(filt.paper) == [40.4, 45.0]   # 1 wrong in the first 3
    ablation = cells[(cells.notebook == "table3b_cots_per_instance") & cells.row.str.startswith("50x")]
    assert len(ablation) == 4 and ablation.unavailable.str.contains("N=50 cannot be made").all()
    imdb = cells[(cells.notebook == "fig5_imdb_contrast") & cells.row.str.startswith("SCoTD")]
    assert imdb.unavailable.str.contains("released corpora cover").all()
    assert cells[(cells.notebook == "fig5_imdb_contrast") & cells.row.str.startswith("label-only")].ours.notna().all()
    assert (paper_run.output_dir / "table1_samples.md").read_text().count("```") >= 4


def test_colab_profile_runs_every_notebook(colab_run):
    cells = _check_run(colab_run, "colab", tasks=("openbookqa",))
    assert set(cells[cells.notebook == "fig7_downsampling"].column) == {"openbookqa"}
    greedy = cells[(cells.notebook == "table2b_distillation") & cells.row.str.contains("greedy-CoT")]
    # a named greedy teacher is used; the tiny random one writes no answer, so the filter says so
    assert not greedy.unavailable.str.contains("no greedy CoT").any()
    assert "colab" in (colab_run.output_dir / "summary.md").read_text().splitlines()[0]


def test_paper_selects_the_best_checkpoint_on_its_schedule(offline_inputs, tmp_path, monkeypatch):
    """SCoTD's protocol: greedy evaluation at step 1,000 and every 2,000 (here scaled to 2 and every 4), the best
    checkpoint reported; every evaluated checkpoint's score kept with the run."""
    from scotd_kit import stages

    monkeypatch.setenv("SCOTD_RUNS_DIR", str(tmp_path / "runs"))
    p = stages.settings("paper", **{**_small(offline_inputs, max_steps=6, warmup_steps=0, eval_limit=3),
                                    "train_args": {"eval_steps": 4, "save_steps": 4, "eval_at": [2]}})
    assert p.select_checkpoint and stages.train_config(p).eval_at == [2]
    with pytest.warns(UserWarning, match="selected on 'validation'"):
        model_dir = stages.student(p, stages.instances(p, "commonsense_qa", setting="full", training="label_only"))
    run = json.loads((model_dir.parent / "lab.json").read_text())
    steps = [c["step"] for c in run["checkpoints"]]
    assert steps == [2, 4, 6]                                          # the last step too (SCoTD: 20,000)
    best = max(run["checkpoints"], key=lambda c: c["accuracy"])          # the first of the best, as Trainer keeps
    assert run["best_accuracy"] == best["accuracy"] and run["best_checkpoint"].endswith(f"checkpoint-{best['step']}")


def test_differences_from_paper_name_every_setting_that_differs():
    """Flip each of the paper's settings on the paper profile: each flip gives a reason naming it."""
    from dataclasses import replace

    from scotd_kit.profiles import PAPER_SETTINGS, differences_from_paper, get_profile

    paper = replace(get_profile("paper"), teacher="replay:scotd_corpora")
    assert differences_from_paper(paper) == []
    flips = {"student": "facebook/opt-350m", "method": "lora", "n_cots": 10, "train_recipe": "small",
             "max_steps": 2000, "per_device_train_batch_size": 16, "learning_rate": 1e-4, "max_length": 512,
             "sc_k": 10, "sc_temperature": 0.3, "teacher_temperature": 0.7, "teacher_max_new_tokens": 64,
             "student_max_new_tokens": 80, "train_limit": 1000, "eval_limit": 500, "warmup_steps": 10,
             "train_args": {"precision": "fp32"}, "exemplars": {"commonsense_qa": [("x", "r", "y")]},
             "select_checkpoint": False}
    assert set(flips) == set(PAPER_SETTINGS)
    for key, value in flips.items():
        why = differences_from_paper(replace(paper, **{key: value}))
        assert len(why) == 1 and why[0].startswith(key), (key, why)
    assert "final checkpoint is reported" in differences_from_paper(replace(paper, select_checkpoint=False))[0]
