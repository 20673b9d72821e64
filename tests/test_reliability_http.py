"""Reliability (docs/reliability.md): the HTTP teacher against the loopback server that behaves like llama.cpp (defects 2, 3, 9, 12-17)."""
import logging
import threading
import time

import pytest

from scotd_kit.corpus import Corpus
from scotd_kit.ledger import read_ledger
from scotd_kit.sampling import BudgetWarning, sample_corpus
from scotd_kit.tasks import load_split
from scotd_kit.teachers import OpenAICompatibleTeacher, TeacherError
from scotd_kit.teachers.base import SamplingSettings, sample_seed

from .fake_openai_server import DEFAULTS, FakeOpenAIServer, fake_text, tokens
from .reliability_report import record

KEY = "sk-test-DO-NOT-LEAK-77b2c1"
ENV = "SCOTD_TEST_API_KEY"


@pytest.fixture
def examples():
    return load_split("demo_compare", "validation")[:4]


def teacher_for(server, **kw):
    kw = {"api_key_env": None, "timeout": 2, "backoff_base": 0.01, "backoff_max": 0.05, **kw}
    return OpenAICompatibleTeacher("fake-model", base_url=server.url, **kw)


def run(server, path, examples, n, teacher=None, **kw):
    return sample_corpus("demo_compare", examples, teacher or teacher_for(server), n=n, corpus_path=path,
                         progress=False, **kw)


def texts(corpus):
    return {r["key"]: r["text"] for r in corpus.records()}


# -- defect 2: texts, not only keys, survive a torn line ----------------------------------------------

def test_a_torn_sample_is_asked_again_with_its_own_seed_and_gets_its_text_back(tmp_path, examples):
    with FakeOpenAIServer() as server:
        fresh = run(server, tmp_path / "fresh.jsonl", examples, 4)
        path = tmp_path / "c.jsonl"
        run(server, path, examples, 4)
        lines = path.read_bytes().splitlines(keepends=True)
        path.write_bytes(b"".join(lines[:-1]) + lines[-1][:40])          # the crash tore the last record
        with pytest.warns(UserWarning, match="torn"):
            resumed = run(server, path, examples, 4)
    assert texts(resumed) == texts(fresh)


# -- defect 3: a lone surrogate from the server ---------------------------------------------------------

def test_a_lone_surrogate_in_a_completion_is_kept_flagged_and_not_paid_again(tmp_path, examples):
    with FakeOpenAIServer(faults=["surrogate"] * 3) as server:
        corpus = run(server, tmp_path / "c.jsonl", examples, 2)
        asked = len(server.log)
        run(server, tmp_path / "c.jsonl", examples, 2)
        assert len(server.log) == asked
    recs = corpus.records()
    assert len(recs) == 8 and sum("text_repaired" in r for r in recs) == 3
    assert all("\ufffd" in r["text"] for r in recs if "text_repaired" in r)


# -- defect 9: secrets ----------------------------------------------------------------------------------

@pytest.mark.parametrize("bad,why", [(KEY + "\n", "newline"), (" " + KEY, "starts with a space"),
                                     ("sk-\u00e9t\u00e9", "non-ASCII"), ("sk-a b", "space")])
def test_a_malformed_key_is_refused_at_construction_without_showing_it(monkeypatch, bad, why):
    monkeypatch.setenv(ENV, bad)
    with pytest.raises(TeacherError, match=why) as err:
        OpenAICompatibleTeacher("m", base_url="https://api.example.invalid/v1", api_key_env=ENV)
    assert ENV in str(err.value) and bad.strip() not in str(err.value)


