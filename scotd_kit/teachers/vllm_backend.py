"""In-process vLLM as a teacher (optional; vLLM pins its own torch and transformers: docs/vllm.md).

* One vLLM request per sample: sample ``j`` of a :class:`SampleRequest` is its own prompt with
  ``SamplingParams(n=1, seed=request.sample_seeds[j])``.  vLLM seeds the children of an ``n > 1``
  request ``seed + j``, so a block asked from sample 5 (a top-up) would get other texts than the
  same samples of a run that asked 0..29; one request per sample seed does not.  The copies of a
  prompt are sent together, so vLLM's prefix cache serves them (and the shared few-shot block).
* The engine is built on the first :meth:`VLLMTeacher.sample`: a rerun whose corpus is complete
  never builds it, nor even imports vLLM (a corpus sampled in vLLM's environment is reused in the
  kit's own).  :meth:`count_tokens` uses the model's tokenizer from transformers until then.
* An in-process engine keeps the GPU memory it reserved (``gpu_memory_utilization``, 90% by
  default) until it is shut down: :meth:`VLLMTeacher.close` frees it, and :func:`close_all` closes
  every open one (``stages.release`` calls it before a student trains).  A later ``sample`` builds a
  new engine.
* Prompts that end in a space (SCoTD's ``"A: "``) are sent without it and the completion loses one
  leading space, as with the local teacher (``generation.generate(space_boundary=True)``).
"""
from __future__ import annotations

import gc
from typing import Sequence

from .base import Completion, RequestResult, SampleRequest, SamplingSettings, TeacherUnavailableError, mean

# teachers whose engine is up: held strongly, so an engine is freed by close(), never left to the GC
_OPEN: dict[int, "VLLMTeacher"] = {}


def _import_vllm():
    try:
        import vllm
    except ImportError as e:
        raise TeacherUnavailableError(
            f"the vLLM teacher needs the `vllm` package, which is not importable here ({e}). vLLM pins its "
            f"own torch and transformers: install it in its own environment (docs/vllm.md), or run "
            f"`vllm serve MODEL` there and use the teacher `openai:MODEL` with "
            f"OPENAI_BASE_URL=http://127.0.0.1:8000/v1 and SCOTD_ONE_SAMPLE_PER_CALL=1.") from None
    return vllm


class VLLMTeacher:
    local = True
    tokens_exact = True      # a real tokenizer counts the dry run's tokens

    def __init__(self, model: str, *, llm=None, dtype: str | None = None, quantization: str | None = None,
                 enable_prefix_caching: bool = True, **llm_kwargs):
        """``model``: a hub id or local path for ``vllm.LLM``; ``dtype`` / ``quantization``: the engine's
        (part of the id: they change the samples); other keywords go to ``vllm.LLM`` as they are
        (``gpu_memory_utilization``, ``max_model_len``, ``tensor_parallel_size``, ...).
        ``llm``: an engine the caller built and frees; :meth:`close` only lets go of it."""
        self.model_name = model
        self.dtype, self.quantization = _vllm_dtype(dtype), quantization
        self._llm_kwargs = dict(llm_kwargs, enable_prefix_caching=enable_prefix_caching)
        if self.dtype is not None:
            self._llm_kwargs["dtype"] = self.dtype
        if quantization is not None:
            self._llm_kwargs["quantization"] = quantization
        self._llm, self._owned = llm, False
        self._hf_tokenizer = None

    @property
    def id(self) -> str:
        # "+sb": prompts end at a token boundary (see the module doc), as the local teacher's do
        extra = "".join(f"+{v}" for v in (self.dtype, self.quantization) if v)
        return f"vllm:{self.model_name}+sb{extra}"

    def __repr__(self) -> str:
        return f"VLLMTeacher({self.model_name!r})"

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- engine ------------------------------------------------------------------------------------

    @property
    def llm(self):
        """The engine, built on first use."""
        if self._llm is None:
            vllm = _import_vllm()
            self._llm = vllm.LLM(model=self.model_name, **self._llm_kwargs)
            self._owned = True
            _OPEN[id(self)] = self
        return self._llm

    @property
    def engine_built(self) -> bool:
        return self._llm is not None

    def close(self) -> None:
        """Shut the engine down and give its GPU memory back; a later :meth:`sample` builds a new one."""
        _OPEN.pop(id(self), None)
        built_here = self._llm is not None and self._owned
        if built_here:
            _stop_engine_core(self._llm)
        self._llm, self._owned = None, False     # the last reference: no local variable keeps the engine alive
        if built_here:
            _free_engine_memory()

    # -- Teacher protocol --------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        if self._llm is not None:
            return len(self._llm.get_tokenizer().encode(text, add_special_tokens=False))
        # a dry run or a cost estimate must not build the engine just to count tokens
        if self._hf_tokenizer is None:
            from transformers import AutoTokenizer

            self._hf_tokenizer = AutoTokenizer.from_pretrained(self.model_name)
        return len(self._hf_tokenizer.encode(text, add_special_tokens=False))

    def params(self, seed: int, settings: SamplingSettings):
        """The ``SamplingParams`` of ONE sample: n=1 and that sample's own seed."""
        return _import_vllm().SamplingParams(
            n=1, seed=seed % (2 ** 63), temperature=settings.temperature, top_p=settings.top_p,
            top_k=settings.top_k or 0,            # 0: off (None in SamplingSettings)
            max_tokens=settings.max_new_tokens, stop=list(settings.stop),
            logprobs=0)                           # 0: the sampled token's log-prob only (mean_logprob)

    def sample(self, requests: Sequence[SampleRequest], settings: SamplingSettings) -> list[RequestResult]:
        if not requests:
            return []
        prompts, params, owner = [], [], []
        for i, req in enumerate(requests):
            prompt = _boundary(req.prompt)
            for seed in req.sample_seeds:
                prompts.append(prompt)
                params.append(self.params(seed, settings))
                owner.append(i)
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        if len(outputs) != len(prompts):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(prompts)} prompts")
        results = [RequestResult(completions=[]) for _ in requests]
        for i, out in zip(owner, outputs):
            prompt_tokens = len(out.prompt_token_ids or [])
            comp = _completion(out.outputs[0], prompt_tokens, requests[i].prompt.endswith(" "))
            res = results[i]
            res.completions.append(comp)
            # one prompt per request, as the other teachers count it (its copies hit the prefix cache)
            res.prompt_tokens = prompt_tokens
            res.completion_tokens += comp.completion_tokens or 0
        return results


