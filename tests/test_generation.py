"""The kit's decode loop against ``model.generate`` and against its own promises (batching, seeds, stops)."""
import math
from collections import Counter

import pytest
import torch

from scotd_kit import generation
from scotd_kit.generation import (Generation, GenerationConfig, PromptCache, cut_at_stop, generate, prefill_groups,
                                  row_seed, sample_rows, uniforms)
from scotd_kit.models import load_model

PROMPTS = ["Q: What is 2+3?\nA: ", "Q: Is the sky blue on a clear day, or is it green?\nA: ", "Hi", "Q: x\nA: "]
PREFIX = "Q: 1+1?\nA: Add one to one. So the answer is: 2\n\n"


@pytest.fixture(scope="module", params=["tiny-gpt2", "tiny-opt", "tiny-llama"])
def tiny(request):
    model, tok = load_model(request.param)
    return model.eval(), tok


def hf_greedy(model, tok, ids: list[int], max_new_tokens: int, **kw) -> list[int]:
    x = torch.tensor([ids])
    out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=max_new_tokens,
                         do_sample=False, pad_token_id=tok.pad_token_id, **kw)[0, x.shape[1]:].tolist()
    eos = model.generation_config.eos_token_id
    return out[:out.index(eos) + 1] if eos in out else out  # HF pads after EOS


@pytest.mark.parametrize("prefix", ["", PREFIX])
def test_greedy_equals_hf_generate(tiny, prefix):
    model, tok = tiny
    cfg = GenerationConfig(max_new_tokens=12, stop=())
    out = generate(model, tok, PROMPTS, cfg, prefix=prefix)
    for p, (g,) in zip(PROMPTS, out):
        ids = (tok(prefix)["input_ids"] if prefix else []) + tok(p, add_special_tokens=not prefix)["input_ids"]
        assert g.token_ids == hf_greedy(model, tok, ids, 12), p
        assert g.prompt_tokens == len(ids)
        assert g.finish_reason in ("length", "eos")


def test_greedy_independent_of_batch_size_and_n(tiny):
    model, tok = tiny
    cfg = GenerationConfig(max_new_tokens=10, stop=(), n=3)
    one = generate(model, tok, PROMPTS, cfg, prefix=PREFIX, batch_size=1)
    many = generate(model, tok, PROMPTS, cfg, prefix=PREFIX, batch_size=64)
    assert [[g.token_ids for g in row] for row in one] == [[g.token_ids for g in row] for row in many]
    assert all(len(row) == 3 and row[0] == row[1] == row[2] for row in many)
    assert many[0][0] is not many[0][1]  # copies, so a caller editing one sample does not edit the others


def test_prefill_in_length_groups_gives_the_same_samples(tiny, monkeypatch):
    """Prompts prefilled one length group at a time (the default puts these short prompts in one
    batch) decode exactly as before: greedy and sampled, with and without a shared prefix."""
    model, tok = tiny
    for cfg in (GenerationConfig(max_new_tokens=8, stop=()),
                GenerationConfig(max_new_tokens=8, stop=(), do_sample=True, temperature=0.8, n=3, seed=4)):
        for prefix in ("", PREFIX):
            one_batch = generate(model, tok, PROMPTS, cfg, prefix=prefix, batch_size=6)
            monkeypatch.setattr(generation, "PREFILL_MIN_TOKENS", 0)
            monkeypatch.setattr(generation, "PREFILL_WASTE", 0.0)
            split = generate(model, tok, PROMPTS, cfg, prefix=prefix, batch_size=6)
            monkeypatch.undo()
            assert [[g.token_ids for g in r] for r in split] == [[g.token_ids for g in r] for r in one_batch]


