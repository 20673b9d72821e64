import time

import pytest
import torch

from scotd_kit import assets, models


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-opt", "tiny-llama"])
def test_tiny_models_save_reload_and_lora_wrap(name, tmp_path):
    model, tok = models.load_model(name)
    assert tok.pad_token is not None and tok.padding_side == "left"
    ids = tok(["Q: hi\nA: ", "Q: a longer question\nA: "], return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = model(**ids).logits
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    again, _ = models.load_model(tmp_path / "m")
    with torch.no_grad():
        assert torch.allclose(again(**ids).logits, logits, atol=1e-5)
    lora, _ = models.load_model(tmp_path / "m", lora={"r": 4})
    trainable = sum(p.numel() for p in lora.parameters() if p.requires_grad)
    assert 0 < trainable < sum(p.numel() for p in lora.parameters()) / 10
    out = lora(**ids, labels=ids.input_ids)
    out.loss.backward()
    assert all(p.grad is not None for n, p in lora.named_parameters() if p.requires_grad)


def test_tiny_model_is_cached_and_deterministic():
    a = models.random_model_dir("tiny-gpt2")
    t0 = time.time()
    assert models.random_model_dir("tiny-gpt2") == a and time.time() - t0 < 1
    assert (a / "tokenizer.json").exists()


@pytest.mark.parametrize("quantization", ["8bit", "4bit"])
def test_bitsandbytes_quantised_load_and_qlora_on_cpu(quantization):
    model, tok = models.load_model("tiny-opt", quantization=quantization, lora={"r": 4})
    ids = tok(["Q: x\nA: "], return_tensors="pt")
    out = model(**ids, labels=ids.input_ids)
    out.loss.backward()
    kinds = {type(m).__name__ for m in model.modules()}
    assert ("Linear8bitLt" if quantization == "8bit" else "Linear4bit") in kinds


def test_real_sizes_have_the_papers_parameter_counts():
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = models._config(*models._REAL_SIZES["opt-1.3b"], vocab_size=50272)
    with torch.device("meta"):
        n = sum(p.numel() for p in AutoModelForCausalLM.from_config(cfg).parameters())
    assert 1.2e9 < n < 1.45e9
    cfg = models._config(*models._REAL_SIZES["gpt2-xl"], vocab_size=50257)
    with torch.device("meta"):
        n = sum(p.numel() for p in AutoModelForCausalLM.from_config(cfg).parameters())
    assert 1.5e9 < n < 1.65e9
    cfg = models._config(*models._REAL_SIZES["smollm2-135m"], vocab_size=49152)   # SmolLM2's own vocabulary
    with torch.device("meta"):
        n = sum(p.numel() for p in AutoModelForCausalLM.from_config(cfg).parameters())
    assert 1.33e8 < n < 1.36e8                                                       # 134.5M, embeddings tied


def test_hub_id_offline_fails_fast_with_guidance():
    t0 = time.time()
    with pytest.raises(models.ModelNotAvailableError, match="local directory"):
        models.load_model("facebook/opt-125m")
    assert time.time() - t0 < 30


def test_unknown_random_model():
    with pytest.raises(models.ModelNotAvailableError, match="known: .*tiny-gpt2"):
        models.random_model_dir("random:opt-66b")


def test_changed_asset_is_an_error(tmp_path, monkeypatch):
    f = tmp_path / "pkg" / "data.bin"
    f.parent.mkdir()
    f.write_bytes(b"changed")
    monkeypatch.setattr(assets, "package_dir", lambda package: tmp_path / "pkg")
    with pytest.raises(assets.AssetError, match="differs from the pinned"):
        assets.asset(("pkg", "data.bin", "0" * 64))


def test_smollm2_loads_offline_and_generates():
    model, tok = models.load_model(models.SMOLLM2)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert 1.3e8 < sum(p.numel() for p in model.parameters()) < 1.4e8
    enc = tok("Q: What is the capital of France?\nA:", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=8, do_sample=False)
    text = tok.decode(out[0, enc.input_ids.shape[1]:], skip_special_tokens=True)
    assert "Paris" in text


def test_demo_tokenizer_is_deterministic_compact_and_lossless():
    """small-llama's BPE: with GPT-2's 50,257 tokens its head and embedding were 80 % of its weights."""
    a, b = models.demo_tokenizer(), models.demo_tokenizer()
    assert a.get_vocab() == b.get_vocab() and 256 < len(a) <= 1024
    gpt2 = models.gpt2_tokenizer()
    from scotd_kit import prompts
    from scotd_kit.tasks import load_split

    ex = load_split("demo_arith", "validation", limit=20)
    texts = [prompts.student_input(e.question) + prompts.target(e.meta["rationale"], e.label) for e in ex]
    texts.append("Any text at all: naïve café, 12345 \u2014 \u00e9t\u00e9 \U0001f600\n\n")
    for t in texts:
        assert a.decode(a(t)["input_ids"]) == t                 # byte-level: nothing is lost
    ours = sum(len(a(t)["input_ids"]) for t in texts[:-1])
    theirs = sum(len(gpt2(t)["input_ids"]) for t in texts[:-1])
    assert ours <= 1.1 * theirs                                # the demo tasks' text in as few tokens


def test_demo_students_use_the_demo_tokenizer():
    sizes = {}
    for name in ("mini-llama", "small-llama"):
        model, tok = models.load_model(name)
        assert len(tok) == model.config.vocab_size < 1100
        assert model.config.eos_token_id == tok.eos_token_id and tok.pad_token is not None
        sizes[name] = sum(p.numel() for p in model.parameters())
    assert sizes["small-llama"] < 5e6
    assert sizes["mini-llama"] < sizes["small-llama"] / 4      # Fig. 4's smaller size is several times smaller