def test_credentials_in_the_url_never_reach_repr_errors_or_logs(tmp_path, examples, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeOpenAIServer(always_fail="503") as server:
        url = server.url.replace("http://", "http://alice:s3cr3t-pw@") + "?api_key=q-s3cr3t"
        teacher = OpenAICompatibleTeacher("m", base_url=url, api_key_env=None, max_retries=2, backoff_base=0.01)
        with pytest.raises(TeacherError) as err:
            run(server, tmp_path / "c.jsonl", examples[:1], 1, teacher=teacher)
    shown = repr(teacher) + str(err.value) + caplog.text + "".join(
        p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert "gave up" in str(err.value) and "retry 1/2" in caplog.text and "***@127.0.0.1" in shown
    assert "s3cr3t" not in shown


def test_the_bearer_header_never_reaches_a_debug_log(tmp_path, examples, monkeypatch, caplog):
    monkeypatch.setenv(ENV, KEY)
    caplog.set_level(logging.DEBUG)
    with FakeOpenAIServer(api_key=KEY) as server:
        run(server, tmp_path / "c.jsonl", examples[:1], 1, teacher=teacher_for(server, api_key_env=ENV))
    assert "httpcore" in caplog.text and KEY not in caplog.text
    logging.getLogger("httpcore.http11").debug("headers: [(b'Authorization', b'Bearer %s')]", KEY)
    assert KEY not in caplog.text                                   # the scrubbing filter is in place


# -- defect 12: a token budget holds against a server that ignores n and counts more tokens ---------------

def test_a_token_budget_holds_when_the_server_ignores_n(tmp_path, examples):
    budget = 4000
    with FakeOpenAIServer() as server:
        with pytest.warns(BudgetWarning):
            corpus = run(server, tmp_path / "c.jsonl", examples * 1, 6, batch_size=2, max_new_tokens=40,
                         budget={"tokens": budget})
        spent = server.billed["prompt"] + server.billed["completion"]
    led = read_ledger(corpus.ledger_path)
    assert corpus.stopped == "budget" and led["runs"][-1]["stopped"] == "budget"
    assert led["totals"]["prompt_tokens"] + led["totals"]["completion_tokens"] == spent
    assert budget * 0.4 < spent <= budget


# -- defect 13: the dry run learns calls per sample and the token ratio from the ledger ---------------------

def test_the_dry_run_estimate_uses_what_the_ledger_saw(tmp_path, examples):
    path = tmp_path / "c.jsonl"
    with FakeOpenAIServer() as server:
        run(server, path, examples[:2], 2)
        est = run(server, path, examples, 6, dry_run=True).estimate
        before = (len(server.log), server.billed["prompt"])
        run(server, path, examples, 6)
        calls, prompt = len(server.log) - before[0], server.billed["prompt"] - before[1]
    assert est.samples_needed == 20 and est.requests == calls == 20
    assert abs(est.prompt_tokens - prompt) <= 0.05 * prompt


# -- defect 14: a failing batch keeps every completed sample, and counts its retries -------------------------

def test_completed_samples_of_a_failing_batch_are_kept_and_not_bought_again(tmp_path, examples):
    doomed = examples[2].question
    with FakeOpenAIServer(fail_when=lambda body: "500" if doomed in body["prompt"] else None) as server:
        with pytest.raises(TeacherError, match="gave up"):
            run(server, tmp_path / "c.jsonl", examples, 3, teacher=teacher_for(server, max_retries=2), batch_size=4)
        corpus = Corpus(tmp_path / "c.jsonl")
        assert sorted(len(v) for v in corpus.by_instance().values()) == [3, 3, 3]
        led = read_ledger(corpus.ledger_path)
        assert led["totals"]["samples"] == 9 and led["totals"]["retries"] >= 2
        server.fail_when = None
        run(server, tmp_path / "c.jsonl", examples, 3)
    assert len(Corpus(tmp_path / "c.jsonl").records()) == 12
    assert set(server.delivered.values()) == {1}                     # nothing was paid for twice


# -- defect 15: calls grouped by prompt, for the server's prefix cache ----------------------------------------

def test_calls_of_one_instance_reach_the_server_together(tmp_path, examples):
    with FakeOpenAIServer(delay=0.02) as server:
        run(server, tmp_path / "c.jsonl", examples, 8, teacher=teacher_for(server, max_concurrency=4), batch_size=4)
        calls = len([e for e in server.log if e["fault"] is None])
    assert calls == 32 and server.prompt_switches() <= 2 * len(examples)


# -- defects 16 and 17: every setting sent and recorded; no log-probs by default; exact usage; patience ----------

def test_every_sampling_setting_is_sent_explicitly_and_recorded(tmp_path, examples):
    with FakeOpenAIServer() as server:
        corpus = run(server, tmp_path / "c.jsonl", examples[:2], 2)
        bodies = [e["body"] for e in server.log]
    assert all(b["top_k"] == 0 and b["min_p"] == 0.0 and b["repeat_penalty"] == 1.0 for b in bodies)
    assert all(set(DEFAULTS) <= set(b) for b in bodies) and not any("logprobs" in b for b in bodies)
    neutral = {"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}
    for r in corpus.records():
        assert r["sent"]["top_k"] == 0 and r["sent"]["temperature"] == 1.0 and r["settings"]["top_k"] is None
        seed = sample_seed(r["settings"]["seed"], r["instance_id"], r["sample_index"]) % 2 ** 31
        prompt = next(b["prompt"] for b in bodies if b["seed"] == seed)     # the call that asked for it
        assert r["text"] == fake_text(prompt, seed, 0, neutral)           # the server's defaults did not apply
        assert r["completion_tokens"] == tokens(r["text"])                 # the server's usage, not a guess
    openai = OpenAICompatibleTeacher("gpt-x", api_key_env=None)
    body = openai._body("p", SamplingSettings(top_k=5), 1, 0)
    assert "top_k" not in body and "min_p" not in body            # OpenAI's API refuses unknown fields


def test_chat_mode_gets_no_logprobs_and_still_counts_tokens(tmp_path, examples):
    with FakeOpenAIServer() as server:
        corpus = run(server, tmp_path / "c.jsonl", examples[:2], 2, teacher=teacher_for(server, chat=True,
                                                                                         logprobs=True))
    recs = corpus.records()
    assert all(r["mean_logprob"] is None and r["completion_tokens"] == tokens(r["text"]) for r in recs)


def test_a_server_that_restarts_is_waited_for_within_patience(tmp_path, examples):
    with FakeOpenAIServer() as server:
        port = server.port
    revived = FakeOpenAIServer(port=port)
    timer = threading.Timer(1.0, revived.__enter__)      # down now; back on the same port after a second
    timer.start()
    try:
        teacher = OpenAICompatibleTeacher("fake-model", base_url=f"http://127.0.0.1:{port}/v1", api_key_env=None,
                                          max_retries=2, backoff_base=0.05, backoff_max=0.2, patience=20)
        corpus = run(None, tmp_path / "c.jsonl", examples[:2], 2, teacher=teacher)
    finally:
        timer.join()
        revived.__exit__()
    assert len(corpus.records()) == 4
    led = read_ledger(corpus.ledger_path)
    assert led["totals"]["retries"] > 2                                # more than max_retries: patience held


# -- a deadline per call and a cap on the answer ----------------------------------------------------------------

@pytest.mark.parametrize("gap", [0.013, 0.9])       # a 4 s answer; a byte just inside the per-read timeout
def test_a_server_that_drips_its_answer_is_cut_off_at_the_call_deadline(tmp_path, examples, gap):
    with FakeOpenAIServer(always_fail=("drip", gap)) as server:
        teacher = teacher_for(server, timeout=1, max_retries=1)
        t0 = time.monotonic()
        with pytest.raises(TeacherError, match="deadline of 1s"):
            run(server, tmp_path / "c.jsonl", examples[:1], 1, teacher=teacher)
        took = time.monotonic() - t0
        calls = len(server.log)
    assert calls == 2 and took < 2 * 1 + 0.6                    # each call ends at its deadline
    assert read_ledger(Corpus(tmp_path / "c.jsonl").ledger_path)["totals"]["retries"] == calls   # each cut call
    record(f"test_a_server_that_drips_its_answer_is_cut_off_at_the_call_deadline[{gap}]",
           f"server drips a valid answer, a byte every {gap} s (timeout=1)", calls,
           f"each call cut at its 1 s deadline and retried; TeacherError after max_retries=1 in {took:.1f} s", 0,
           seconds_per_call=round(took / calls, 2))


def test_an_endless_answer_is_cut_at_the_size_cap_and_not_bought_again(tmp_path, examples):
    with FakeOpenAIServer(always_fail=("endless", 5.0)) as server:
        teacher = teacher_for(server, timeout=3, max_retries=1)
        t0 = time.monotonic()
        with pytest.raises(TeacherError, match=r"bytes.*max_tokens=40"):
            run(server, tmp_path / "c.jsonl", examples[:1], 1, teacher=teacher, max_new_tokens=40)
        took = time.monotonic() - t0
        calls = len(server.log)
    led = read_ledger(Corpus(tmp_path / "c.jsonl").ledger_path)["totals"]
    assert took < 2 and calls == 1 and led["calls"] == 1       # answered, so counted; refused, so not retried
    cap = teacher._response_cap({"max_tokens": 40, "prompt": server.log[0]["body"]["prompt"]}, 1)
    record("test_an_endless_answer_is_cut_at_the_size_cap_and_not_bought_again",
           "endless chunked answer (about 1 MB/s, max_tokens=40)", calls,
           f"cut at the {cap:,}-byte cap in {took:.2f} s; TeacherError naming max_tokens; counted as 1 call", 0,
           cap_bytes=cap)


def test_an_answer_longer_than_max_tokens_allows_is_refused_not_stored(tmp_path, examples):
    with FakeOpenAIServer(always_fail=("huge", 2_000_000)) as server:
        with pytest.raises(TeacherError, match=r"max_tokens=40"):
            run(server, tmp_path / "c.jsonl", examples[:2], 1, max_new_tokens=40)
        calls = len(server.log)
    path = tmp_path / "c.jsonl"
    led = read_ledger(Corpus(path).ledger_path)["totals"]
    assert (not path.exists() or path.stat().st_size < 10_000) and calls == led["calls"] >= 1
    assert led["completion_tokens"] <= 40 * calls                # counted as asked, not 2M characters' worth
    record("test_an_answer_longer_than_max_tokens_allows_is_refused_not_stored",
           "200 answer with a 2,000,000-character text for max_tokens=40", calls,
           f"refused at the size cap with a TeacherError naming max_tokens; nothing stored; {calls} calls answered, "
           f"{led['calls']} in the ledger with the tokens asked for", 0,
           corpus_bytes=path.stat().st_size if path.exists() else 0)


def test_a_redirect_to_another_host_is_refused_without_the_key(tmp_path, examples, monkeypatch):
    monkeypatch.setenv(ENV, KEY)
    with FakeOpenAIServer() as other, FakeOpenAIServer(always_fail=("redirect", None)) as server:
        server.always_fail = ("redirect", other.url.replace("127.0.0.1", "localhost") + "/completions")
        with pytest.raises(TeacherError, match="HTTP 307"):
            run(server, tmp_path / "c.jsonl", examples[:1], 1, teacher=teacher_for(server, api_key_env=ENV))
        assert other.log == []


# -- malformed optional fields: dropped with a warning, never the paid answer ------------------------------------

MALFORMED_OPTIONAL = {           # case -> (the answer's fault, the field the warning names)
    "logprobs a list": ({"choice": {"logprobs": [1, 2]}}, "logprobs"),
    "token_logprobs of text": ({"choice": {"logprobs": {"token_logprobs": ["a", "b"]}}}, "logprobs"),
    "chat logprobs.content of numbers": ({"choice": {"logprobs": {"content": [1, 2]}}}, "logprobs"),
    "index null": ({"choice": {"index": None}}, "index"),
    "index a string": ({"choice": {"index": "1"}}, "index"),
    "usage 0": ({"answer": {"usage": 0}}, "usage"),
    "usage counts 0": ({"answer": {"usage": {"prompt_tokens": 0, "completion_tokens": 0}}}, "usage"),
    "usage counts of the wrong type": ({"answer": {"usage": {"prompt_tokens": "12", "completion_tokens": -3}}},
                                       "usage"),
}
MALFORMED_SEEN = []


@pytest.fixture(scope="module", autouse=True)
def report_malformed():
    yield
    if MALFORMED_SEEN:
        calls = sum(c for c, _ in MALFORMED_SEEN)
        record("test_a_malformed_optional_field_is_dropped_and_the_paid_answer_kept",
               f"malformed optional fields in a 200 answer ({', '.join(MALFORMED_OPTIONAL)})", len(MALFORMED_SEEN),
               f"every answer kept, the field dropped with a warning naming it; {calls} calls answered, {calls} "
               f"in the ledger; records' prompt tokens = the ledger's; reruns ask nothing", 0,
               samples_kept=sum(s for _, s in MALFORMED_SEEN))


@pytest.mark.parametrize("case", list(MALFORMED_OPTIONAL))
def test_a_malformed_optional_field_is_dropped_and_the_paid_answer_kept(tmp_path, examples, case):
    patch, field = MALFORMED_OPTIONAL[case]
    path, chat = tmp_path / "c.jsonl", case.startswith("chat")
    with FakeOpenAIServer(supports_n=True, always_fail=("patch", patch)) as server:
        with pytest.warns(UserWarning, match=field):
            corpus = run(server, path, examples[:2], 2, teacher=teacher_for(server, logprobs=True, chat=chat))
        answered = len(server.log)
        run(server, path, examples[:2], 2, teacher=teacher_for(server, logprobs=True, chat=chat))
        assert len(server.log) == answered                        # the rerun buys nothing
    recs, led = corpus.records(), read_ledger(corpus.ledger_path)["totals"]
    assert len(recs) == 4 and led["samples"] == 4 and led["calls"] == answered == 2
    assert sorted(r["sample_index"] for r in recs) == [0, 0, 1, 1]
    assert led["prompt_tokens"] == sum(r["prompt_tokens"] for r in recs if r["sample_index"] == 0)   # one call each
    assert all(isinstance(r["prompt_tokens"], int) and r["prompt_tokens"] > 0 for r in recs)
    MALFORMED_SEEN.append((answered, len(recs)))


def test_a_call_the_server_answered_is_counted_even_when_reading_it_fails(tmp_path, examples, monkeypatch):
    def broken(self, *args, **kw):
        raise RuntimeError("a reader bug")
    monkeypatch.setattr(OpenAICompatibleTeacher, "_completion", broken)
    with FakeOpenAIServer() as server:
        with pytest.raises(TeacherError, match="a reader bug"):
            run(server, tmp_path / "c.jsonl", examples[:1], 1)
        answered, billed = len(server.log), server.billed["prompt"]
    led = read_ledger(Corpus(tmp_path / "c.jsonl").ledger_path)["totals"]
    assert led["calls"] == answered == 1 and led["prompt_tokens"] == billed
