"""Reliability (docs/reliability.md), the campaign: crash anywhere (SIGKILL at seeded random moments) and a flaky teacher.

Each test compares a run that was killed and resumed with one that was not.  CI runs a few
seeded kills; ``SCOTD_TEST_HEAVY=1`` runs many.  Figures go to ``SCOTD_RELIABILITY_REPORT`` (see
tests/reliability_report.py) and from there to docs/reliability.md.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scotd_kit.corpus import Corpus
from scotd_kit.ledger import read_ledger
from scotd_kit.sampling import BudgetWarning, sample_corpus
from scotd_kit.tasks import load_split
from scotd_kit.teachers import OpenAICompatibleTeacher

from . import campaign_workers as W
from .fake_openai_server import FakeOpenAIServer
from .reliability_report import record

REPO = Path(__file__).resolve().parent.parent
HEAVY = os.environ.get("SCOTD_TEST_HEAVY") == "1"
KEY = "sk-campaign-NEVER-ON-DISK-5e0b"


def kills(ci: int, heavy: int) -> int:
    return heavy if HEAVY else ci


def spawn(*args, env=None, ready_timeout=120):
    """Start a worker in its own process group and wait until its imports are done."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.campaign_workers", *map(str, args)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO), W.ENV: KEY, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip() == "ready" or not line:
            return proc
    raise AssertionError("worker never got ready")


def kill_after(proc, delay: float) -> bool:
    """SIGKILL the worker's whole group after ``delay`` s; True when it was still working."""
    time.sleep(delay)
    alive = proc.poll() is None
    if alive:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return alive


def canon(corpus):
    return sorted(json.dumps(r, sort_keys=True) for r in corpus.records())


def complete_lines(path: Path) -> bytes:
    raw = path.read_bytes() if path.exists() else b""
    return raw[:raw.rfind(b"\n") + 1]


def _teacher(url):
    return OpenAICompatibleTeacher("fake-model", base_url=url, api_key_env=W.ENV, timeout=5, backoff_base=0.01)


def _sample(url, path):
    return sample_corpus("demo_compare", load_split("demo_compare", "validation")[:W.N_INSTANCES], _teacher(url),
                         n=W.N_SAMPLES, corpus_path=path, batch_size=2, progress=False)


# -- crash anywhere: sampling ------------------------------------------------------------------------------

def test_sampling_killed_at_random_moments_resumes_to_the_uninterrupted_corpus(tmp_path, monkeypatch):
    monkeypatch.setenv(W.ENV, KEY)
    rng, tries, mid_run, on_disk_at_kill, wasted = random.Random(20231), kills(3, 40), 0, [], 0
    with FakeOpenAIServer(api_key=KEY, delay=0.01) as server:
        t0 = time.perf_counter()
        fresh = canon(_sample(server.url, tmp_path / "fresh.jsonl"))
        span = time.perf_counter() - t0
        for k in range(tries):
            path = tmp_path / f"killed{k}.jsonl"
            proc = spawn("sample", server.url, path)
            calls = len(server.log)
            mid_run += kill_after(proc, rng.uniform(0, span * 1.2))
            before = complete_lines(path)
            on_disk_at_kill.append(before.count(b"\n"))
            asked_by_killed = len(server.log) - calls
            resumed = _sample(server.url, path)
            assert path.read_bytes().startswith(before)              # nothing written was rewritten
            assert canon(resumed) == fresh                           # same keys, same texts
            wasted += asked_by_killed + (len(server.log) - calls - asked_by_killed) - len(fresh)
    record("test_sampling_killed_at_random_moments_resumes_to_the_uninterrupted_corpus",
           "SIGKILL during sampling (HTTP teacher, random moment)", tries,
           f"{mid_run} kills landed mid-run; every resume equals the uninterrupted corpus byte for byte", 0,
           samples_on_disk_at_kill=sorted(on_disk_at_kill), calls_in_flight_asked_again=wasted)


def test_sampling_under_a_file_size_limit_fails_plainly_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv(W.ENV, KEY)
    with FakeOpenAIServer(api_key=KEY) as server:
        fresh = _sample(server.url, tmp_path / "fresh.jsonl")
        path = tmp_path / "small.jsonl"
        limit = fresh.path.stat().st_size // 2
        proc = spawn("sample_size_limited", server.url, path, limit)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 3, out
        err = json.loads(out.strip().splitlines()[-1])
        kept = path.read_bytes()
        assert err["errno"] == 27 and str(path) in err["message"] and not err["chained"]   # EFBIG, plainly
        assert kept.endswith(b"\n") and len(kept) <= limit
        lines = kept.count(b"\n")
        assert read_ledger(Corpus(path).ledger_path)["totals"]["samples"] == lines
        resumed = _sample(server.url, path)
    assert canon(resumed) == canon(fresh)
    record("test_sampling_under_a_file_size_limit_fails_plainly_and_resumes",
           "file size limit hit during sampling (RLIMIT_FSIZE, EFBIG like a full disk)", 1,
           "one plain OSError naming the corpus; no half batch on disk; ledger = corpus; resume completes", 0,
           samples_kept=lines, limit_bytes=limit)


