"""N chain-of-thought samples per instance from any teacher, into a resumable corpus on disk.

``sample_corpus`` builds SCoTD's teacher prompt for every instance (the few-shot block, shared by
all instances, then ``Q: {x}\\nA: ``), works out which samples the corpus already holds (keys: see
:mod:`scotd_kit.corpus`), asks the teacher for the rest in batches of instances, scores each
sample against gold, and appends the batch to the corpus before asking for the next one.

Seeds: sample ``i`` of an instance has the seed ``sample_seed(seed, instance_id, i)``, whatever
the batch layout, the start of a rerun or a top-up (``SampleRequest.seeds``).  A teacher that seeds
each sample with its own seed therefore gives the same text for the same key after any crash and
resume, and a top-up from N=5 to N=30 draws the samples a direct N=30 run would have drawn.
"""
from __future__ import annotations

import logging
import math
import numbers
import time
import warnings
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from .answers import cut_generation, split_at_answer
from .corpus import Corpus, CorpusWriter, record_key, text_hash
from .exemplars import get_exemplars
from .ledger import Budget, Estimate, Ledger, price_for
from .prompts import few_shot_block, few_shot_prompt
from .tasks import get_task
from .tasks.base import Example, TaskSpec
from .teachers.base import Completion, SampleRequest, SamplingSettings, TeacherError, sample_seed

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


def _requests(items: list[_Item], prefix: str, settings: SamplingSettings,
              greedy: dict | None = None) -> list[tuple[_Item, SampleRequest]]:
    """The requests for the samples ``items`` miss; the first of an instance in ``greedy`` asks for its greedy
    completion too."""
    out, greedy = [], set(greedy or ())
    for it in items:
        for start, k in _runs(it.missing):
            seeds = tuple(sample_seed(settings.seed, it.example.id, start + j) for j in range(k))
            out.append((it, SampleRequest(prompt=it.prompt, n=k, seed=seeds[0], seeds=seeds, start=start,
                                          prefix=prefix, instance_id=it.example.id, index=it.index,
                                          greedy=it.example.id in greedy)))
            greedy.discard(it.example.id)
    return out


def rationale_of(text: str, markers: Sequence[str]) -> str:
    """Text before the last answer marker of the cut generation (SCoTD's rationale); ``""`` without one."""
    split = split_at_answer(text, markers)
    return split[0] if split else ""


def parse_status(comp: Completion, score: dict) -> str:
    if not cut_generation(comp.text).strip():
        return "empty"
    if comp.finish_reason == "length":
        return "length"
    return "ok" if score["marker_found"] else "no_marker"


def judged(spec: TaskSpec, rec: dict, example: Example) -> dict:
    """``rec`` with its verdict against ``example``'s gold: as stored when sampled under that gold, else scored
    again from its text (the text is the teacher's; only ``gold`` and the verdicts depend on the answer key)."""
    if rec.get("gold") == example.label:
        return rec
    score = spec.score(rec["text"], example)
    return {**rec, "gold": example.label, "correct": score["strict_correct"],
            "correct_flexible": score["flexible_correct"], "judged_again": True}


def _record(spec: TaskSpec, it: _Item, j: int, comp: Completion, teacher_id: str, sdict: dict) -> dict:
    text = safe_text(comp.text)
    score = spec.score(text, it.example)
    rec = {"key": it.keys[j], "task": spec.name, "instance_id": it.example.id, "index": it.index,
           "sample_index": j, "teacher": teacher_id, "settings": sdict, "prompt_hash": it.prompt_hash,
           "gold": it.example.label, "text": text, "rationale": rationale_of(text, spec.markers),
           # ``answer``: what follows the marker (None without one: no target in SCoTD's training format);
           # ``correct``: SCoTD's score, its reader's match (a marker-less text equal to gold counts)
           "answer": score["strict"] if score["marker_found"] else None, "answer_flexible": score["flexible"],
           "correct": score["strict_correct"],
           "correct_flexible": score["flexible_correct"], "parse_status": parse_status(comp, score),
           "mean_logprob": comp.mean_logprob, "prompt_tokens": comp.prompt_tokens,
           "completion_tokens": comp.completion_tokens, "finish_reason": comp.finish_reason}
    if text != comp.text:
        rec["text_repaired"] = "lone surrogates replaced by U+FFFD"
    rec.update(comp.fields)
    return rec


