"""Shared-prefix attention and the continuous-batching engine: exact against plain attention, the
dense fallback engine and each other; a sample depends on its seed alone."""
import pytest
import torch

from scotd_kit.generation import GenerationConfig, generate, inverse_cdf, uniforms
from scotd_kit.models import load_model
from scotd_kit.shared_prefix import PromptGroups, merged_attention, supports_shared_prefix

PROMPTS = ["Q: What is 2+3?\nA: ", "Q: Is the sky blue on a clear day, or is it green?\nA: ", "Hi", "Q: x\nA: ",
           "Q: Which is larger, 17 or 71? Think it through.\nA: "]
PREFIX = "Q: 1+1?\nA: Add one to one. So the answer is: 2\n\nQ: 2+2?\nA: Two and two. So the answer is: 4\n\n"


def plain_attention(query, prefix_k, prefix_v, key, value, mask, scaling):
    """The textbook computation: concatenate prefix and suffix, repeat KV heads, one softmax."""
    R, H, q, d = query.shape
    g = H // key.shape[1]
    if prefix_k is not None:
        P = prefix_k.shape[1]
        key = torch.cat([prefix_k[None].expand(R, -1, -1, -1), key], dim=2)
        value = torch.cat([prefix_v[None].expand(R, -1, -1, -1), value], dim=2)
        mask = torch.cat([torch.ones(R, q, P, dtype=torch.bool), mask], dim=2)
    key, value = key.repeat_interleave(g, dim=1), value.repeat_interleave(g, dim=1)
    scores = (query @ key.transpose(-1, -2)) * scaling
    scores = scores.masked_fill(~mask[:, None], float("-inf"))
    return scores.softmax(-1) @ value


@pytest.mark.parametrize("heads,kv_heads", [(6, 2), (4, 4), (9, 3)])     # GQA and MHA
@pytest.mark.parametrize("q_len", [1, 5])                                  # decode step, prompt prefill
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("with_prefix", [False, True])
@pytest.mark.parametrize("fused", [True, False])
def test_merged_attention_equals_plain_attention(heads, kv_heads, q_len, padded, with_prefix, fused):
    g = torch.Generator().manual_seed(heads * 100 + q_len)
    R, d, P, S = 3, 16, 11, 7
    query = torch.randn(R, heads, q_len, d, generator=g)
    pk, pv = (torch.randn(kv_heads, P, d, generator=g) for _ in range(2)) if with_prefix else (None, None)
    key, value = torch.randn(R, kv_heads, S, d, generator=g), torch.randn(R, kv_heads, S, d, generator=g)
    mask = torch.ones(R, q_len, S, dtype=torch.bool)
    if padded:   # left padding of different lengths, causal over the last q_len positions
        for r, pad in enumerate([0, 1, 2]):   # every query still sees itself
            mask[r, :, :pad] = False
        mask &= torch.ones(q_len, S, dtype=torch.bool).tril(S - q_len)[None]
    out = merged_attention(query, pk, pv, key, value, mask, d ** -0.5, fused=fused)
    ref = plain_attention(query, pk, pv, key, value, mask, d ** -0.5)
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, atol=1e-5), (out - ref).abs().max()


