"""Teacher backends: the local transformers teacher (tiny model), vLLM's guard and seeding, the registry."""
import json
import sys
import types

import pytest

from scotd_kit.sampling import sample_corpus
from scotd_kit.tasks import load_split
from scotd_kit.teachers import (BACKENDS, LocalTeacher, SampleRequest, SamplingSettings, Teacher,
                                TeacherUnavailableError, VLLMTeacher, make_teacher)


@pytest.fixture(scope="module")
def tiny():
    return LocalTeacher("tiny-gpt2", batch_size=16)


def canon(corpus):
    """Records without their mean log-prob: padding in another batch shape moves it by ~1e-7."""
    return sorted(json.dumps({k: v for k, v in r.items() if k != "mean_logprob"}, sort_keys=True)
                  for r in corpus.records())


def test_local_teacher_samples_do_not_depend_on_batching_or_interruption(tiny, tmp_path):
    assert isinstance(tiny, Teacher) and tiny.id == "local:tiny-gpt2+sb+fp32"   # tests pin fp32 (conftest)
    examples = load_split("demo_compare", "validation")[:4]
    kw = dict(n=3, max_new_tokens=12, progress=False)
    one_go = sample_corpus("demo_compare", examples, tiny, corpus_path=tmp_path / "a.jsonl", batch_size=4, **kw)
    # "interrupted" after two instances, resumed with another batch layout
    sample_corpus("demo_compare", examples[:2], tiny, corpus_path=tmp_path / "b.jsonl", batch_size=1, **kw)
    resumed = sample_corpus("demo_compare", examples, tiny, corpus_path=tmp_path / "b.jsonl", batch_size=3, **kw)
    assert canon(one_go) == canon(resumed)
    lp = lambda c: [r["mean_logprob"] for r in sorted(c.records(), key=lambda r: r["key"])]   # noqa: E731
    assert lp(one_go) == pytest.approx(lp(resumed), abs=1e-5)
    recs = one_go.records()
    assert len(recs) == 12 and len({r["text"] for r in recs}) > 1          # samples differ from each other
    assert all(r["completion_tokens"] <= 12 and r["prompt_tokens"] > 300 for r in recs)
    assert all(r["mean_logprob"] is None or r["mean_logprob"] < 0 for r in recs)
    other_seed = sample_corpus("demo_compare", examples[:1], tiny, corpus_path=tmp_path / "c.jsonl", seed=1, **kw)
    assert {r["text"] for r in other_seed.records()} != {r["text"] for r in one_go.by_instance()[examples[0].id]}


def test_local_teacher_reports_finish_reasons_and_real_token_counts(tiny):
    prompt = "Q: count\nA: "
    res = tiny.sample([SampleRequest(prompt=prompt, n=4, seed=7)], SamplingSettings(max_new_tokens=5))[0]
    assert len(res.completions) == 4
    for c in res.completions:
        assert c.finish_reason in ("stop", "eos", "length")
        assert c.completion_tokens == (5 if c.finish_reason == "length" else c.completion_tokens)
        assert "\n\n" not in c.text
    assert res.completion_tokens >= sum(c.completion_tokens for c in res.completions)


def test_local_teacher_in_another_precision_is_another_teacher(monkeypatch):
    """A bf16 teacher (on a CPU with bf16 instructions: the AMX stand-in) samples otherwise: another id."""
    import torch

    from .machines import stand_in

    stand_in(monkeypatch, "amx_cpu")
    bf16 = LocalTeacher("tiny-gpt2", dtype="bfloat16")
    assert bf16.id == "local:tiny-gpt2+sb+bf16" != LocalTeacher("tiny-gpt2", dtype="fp32").id
    assert bf16.model.dtype == torch.bfloat16
    res = bf16.sample([SampleRequest(prompt="Q: count\nA: ", n=2, seed=7)], SamplingSettings(max_new_tokens=4))[0]
    assert len(res.completions) == 2
    with pytest.raises(ValueError, match="dtype"):
        LocalTeacher(bf16.model, bf16.tokenizer, dtype="bfloat16")


def test_registry_builds_backends_by_kind(tmp_path):
    assert set(BACKENDS) == {"local", "openai", "vllm", "replay"}
    with pytest.raises(ValueError, match="unknown teacher kind 'gpt5'.*local"):
        make_teacher("gpt5")
    t = make_teacher("openai", "m", base_url="http://127.0.0.1:9/v1", api_key_env=None)
    assert t.id == "openai:m" and isinstance(t, Teacher)
