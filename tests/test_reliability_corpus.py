"""Reliability (docs/reliability.md): regression tests for the corpus and sampling defects (2-6, 8).  Each failed before the fix."""
import errno
import json
import os
import signal
import threading
import warnings
from contextlib import contextmanager

import pytest

from scotd_kit import corpus as corpus_mod
from scotd_kit.corpus import Corpus, CorpusLockedError, TornLineWarning
from scotd_kit.io import DataError
from scotd_kit.ledger import Budget, read_ledger
from scotd_kit.sampling import sample_corpus

from .reliability_report import record
from .test_corpus import ScriptedTeacher


@pytest.fixture
def examples():
    from scotd_kit.tasks import load_split
    return load_split("demo_compare", "validation")[:4]


def run(path, teacher, examples, n, **kw):
    return sample_corpus("demo_compare", examples, teacher, n=n, corpus_path=path, progress=False, **kw)


@contextmanager
def deadline(seconds):
    """Fail instead of hanging: the bug of defect 4 was an endless loop."""
    def boom(*_):
        raise TimeoutError(f"still running after {seconds}s")
    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# -- defect 2: a sample's seed depends on (seed, instance, index) alone --------------------------------

def test_top_up_and_resume_give_the_texts_of_a_direct_run(tmp_path, examples):
    direct = run(tmp_path / "direct.jsonl", ScriptedTeacher(), examples, 5, batch_size=3)
    run(tmp_path / "topped.jsonl", ScriptedTeacher(), examples, 2)
    topped = run(tmp_path / "topped.jsonl", ScriptedTeacher(), examples, 5)
    text = lambda c: {r["key"]: r["text"] for r in c.records()}   # noqa: E731
    assert text(topped) == text(direct)
    assert len(set(text(direct).values())) == 20


# -- defect 3: a lone surrogate from a server ---------------------------------------------------------

def test_a_lone_surrogate_is_stored_replaced_and_flagged_and_the_batch_is_kept(tmp_path, examples):
    texts = [("So the answer is: (a) \ud83d", "stop"), ("fine. So the answer is: (b)", "stop")]
    teacher = ScriptedTeacher(texts)
    corpus = run(tmp_path / "c.jsonl", teacher, examples, 2, batch_size=4)
    recs = corpus.records()
    assert len(recs) == 8
    bad = [r for r in recs if r["sample_index"] == 0]
    assert all(r["text"].endswith("\ufffd") and r["text_repaired"] for r in bad)
    assert all(r["answer"] == "(a) \ufffd" for r in bad)
    assert all("text_repaired" not in r for r in recs if r["sample_index"] == 1)
    teacher.asked.clear()
    run(tmp_path / "c.jsonl", teacher, examples, 2)
    assert teacher.asked == []                                     # nothing is paid for again


def test_the_writer_escapes_a_lone_surrogate_it_is_handed_losslessly(tmp_path, examples):
    path = tmp_path / "c.jsonl"
    run(path, ScriptedTeacher(), examples[:1], 1)
    rec = dict(Corpus(path).records()[0])
    rec["sample_index"], rec["note"] = 1, "\udc80"
    rec["key"] = corpus_mod.record_key(rec["teacher"], rec["prompt_hash"], rec["settings"], rec["instance_id"], 1)
    with Corpus(path).writer() as w:
        assert w.append([rec]) == 1
    assert Corpus(path).records()[1]["note"] == "\udc80"


# -- defect 4: numeric arguments are checked at the door ---------------------------------------------

@pytest.mark.parametrize("kw", [{"batch_size": 0}, {"batch_size": -1}, {"batch_size": 1.5}, {"batch_size": True},
                                {"n": 0}, {"n": 2.0}, {"max_new_tokens": 0}, {"temperature": float("nan")},
                                {"temperature": -1}, {"top_p": 0}, {"top_p": 1.5}, {"top_k": -1}, {"seed": -1},
                                {"budget": {"tokens": -5}}, {"budget": {"dollars": float("inf")}}])
def test_bad_numeric_arguments_are_refused_before_anything_is_done(tmp_path, examples, kw):
    kw = {"n": 2, **kw}
    name = next(k for k in kw if k != "n" or len(kw) == 1)
    with deadline(10), pytest.raises(ValueError, match=f"(?i){name}"):
        run(tmp_path / "c.jsonl", ScriptedTeacher(), examples, **kw)
    assert not (tmp_path / "c.jsonl").exists()


# -- defect 5: the lock is on the resolved path ---------------------------------------------------------

def test_a_symlinked_path_shares_the_lock_and_the_ledger(tmp_path, examples):
    real = tmp_path / "data"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)
    with Corpus(real / "c.jsonl").writer():
        with pytest.raises(CorpusLockedError):
            run(tmp_path / "alias" / "c.jsonl", ScriptedTeacher(), examples, 1)
        with pytest.raises(CorpusLockedError):
            run(tmp_path / "data" / ".." / "alias" / "c.jsonl", ScriptedTeacher(), examples, 1)
    run(tmp_path / "alias" / "c.jsonl", ScriptedTeacher(), examples, 1)
    assert Corpus(tmp_path / "alias" / "c.jsonl").ledger_path == Corpus(real / "c.jsonl").ledger_path
    assert sorted(p.name for p in real.iterdir()) == ["c.jsonl", "c.jsonl.lock", "c.ledger.json"]


# -- defect 6: keys are verified against content; a whole last record is kept ---------------------------

@pytest.mark.parametrize("field,value", [("instance_id", "compare-validation-3"), ("key", "0" * 24),
                                         ("sample_index", 7), ("sample_index", "0"), ("settings", {})])