@pytest.mark.parametrize("heads,kv_heads", [(6, 2), (4, 4)])     # GQA and MHA
@pytest.mark.parametrize("with_prefix", [False, True])
@pytest.mark.parametrize("fused", [True, False])
def test_prompt_blocks_equal_plain_attention(heads, kv_heads, with_prefix, fused):
    """Decode rows of three prompts (of different lengths, 1-3 samples each, interleaved): prompt
    keys/values held once per prompt in a PromptGroups block give plain attention over
    prefix + prompt + the row's own generated tokens."""
    g = torch.Generator().manual_seed(heads + 7 * with_prefix)
    d, P, S = 16, 5, 4
    lengths, row_prompt = [6, 3, 9], [2, 0, 2, 1, 0, 2]
    kv = [[(torch.randn(kv_heads, n, d, generator=g), torch.randn(kv_heads, n, d, generator=g))] for n in lengths]
    groups = PromptGroups(1, max(lengths))
    for p in (2, 0, 1):
        groups.add(p, kv[p])
    blocks = torch.tensor([groups.block[p] for p in row_prompt])
    R = len(row_prompt)
    query = torch.randn(R, heads, 1, d, generator=g)
    pk, pv = (torch.randn(kv_heads, P, d, generator=g) for _ in range(2)) if with_prefix else (None, None)
    key, value = torch.randn(R, kv_heads, S, d, generator=g), torch.randn(R, kv_heads, S, d, generator=g)
    own = torch.tensor([4, 1, 2, 3, 4, 1])            # generated tokens in each row's own cache
    mask = (torch.arange(S)[None, :] < own[:, None])[:, None, :]
    view = groups.view(blocks)
    out = merged_attention(query, pk, pv, key, value, mask, d ** -0.5, fused=fused,
                           groups=(groups.keys[0], groups.values[0], view))
    for r, p in enumerate(row_prompt):    # the reference: the prompt's tokens in front of the row's own
        k_r = torch.cat([kv[p][0][0], key[r, :, :own[r]]], dim=1)[None]
        v_r = torch.cat([kv[p][0][1], value[r, :, :own[r]]], dim=1)[None]
        ref = plain_attention(query[r:r + 1], pk, pv, k_r, v_r, torch.ones(1, 1, k_r.shape[2], dtype=torch.bool),
                              d ** -0.5)
        assert torch.allclose(out[r:r + 1], ref, atol=1e-5), (r, (out[r:r + 1] - ref).abs().max())


def test_prompt_blocks_are_reused_and_grow():
    groups = PromptGroups(2, 3)
    kv = [(torch.ones(1, 2, 4), torch.ones(1, 2, 4))] * 2
    blocks = [groups.add(p, kv) for p in range(5)]               # a fifth prompt doubles the store
    assert len(set(blocks)) == 5 and groups.bias.shape[0] == 8 and groups.add(3, kv) == blocks[3]
    groups.release(1)
    assert groups.add(9, kv) == blocks[1]                        # a finished prompt's block is reused
    assert (groups.bias[blocks[1], 0, 0] == 0).tolist() == [True, True, False]