def safe_text(text: str) -> str:
    """``text`` with lone UTF-16 surrogates (valid JSON escapes, not encodable) replaced by U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)


@dataclass
class _Costing:
    """What a request is likely to cost, learnt from this corpus's ledger and from this run.

    ``calls / samples``: calls per sample seen so far (a server that ignores ``n`` makes it 1);
    ``prompt_scale``: billed prompt tokens / what ``teacher.count_tokens`` said (corrects the
    4-characters-a-token guess once real ``usage`` has come back).
    """

    calls: int = 0
    samples: int = 0
    counted_prompt: int = 0
    billed_prompt: int = 0
    # before any usage came back, an approximate count is taken as this much low (real tokenizers
    # give 3-4 characters a token on English, fewer on maths and code)
    uncalibrated_scale: float = 1.0

    @classmethod
    def from_ledger(cls, ledger: Ledger, teacher) -> "_Costing":
        t = ledger.previous.get("totals", {})
        return cls(int(t.get("calls") or 0), int(t.get("samples") or 0), int(t.get("counted_prompt_tokens") or 0),
                   int(t.get("prompt_tokens") or 0) if t.get("counted_prompt_tokens") else 0,
                   1.0 if getattr(teacher, "tokens_exact", False) else 1.5)

    def calls_for(self, teacher, req: SampleRequest) -> int:
        honours_n = getattr(teacher, "n_supported", True)    # local / replay teachers: one call a request
        if honours_n is True:
            return 1
        if honours_n is None and self.samples:                # not asked yet: what this corpus saw
            return max(1, min(req.n, round(req.n * self.calls / self.samples)))
        return req.n                                          # ignores n, or unknown: the costly case

    @property
    def prompt_scale(self) -> float:
        return self.billed_prompt / self.counted_prompt if self.counted_prompt else self.uncalibrated_scale

    def projected(self, teacher, reqs: list[SampleRequest], per_sample: float) -> tuple[int, int]:
        """Billed tokens a batch would cost: prompts (once per call) + ``per_sample`` per sample."""
        counted = sum(teacher.count_tokens(r.prompt) * self.calls_for(teacher, r) for r in reqs)
        return int(round(counted * self.prompt_scale)), int(round(per_sample * sum(r.n for r in reqs)))

    def learn(self, teacher, reqs: list[SampleRequest], results: list) -> int:
        """Fold a batch's real calls and tokens in; returns the prompt tokens count_tokens saw."""
        counted = sum(teacher.count_tokens(q.prompt) * r.calls for q, r in zip(reqs, results) if r is not None)
        self.counted_prompt += counted
        self.billed_prompt += sum(r.prompt_tokens for r in results if r is not None)
        self.calls += sum(r.calls for r in results if r is not None)
        self.samples += sum(len(r.completions) for r in results if r is not None)
        return counted


def estimate(teacher, items: list[_Item], reqs: list[SampleRequest], settings: SamplingSettings,
             existing: list[dict], price, costing: _Costing) -> Estimate:
    observed = [r["completion_tokens"] for r in existing if isinstance(r.get("completion_tokens"), int)]
    per_sample = sum(observed) / len(observed) if observed else None
    prompt, completion = costing.projected(teacher, reqs, per_sample if per_sample is not None
                                           else settings.max_new_tokens)
    needed = sum(r.n for r in reqs)
    return Estimate(teacher=teacher.id, instances=sum(1 for it in items if it.missing), samples_needed=needed,
                    cache_hits=sum(len(it.keys) - len(it.missing) for it in items),
                    requests=sum(costing.calls_for(teacher, r) for r in reqs), prompt_tokens=prompt,
                    completion_tokens=completion, cost_usd=price.cost(prompt, completion) if price else None,
                    tokens_approximate=not getattr(teacher, "tokens_exact", False) and not costing.counted_prompt,
                    observed_completion_mean=per_sample)


def _check_args(n, batch_size, temperature, top_p, top_k, max_new_tokens, seed) -> None:
    """Every numeric argument, at the door: a bad one would loop, divide by zero or be sent to a server."""
    def integer(name, v, low):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:   # numpy ints are fine
            raise ValueError(f"{name} must be an integer >= {low}, not {v!r}")

    def real(name, v, low, high, low_open=False):
        ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and \
            (v > low if low_open else v >= low) and v <= high
        if not ok:
            raise ValueError(f"{name} must be a number in {'(' if low_open else '['}{low}, {high}], not {v!r}")

    integer("n", n, 1)
    integer("batch_size", batch_size, 1)
    integer("max_new_tokens", max_new_tokens, 1)
    integer("seed", seed, 0)
    if top_k is not None:
        integer("top_k", top_k, 0)
    real("temperature", temperature, 0, 100)
    real("top_p", top_p, 0, 1, low_open=True)


