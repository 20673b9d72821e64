"""The OpenAI-compatible teacher against a real HTTP server on loopback (tests/fake_openai_server.py)."""
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from scotd_kit.corpus import Corpus
from scotd_kit.ledger import read_ledger
from scotd_kit.sampling import sample_corpus
from scotd_kit.tasks import load_split
from scotd_kit.teachers import OpenAICompatibleTeacher, TeacherError

from .fake_openai_server import FakeOpenAIServer

KEY = "sk-test-DO-NOT-LEAK-4f1c9a77e2"
ENV = "SCOTD_TEST_API_KEY"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def examples():
    return load_split("demo_compare", "validation")[:4]


def _teacher(server, **kw):
    kw = {"api_key_env": ENV, "timeout": 0.5, "backoff_base": 0.01, "backoff_max": 0.05, **kw}
    return OpenAICompatibleTeacher("fake-model", base_url=server.url, **kw)


def _all_text_under(path: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in path.rglob("*") if p.is_file())


def test_faults_are_retried_and_every_sample_arrives_exactly_once(tmp_path, examples, monkeypatch, caplog):
    monkeypatch.setenv(ENV, KEY)
    faults = [("429", 1), "500", "timeout", "malformed_json", "malformed_shape", "503"]
    caplog.set_level(logging.DEBUG)
    with FakeOpenAIServer(api_key=KEY, faults=faults) as server:
        teacher = _teacher(server, max_concurrency=4, max_retries=len(faults), retry_budget=len(faults))
        corpus = sample_corpus("demo_compare", examples, teacher, n=3, corpus_path=tmp_path / "c" / "corpus.jsonl",
                               batch_size=4, progress=False)
    records = corpus.records()
    assert len(records) == 12 and len({r["key"] for r in records}) == 12
    assert all(len(v) == 3 for v in corpus.by_instance().values())
    # every sample the server delivered in a 200 answer was used once; none was asked twice
    assert sum(server.delivered.values()) == 12 and set(server.delivered.values()) == {1}
    assert teacher.retries_used == len(faults)             # one retry per injected fault, within budget
    assert read_ledger(corpus.ledger_path)["totals"]["retries"] == len(faults)
    # Retry-After: 1 was honoured: the retried request came at least ~1 s after the 429
    first = server.log[0]
    again = next(e for e in server.log[1:] if e["fp"] == first["fp"])
    assert again["t"] - first["t"] >= 0.95
    # the key is nowhere: corpus, ledger, lock, logs, repr
    assert KEY not in _all_text_under(tmp_path)
    assert KEY not in caplog.text and KEY not in repr(teacher) and ENV in repr(teacher)
    assert not any(KEY in json.dumps(r) for r in records)


def test_server_without_n_is_asked_one_sample_per_request(tmp_path, examples, monkeypatch):
    monkeypatch.setenv(ENV, KEY)
    with FakeOpenAIServer(api_key=KEY, supports_n=False) as server:
        teacher = _teacher(server)
        corpus = sample_corpus("demo_compare", examples[:2], teacher, n=4, corpus_path=tmp_path / "c.jsonl",
                               batch_size=2, progress=False)
    assert teacher.n_supported is False
    assert [len(v) for v in corpus.by_instance().values()] == [4, 4]
    assert len({r["text"] for r in corpus.records()}) == 8      # distinct seeds per call: no repeats
    assert sum(server.delivered.values()) == 8
    assert len(server.log) == 2 + 6                           # a first n=4 call per instance, then n=1 calls