@pytest.mark.parametrize("prefix", ["", PREFIX])
def test_prompt_cache_reuses_keys_values_and_changes_no_token(tiny, prefix):
    """Turns that re-send a growing context (each prompt extends an earlier one, some by one token,
    one not at all) decode the same with a prompt cache as without, and the cache is used."""
    model, tok = tiny
    turns = [["Q: What is 2+3?\nA:", "Q: Is the sky blue?"],
             ["Q: What is 2+3?\nA: Add them.\nQ: And 4+4?\nA:", "Q: Is the sky blue? Yes.", "Q: new one"],
             ["Q: What is 2+3?\nA: Add them.\nQ: And 4+4?\nA: 8", "Q: Is the sky blue? Yes.", "Q: new one"]]
    for cfg in (GenerationConfig(max_new_tokens=6, stop=()),
                GenerationConfig(max_new_tokens=6, stop=(), do_sample=True, temperature=0.9, n=2, seed=3)):
        cache = PromptCache(model)
        for prompts in turns:
            plain = generate(model, tok, prompts, cfg, prefix=prefix, batch_size=3)
            cached = generate(model, tok, prompts, cfg, prefix=prefix, batch_size=3, prompt_cache=cache)
            assert [[g.token_ids for g in r] for r in cached] == [[g.token_ids for g in r] for r in plain]
            assert [[g.prompt_tokens for g in r] for r in cached] == [[g.prompt_tokens for g in r] for r in plain]
        assert cache.hits >= 4 and cache.reused_tokens > 20
    with pytest.raises(ValueError, match="another model"):
        generate(model, tok, ["Q: x"], GenerationConfig(max_new_tokens=2), prompt_cache=PromptCache(object()))


def test_prompt_cache_drops_the_least_recently_used_past_its_budget(tiny):
    model, tok = tiny
    cache = PromptCache(model, max_tokens=12)
    cfg = GenerationConfig(max_new_tokens=2, stop=())
    for p in ("Q: one two three", "Q: four five six", "Q: seven eight nine"):
        generate(model, tok, [p], cfg, prompt_cache=cache)
    assert 0 < cache.tokens <= 12 and len(cache._entries) < 3


def test_prefill_groups_bound_padding_and_keep_order():
    lengths = [49, 48, 48, 47, 46, 44, 44, 43, 35, 35, 34, 33, 32, 31, 12, 3]
    groups = prefill_groups(lengths, waste=0.1, min_tokens=100)
    assert [p for g in groups for p in g] == list(range(len(lengths)))      # every prompt once, in order
    for g in groups:
        padded, real = lengths[g[0]] * len(g), sum(lengths[p] for p in g)
        assert padded <= 1.1 * real or lengths[g[0]] * (len(g) - 1) < 100   # the bound, or still too small
    assert len(groups) > 1
    assert prefill_groups([40] * 5, waste=0.0, min_tokens=0) == [[0, 1, 2, 3, 4]]   # equal lengths: one batch
    assert prefill_groups([40, 20], waste=0.0, min_tokens=0) == [[0], [1]]