# -- crash anywhere: training ------------------------------------------------------------------------------

def test_training_killed_at_a_random_moment_resumes_to_the_uninterrupted_weights(tmp_path):
    pytest.importorskip("torch")
    from scotd_kit import training

    cfg = W.train_config()
    ref = training.fine_tune("tiny-gpt2", W.instances(), output_dir=tmp_path / "ref", config=cfg, seed=5)
    rng, tries, mid_run, resumed_from = random.Random(7), kills(1, 8), 0, []
    for k in range(tries):
        out = tmp_path / f"cut{k}"
        proc = spawn("train", out)
        # a seeded moment in the run's own time: after step `step` was logged, plus a random fraction of a step
        step = rng.randint(1, cfg.max_steps - 1)
        while proc.poll() is None and _steps_logged(out) < step:
            time.sleep(0.05)
        mid_run += kill_after(proc, rng.uniform(0, 0.5))
        with _any_warnings():
            res = training.fine_tune("tiny-gpt2", W.instances(), output_dir=out, config=cfg, seed=5)
        resumed_from.append(res.resumed_from_step)
        assert [round(x["loss"], 4) for x in res.losses] == [round(x["loss"], 4) for x in ref.losses]
        a, _ = training.load_student(ref.model_dir)
        b, _ = training.load_student(res.model_dir)
        pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
        assert max((pa[n] - pb[n]).abs().max().item() for n in pa) < 1e-4
        assert len(list((out / "checkpoints").glob("checkpoint-*"))) <= cfg.save_total_limit
    record("test_training_killed_at_a_random_moment_resumes_to_the_uninterrupted_weights",
           "SIGKILL during fine-tuning (after a seeded random step; checkpoints every 2 steps)", tries,
           f"{mid_run} kills landed mid-run; resumed from steps {resumed_from}; losses and weights equal "
           f"the uninterrupted run (1e-4)", 0)


def _steps_logged(out: Path) -> int:
    path = out / "losses.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


class _any_warnings:
    """Resume may warn (an incomplete checkpoint it skipped); the campaign only checks the outcome."""

    def __enter__(self):
        import warnings
        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


# -- crash anywhere: reproduce -------------------------------------------------------------------------------

NOTEBOOK_CELL = """\
import json, time
from pathlib import Path
from scotd_kit.io import write_json
value = sum(i * i for i in range({size}))
time.sleep(0.5)
write_json(Path(output_dir) / "{name}.cells.json", [{{"notebook": "{name}", "table": "t", "row": "r",
           "column": "c", "ours": value, "profile": profile}}])
"""


def tiny_notebooks(root: Path) -> Path:
    import nbformat

    root.mkdir(parents=True, exist_ok=True)
    for name, size in (("a_first", 100), ("b_second", 200)):
        params = nbformat.v4.new_code_cell('profile = "smoke"\noutput_dir = "."', metadata={"tags": ["parameters"]})
        nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(NOTEBOOK_CELL.format(name=name,
                                                                                                     size=size))])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, root / f"{name}.ipynb")
    return root


def test_reproduce_killed_at_a_random_moment_gives_the_same_summary_on_rerun(tmp_path):
    pytest.importorskip("papermill")
    from scotd_kit.reproduce import reproduce

    nbs = tiny_notebooks(tmp_path / "nbs")
    t0 = time.perf_counter()
    ref = reproduce("smoke", output_dir=tmp_path / "ref", executed_dir=tmp_path / "ref_exec", notebooks_dir=nbs,
                    progress=False)
    span = time.perf_counter() - t0
    assert not ref.failed
    rng, tries, mid_run = random.Random(11), kills(1, 6), 0
    for k in range(tries):
        out, ex = tmp_path / f"cut{k}", tmp_path / f"cut{k}_exec"
        proc = spawn("reproduce", nbs, out, ex)
        mid_run += kill_after(proc, rng.uniform(0, span))
        again = reproduce("smoke", output_dir=out, executed_dir=ex, notebooks_dir=nbs, progress=False)
        assert not again.failed
        assert (out / "smoke" / "summary.csv").read_text() == (tmp_path / "ref" / "smoke" / "summary.csv").read_text()
    record("test_reproduce_killed_at_a_random_moment_gives_the_same_summary_on_rerun",
           "SIGKILL during `reproduce` (papermill, random moment)", tries,
           f"{mid_run} kills landed mid-run; every rerun's summary.csv equals the uninterrupted one", 0)


