"""N chain-of-thought samples per instance from any teacher, into a resumable corpus on disk.

``sample_corpus`` builds SCoTD's teacher prompt for every instance (the few-shot block, shared by
all instances, then ``Q: {x}\\nA: ``), works out which samples the corpus already holds (keys: see
:mod:`scotd_kit.corpus`), asks the teacher for the rest in batches of instances, scores each
sample against gold, and appends the batch to the corpus before asking for the next one.

Seeds: the samples ``start .. start+k-1`` of an instance are asked with the seed
``derive_seed(seed, instance_id, start)``; a fresh or resumed run always starts at 0, so it gets
the same samples whatever the batch layout; a top-up from N=5 to N=30 asks from 5 and gets 25
samples that are deterministic too, but not the ones a direct N=30 run would have drawn.
"""
from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Sequence

from .answers import cut_generation
from .corpus import Corpus, record_key, text_hash
from .exemplars import get_exemplars
from .ledger import Budget, Estimate, Ledger, price_for
from .prompts import few_shot_block, few_shot_prompt
from .tasks import get_task
from .tasks.base import Example, TaskSpec
from .teachers.base import Completion, SampleRequest, SamplingSettings, TeacherError, derive_seed

log = logging.getLogger(__name__)


class BudgetWarning(UserWarning):
    """A budget ended a sampling run early (what was written is complete and valid)."""


@dataclass
class _Item:
    example: Example
    index: int
    prompt: str
    prompt_hash: str
    keys: list[str]
    missing: list[int]


def shared_prefix(demos: Sequence[tuple[str, str, str]]) -> str:
    """The few-shot block every instance's prompt starts with."""
    return few_shot_block(demos)


def _plan(spec: TaskSpec, examples: Sequence[Example], teacher, demos, settings: SamplingSettings, n: int,
          have: set[str]) -> list[_Item]:
    sdict, items, seen = settings.as_dict(), [], set()
    for pos, ex in enumerate(examples):
        if ex.id in seen:
            raise ValueError(f"two examples share the id {ex.id!r}: corpus records are keyed by instance id")
        seen.add(ex.id)
        prompt = few_shot_prompt(demos, ex.question)
        phash = text_hash(prompt)
        keys = [record_key(teacher.id, phash, sdict, ex.id, j) for j in range(n)]
        items.append(_Item(ex, int(ex.meta.get("index", pos)), prompt, phash, keys,
                           [j for j, k in enumerate(keys) if k not in have]))
    return items


def _runs(indices: list[int]) -> list[tuple[int, int]]:
    """Contiguous runs ``(start, length)`` of sorted sample indices."""
    runs: list[tuple[int, int]] = []
    for j in indices:
        if runs and runs[-1][0] + runs[-1][1] == j:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((j, 1))
    return runs


def _requests(items: list[_Item], prefix: str, settings: SamplingSettings) -> list[tuple[_Item, SampleRequest]]:
    out = []
    for it in items:
        for start, k in _runs(it.missing):
            out.append((it, SampleRequest(prompt=it.prompt, n=k, seed=derive_seed(settings.seed, it.example.id, start),
                                          start=start, prefix=prefix, instance_id=it.example.id, index=it.index)))
    return out


def rationale_of(text: str, markers: Sequence[str]) -> str:
    """Text before the last answer marker of the cut generation (SCoTD's rationale); ``""`` without one."""
    cut = " " + cut_generation(text)
    pos = max(cut.rfind(m) for m in markers)
    return cut[:pos].strip() if pos >= 0 else ""


def parse_status(comp: Completion, score: dict) -> str:
    if not cut_generation(comp.text).strip():
        return "empty"
    if comp.finish_reason == "length":
        return "length"
    return "ok" if score["marker_found"] else "no_marker"


def _record(spec: TaskSpec, it: _Item, j: int, comp: Completion, teacher_id: str, sdict: dict) -> dict:
    score = spec.score(comp.text, it.example)
    rec = {"key": it.keys[j], "task": spec.name, "instance_id": it.example.id, "index": it.index,
           "sample_index": j, "teacher": teacher_id, "settings": sdict, "prompt_hash": it.prompt_hash,
           "gold": it.example.label, "text": comp.text, "rationale": rationale_of(comp.text, spec.markers),
           "answer": score["strict"], "answer_flexible": score["flexible"], "correct": score["strict_correct"],
           "correct_flexible": score["flexible_correct"], "parse_status": parse_status(comp, score),
           "mean_logprob": comp.mean_logprob, "prompt_tokens": comp.prompt_tokens,
           "completion_tokens": comp.completion_tokens, "finish_reason": comp.finish_reason}
    rec.update(comp.fields)
    return rec


def _calls_per_request(teacher, req: SampleRequest) -> int:
    return req.n if getattr(teacher, "n_supported", None) is False else 1


def _projected(teacher, reqs: list[SampleRequest], per_sample: float) -> tuple[int, int]:
    """Billed tokens a batch would cost: prompts (once per call) + ``per_sample`` per sample."""
    prompt = sum(teacher.count_tokens(r.prompt) * _calls_per_request(teacher, r) for r in reqs)
    return prompt, int(round(per_sample * sum(r.n for r in reqs)))


