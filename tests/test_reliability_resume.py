"""Reliability 28.7, 28.9, 28.10: one writer per run directory; evaluation and the Socratic loop write as
they go and resume after a kill; a full disk during an evaluation names its file and keeps what was written."""
import errno
import json
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

pytest.importorskip("torch")
from scotd_kit import evaluation as E  # noqa: E402
from scotd_kit import io as kit_io  # noqa: E402
from scotd_kit import journal as J  # noqa: E402
from scotd_kit.models import load_model  # noqa: E402
from scotd_kit.tasks import load_split  # noqa: E402

from .reliability_report import record  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
_GENERATE = E.generate


class _Kill(Exception):
    """Stands in for the process being killed at that point."""


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-gpt2")


def _examples(n=12):
    return load_split("demo_compare", "validation")[:n]


def _count_prompts(monkeypatch, kill_after=None):
    """Wrap evaluation's decoder: record every prompt it is asked for; raise _Kill past ``kill_after``."""
    asked, real = [], _GENERATE

    def counting(model, tok, prompts, *a, **k):
        if kill_after is not None and len(asked) + len(prompts) > kill_after:
            raise _Kill
        asked.extend(prompts)
        return real(model, tok, prompts, *a, **k)

    monkeypatch.setattr(E, "generate", counting)
    return asked


def _evaluate(tiny, examples, out_dir=None):
    model, tok = tiny
    return E.evaluate(model, tok, "demo_compare", examples, decoding="self_consistency", k=3, max_new_tokens=8,
                      out_dir=out_dir, progress=False)


def test_an_evaluation_killed_midway_resumes_where_it_stopped(tiny, tmp_path, monkeypatch):
    """28.9: killed at 31-69%, the rerun redid 89-106% of the work. Now each part's texts are written as it
    finishes; the rerun decodes only the rest and its result equals an uninterrupted run's."""
    exs = _examples()
    ref = _evaluate(tiny, exs)
    monkeypatch.setattr(E, "CHUNK_ROWS", 6)                       # parts of 2 examples (k=3)
    out = tmp_path / "eval"
    _count_prompts(monkeypatch, kill_after=7)                     # killed in the fourth part
    with pytest.raises(_Kill):
        _evaluate(tiny, exs, out)
    progress = out / E.PROGRESS_FILE
    assert len(progress.read_text().splitlines()) == 1 + 6         # header + 3 parts of 2
    with progress.open("ab") as f:
        f.write(b'{"id": "torn')                                   # the kill tore a line being written
    asked = _count_prompts(monkeypatch)
    res = _evaluate(tiny, exs, out)
    assert len(asked) == 6                                         # only the unfinished half was decoded
    assert [r["texts"] for r in res.records] == [r["texts"] for r in ref.records]
    assert (res.accuracy, res.ci95) == (ref.accuracy, ref.ci95)
    assert not progress.exists() and (out / "summary.json").exists()
    record("test_reliability_resume.py::test_an_evaluation_killed_midway...",
           "28.9 an evaluation killed in its fourth of six parts, then run again", 1,
           "the rerun decoded only the 6 unfinished examples; texts and accuracy equal an uninterrupted run's", 0,
           examples=12, decoded_again=len(asked))


def test_a_resumed_evaluation_uses_todays_examples(tiny, tmp_path, monkeypatch):
    """Texts written before a kill are reused only for the same prompt; a changed gold is scored, not decoded."""
    import dataclasses

    exs = _examples(8)
    monkeypatch.setattr(E, "CHUNK_ROWS", 6)
    _count_prompts(monkeypatch, kill_after=4)
    with pytest.raises(_Kill):
        _evaluate(tiny, exs, tmp_path)
    changed = [dataclasses.replace(exs[0], label="nonsense"), dataclasses.replace(exs[1], question="Another question?"),
               *exs[2:]]
    asked = _count_prompts(monkeypatch)
    res = _evaluate(tiny, changed, tmp_path)
    assert len(asked) == 4 + 1 and "Another question?" in asked[0]    # the rest, and the changed question
    assert res.records[0]["gold"] == "nonsense" and not res.records[0]["correct_strict"]