def sample_corpus(task, examples: Sequence[Example], teacher, *, n: int = 30, corpus_path,
                  temperature: float = 1.0, max_new_tokens: int = 128, demos=None, seed: int = 0,
                  budget: Budget | dict | None = None, batch_size: int = 8, dry_run: bool = False,
                  progress: bool = True, top_p: float = 1.0, top_k: int | None = None,
                  stop: Sequence[str] = ("\n\n",), prices: dict | None = None,
                  greedy_path: str | Path | None = None) -> Corpus:
    """Make sure ``corpus_path`` holds ``n`` samples of every example; return the :class:`Corpus`.

    ``greedy_path``: the corpus of the same teacher's greedy CoTs (these settings at temperature 0, one per
    example). A teacher that decodes them alongside its samples (``greedy_alongside``) fills it for the
    examples this run samples, in the same calls; the rest, and other teachers', are left to a run of their own.

    ``batch_size``: instances per teacher call and per write to disk.  ``budget``: stop cleanly
    before a batch would pass it (what is on disk stays valid; a rerun continues).  ``dry_run``:
    spend nothing, set ``corpus.estimate`` (an :class:`~scotd_kit.ledger.Estimate`) and return.
    ``prices``: ``{model_name: Price | (prompt_per_1m, completion_per_1m)}`` over the ledger's table.
    """
    spec = get_task(task)
    _check_args(n, batch_size, temperature, top_p, top_k, max_new_tokens, seed)
    # numpy scalars as plain numbers: they are part of every key (JSON), and a plain 1 must stay 1, not 1.0
    n, batch_size, temperature, top_p, top_k, max_new_tokens, seed = (
        getattr(v, "item", lambda v=v: v)() for v in (n, batch_size, temperature, top_p, top_k, max_new_tokens, seed))
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
        costing = _Costing.from_ledger(Ledger(corpus.ledger_path, teacher, price), teacher)
        corpus.estimate = estimate(teacher, items, reqs, settings, existing, price, costing)
        log.info("%s", corpus.estimate)
        return corpus

    if _finished(corpus, spec, examples, teacher, demos, settings, n):
        return corpus
    with ExitStack() as stack:
        writer = stack.enter_context(corpus.writer())
        items = _plan(spec, examples, teacher, demos, settings, n, writer.keys)
        greedy = None
        if greedy_path is not None and getattr(teacher, "greedy_alongside", False) and temperature > 0:
            greedy = _Greedy.open(stack, spec, examples, teacher, demos, replace(settings, temperature=0.0),
                                  greedy_path, price)
        pairs = _ordered(_requests(items, prefix, settings, greedy.items if greedy else {}))
        ledger = Ledger(corpus.ledger_path, teacher, price)
        ledger.reconcile(len(writer.keys))
        ledger.run.cache_hits = sum(len(it.keys) - len(it.missing) for it in items)
        _run(spec, teacher, pairs, settings, writer, ledger, budget, batch_size, progress, corpus, greedy)
    return corpus


@dataclass
class _Greedy:
    """The greedy corpus a sampling run fills alongside: its examples still to decode, writer and ledger."""

    items: dict          # instance id -> _Item of the greedy corpus, for the examples it lacks
    writer: CorpusWriter
    ledger: Ledger
    sdict: dict

    @classmethod
    def open(cls, stack: ExitStack, spec, examples, teacher, demos, settings: SamplingSettings, path, price):
        corpus = Corpus(path)
        writer = stack.enter_context(corpus.writer())
        items = _plan(spec, examples, teacher, demos, settings, 1, writer.keys)
        ledger = Ledger(corpus.ledger_path, teacher, price)
        ledger.reconcile(len(writer.keys))
        return cls({it.example.id: it for it in items if it.missing}, writer, ledger, settings.as_dict())

    def write(self, spec, teacher, batch, results) -> None:
        """The greedy completions of a written batch; their time is in the sampling run's ledger."""
        records = [_record(spec, self.items.pop(it.example.id), 0, res.greedy, teacher.id, self.sdict)
                   for (it, req), res in zip(batch, results)
                   if req.greedy and res is not None and res.greedy is not None]
        if records:
            written = self.writer.append(records)
            # the ledger counts every token decoded, the one that stopped a CoT too (as a sampling run's does)
            decoded = sum((r["completion_tokens"] or 0) + (r["finish_reason"] in ("stop", "eos")) for r in records)
            self.ledger.add(0, decoded, written, 0, 0, 0.0)
            self.ledger.save()


def _finished(corpus: Corpus, spec: TaskSpec, examples, teacher, demos, settings: SamplingSettings, n: int) -> bool:
    """Does the corpus already hold every sample asked for?  Checked without the writer lock, so
    notebooks and jobs reading a finished corpus at once never refuse each other; a corpus that
    lacks anything goes through the writer (lock, torn-tail repair, ledger) as a writer run."""
    if not corpus.path.exists():
        return False
    items = _plan(spec, examples, teacher, demos, settings, n, corpus.complete_keys())
    return not any(it.missing for it in items)