def test_an_edited_record_is_an_error_naming_file_and_line(tmp_path, examples, field, value):
    path = tmp_path / "c.jsonl"
    run(path, ScriptedTeacher(), examples, 1)
    lines = path.read_text().splitlines(keepends=True)
    rec = json.loads(lines[1])
    rec[field] = value
    lines[1] = json.dumps(rec) + "\n"
    path.write_text("".join(lines))
    with pytest.raises(DataError, match=rf"{path.name}:2: "):
        Corpus(path).records()
    with pytest.raises(DataError, match=rf"{path.name}:2: "):
        run(path, ScriptedTeacher(), examples, 1)


def test_a_whole_last_record_without_its_newline_is_kept_not_bought_again(tmp_path, examples):
    path = tmp_path / "c.jsonl"
    run(path, ScriptedTeacher(), examples, 2)
    before = path.read_bytes()
    path.write_bytes(before[:-1])
    with warnings.catch_warnings():
        warnings.simplefilter("error", TornLineWarning)
        assert len(Corpus(path).records()) == 8
        teacher = ScriptedTeacher()
        run(path, teacher, examples, 3)
    assert teacher.asked == [(e.id, 2, 1) for e in examples]
    assert path.read_bytes().startswith(before) and len(Corpus(path).records()) == 12


# -- defect 8: a full disk ------------------------------------------------------------------------------

def _disk_full_after(monkeypatch, ok_writes):
    real, calls = corpus_mod._write_all, []

    def flaky(fd, data):
        calls.append(len(data))
        if len(calls) > ok_writes:
            os.write(fd, data[:len(data) // 2])          # the kernel took part of it, then ran out of space
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)
    monkeypatch.setattr(corpus_mod, "_write_all", flaky)


def test_disk_full_surfaces_plainly_and_leaves_corpus_and_ledger_consistent(tmp_path, examples, monkeypatch):
    path = tmp_path / "c.jsonl"
    _disk_full_after(monkeypatch, ok_writes=2)
    from scotd_kit import ledger as ledger_mod
    real_write_json = ledger_mod.write_json
    saves = []

    def full_ledger(p, obj):                              # the ledger's own write fails too once space is gone
        saves.append(p)
        if len(saves) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_json(p, obj)
    monkeypatch.setattr(ledger_mod, "write_json", full_ledger)
    with pytest.raises(OSError) as err:
        run(path, ScriptedTeacher(), examples, 2, batch_size=1)
    assert err.value.errno == errno.ENOSPC and str(path) in str(err.value) and "rerun" in str(err.value)
    # one plain error: no chain of "during handling of the above exception" behind a ledger write
    assert err.value.__cause__ is None and err.value.__suppress_context__
    raw = path.read_bytes()
    assert raw.endswith(b"\n") and raw.count(b"\n") == 4                     # two whole batches, no half
    assert read_ledger(Corpus(path).ledger_path)["totals"]["samples"] == 4
    monkeypatch.undo()
    resumed = run(path, ScriptedTeacher(), examples, 2, batch_size=1)
    fresh = run(tmp_path / "fresh.jsonl", ScriptedTeacher(), examples, 2, batch_size=1)
    assert sorted(map(json.dumps, resumed.records())) == sorted(map(json.dumps, fresh.records()))
    assert read_ledger(resumed.ledger_path)["totals"]["samples"] == 8 == path.read_bytes().count(b"\n")


def test_a_run_killed_between_corpus_and_ledger_is_counted_on_the_next_run(tmp_path, examples):
    path = tmp_path / "c.jsonl"
    run(path, ScriptedTeacher(), examples, 1)
    ledger = Corpus(path).ledger_path
    data = read_ledger(ledger)
    data["records_on_disk"] -= 2                         # as if the last save never happened
    ledger.write_text(json.dumps(data))
    with pytest.warns(UserWarning, match="2 samples on disk"):
        run(path, ScriptedTeacher(), examples, 2)
    assert read_ledger(ledger)["totals"]["samples"] == 4 + 4 + 2


# -- readers of a finished corpus take no writer lock ---------------------------------------------------

def test_readers_of_a_finished_corpus_need_no_writer_lock(tmp_path, examples):
    path = tmp_path / "c.jsonl"
    run(path, ScriptedTeacher(), examples, 2)
    teacher = ScriptedTeacher()
    with Corpus(path).writer():                          # another run holds the lock (a writer, or a reader)
        assert len(run(path, teacher, examples, 2).records()) == 8
        assert len(run(path, teacher, examples[:2], 1).records()) == 8      # a subset is finished too
        with pytest.raises(CorpusLockedError):
            run(path, teacher, examples, 3)              # something missing: the writer's lock, as before
    assert teacher.asked == []


def test_two_readers_of_a_finished_corpus_are_never_refused(tmp_path, examples):
    path = tmp_path / "c.jsonl"
    run(path, ScriptedTeacher(), examples, 2)
    refused, reads, per_reader = [], [], 100

    def reader():
        for _ in range(per_reader):
            try:
                reads.append(len(run(path, ScriptedTeacher(), examples, 2).records()))
            except CorpusLockedError:
                refused.append(1)
    threads = [threading.Thread(target=reader) for _ in range(2)]
    with deadline(60):
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert refused == [] and reads == [8] * 2 * per_reader
    record("test_two_readers_of_a_finished_corpus_are_never_refused",
           "two readers of a finished corpus at once (sample_corpus with nothing missing)", 2 * per_reader,
           f"0 refused with CorpusLockedError, {len(reads)} reads of all 8 samples; nothing asked", 0)
