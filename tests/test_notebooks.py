"""Every notebook, executed by papermill under the smoke profile, writes its table and figure."""
import json

import pandas as pd
import pytest

from scotd_kit.profiles import get_profile
from scotd_kit.reproduce import list_notebooks, reproduce

SMOKE = get_profile("smoke")
N_TASKS = len(SMOKE.tasks)
EXPECTED_CELLS = {
    "00_quickstart": 2,
    "table2a_prompting": N_TASKS * len({SMOKE.teacher, SMOKE.student}) * 3,
    "table2b_distillation": N_TASKS * (6 + 1),                       # 6 cells and §3.1's filter rate per task
    "table3a_self_consistency": N_TASKS * 4,
    "table3b_cots_per_instance": N_TASKS * 2 * (len(SMOKE.n_grid) + 1),   # the grid and the N=50-style ablation
    "fig2_cots_per_instance": N_TASKS * (len(SMOKE.n_grid) + 1),
    "fig3_data_scaling": len(SMOKE.fractions) * (1 + len(SMOKE.n_grid)),
    "fig4_student_size": 2 * len(SMOKE.student_sizes),
    "fig5_imdb_contrast": 4,
    "fig6_unseen_task": 4,
    "fig7_downsampling": N_TASKS * (2 + 4),
    "human_eval": 4,
    # Socratic CoT (smoke: the stand-in task, one student size, gold decompositions, no teacher)
    "socratic_main_table": 4,
    "socratic_qg_qa_sizes": 4,
    "socratic_gpt3_comparison": 3,
}


def test_every_notebook_is_covered_and_stored_clean():
    names = {p.stem for p in list_notebooks()}
    assert names == set(EXPECTED_CELLS)
    for path in list_notebooks():
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert "parameters" in code[0]["metadata"].get("tags", []), path
        assert all(not c.get("outputs") and not c.get("execution_count") for c in code), f"{path} has outputs"
        assert "api_key" not in "".join(code[0]["source"]).lower()


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    mp = pytest.MonkeyPatch()
    mp.setenv("SCOTD_RUNS_DIR", str(root / "runs"))  # cold runs, shared by the notebooks of this session
    summary = reproduce("smoke", output_dir=root / "figures", executed_dir=root / "executed", progress=False)
    mp.undo()
    return summary


def test_smoke_reproduce_runs_every_notebook(smoke_run):
    failures = [f"{r.name}: {r.error} ({r.executed})" for r in smoke_run.failed]
    assert not failures, "\n".join(failures)
    assert len(smoke_run.runs) == len(EXPECTED_CELLS)


@pytest.mark.parametrize("name", sorted(EXPECTED_CELLS))
def test_notebook_wrote_table_and_figure(smoke_run, name):
    out = smoke_run.output_dir
    for ext in ("csv", "md", "png", "pdf", "cells.json"):
        assert (out / f"{name}.{ext}").stat().st_size > 0, f"{name}.{ext} missing"
    cells = json.loads((out / f"{name}.cells.json").read_text())
    assert len(cells) == EXPECTED_CELLS[name]
    for c in cells:
        assert c["profile"] in ("smoke", "paper counts")
        assert c["ours"] is None or 0 <= c["ours"] <= 100
        assert c["diff"] is None  # smoke numbers are never compared with the paper's
        if c["profile"] == "smoke":
            assert c["note"].startswith(("not comparable: ", "cannot be made: ")), c
            if c["table"].startswith(("Table", "Fig", "quickstart")) and not c["unavailable"]:
                assert c["run"] and c["ours_flexible"] is not None and c["n"], c   # traced to its run
    table = pd.read_csv(out / f"{name}.csv")
    assert len(table) >= 1


def test_summary_lists_every_cell(smoke_run):
    summary = pd.read_csv(smoke_run.output_dir / "summary.csv")
    assert len(summary) == sum(EXPECTED_CELLS.values())
    assert {"ours", "paper", "diff", "note", "task_run"} <= set(summary.columns)
    text = (smoke_run.output_dir / "summary.md").read_text()
    assert "failed: 0" in text


def test_second_run_only_rerenders(smoke_run, tmp_path):
    """Runs are cached by settings: re-executing a notebook trains and samples nothing new."""
    runs = smoke_run.output_dir.parent.parent / "runs" / "smoke"
    before = sorted(p for p in runs.rglob("*") if p.is_file())
    mp = pytest.MonkeyPatch()
    mp.setenv("SCOTD_RUNS_DIR", str(runs.parent))
    summary = reproduce("smoke", ["table3a_self_consistency"], output_dir=tmp_path, executed_dir=tmp_path / "x",
                        progress=False)
    mp.undo()
    assert not summary.failed
    assert sorted(p for p in runs.rglob("*") if p.is_file()) == before


def _cells(smoke_run, name):
    return json.loads((smoke_run.output_dir / f"{name}.cells.json").read_text())


def _made_by(cell) -> tuple[dict, dict]:
    """(decoding settings, the student's training cell) behind a result row, read from its run directory."""
    from pathlib import Path

    summary = json.loads((Path(cell["run"]) / "summary.json").read_text())
    model = Path(summary["decoding"]["model"])
    lab = model.parent / "lab.json"
    return summary["decoding"], (json.loads(lab.read_text())["cell"] if lab.exists() else {})