def close_all() -> None:
    """Close every vLLM teacher whose engine is up (before a student trains: it needs the memory)."""
    for teacher in list(_OPEN.values()):
        teacher.close()


# the kit's precision names (a profile's teacher_dtype) as vLLM's ``dtype`` names them
_VLLM_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}


def _vllm_dtype(dtype) -> str | None:
    """vLLM's name for ``dtype``; None (vLLM's own choice) for None, "auto" or "fast"."""
    if dtype is None:
        return None
    text = str(dtype).strip().lower().removeprefix("torch.").rstrip("!")
    return None if text in ("auto", "fast") else _VLLM_DTYPES.get(text, text)


def _boundary(prompt: str) -> str:
    return prompt[:-1] if prompt.endswith(" ") else prompt


def _completion(o, prompt_tokens: int, moved_space: bool) -> Completion:
    """One ``CompletionOutput`` as a :class:`Completion`.  vLLM's ``finish_reason`` is "stop" both for
    a stop string (``stop_reason`` holds it) and for EOS (``stop_reason`` None)."""
    if o.finish_reason == "length":
        reason = "length"
    else:
        reason = "stop" if isinstance(o.stop_reason, str) else "eos"
    token_ids = list(o.token_ids)
    # the token that ended the sample (EOS, or the one completing the stop string) is not part of it
    real = len(token_ids) - (1 if reason != "length" and token_ids else 0)
    text = o.text[1:] if moved_space and o.text.startswith(" ") else o.text
    return Completion(text=text, finish_reason=reason, completion_tokens=real, prompt_tokens=prompt_tokens,
                      mean_logprob=_mean_logprob(o, token_ids, real))


def _mean_logprob(o, token_ids: list[int], real: int) -> float | None:
    if not real:
        return None
    if o.logprobs is not None:
        # one {token id: Logprob} per position; the sampled token is always among them
        return mean([pos[tok].logprob for pos, tok in zip(list(o.logprobs)[:real], token_ids[:real])])
    return o.cumulative_logprob / len(token_ids) if o.cumulative_logprob is not None else None


def _stop_engine_core(llm) -> None:
    # the engine core runs in a worker process by default; stop it now rather than when the GC finds it
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        core.shutdown()


def _free_engine_memory() -> None:
    """Once the engine is unreferenced: collect it, tear down vLLM's distributed state (model-parallel
    groups, the torch process group) and empty the CUDA cache; vLLM's own tests do the same."""
    gc.collect()
    from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

    cleanup_dist_env_and_memory()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
