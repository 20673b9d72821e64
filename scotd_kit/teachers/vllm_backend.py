"""In-process vLLM as a teacher (optional: ``pip install vllm``, best in its own environment).

vLLM pins its own torch, so it often cannot share an environment with the training stack; the
alternative is ``vllm serve MODEL`` plus :class:`~scotd_kit.teachers.OpenAICompatibleTeacher`.

Seeding: each prompt gets its OWN ``SamplingParams`` with the request's seed.  One seeded
``SamplingParams`` broadcast over a batch gives every prompt the same noise (peer complaint 9 in
DESIGN.md); a list of per-prompt params does not.  Prefix caching shares the few-shot block.
"""
from __future__ import annotations

from typing import Sequence

from .base import Completion, RequestResult, SampleRequest, SamplingSettings, TeacherUnavailableError


def _import_vllm():
    try:
        import vllm  # noqa: F401
    except ImportError as e:
        raise TeacherUnavailableError(
            f"the vLLM teacher needs the `vllm` package, which is not importable here ({e}). Install it "
            f"(`pip install vllm`, ideally in its own environment: it pins its own torch), or run "
            f"`vllm serve MODEL` and use OpenAICompatibleTeacher(model, base_url='http://127.0.0.1:8000/v1').") from None
    return vllm


class VLLMTeacher:
    local = True
    tokens_exact = True      # a real tokenizer counts the dry run's tokens

    def __init__(self, model: str, *, llm=None, enable_prefix_caching: bool = True, **llm_kwargs):
        """``model``: a hub id or local path for ``vllm.LLM``; ``llm``: an already built ``vllm.LLM``."""
        self._vllm = _import_vllm()
        self.model_name = model
        self.llm = llm if llm is not None else self._vllm.LLM(model=model, enable_prefix_caching=enable_prefix_caching,
                                                              **llm_kwargs)

    @property
    def id(self) -> str:
        return f"vllm:{self.model_name}"

    def __repr__(self) -> str:
        return f"VLLMTeacher({self.model_name!r})"

    def count_tokens(self, text: str) -> int:
        return len(self.llm.get_tokenizer().encode(text, add_special_tokens=False))

    def params(self, req: SampleRequest, settings: SamplingSettings):
        return self._vllm.SamplingParams(
            n=req.n, temperature=settings.temperature, top_p=settings.top_p,
            top_k=settings.top_k if settings.top_k else -1, max_tokens=settings.max_new_tokens,
            stop=list(settings.stop), seed=req.seed % (2 ** 63), logprobs=0)  # logprobs: the mean log-prob

    def sample(self, requests: Sequence[SampleRequest], settings: SamplingSettings) -> list[RequestResult]:
        if not requests:
            return []
        params = [self.params(r, settings) for r in requests]   # one per prompt: distinct seeds
        outputs = self.llm.generate([r.prompt for r in requests], params, use_tqdm=False)
        results = []
        for out in outputs:
            prompt_tokens = len(out.prompt_token_ids or [])
            comps = []
            for o in out.outputs:
                k = len(o.token_ids)
                reason = "length" if o.finish_reason == "length" else (
                    "stop" if getattr(o, "stop_reason", None) is not None else "eos")
                comps.append(Completion(text=o.text, finish_reason=reason, completion_tokens=k,
                                        prompt_tokens=prompt_tokens,
                                        mean_logprob=(o.cumulative_logprob / k) if k and o.cumulative_logprob
                                        is not None else None))
            results.append(RequestResult(completions=comps, prompt_tokens=prompt_tokens,
                                         completion_tokens=sum(c.completion_tokens for c in comps)))
        return results