def _ordered(pairs: list[tuple[_Item, SampleRequest]]) -> list[tuple[_Item, SampleRequest]]:
    """Requests grouped by prompt (one instance's runs next to each other), so the calls a server
    sees in a row share their whole prompt and its prefix cache serves them."""
    first = {}
    for it, _ in pairs:
        first.setdefault(it.prompt_hash, len(first))
    return sorted(pairs, key=lambda p: (first[p[0].prompt_hash], p[1].start))


def _run(spec, teacher, pairs, settings, writer, ledger: Ledger, budget, batch_size, progress, corpus,
         greedy: _Greedy | None = None) -> None:
    from tqdm.auto import tqdm

    sdict = settings.as_dict()
    costing = _Costing.from_ledger(ledger, teacher)
    bar = tqdm(total=sum(r.n for _, r in pairs), desc=f"sampling {spec.name}", unit="sample", disable=not progress)
    try:
        pos = 0
        while pos < len(pairs):
            batch = pairs[pos:pos + batch_size]
            if budget is not None:
                batch = _affordable(teacher, batch, ledger, budget, settings, costing)
                if not batch:
                    _stop_for_budget(corpus, ledger, budget, "reached")
                    break
            reqs = [r for _, r in batch]
            t0 = time.perf_counter()
            results, error = _ask(teacher, reqs, settings)
            seconds = time.perf_counter() - t0
            records = _records(spec, teacher, batch, results, sdict, warn=error is None)
            counted = costing.learn(teacher, reqs, results)
            written = writer.append(records)   # before the ledger: the ledger never counts what is not on disk
            if greedy is not None:
                greedy.write(spec, teacher, batch, results)
            done = [r for r in results if r is not None]
            ledger.add(sum(r.prompt_tokens for r in done), sum(r.completion_tokens for r in done), written,
                       sum(r.calls for r in done), sum(r.retries for r in done), seconds, counted)
            ledger.save()
            bar.update(written)
            if error is not None:
                raise error
            if budget is not None and ledger.over(budget):
                _stop_for_budget(corpus, ledger, budget, "passed (the server billed more than projected)")
                break
            pos += len(batch)
        ledger.save()
    except BaseException:
        ledger.save_quietly()      # the first error is the one the user sees, not a ledger write after it
        if greedy is not None:
            greedy.ledger.save_quietly()
        raise
    finally:
        bar.close()


def _ask(teacher, reqs: list[SampleRequest], settings: SamplingSettings):
    """``(results, error)``: a teacher that fails mid-batch hands back what it completed
    (``TeacherError.partial``), which is kept and paid for once."""
    try:
        return teacher.sample(reqs, settings), None
    except TeacherError as e:
        partial = getattr(e, "partial", None)
        if partial is None:
            raise
        return list(partial), e


def _records(spec, teacher, batch, results, sdict: dict, warn: bool) -> list[dict]:
    records = []
    for (it, req), res in zip(batch, results):
        got = res.completions if res is not None else []
        if warn and len(got) != req.n:
            warnings.warn(f"teacher {teacher.id} returned {len(got)} of {req.n} samples for "
                          f"instance {it.example.id!r}; the rest will be asked on the next run")
        for pos, comp in enumerate(got):
            j = req.start + (comp.index if comp.index is not None else pos)
            records.append(_record(spec, it, j, comp, teacher.id, sdict))
    return records


def _stop_for_budget(corpus, ledger: Ledger, budget: Budget, how: str) -> None:
    corpus.stopped = ledger.run.stopped = "budget"
    warnings.warn(f"budget {budget} {how} after {ledger.run.tokens:,} tokens "
                  f"(${ledger.run.cost_usd or 0:.4f}); {corpus.path} holds every sample written "
                  f"so far; rerun to continue", BudgetWarning, stacklevel=4)


def _affordable(teacher, batch, ledger: Ledger, budget: Budget, settings: SamplingSettings, costing: _Costing):
    """The longest head of ``batch`` whose projected cost fits what is left of the budget."""
    r = ledger.run
    per_sample = r.completion_tokens / r.samples if r.samples else settings.max_new_tokens
    costs = [costing.projected(teacher, [req], per_sample) for _, req in batch]
    p = c = k = 0
    for dp, dc in costs:
        if ledger.would_exceed(budget, p + dp, c + dc):
            break
        p, c, k = p + dp, c + dc, k + 1
    return batch[:k]


__all__ = ["sample_corpus", "shared_prefix", "rationale_of", "parse_status", "safe_text", "BudgetWarning",
           "TeacherError"]
