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