def test_a_query_that_sees_no_suffix_gets_no_nan():
    """A padding query (nothing visible in its own suffix) must not poison the merge."""
    query, pk, pv = torch.randn(2, 4, 1, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    key, value = torch.randn(2, 2, 3, 8), torch.randn(2, 2, 3, 8)
    mask = torch.ones(2, 1, 3, dtype=torch.bool)
    mask[1] = False
    for fused in (True, False):
        out = merged_attention(query, pk, pv, key, value, mask, 8 ** -0.5, fused=fused)
        assert torch.isfinite(out).all()
        # row 1 attends to the prefix alone
        only_prefix = plain_attention(query[1:], pk, pv, key[1:, :, :0], value[1:, :, :0],
                                      torch.ones(1, 1, 0, dtype=torch.bool), 8 ** -0.5)
        assert torch.allclose(out[1:], only_prefix, atol=1e-5)


@pytest.fixture(scope="module", params=["tiny-gpt2", "tiny-opt", "tiny-llama"])
def tiny(request):
    model, tok = load_model(request.param)
    return model.eval(), tok


def _ids(out):
    return [[g.token_ids for g in row] for row in out]


@pytest.mark.parametrize("prefix", ["", PREFIX])
def test_greedy_shared_equals_dense_equals_any_batch_size(tiny, prefix):
    model, tok = tiny
    assert supports_shared_prefix(model)
    cfg = GenerationConfig(max_new_tokens=9, stop=())
    dense = generate(model, tok, PROMPTS, cfg, prefix=prefix, engine="dense")
    for bs in (1, 2, 64):
        assert _ids(generate(model, tok, PROMPTS, cfg, prefix=prefix, engine="shared", batch_size=bs)) == _ids(dense)


@pytest.mark.parametrize("prefix", ["", PREFIX])
def test_sampled_shared_equals_dense_for_the_same_seeds(tiny, prefix):
    model, tok = tiny
    cfg = GenerationConfig(max_new_tokens=8, stop=(), do_sample=True, temperature=0.9, top_k=0, n=3, seed=5)
    dense = generate(model, tok, PROMPTS, cfg, prefix=prefix, engine="dense")
    shared = generate(model, tok, PROMPTS, cfg, prefix=prefix, engine="shared", batch_size=4)
    assert _ids(shared) == _ids(dense)
    for a, b in zip(shared, dense):
        for x, y in zip(a, b):
            assert x.logprobs == pytest.approx(y.logprobs, abs=1e-4)
            assert (x.text, x.finish_reason, x.prompt_tokens) == (y.text, y.finish_reason, y.prompt_tokens)


def test_a_sample_does_not_depend_on_its_batch_mates():
    """Continuous batching puts a sample beside different rows depending on the slot count and on
    which prompts come with it; its tokens must not move."""
    model, tok = load_model("tiny-llama")
    cfg = GenerationConfig(max_new_tokens=10, stop=(), do_sample=True, top_k=20, n=3, seed=1)
    alone = [generate(model.eval(), tok, [p], cfg, prefix=PREFIX, seeds=[i])[0] for i, p in enumerate(PROMPTS)]
    for bs in (1, 4, 7, 64):
        together = generate(model, tok, PROMPTS, cfg, prefix=PREFIX, seeds=list(range(len(PROMPTS))), batch_size=bs)
        assert _ids(together) == _ids(alone), bs


def test_stop_strings_and_eos_with_refilled_slots():
    """Slots freed by stopped samples are refilled while others run (prompt blocks released and
    reused): texts stay cut at the stop, and every sample is the dense engine's.

    Top-k 50 as in self-consistency: over the full vocabulary at T=1 a sample can land on the CDF
    boundary of two tokens of probability ~1e-6, where the engines' rounding (log-probs agree to
    ~2e-5) decides between them."""
    model, tok = load_model("smollm2-135m-instruct")
    cfg = GenerationConfig(max_new_tokens=24, do_sample=True, temperature=1.0, top_k=50, n=4, seed=2)
    prompts = ["Q: Name a fruit.\nA: ", "Q: What is 3 + 4?\nA: ", "Q: Is ice cold?\nA: "]
    dense = generate(model.eval(), tok, prompts, cfg, engine="dense")
    shared = generate(model, tok, prompts, cfg, engine="shared", batch_size=3)
    assert _ids(shared) == _ids(dense)
    for row_s, row_d in zip(shared, dense):
        for a, b in zip(row_s, row_d):
            assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
    for row in shared:
        for g in row:
            assert "\n\n" not in g.text
            assert g.finish_reason in ("stop", "eos", "length")
            assert len(g.token_ids) == len(g.logprobs) <= 24


def test_sliding_window_models_fall_back_to_the_dense_engine():
    from transformers import MistralConfig, MistralForCausalLM

    model, tok = load_model("tiny-llama")
    cfg = MistralConfig(vocab_size=model.config.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, sliding_window=4)
    mistral = MistralForCausalLM(cfg).eval()
    assert not supports_shared_prefix(mistral)
    with pytest.raises(ValueError, match="engine='dense'"):
        generate(mistral, tok, ["Hi"], GenerationConfig(max_new_tokens=2), engine="shared")
    out = generate(mistral, tok, ["Hi there"], GenerationConfig(max_new_tokens=3, stop=()))   # auto: dense
    assert len(out[0][0].token_ids) == 3


def test_uniforms_are_a_pure_function_of_seed_and_step():
    seeds = torch.tensor([1, 2, 3, 1], dtype=torch.long)
    steps = torch.tensor([0, 0, 0, 0])
    u = uniforms(seeds, steps)
    assert u[0] == u[3] and len(set(u.tolist())) == 3
    assert torch.equal(uniforms(seeds, steps), u)
    many = uniforms(torch.arange(20000), torch.zeros(20000, dtype=torch.long))
    assert ((many >= 0) & (many < 1)).all()
    assert abs(float(many.mean()) - 0.5) < 0.01
    # ten equal bins hold about a tenth each
    counts = torch.histc(many.float(), bins=10, min=0, max=1) / 20000
    assert torch.allclose(counts, torch.full((10,), 0.1), atol=0.01)
    # one row's stream over steps is not constant and does not repeat the seed's neighbours
    stream = uniforms(torch.full((50,), 7), torch.arange(50))
    assert len(set(stream.tolist())) == 50


def test_inverse_cdf_matches_a_flat_cumulative_sum():
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(300, 5000, generator=g) * 3, -1)
    probs[:, 100:900] = 0            # a zero-probability region is never picked
    probs[:, -7:] = 0                # nor the zero tail
    probs = probs / probs.sum(-1, keepdim=True)
    u = torch.rand(300, generator=g, dtype=torch.float64)
    cdf = probs.double().cumsum(-1)
    flat = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True)[:, 0]
    got = inverse_cdf(probs, u)
    assert torch.equal(got, flat)
    assert (probs[torch.arange(300), got] > 0).all()
    near_one = inverse_cdf(probs, torch.full((300,), 1 - 2 ** -53, dtype=torch.float64))
    assert (probs[torch.arange(300), near_one] > 0).all()