def test_other_settings_never_resume_from_a_journal(tmp_path):
    journal = J.Journal(tmp_path / "p.jsonl", {"k": 3})
    journal.append([{"id": "a", "texts": ["x"]}])
    assert J.Journal(tmp_path / "p.jsonl", {"k": 5}).done() == {}
    J.Journal(tmp_path / "p.jsonl", {"k": 5}).append([{"id": "b"}])
    assert list(J.Journal(tmp_path / "p.jsonl", {"k": 5}).done()) == ["b"]
    assert journal.done() == {}


def test_a_full_disk_during_evaluation_names_the_file_and_keeps_the_texts(tiny, tmp_path, monkeypatch):
    """28.10: a full disk gave ``OSError [Errno 27]`` naming no file, and every generated text was lost."""
    exs = _examples()
    monkeypatch.setattr(E, "CHUNK_ROWS", 6)
    calls = {"n": 0}
    real_fsync = os.fsync

    def full_on_third(fd):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(J.os, "fsync", full_on_third)
    out = tmp_path / "eval"
    with pytest.raises(OSError) as err:
        _evaluate(tiny, exs, out)
    assert err.value.errno == errno.ENOSPC and str(out / E.PROGRESS_FILE) in str(err.value)
    monkeypatch.setattr(J.os, "fsync", real_fsync)
    lines = (out / E.PROGRESS_FILE).read_text().splitlines()
    assert len(lines) == 1 + 4 and all(json.loads(line) for line in lines)    # two whole parts, no half of the third
    asked = _count_prompts(monkeypatch)
    res = _evaluate(tiny, exs, out)
    assert len(asked) == 8 and res.n == 12
    record("test_reliability_resume.py::test_a_full_disk_during_evaluation...",
           "28.10 disk full while an evaluation writes its third part", 1,
           "OSError(ENOSPC) naming progress.jsonl; the two parts written before are kept and the rerun decodes "
           "only the other 8 examples", 0, decoded_again=len(asked))