def estimate(teacher, items: list[_Item], reqs: list[SampleRequest], settings: SamplingSettings,
             existing: list[dict], price) -> Estimate:
    observed = [r["completion_tokens"] for r in existing if isinstance(r.get("completion_tokens"), int)]
    per_sample = sum(observed) / len(observed) if observed else None
    prompt, completion = _projected(teacher, reqs, per_sample if per_sample is not None else settings.max_new_tokens)
    needed = sum(r.n for r in reqs)
    return Estimate(teacher=teacher.id, instances=sum(1 for it in items if it.missing), samples_needed=needed,
                    cache_hits=sum(len(it.keys) - len(it.missing) for it in items),
                    requests=sum(_calls_per_request(teacher, r) for r in reqs), prompt_tokens=prompt,
                    completion_tokens=completion, cost_usd=price.cost(prompt, completion) if price else None,
                    tokens_approximate=not getattr(teacher, "tokens_exact", False),
                    observed_completion_mean=per_sample)


def sample_corpus(task, examples: Sequence[Example], teacher, *, n: int = 30, corpus_path,
                  temperature: float = 1.0, max_new_tokens: int = 128, demos=None, seed: int = 0,
                  budget: Budget | dict | None = None, batch_size: int = 8, dry_run: bool = False,
                  progress: bool = True, top_p: float = 1.0, top_k: int | None = None,
                  stop: Sequence[str] = ("\n\n",), prices: dict | None = None) -> Corpus:
    """Make sure ``corpus_path`` holds ``n`` samples of every example; return the :class:`Corpus`.

    ``batch_size``: instances per teacher call and per write to disk.  ``budget``: stop cleanly
    before a batch would pass it (what is on disk stays valid; a rerun continues).  ``dry_run``:
    spend nothing, set ``corpus.estimate`` (an :class:`~scotd_kit.ledger.Estimate`) and return.
    ``prices``: ``{model_name: Price | (prompt_per_1m, completion_per_1m)}`` over the ledger's table.
    """
    spec = get_task(task)
    if n < 1:
        raise ValueError(f"n must be >= 1, not {n}")
    demos = list(demos) if demos is not None else get_exemplars(spec.name)
    prefix = shared_prefix(demos)
    settings = SamplingSettings(temperature=temperature, top_p=top_p, top_k=top_k, max_new_tokens=max_new_tokens,
                                stop=tuple(stop), seed=seed)
    budget = Budget.coerce(budget)
    price = price_for(teacher, prices)
    if budget is not None and budget.dollars is not None and price is None:
        raise ValueError(f"a dollar budget needs a price for model {teacher.model_name!r}: "
                         f"scotd_kit.ledger.set_price({teacher.model_name!r}, prompt_per_1m=..., completion_per_1m=...)")
    corpus = Corpus(corpus_path)

    if dry_run:
        existing = corpus.records() if corpus.path.exists() else []
        items = _plan(spec, examples, teacher, demos, settings, n, {r["key"] for r in existing})
        reqs = [r for _, r in _requests(items, prefix, settings)]
        corpus.estimate = estimate(teacher, items, reqs, settings, existing, price)
        log.info("%s", corpus.estimate)
        return corpus

    with corpus.writer() as writer:
        items = _plan(spec, examples, teacher, demos, settings, n, writer.keys)
        pairs = _requests(items, prefix, settings)
        ledger = Ledger(corpus.ledger_path, teacher, price)
        ledger.run.cache_hits = sum(len(it.keys) - len(it.missing) for it in items)
        _run(spec, teacher, pairs, settings, writer, ledger, budget, batch_size, progress, corpus)
    return corpus


def _run(spec, teacher, pairs, settings, writer, ledger: Ledger, budget, batch_size, progress, corpus) -> None:
    from tqdm.auto import tqdm

    sdict = settings.as_dict()
    bar = tqdm(total=sum(r.n for _, r in pairs), desc=f"sampling {spec.name}", unit="sample", disable=not progress)
    try:
        pos = 0
        while pos < len(pairs):
            batch = pairs[pos:pos + batch_size]
            if budget is not None:
                batch = _affordable(teacher, batch, ledger, budget, settings)
                if not batch:
                    corpus.stopped = ledger.run.stopped = "budget"
                    warnings.warn(f"budget {budget} reached after {ledger.run.tokens:,} tokens "
                                  f"(${ledger.run.cost_usd or 0:.4f}); {corpus.path} holds every sample written "
                                  f"so far; rerun to continue", BudgetWarning, stacklevel=3)
                    break
            t0 = time.perf_counter()
            results = teacher.sample([r for _, r in batch], settings)
            seconds = time.perf_counter() - t0
            records = []
            for (it, req), res in zip(batch, results):
                if len(res.completions) != req.n:
                    warnings.warn(f"teacher {teacher.id} returned {len(res.completions)} of {req.n} samples for "
                                  f"instance {it.example.id!r}; the rest will be asked on the next run")
                for j, comp in zip(range(req.start, req.start + req.n), res.completions):
                    records.append(_record(spec, it, j, comp, teacher.id, sdict))
            written = writer.append(records)
            ledger.add(sum(r.prompt_tokens for r in results), sum(r.completion_tokens for r in results), written,
                       sum(r.calls for r in results), sum(r.retries for r in results), seconds)
            ledger.save()
            bar.update(written)
            pos += len(batch)
    finally:
        bar.close()
        ledger.save()


def _affordable(teacher, batch, ledger: Ledger, budget: Budget, settings: SamplingSettings):
    """The longest head of ``batch`` whose projected cost fits what is left of the budget."""
    r = ledger.run
    per_sample = r.completion_tokens / r.samples if r.samples else settings.max_new_tokens
    costs = [_projected(teacher, [req], per_sample) for _, req in batch]
    p = c = k = 0
    for dp, dc in costs:
        if ledger.would_exceed(budget, p + dp, c + dc):
            break
        p, c, k = p + dp, c + dc, k + 1
    return batch[:k]


__all__ = ["sample_corpus", "shared_prefix", "rationale_of", "parse_status", "BudgetWarning", "TeacherError"]