def fake_efficient_attention(q, k, v, bias, compute_lse, dropout, causal, *, scale):
    """CUDA's memory-efficient kernel as its contract reads, in plain math on the CPU: a bias in the
    query's dtype whose rows are 16-aligned, and a log-sum-exp padded to a multiple of 32 queries."""
    from scotd_kit import shared_prefix as sp

    assert compute_lse and dropout == 0.0 and not causal
    if bias is not None:
        assert bias.dtype == q.dtype and bias.shape == (*q.shape[:3], k.shape[-2])
        assert bias.stride(-2) % 16 == 0, "bias rows not 16-aligned"
    out, lse = sp._attend_math(q, k, v, bias, scale)
    n = q.shape[-2]
    padded = torch.full((*lse.shape[:-1], -(-n // 32) * 32), float("nan"))
    padded[..., :n] = lse
    return out.to(q.dtype), padded, torch.tensor(0), torch.tensor(0)


@pytest.mark.parametrize("heads,kv_heads", [(6, 2), (4, 4)])
@pytest.mark.parametrize("q_len", [1, 5])
def test_merged_attention_through_the_cuda_kernel_contract(heads, kv_heads, q_len, monkeypatch):
    """The CUDA path (scotd_kit.shared_prefix._efficient_attention) against plain attention, with the
    kernel replaced by a stand-in that checks its contract (a real GPU runs the real kernel: below)."""
    from functools import partial

    from scotd_kit import shared_prefix as sp

    monkeypatch.setitem(sp.FUSED, "cpu", (partial(sp._efficient_attention, op=fake_efficient_attention),
                                          (torch.float32,)))
    g = torch.Generator().manual_seed(heads * 10 + q_len)
    R, d, P, S = 3, 16, 11, 7                     # S = 7 keys: the bias needs padding to 16
    query = torch.randn(R, heads, q_len, d, generator=g)
    pk, pv = (torch.randn(kv_heads, P, d, generator=g) for _ in range(2))
    key, value = torch.randn(R, kv_heads, S, d, generator=g), torch.randn(R, kv_heads, S, d, generator=g)
    mask = torch.ones(R, q_len, S, dtype=torch.bool)
    mask[1, :, :2] = False
    out = sp.merged_attention(query, pk, pv, key, value, mask, d ** -0.5, fused=True)
    ref = plain_attention(query, pk, pv, key, value, mask, d ** -0.5)
    assert torch.allclose(out, ref, atol=1e-5), (out - ref).abs().max()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the kernel contract is checked above")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_merged_attention_on_cuda_equals_plain_attention(dtype):
    g = torch.Generator().manual_seed(3)
    R, H, Hkv, q_len, d, P, S = 4, 8, 2, 1, 64, 37, 21
    query = torch.randn(R, H, q_len, d, generator=g)
    pk, pv = (torch.randn(Hkv, P, d, generator=g) for _ in range(2))
    key, value = torch.randn(R, Hkv, S, d, generator=g), torch.randn(R, Hkv, S, d, generator=g)
    mask = torch.ones(R, q_len, S, dtype=torch.bool)
    mask[0, :, :5] = False
    ref = plain_attention(query, pk, pv, key, value, mask, d ** -0.5)
    cu = [t.cuda().to(dtype) for t in (query, pk, pv, key, value)]
    out = merged_attention(cu[0], cu[1], cu[2], cu[3], cu[4], mask.cuda(), d ** -0.5, fused=True)
    assert torch.allclose(out.float().cpu(), ref, atol=1e-5 if dtype == torch.float32 else 2e-2)