def test_table2b_decodes_few_shot_rows_with_sc_and_full_rows_greedily(smoke_run):
    rows = [c for c in _cells(smoke_run, "table2b_distillation") if c["table"] == "Table 2(b)" and c["run"]]
    assert rows
    for c in rows:
        decoding, cell = _made_by(c)
        want = "self_consistency" if c["row"].startswith("few-shot") else "greedy"
        assert decoding["decoding"] == want, c["row"]
        assert cell["setting"] == ("few_shot" if c["row"].startswith("few-shot") else "full")
        assert (c["malformed"] is not None) == (want == "self_consistency")   # reported beside every SC cell


def test_fig2_is_the_full_setting_against_the_full_label_only_student(smoke_run):
    for c in _cells(smoke_run, "fig2_cots_per_instance"):
        decoding, cell = _made_by(c)
        assert (cell["setting"], decoding["decoding"]) == ("full", "greedy")
        assert cell["training"] == ("label_only" if c["row"] == "label-only" else "scotd")


def test_fig6_students_trained_with_demonstrations(smoke_run):
    for c in _cells(smoke_run, "fig6_unseen_task"):
        if c["run"]:
            decoding, cell = _made_by(c)
            assert cell["demonstrations"] is True and decoding["n_demos"] > 0
            assert decoding["cot"] == (not c["row"].startswith("label-only"))


def _paths(field) -> list:
    from pathlib import Path

    return [Path(p) for p in str(field).split("; ") if p and p != "nan"]


def test_every_row_names_the_corpus_student_and_evaluation_runs_behind_it(smoke_run):
    """A table row names the runs that made it, each holding the spec its directory is named by."""
    from scotd_kit.runs import fingerprint

    summary = pd.read_csv(smoke_run.output_dir / "summary.csv")
    measured = summary[summary.ours.notna() & summary.run.notna()]
    specs = {}
    for _, row in measured.iterrows():
        named = {kind: _paths(row[col]) for kind, col in (("eval", "run"), ("student", "student_run"),
                                                         ("corpus", "corpus_run"))}
        for kind, dirs in named.items():
            for d in dirs:
                stored = json.loads((d / "spec.json").read_text())
                assert fingerprint(stored["kind"], stored["spec"]) == d.name, d     # the name is the spec's key
                specs[d] = stored
        scored = {ref for d in named["eval"] for ref in _models(specs[d])}
        students = {f"run:{d.parent.name}/{d.name}/final" for d in named["student"]}
        assert scored == students or not any(r.startswith("run:students/") for r in scored), row.to_dict()
        trained_on = {k for d in named["student"] for k in specs[d]["spec"].get("corpora") or [] if k}
        assert trained_on == {d.name for d in named["corpus"] if specs[d]["kind"] == "corpus"}, row.to_dict()
    with_students = measured[measured.student_run.notna()]
    assert len(with_students) > len(measured) / 2 and with_students.corpus_run.notna().any()
    for d, stored in specs.items():                 # any one setting changed is another run
        for name, value in stored["spec"].items():
            changed = {**stored["spec"], name: [value, "changed"]}
            assert fingerprint(stored["kind"], changed) != d.name, (d, name)


def _models(stored: dict) -> set:
    spec = stored["spec"]
    return set(spec["models"].values()) if "models" in spec else {spec["model"]}


def test_a_moved_runs_directory_reruns_the_smoke_profile_without_making_anything(smoke_run, tmp_path):
    """Runs are keyed by content, never by path: after a move, ``reproduce`` serves every run from its new
    place (nothing trained, sampled or evaluated again) and reports the same numbers."""
    import shutil

    runs = smoke_run.output_dir.parent.parent / "runs"      # SCOTD_RUNS_DIR (<root>/figures/smoke beside it)
    moved = tmp_path / "moved" / "runs"
    shutil.copytree(runs, moved)
    away = runs.with_name("runs-away")
    runs.rename(away)                              # the old place is gone while the moved runs serve
    before = {p: p.stat().st_mtime_ns for p in moved.rglob("*") if p.is_file()}
    mp = pytest.MonkeyPatch()
    mp.setenv("SCOTD_RUNS_DIR", str(moved))
    try:
        again = reproduce("smoke", output_dir=tmp_path / "figures", executed_dir=tmp_path / "executed",
                          progress=False)
    finally:
        mp.undo()
        away.rename(runs)
    assert not again.failed, [f"{r.name}: {r.error}" for r in again.failed]
    assert {p: p.stat().st_mtime_ns for p in moved.rglob("*") if p.is_file()} == before
    old, new = (pd.read_csv(d / "summary.csv") for d in (smoke_run.output_dir, again.output_dir))
    keys = ["notebook", "table", "row", "column"]
    assert len(old) == len(new)
    cols = keys + ["ours", "ours_flexible", "ci_low", "ci_high", "n"]
    pd.testing.assert_frame_equal(old.sort_values(keys)[cols].reset_index(drop=True),
                                  new.sort_values(keys)[cols].reset_index(drop=True))
    assert all(str(moved) in r for r in new.run.dropna())