def test_retries_stop_at_max_retries_and_at_the_budget(tmp_path, examples, monkeypatch):
    monkeypatch.setenv(ENV, KEY)
    with FakeOpenAIServer(api_key=KEY, always_fail="503") as server:
        with pytest.raises(TeacherError, match="gave up after 2 retries"):
            sample_corpus("demo_compare", examples[:1], _teacher(server, max_retries=2), n=2,
                          corpus_path=tmp_path / "a.jsonl", progress=False)
        assert len(server.log) == 3
    with FakeOpenAIServer(api_key=KEY, always_fail="500") as server:
        teacher = _teacher(server, max_retries=10, retry_budget=3, max_concurrency=1)
        with pytest.raises(TeacherError, match="retry budget of 3"):
            sample_corpus("demo_compare", examples, teacher, n=2, corpus_path=tmp_path / "b.jsonl", progress=False)
        assert len(server.log) == 4
    assert Corpus(tmp_path / "b.jsonl").records() == []


def test_api_key_is_scrubbed_from_errors_and_required_for_remote_hosts(tmp_path, examples, monkeypatch, caplog):
    monkeypatch.setenv(ENV, KEY)
    with FakeOpenAIServer(faults=[("echo_key", 400)]) as server:
        with pytest.raises(TeacherError) as err:
            sample_corpus("demo_compare", examples[:1], _teacher(server), n=1, corpus_path=tmp_path / "c.jsonl",
                          progress=False)
    assert "HTTP 400" in str(err.value) and "***" in str(err.value) and KEY not in str(err.value)
    assert KEY not in _all_text_under(tmp_path) and KEY not in caplog.text
    monkeypatch.delenv(ENV)
    remote = OpenAICompatibleTeacher("m", base_url="https://api.example.invalid/v1", api_key_env=ENV)
    with pytest.raises(TeacherError, match=ENV):
        remote._headers()
    with pytest.raises(TypeError):
        import pickle
        pickle.dumps(remote)


WORKER = textwrap.dedent("""
    import sys
    from scotd_kit.sampling import sample_corpus
    from scotd_kit.tasks import load_split
    from scotd_kit.teachers import OpenAICompatibleTeacher
    url, path = sys.argv[1], sys.argv[2]
    teacher = OpenAICompatibleTeacher("fake-model", base_url=url, api_key_env="SCOTD_TEST_API_KEY", timeout=5)
    sample_corpus("demo_compare", load_split("demo_compare", "validation")[:8], teacher, n=4,
                  corpus_path=path, batch_size=1, progress=False)
""")


def _run_uninterrupted(server, path):
    teacher = OpenAICompatibleTeacher("fake-model", base_url=server.url, api_key_env=ENV, timeout=5)
    return sample_corpus("demo_compare", load_split("demo_compare", "validation")[:8], teacher, n=4,
                         corpus_path=path, batch_size=1, progress=False)


def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_corpus(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, KEY)
    path = tmp_path / "killed.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO), ENV: KEY}
    with FakeOpenAIServer(api_key=KEY, delay=0.25) as server:
        proc = subprocess.Popen([sys.executable, "-c", WORKER, server.url, str(path)], env=env)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if path.exists() and path.read_bytes().count(b"\n") >= 8:     # two instances are on disk
                    break
                assert proc.poll() is None, "the worker ended before it could be killed"
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
        raw = path.read_bytes()
        before = raw[:raw.rfind(b"\n") + 1]           # complete lines (a torn tail is asked again)
        n_before = before.count(b"\n")
        assert 8 <= n_before < 32
        delivered_before = sum(server.delivered.values())

        resumed = _run_uninterrupted(server, path)       # the lock died with the process
        assert path.read_bytes().startswith(before)      # what was on disk is byte-identical
        groups = resumed.by_instance()
        assert len(groups) == 8 and all(len(v) == 4 for v in groups.values())
        assert len({r["key"] for r in resumed.records()}) == 32 == path.read_bytes().count(b"\n")
        # the resume asked only for what was missing (plus at most the batch the kill interrupted)
        asked_after = sum(server.delivered.values()) - delivered_before
        assert asked_after <= 32 - n_before + 4

        fresh = _run_uninterrupted(server, tmp_path / "fresh.jsonl")
    canon = lambda c: sorted(json.dumps(r, sort_keys=True) for r in c.records())   # noqa: E731
    assert canon(resumed) == canon(fresh)