# -- flaky teacher ------------------------------------------------------------------------------------------

FAULT_KINDS = [("429", 0), "500", "503", "reset", "timeout", "truncated", "malformed_json", "malformed_shape",
               "surrogate", ("slow", 0.05)]
RETRIED = {"429", "500", "503", "reset", "timeout", "truncated", "malformed_json", "malformed_shape"}


def test_a_flaky_teacher_over_hundreds_of_requests_delivers_every_sample_exactly_once(tmp_path, monkeypatch):
    monkeypatch.setenv(W.ENV, KEY)
    rng = random.Random(42)
    instances, n = (60, 5) if HEAVY else (40, 5)
    examples = load_split("demo_compare", "validation")[:instances]
    faults = [rng.choice(FAULT_KINDS) if rng.random() < 0.3 else None for _ in range(3 * instances * n)]
    with FakeOpenAIServer(api_key=KEY, faults=faults, timeout_sleep=0.6) as server:
        teacher = OpenAICompatibleTeacher("fake-model", base_url=server.url, api_key_env=W.ENV, timeout=0.3,
                                          backoff_base=0.01, backoff_max=0.05, max_retries=8, retry_budget=500)
        corpus = sample_corpus("demo_compare", examples, teacher, n=n, corpus_path=tmp_path / "c.jsonl",
                               batch_size=8, progress=False)
        consumed = [e["fault"] for e in server.log]
    kind = lambda f: f[0] if isinstance(f, tuple) else f                           # noqa: E731
    injected = {k: sum(1 for f in consumed if kind(f) == k) for k in map(kind, FAULT_KINDS)}
    retried = sum(v for k, v in injected.items() if k in RETRIED)
    records, totals = corpus.records(), read_ledger(corpus.ledger_path)["totals"]
    assert len(records) == instances * n and len({r["key"] for r in records}) == instances * n
    assert set(server.delivered.values()) == {1}                  # no sample paid twice
    # every retry is accounted for: an injected fault, or an attempt that never reached the server (a
    # pooled connection the server had closed after a reset or a truncated body)
    never_arrived = totals["calls"] + totals["retries"] - len(server.log)
    assert teacher.retries_used == totals["retries"] == retried + never_arrived
    assert sum("text_repaired" in r for r in records) == injected["surrogate"]
    record("test_a_flaky_teacher_over_hundreds_of_requests_delivers_every_sample_exactly_once",
           "flaky server: 429+Retry-After, 500, 503, resets, timeouts, truncated / malformed bodies, lone "
           "surrogates, slow answers (30% of requests)", len(consumed),
           f"{instances * n} samples, each delivered and stored once; {retried + never_arrived} retries "
           f"({never_arrived} on stale pooled connections), all within budget; "
           f"{injected['surrogate']} surrogate texts stored flagged", 0,
           **{f"{k}": v for k, v in injected.items() if v})


def test_a_budget_cap_on_a_flaky_teacher_stops_cleanly_and_the_rerun_completes(tmp_path, monkeypatch):
    monkeypatch.setenv(W.ENV, KEY)
    rng = random.Random(5)
    examples = load_split("demo_compare", "validation")[:12]
    faults = [rng.choice(FAULT_KINDS) if rng.random() < 0.3 else None for _ in range(200)]
    with FakeOpenAIServer(api_key=KEY, faults=faults, timeout_sleep=0.6) as server:
        def teacher():
            return OpenAICompatibleTeacher("fake-model", base_url=server.url, api_key_env=W.ENV, timeout=0.3,
                                           backoff_base=0.01, backoff_max=0.05, max_retries=8)
        with pytest.warns(BudgetWarning):
            capped = sample_corpus("demo_compare", examples, teacher(), n=4, corpus_path=tmp_path / "c.jsonl",
                                   batch_size=4, progress=False, max_new_tokens=30, budget={"tokens": 6000})
        spent = server.billed["prompt"] + server.billed["completion"]
        held = len(capped.records())
        done = sample_corpus("demo_compare", examples, teacher(), n=4, corpus_path=tmp_path / "c.jsonl",
                             batch_size=4, progress=False, max_new_tokens=30)
    assert capped.stopped == "budget" and spent <= 6000 and 0 < held < 48
    assert len(done.records()) == 48 and set(server.delivered.values()) == {1}
    record("test_a_budget_cap_on_a_flaky_teacher_stops_cleanly_and_the_rerun_completes",
           "token budget cap on a flaky server", 1,
           f"stopped at {spent} of 6000 tokens with {held}/48 samples; the rerun completed with none bought twice", 0)