def test_a_full_disk_while_saving_a_result_names_the_file(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(kit_io.os, "fsync", full)
    with pytest.raises(OSError) as err:
        kit_io.write_json(tmp_path / "summary.json", {"accuracy": 0.5})
    assert err.value.errno == errno.ENOSPC and str(tmp_path / "summary.json") in str(err.value)
    assert not list(tmp_path.iterdir())                            # no temp file left behind


def test_the_socratic_loop_resumes_after_a_kill(tmp_path, monkeypatch):
    """28.9: the Socratic loop redid every problem after a kill. Now each problem's trace is written as it
    ends; the rerun solves only the rest and scores the same records as an uninterrupted run."""
    import shutil

    from scotd_kit.socratic import pipeline as P

    monkeypatch.setenv("SCOTD_RUNS_DIR", str(tmp_path / "runs"))
    from scotd_kit.socratic.settings import socratic_settings

    ref = P.evaluate(socratic_settings("smoke"), "demo_socratic", "iterative")
    for evals in (tmp_path / "runs").rglob("evals"):
        shutil.rmtree(evals)                                       # the students stay; the evaluation is redone
    solved, real_solve, real_append = [], P.solve_iterative, J.Journal.append

    def counting(qg, qa, questions, *a, **k):
        solved.extend(questions)
        return real_solve(qg, qa, questions, *a, **k)

    def killed_after_two(self, items):
        real_append(self, items)
        if len(self.done()) >= 2:
            raise _Kill

    monkeypatch.setattr(P, "solve_iterative", counting)
    monkeypatch.setattr(J.Journal, "append", killed_after_two)
    with pytest.raises(_Kill):
        P.evaluate(socratic_settings("smoke", decode_batch_size=1), "demo_socratic", "iterative")
    monkeypatch.setattr(J.Journal, "append", real_append)
    solved.clear()
    res = P.evaluate(socratic_settings("smoke"), "demo_socratic", "iterative")
    assert len(solved) == ref["n"] - 2
    assert res["records"] == ref["records"] and res["accuracy"] == ref["accuracy"]
    record("test_reliability_resume.py::test_the_socratic_loop...",
           "28.9 the Socratic loop killed after 2 of 4 problems, then run again", 1,
           "the rerun solved only the 2 unfinished problems; records equal an uninterrupted run's", 0,
           problems=ref["n"], solved_again=len(solved))


def _worker(*args, stderr=None):
    proc = subprocess.Popen([sys.executable, "-m", "tests.campaign_workers", *map(str, args)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=stderr or subprocess.DEVNULL, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_second_fine_tune_on_one_directory_waits_for_the_first(tmp_path):
    """28.7: two fine_tune on one output dir interleaved (16 loss lines for 8 steps, tokens doubled, a
    FileNotFoundError on a temp file). Now the second waits for the first, saying so, then returns its result."""
    out, gate = tmp_path / "run", tmp_path / "gate"
    gate.mkdir()
    first = _worker("train_held", out, gate)
    try:
        assert _wait_for(lambda: (gate / "training").exists(), 120), "the first run never started training"
        second = _worker("train_and_report", out, stderr=subprocess.PIPE)
        said = []
        threading.Thread(target=lambda: said.extend(second.stderr), daemon=True).start()
        waited = _wait_for(lambda: any("being written by another process" in line for line in said), 120)
    finally:
        (gate / "go").touch()
    a, b = (json.loads(p.communicate(timeout=300)[0].strip().splitlines()[-1]) for p in (first, second))
    assert first.returncode == 0 and second.returncode == 0
    assert waited, "the second run did not wait for the first"
    steps = [json.loads(line)["step"] for line in (out / "losses.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9)) and a == b and a["steps"] == 8
    record("test_reliability_resume.py::test_a_second_fine_tune_on_one_directory...",
           "28.7 two fine_tune on one output directory, the second started while the first trains", 1,
           "the second waited (saying so) and returned the first's result: 8 loss lines for 8 steps, equal tokens", 0,
           loss_lines=len(steps))


def test_a_notebook_cut_by_a_full_disk_leaves_no_half_written_copy(tmp_path, monkeypatch):
    """28.10: during ``reproduce`` a full disk left the executed notebook as invalid JSON (and an earlier
    run's copy would have passed for this one's). Now the copy is replaced only by a whole notebook."""
    import papermill

    from scotd_kit import reproduce as rep

    nb = REPO / "notebooks" / "00_quickstart.ipynb"
    executed = tmp_path / "executed"
    executed.mkdir()
    (executed / nb.name).write_text('{"cells": [], "note": "an earlier run"}')

    def cut_by_full_disk(src, dst, **kw):
        Path(dst).write_text(Path(src).read_text()[:500])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(papermill, "execute_notebook", cut_by_full_disk)
    run = rep.run_notebook(nb, "smoke", tmp_path / "out", executed)
    assert not run.ok and "No space left" in run.error and "could not be written whole" in run.error
    assert list(executed.iterdir()) == []                           # no half notebook, no earlier run's copy

    def whole(src, dst, **kw):
        # through papermill's own writer: a name it does not take for a notebook warns in every make demo log
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            papermill.iorw.papermill_io.write(Path(src).read_text(), dst)

    monkeypatch.setattr(papermill, "execute_notebook", whole)
    run = rep.run_notebook(nb, "smoke", tmp_path / "out", executed)
    assert run.ok and json.loads(Path(run.executed).read_text())["cells"]
    assert [p.name for p in executed.iterdir()] == [nb.name]
    record("test_reliability_resume.py::test_a_notebook_cut_by_a_full_disk...",
           "28.10 disk full while papermill writes the executed notebook", 1,
           "the notebook is reported failed naming the copy; no invalid JSON and no earlier run's copy is left", 0)
