"""A local teacher re-asked for the samples a cut-off write lost gives back the same texts."""
import json
import warnings

import pytest

from scotd_kit.corpus import TornLineWarning
from scotd_kit.sampling import sample_corpus
from scotd_kit.tasks import load_split
from scotd_kit.teachers import LocalTeacher


def test_resumed_local_samples_have_the_lost_texts(tmp_path):
    examples = load_split("demo_compare", "train", limit=2)
    teacher = LocalTeacher("tiny-llama")
    path = tmp_path / "c.jsonl"
    kw = dict(n=4, corpus_path=path, max_new_tokens=6, temperature=1.0, progress=False)
    sample_corpus("demo_compare", examples, teacher, **kw)
    lines = path.read_bytes().splitlines(keepends=True)
    # a crash cut the last record of the batch and lost the two before it
    path.write_bytes(b"".join(lines[:-3]) + lines[-1][:20])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TornLineWarning)
        sample_corpus("demo_compare", examples, teacher, **kw)
    again = path.read_bytes().splitlines(keepends=True)
    before = {json.loads(x)["key"]: json.loads(x)["text"] for x in lines}
    after = {json.loads(x)["key"]: json.loads(x)["text"] for x in again}
    assert after == before        # samples 1..3 of the last instance, asked again from index 1, match


def test_a_top_up_draws_the_samples_a_direct_run_draws(tmp_path):
    examples = load_split("demo_compare", "train", limit=2)
    teacher = LocalTeacher("tiny-llama")
    kw = dict(max_new_tokens=6, temperature=1.0, progress=False)
    sample_corpus("demo_compare", examples, teacher, n=2, corpus_path=tmp_path / "a.jsonl", **kw)
    topped = sample_corpus("demo_compare", examples, teacher, n=5, corpus_path=tmp_path / "a.jsonl", **kw)
    direct = sample_corpus("demo_compare", examples, teacher, n=5, corpus_path=tmp_path / "b.jsonl", **kw)
    texts = lambda c: {(r["instance_id"], r["sample_index"]): r["text"] for r in c.records()}  # noqa: E731
    assert texts(topped) == texts(direct)
    assert len(texts(direct)) == 10


def test_greedy_cots_decoded_alongside_are_the_greedy_corpus(tmp_path):
    """A local teacher fills the greedy corpus in the calls that sample (the examples a run samples, resumed
    with it); the records are those of the greedy corpus sampled on its own, keys and texts."""
    examples = load_split("demo_compare", "train", limit=5)
    teacher = LocalTeacher("tiny-llama", batch_size=4)
    kw = dict(max_new_tokens=6, progress=False, batch_size=2)
    sample_corpus("demo_compare", examples[:3], teacher, n=3, temperature=0.1, corpus_path=tmp_path / "s.jsonl",
                  greedy_path=tmp_path / "g.jsonl", **kw)
    assert len((tmp_path / "g.jsonl").read_text().splitlines()) == 3       # the three examples sampled so far
    sample_corpus("demo_compare", examples, teacher, n=3, temperature=0.1, corpus_path=tmp_path / "s.jsonl",
                  greedy_path=tmp_path / "g.jsonl", **kw)
    alone = sample_corpus("demo_compare", examples, teacher, n=1, temperature=0.0, corpus_path=tmp_path / "a.jsonl",
                          **kw)
    records = lambda path: sorted((json.loads(x) for x in path.read_text().splitlines()),  # noqa: E731
                                  key=lambda r: r["key"])
    drop = ("mean_logprob",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in records(tmp_path / "g.jsonl")] == \
        [{k: v for k, v in r.items() if k not in drop} for r in records(alone.path)]
    assert [r["mean_logprob"] for r in records(tmp_path / "g.jsonl")] == \
        pytest.approx([r["mean_logprob"] for r in records(alone.path)], abs=1e-5)
    ledger = json.loads((tmp_path / "g.ledger.json").read_text())
    assert ledger["records_on_disk"] == 5 and ledger["totals"]["wall_seconds"] == 0
    # a greedy run finds it complete: nothing is decoded again
    again = sample_corpus("demo_compare", examples, teacher, n=1, temperature=0.0, corpus_path=tmp_path / "g.jsonl",
                          **kw)
    assert len(again.records()) == 5
