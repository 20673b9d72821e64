"""A local transformers causal LM as a teacher, decoding with :func:`scotd_kit.generation.generate`.

The few-shot block is the shared ``prefix`` (prefilled once, its keys/values held once: shared-prefix
attention), each question is prefilled once and its samples fill free decode slots as they open;
sample ``j`` of a request is seeded by ``request.sample_seeds[j]`` alone (a function of the run seed,
the instance and the sample index), so a sample does not depend on which other instances share its
batch, nor on where a resumed run starts.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

from .base import Completion, RequestResult, SampleRequest, SamplingSettings, mean


class LocalTeacher:
    local = True
    tokens_exact = True      # a real tokenizer counts the dry run's tokens
    # a request's greedy completion comes from the call that samples it (generate(greedy_row=True)): on the CPU
    # it mostly follows one of the samples' rows, so Table 2(b)'s greedy corpus costs little more than nothing
    greedy_alongside = True

    def __init__(self, model, tokenizer=None, *, name: str | None = None, batch_size: int | None = None,
                 dtype: str | None = None):
        """``model``: a name :func:`scotd_kit.models.load_model` resolves, or a loaded model (then
        pass ``tokenizer`` and a ``name`` that identifies the weights: it is part of the corpus keys).
        ``batch_size`` counts sequences decoded together (decode slots); None chooses it from free memory.
        ``dtype``: the precision requested for a named model (``"bf16"``, ``"fp32"``, a torch dtype; None: the
        hardware rule's fastest native type, :mod:`scotd_kit.hardware`); the precision and device it
        resolves to are part of the teacher's id (its samples differ)."""
        if isinstance(model, str):
            # loaded on first use: a rerun whose corpus is complete never pays for the weights
            self._name_to_load, self._model, self._tokenizer = model, None, None
            self.model_name = name or model
        else:
            if dtype is not None:
                raise ValueError("dtype applies to a model the teacher loads by name, not to a loaded model")
            if tokenizer is None:
                raise ValueError("LocalTeacher(model_object, ...) needs its tokenizer")
            self._name_to_load, self._model, self._tokenizer = None, model, tokenizer
            self._model.eval()
            self.model_name = name or getattr(model.config, "_name_or_path", None) or type(model).__name__
        self.batch_size = batch_size
        self.dtype = dtype

    def _load(self) -> None:
        if self._model is None:
            from ..models import load_model

            self._model, self._tokenizer = load_model(self._name_to_load, dtype=self.dtype, role="teacher")
            self._model.eval()

    @property
    def model(self):
        self._load()
        return self._model

    @property
    def tokenizer(self):
        self._load()
        return self._tokenizer

    def placement(self):
        """Where and in which precision the teacher decodes (:func:`scotd_kit.models.placement`): asked
        without loading the weights, so a complete corpus is found by its id alone."""
        if self._model is not None and getattr(self._model, "scotd_choice", None) is not None:
            return self._model.scotd_choice
        if self._name_to_load is None:      # a model object the caller loaded: as it is
            from ..hardware import Choice

            p = next(self._model.parameters())
            name = {"torch.float32": "fp32", "torch.bfloat16": "bf16", "torch.float16": "fp16"}.get(str(p.dtype),
                                                                                                   str(p.dtype))
            return Choice(p.device.type, name, "loaded by the caller")
        from ..models import placement

        return placement(self.dtype, role="teacher")

    @property
    def id(self) -> str:
        # "+sb": prompts end at a token boundary (generate(space_boundary=True)); the precision (and a GPU)
        # change the samples, so a corpus is never mixed across them
        c = self.placement()
        return f"local:{self.model_name}+sb+{c.precision}" + ("" if c.device == "cpu" else f"@{c.device}")

    def __repr__(self) -> str:
        return f"LocalTeacher({self.model_name!r})"

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def sample(self, requests: Sequence[SampleRequest], settings: SamplingSettings) -> list[RequestResult]:
        from ..generation import GenerationConfig, generate

        out: list[RequestResult | None] = [None] * len(requests)
        # one generate call per (prefix, n, greedy): requests of a top-up or a torn batch may ask for fewer
        groups: dict[tuple[str, int, bool], list[int]] = defaultdict(list)
        for i, r in enumerate(requests):
            groups[(r.prefix, r.n, r.greedy and settings.temperature > 0)].append(i)
        for (prefix, n, greedy), idx in groups.items():
            # temperature 0 means greedy (Table 2(b)'s greedy-CoT teacher), not a division by zero
            config = GenerationConfig(max_new_tokens=settings.max_new_tokens, do_sample=settings.temperature > 0,
                                      temperature=settings.temperature, top_k=settings.top_k or 0,
                                      top_p=settings.top_p, n=n, stop=tuple(settings.stop), seed=settings.seed)
            prompts = [requests[i].prompt[len(prefix):] for i in idx]
            gens = generate(self.model, self.tokenizer, prompts, config, prefix=prefix,
                            seeds=[list(requests[i].sample_seeds) for i in idx], batch_size=self.batch_size,
                            space_boundary=True, greedy_row=greedy)
            for i, samples in zip(idx, gens):
                samples, best = (samples[:n], samples[n]) if greedy else (samples, None)
                out[i] = RequestResult(completions=[_completion(g) for g in samples],
                                       prompt_tokens=samples[0].prompt_tokens,
                                       completion_tokens=sum(len(g.token_ids) for g in samples), calls=1,
                                       greedy=_completion(best) if best is not None else None)
        return out  # type: ignore[return-value]


def _completion(g) -> Completion:
    # the token that ended the sample (EOS, or the one completing the stop string) is not part of
    # the completion: count and score only what comes before it
    real = len(g.token_ids) - (1 if g.finish_reason in ("stop", "eos") else 0)
    return Completion(text=g.text, finish_reason=g.finish_reason, completion_tokens=real,
                      prompt_tokens=g.prompt_tokens, mean_logprob=mean(g.logprobs[:real]) if real else None)