def test_logprobs_are_raw_softmax_of_the_chosen_tokens():
    model, tok = load_model("tiny-gpt2")
    cfg = GenerationConfig(max_new_tokens=6, stop=(), do_sample=True, temperature=0.5, top_k=5)
    g = generate(model.eval(), tok, [PROMPTS[0]], cfg)[0][0]
    ids = tok(PROMPTS[0])["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids + g.token_ids])).logits[0].float()
    ref = torch.log_softmax(logits, -1)[len(ids) - 1:-1].gather(1, torch.tensor(g.token_ids)[:, None])[:, 0]
    assert g.logprobs == pytest.approx(ref.tolist(), abs=1e-4)


@pytest.mark.parametrize("engine", ["shared", "dense"])
def test_without_logprobs_the_samples_are_the_same(engine):
    """GenerationConfig(logprobs=False) (what evaluation asks for) skips the log-probs only."""
    import dataclasses

    model, tok = load_model("tiny-llama")
    cfg = GenerationConfig(max_new_tokens=8, stop=(), do_sample=True, temperature=0.8, top_k=10, n=3, seed=4)
    with_lp = generate(model.eval(), tok, PROMPTS, cfg, engine=engine)
    without = generate(model, tok, PROMPTS, dataclasses.replace(cfg, logprobs=False), engine=engine)
    assert [[g.token_ids for g in row] for row in without] == [[g.token_ids for g in row] for row in with_lp]
    assert all(g.logprobs == [] for row in without for g in row)
    assert all(len(g.logprobs) == len(g.token_ids) for row in with_lp for g in row)


def test_samples_do_not_depend_on_batch_composition(tiny):
    model, tok = tiny
    cfg = GenerationConfig(max_new_tokens=10, stop=(), do_sample=True, temperature=1.0, top_k=0, n=4, seed=3)
    together = generate(model, tok, PROMPTS, cfg, prefix=PREFIX, batch_size=64)
    small = generate(model, tok, PROMPTS, cfg, prefix=PREFIX, batch_size=4)  # one prompt per batch
    assert [[g.token_ids for g in r] for r in together] == [[g.token_ids for g in r] for r in small]
    # the n samples of a prompt differ (random model, full vocabulary: a collision would be a seeding bug)
    assert len({tuple(g.token_ids) for g in together[1]}) == 4
    again = generate(model, tok, PROMPTS, cfg, prefix=PREFIX)
    assert [[g.token_ids for g in r] for r in again] == [[g.token_ids for g in r] for r in together]
    other = generate(model, tok, PROMPTS, GenerationConfig(**{**cfg.__dict__, "seed": 4}), prefix=PREFIX)
    assert [[g.token_ids for g in r] for r in other] != [[g.token_ids for g in r] for r in together]


@pytest.mark.parametrize("few", [8, 2])   # 8: the prompt in each slot; 2: in a block the samples share
def test_samples_that_share_their_tokens_decode_as_one_row(tiny, monkeypatch, few):
    """At a low temperature a prompt's samples draw the same tokens for a while: they decode as one row
    until one draws another token, and that one goes on with a copy of the keys/values so far. The samples
    are those of every sample decoded in a row of its own, through refills and compaction (6 slots for 16
    samples), with the prompt's keys/values in the slots (a few samples per prompt) or in a block."""
    model, tok = tiny
    monkeypatch.setattr(generation, "FEW_SAMPLES", few)
    engines = []
    init = generation._SlotEngine.__init__

    def recorded(self, *args, **kw):
        init(self, *args, **kw)
        engines.append(self)

    monkeypatch.setattr(generation._SlotEngine, "__init__", recorded)
    fewer, split_late = [], []
    for temperature in (0.02, 0.05, 0.1):
        cfg = GenerationConfig(max_new_tokens=12, stop=(), do_sample=True, temperature=temperature, top_k=0, n=4,
                               seed=3)
        monkeypatch.setattr(generation._SlotEngine, "share_tokens", True)
        shared = generate(model, tok, PROMPTS, cfg, prefix=PREFIX, batch_size=6)
        monkeypatch.setattr(generation._SlotEngine, "share_tokens", False)
        alone = generate(model, tok, PROMPTS, cfg, prefix=PREFIX, batch_size=6)
        assert [[g.token_ids for g in r] for r in shared] == [[g.token_ids for g in r] for r in alone], temperature
        assert [lp for r in shared for g in r for lp in g.logprobs] == \
            pytest.approx([lp for r in alone for g in r for lp in g.logprobs], abs=1e-5)
        assert engines[-1].rows_run >= sum(len(g.token_ids) for r in alone for g in r) - len(PROMPTS) * 4
        fewer.append(engines[-2].rows_run < engines[-1].rows_run)
        # two samples that drew the same first token and then parted: the later one read copied keys/values
        split_late.append(any(a.token_ids[0] == b.token_ids[0] and a.token_ids != b.token_ids
                              for r in shared for a in r for b in r))
    assert any(fewer) and any(split_late), (fewer, split_late)


@pytest.mark.parametrize("engine", ["shared", "dense"])
def test_a_greedy_row_decoded_with_the_samples_is_the_greedy_completion(tiny, engine):
    """generate(greedy_row=True) adds each prompt's greedy completion after its samples, in the same call
    (sharing rows with samples whose tokens it has, on the CPU): the samples are those of a call without it,
    the greedy row that of a greedy call, through refills and compaction (5 slots for 20 rows)."""
    model, tok = tiny
    kw = dict(prefix=PREFIX, batch_size=5, engine=engine)
    followed, parted = [], []
    for temperature in (0.02, 0.1):    # (a tiny random model's next-token distribution is nearly flat)
        cfg = GenerationConfig(max_new_tokens=12, stop=(), do_sample=True, temperature=temperature, top_k=0, n=3,
                               seed=5)
        both = generate(model, tok, PROMPTS, cfg, greedy_row=True, **kw)
        samples = generate(model, tok, PROMPTS, cfg, **kw)
        greedy = generate(model, tok, PROMPTS, GenerationConfig(max_new_tokens=12, stop=()), **kw)
        assert [len(r) for r in both] == [4] * len(PROMPTS)
        assert [[g.token_ids for g in r[:3]] for r in both] == [[g.token_ids for g in r] for r in samples]
        assert [r[3].token_ids for r in both] == [r[0].token_ids for r in greedy], temperature
        assert [lp for r in both for lp in r[3].logprobs] == \
            pytest.approx([lp for r in greedy for lp in r[0].logprobs], abs=1e-5)
        followed += [r[3].token_ids[:2] == g.token_ids[:2] for r in both for g in r[:3]]
        parted += [all(r[3].token_ids != g.token_ids for g in r[:3]) for r in both]
    assert any(followed) and any(parted), (followed, parted)   # both paths of the greedy row were taken
    with pytest.raises(ValueError, match="greedy_row"):
        generate(model, tok, PROMPTS, GenerationConfig(max_new_tokens=4), greedy_row=True)


def test_explicit_seeds_follow_the_prompt_not_its_position():
    model, tok = load_model("tiny-llama")
    cfg = GenerationConfig(max_new_tokens=8, stop=(), do_sample=True, n=2)
    a = generate(model.eval(), tok, PROMPTS[:3], cfg, seeds=[10, 11, 12])
    b = generate(model, tok, [PROMPTS[2], PROMPTS[0]], cfg, seeds=[12, 10])  # a resumed run, reordered
    assert [g.token_ids for g in b[0]] == [g.token_ids for g in a[2]]
    assert [g.token_ids for g in b[1]] == [g.token_ids for g in a[0]]
    assert row_seed(10, None, 0) != row_seed(10, None, 1) != row_seed(11, None, 0)
    with pytest.raises(ValueError, match="seeds has 1 entries for 3 prompts"):
        generate(model, tok, PROMPTS[:3], cfg, seeds=[1])


# -- scripted model: a real tiny model (so the KV cache is genuine) whose logits we dictate ----------

class Scripted(torch.nn.Module):
    """Wraps tiny-gpt2; the k-th generated token is ``script[k]`` whatever the input (logit 10 vs 0)."""

    def __init__(self, inner, script: list[int], prompt_len: int):
        super().__init__()
        self.inner, self.script, self.prompt_len = inner, script, prompt_len
        self.config, self.generation_config = inner.config, inner.generation_config

    def forward(self, input_ids, position_ids, **kw):
        out = self.inner(input_ids=input_ids, position_ids=position_ids, **kw)
        k = position_ids[:, -1] - (self.prompt_len - 1)  # generated tokens so far
        logits = torch.zeros(input_ids.shape[0], 1, out.logits.shape[-1])
        for r, kk in enumerate(k.tolist()):
            logits[r, 0, self.script[min(kk, len(self.script) - 1)]] = 10.0
        out.logits = logits
        return out


@pytest.fixture(scope="module")
def gpt2():
    return load_model("tiny-gpt2")


def scripted(gpt2, text_or_ids, prompt="Q: x\nA: "):
    model, tok = gpt2
    script = tok(text_or_ids)["input_ids"] if isinstance(text_or_ids, str) else text_or_ids
    return Scripted(model, script, len(tok(prompt)["input_ids"])), tok, script


def test_stop_string_cuts_text_and_keeps_tokens(gpt2):
    model, tok, script = scripted(gpt2, "It is 5. So the answer is: 5\n\nQ: next one")
    g = generate(model, tok, ["Q: x\nA: "], GenerationConfig(max_new_tokens=40))[0][0]
    assert g.text == "It is 5. So the answer is: 5"
    assert g.finish_reason == "stop"
    assert g.token_ids == script[:len(g.token_ids)] and tok.decode(g.token_ids).endswith("\n\n")
    lp = math.log(math.exp(10) / (math.exp(10) + len(tok) - 1))
    assert g.logprobs == pytest.approx([lp] * len(g.token_ids), abs=1e-4)


def test_stop_string_split_over_tokens(gpt2):
    nl = gpt2[1]("\n")["input_ids"][0]
    assert [nl] != gpt2[1]("\n\n")["input_ids"]  # GPT-2 has a "\n\n" token: two "\n" tokens test the split
    model, tok, _ = scripted(gpt2, gpt2[1]("yes")["input_ids"] + [nl, nl] + gpt2[1]("more")["input_ids"])
    g = generate(model, tok, ["Q: x\nA: "], GenerationConfig(max_new_tokens=40))[0][0]
    assert (g.text, g.finish_reason, len(g.token_ids)) == ("yes", "stop", 3)


def test_eos_and_length(gpt2):
    eos = gpt2[0].generation_config.eos_token_id
    model, tok, _ = scripted(gpt2, gpt2[1]("done")["input_ids"] + [eos, 11, 11])
    g = generate(model, tok, ["Q: x\nA: "], GenerationConfig(max_new_tokens=40))[0][0]
    assert (g.text, g.finish_reason, g.token_ids[-1]) == ("done", "eos", eos)
    model, tok, _ = scripted(gpt2, "a b c d e f g h i j k l m n o p")  # never stops: a runaway
    g = generate(model, tok, ["Q: x\nA: "], GenerationConfig(max_new_tokens=5))[0][0]
    assert (g.text, g.finish_reason, len(g.token_ids)) == ("a b c d e", "length", 5)


def test_rows_finishing_at_different_times_leave_the_batch(gpt2):
    """The script is read by position, so a longer prompt starts further into it: the short row stops
    at the first blank line and leaves the batch, the long one decodes on to the second."""
    model, tok = gpt2
    short, long_ = "Q: x\nA: ", "Q: x y z w\nA: "
    script = tok("one two\n\nthree four five six\n\n")["input_ids"]
    m = Scripted(model, script, len(tok(short)["input_ids"]))
    out = generate(m, tok, [short, long_], GenerationConfig(max_new_tokens=30))
    offset = len(tok(long_)["input_ids"]) - len(tok(short)["input_ids"])
    assert out[0][0].text == "one two"
    assert out[1][0].token_ids[0] == script[offset] and out[1][0].finish_reason == "stop"
    assert out[1][0].text.endswith("six")


def test_cut_at_stop_takes_the_earliest():
    assert cut_at_stop("a\nb\n\nc###d", ("###", "\n\n")) == "a\nb"
    assert cut_at_stop("abc", ()) == "abc"
    assert GenerationConfig(stop="\n").stop == ("\n",)


@pytest.mark.parametrize("bad", [dict(n=0), dict(max_new_tokens=0), dict(do_sample=True, temperature=0.0),
                                 dict(top_p=0.0), dict(top_k=-1)])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        GenerationConfig(**bad)


# -- the sampler -------------------------------------------------------------------------------------

def gens(n, seed=0):
    """One uniform per row, from each row's own seeded stream (step 0)."""
    seeds = torch.tensor([row_seed(seed, 0, j) for j in range(n)])
    return uniforms(seeds, torch.zeros_like(seeds))


def test_sampler_support_matches_hf_warpers():
    from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

    torch.manual_seed(0)
    logits = torch.randn(64, 40) * 3
    for top_k, top_p in [(5, 1.0), (0, 0.8), (10, 0.6), (0, 1.0)]:
        scores = logits / 0.7
        if top_k:
            scores = TopKLogitsWarper(top_k)(None, scores)
        if top_p < 1:
            scores = TopPLogitsWarper(top_p)(None, scores)
        allowed = torch.isfinite(scores)
        picks = torch.stack([sample_rows(logits, 0.7, top_k, top_p, gens(64, s)) for s in range(30)], 1)
        assert allowed.gather(1, picks).all(), (top_k, top_p)
        if top_k == 0 and top_p == 1.0:
            assert allowed.all()


def test_sampler_frequencies_follow_the_distribution():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = probs.log().expand(4000, 4)
    counts = Counter(sample_rows(logits, 1.0, 0, 1.0, gens(4000)).tolist())
    freq = torch.tensor([counts[i] / 4000 for i in range(4)])
    assert torch.allclose(freq, probs, atol=0.03), freq
    # temperature 0.5 squares and renormalises the probabilities
    counts = Counter(sample_rows(logits, 0.5, 0, 1.0, gens(4000, 1)).tolist())
    sharp = probs ** 2 / (probs ** 2).sum()
    assert torch.allclose(torch.tensor([counts[i] / 4000 for i in range(4)]), sharp, atol=0.03)
    # top_p=0.7 keeps {0.5, 0.3} only (the mass above 0.15 is already 0.8)
    assert set(sample_rows(logits, 1.0, 0, 0.7, gens(4000, 2)).tolist()) == {0, 1}


def test_the_cpu_sampler_picks_the_same_tokens_however_its_rows_are_sliced(monkeypatch):
    """The CPU sampler works through a full vocabulary a few rows at a time (its temporaries stay in cache);
    rows are independent, so the slices change no pick, in any of the sampler's paths."""
    from scotd_kit import generation as G

    torch.manual_seed(0)
    logits = torch.randn(37, 5000) * 3
    u = gens(37, 3)
    paths = [(0.3, 0, 1.0), (1.0, 0, 1.0), (0.7, 50, 1.0), (1.0, 0, 0.9), (0.7, 40, 0.8)]
    whole = {}
    monkeypatch.setattr(G, "SAMPLER_SLICE_BYTES", 1 << 40)
    for args in paths:
        whole[args] = sample_rows(logits, *args, u)
    for size in (1, 8 * 5000 * 3, 8 * 5000 * 16):          # one row, three rows, sixteen rows a slice
        monkeypatch.setattr(G, "SAMPLER_SLICE_BYTES", size)
        for args in paths:
            assert torch.equal(sample_rows(logits, *args, u), whole[args]), (size, args)


def test_draws_that_share_a_row_pick_what_draws_from_copies_of_it_pick(monkeypatch):
    """Samples sharing their tokens draw from their leader's row (sample_rows(source=)): each pick is the one a
    draw from its own copy of that row makes, in every path of the sampler and however the rows are sliced."""
    from scotd_kit import generation as G

    torch.manual_seed(1)
    logits = torch.randn(7, 5000) * 3
    source = torch.tensor([0, 0, 3, 1, 3, 3, 6, 0, 2, 6, 4, 5, 5])
    u = gens(len(source), 4)
    for size in (1 << 40, 1, 8 * 5000 * 3):
        monkeypatch.setattr(G, "SAMPLER_SLICE_BYTES", size)
        for args in [(0.3, 0, 1.0), (0.7, 50, 1.0), (1.0, 0, 0.9), (0.7, 40, 0.8)]:
            assert torch.equal(sample_rows(logits, *args, u, source), sample_rows(logits[source], *args, u)), args


def test_empty_inputs():
    model, tok = load_model("tiny-gpt2")
    assert generate(model, tok, [], GenerationConfig()) == []
    with pytest.raises(ValueError, match="prompt 1 tokenises to no tokens"):
        generate(model, tok, ["a", ""], GenerationConfig(max_new_tokens=2))


def test_smollm2_greedy_equals_hf_generate_with_stop_strings():
    model, tok = load_model("smollm2-135m-instruct")
    model.eval()
    prompts = ["Q: What is 12 plus 30?\nA: ", "Q: Name a color of the sky.\nA: ", "Q: Is ice cold?\nA: "]
    out = generate(model, tok, prompts, GenerationConfig(max_new_tokens=24), batch_size=8)
    for p, (g,) in zip(prompts, out):
        ids = tok(p)["input_ids"]
        ref = hf_greedy(model, tok, ids, 24, stop_strings=["\n\n"], tokenizer=tok)
        assert g.token_ids == ref, p
        assert isinstance(g, Generation) and "\n\n" not in g.text
        assert g.text == tok.decode(ref, skip_special_tokens=True).split("\n\n")[0]


def test_growing_cache_matches_hf_dynamic_cache(gpt2):
    """The in-place cache gives the same logits as HF's DynamicCache through prefill, decode steps,
    row selection and row repetition (the operations generate uses)."""
    from transformers import DynamicCache

    from scotd_kit.generation import new_cache

    model, tok = gpt2
    ids = torch.tensor(tok(["Q: one two three\nA:", "Q: four five six\nA:"])["input_ids"])
    caches = [new_cache(model.config), DynamicCache(config=model.config)]
    assert type(caches[0].layers[0]).__name__ == "GrowingLayer"
    with torch.no_grad():
        outs = [model(input_ids=ids, past_key_values=c, use_cache=True).logits for c in caches]
        for c in caches:
            c.batch_repeat_interleave(3)
            c.batch_select_indices(torch.tensor([0, 2, 4, 5]))
        for step in range(70):  # past the first buffer (64) so it has to grow
            x = torch.full((4, 1), 11 + step)
            pos = torch.full((4, 1), ids.shape[1] + step)
            outs = [model(input_ids=x, position_ids=pos, past_key_values=c, use_cache=True).logits for c in caches]
            assert torch.allclose(outs[0], outs[1], atol=1e-5), step
    assert caches[0].get_seq_length() == caches[1].get_seq_length() == ids.shape[1] + 70


def test_space_boundary_feeds_the_prompt_without_its_trailing_space():
    """SCoTD's "A: " ends in a space a BPE tokeniser would merge into the next word: with
    space_boundary the model sees "...A:" and the completion's own leading space is dropped from its text."""
    model, tok = load_model("tiny-gpt2")
    model.eval()
    cfg = GenerationConfig(max_new_tokens=8, stop=())
    [[moved]] = generate(model, tok, ["Q: x\nA: "], cfg, prefix=PREFIX, space_boundary=True)
    [[plain]] = generate(model, tok, ["Q: x\nA:"], cfg, prefix=PREFIX)
    assert moved.token_ids == plain.token_ids and moved.prompt_tokens == plain.prompt_tokens
    assert moved.text == (plain.text[1:] if plain.text.startswith(" ") else plain.text)
    [[kept]] = generate(model, tok, ["Q: x\nA: "], cfg, prefix=PREFIX)     # off by default: the prompt as given
    assert kept.prompt_tokens == plain.prompt_tokens + 1


@pytest.mark.parametrize("every", [3, 4])
def test_finished_samples_looked_for_every_few_steps_are_the_same_samples(tiny, every, monkeypatch):
    """On a GPU the host looks for finished samples every few steps (generation.SYNC_EVERY) instead of
    waiting for the device each step: each sample's tokens, text, log-probs and finish reason must be
    what a look every step gives."""
    model, tok = tiny
    # "ee": a stop string that tokens complete on their own or across two, at random steps
    cfg = GenerationConfig(max_new_tokens=14, do_sample=True, temperature=1.5, top_k=0, n=5, stop=("ee", "\n"))
    base = generate(model, tok, PROMPTS, cfg, prefix=PREFIX, batch_size=7)
    monkeypatch.setitem(generation.SYNC_EVERY, "cpu", every)
    again = generate(model, tok, PROMPTS, cfg, prefix=PREFIX, batch_size=7)

    def view(out):
        return [[(g.token_ids, g.text, g.finish_reason) for g in row] for row in out]

    assert view(again) == view(base)
    # log-probs up to rounding: between looks the slot caches are read a few (masked) columns further
    assert [lp for row in again for g in row for lp in g.logprobs] == pytest.approx(
        [lp for row in base for g in row for lp in g.logprobs], abs=1e-5)
    assert len({g.finish_reason for row in base for g in row}) >= 2     # rows end for different reasons


def test_scripted_stops_eos_and_lengths_with_a_look_every_four_steps(gpt2, monkeypatch):
    monkeypatch.setitem(generation.SYNC_EVERY, "cpu", 4)
    test_stop_string_cuts_text_and_keeps_tokens(gpt2)
    test_stop_string_split_over_tokens(gpt2)
    test_eos_and_length(gpt2)
    test_rows_finishing_at_different_times_leave_the_batch(gpt2)


def test_prefill_batches_are_capped_in_tokens():
    lengths = [300] * 10 + [100] * 10
    groups = prefill_groups(lengths, waste=1.0, min_tokens=10_000, max_tokens=1000)
    assert [p for g in groups for p in g] == list(range(20))
    assert all(lengths[g[0]] * len(g) <= 1000 for g in groups)
    assert prefill_groups([5000], max_tokens=1000) == [[0]]             # one prompt longer than the cap still runs


def test_prompt_cache_is_budgeted_in_bytes(gpt2):
    model, tok = gpt2
    per_token = generation.kv_bytes_per_token(model)
    cache = PromptCache(model, max_bytes=10 * per_token)
    cfg = GenerationConfig(max_new_tokens=2, stop=())
    for p in ("Q: one two three", "Q: four five six", "Q: seven eight nine"):
        generate(model, tok, [p], cfg, prompt_cache=cache)
    assert 0 < cache.bytes <= 10 * per_token and len(cache._entries) < 3
    assert PromptCache(model).max_bytes < generation.free_bytes("cpu")          # a share of free memory by default


def test_decode_slots_count_the_samplers_transients(gpt2, monkeypatch):
    model, _ = gpt2
    per_slot = generation.slot_bytes(model, 100)
    assert per_slot >= generation.kv_bytes_per_token(model) * 100 + 24 * model.config.vocab_size
    monkeypatch.setattr(generation, "_available_memory", lambda: 40 * per_slot)
    assert generation.auto_batch_size(model, 100, budget_fraction=0.25) == 10
    # the CPU's cap counts decode rows: slots whose samples follow a leader's row are allowed on top, memory permitting
    monkeypatch.delenv("SCOTD_CPU_MAX_SLOTS", raising=False)
    monkeypatch.setattr(generation, "_available_memory", lambda: 10_000 * per_slot)
    assert generation.auto_batch_size(model, 100) == 384
    assert generation.auto_batch_size(model, 100, per_row=5) == 5 * 384
    assert generation.auto_batch_size(model, 100, budget_fraction=0.1, per_row=5) == 1000


def test_a_model_left_on_the_cpu_of_a_gpu_machine_is_named(gpt2, monkeypatch):
    from scotd_kit import hardware

    from .machines import stand_in

    model, tok = gpt2
    hardware._warned.discard("gpu-unused")
    stand_in(monkeypatch, "t4")
    with pytest.warns(RuntimeWarning, match="GPU is present but this model decodes on the CPU"):
        generate(model, tok, ["Q: x"], GenerationConfig(max_new_tokens=2))
    hardware._warned.discard("gpu-unused")


def test_the_cache_goes_under_the_name_the_forward_takes(tiny):
    """transformers 5.25 renamed ``past_key_values=`` to ``cache=``: the old name warns on every decode and goes in
    5.40; an unlisted name would decode with no cache. Both the plain model and a peft wrapper are asked."""
    import warnings

    from peft import LoraConfig, get_peft_model

    model, tok = tiny
    cfg = GenerationConfig(max_new_tokens=6, stop=())
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        plain = generate(model, tok, PROMPTS[:2], cfg, prefix=PREFIX)
    import copy
    wrapped = get_peft_model(copy.deepcopy(model), LoraConfig(r=2, target_modules="all-linear"))
    assert generation._forward_parameters(wrapped) == generation._forward_parameters(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        lora = generate(wrapped.eval(), tok, PROMPTS[:2], cfg, prefix=PREFIX)
    # LoRA's B starts at zero: the wrapped model decodes exactly what the plain one does
    assert [g.token_ids for (g,) in lora] == [g.token_ids for (g,) in plain]
