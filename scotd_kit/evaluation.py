"""Evaluation: greedy or self-consistency decoding, strict and flexible accuracy side by side.

``evaluate`` decodes a model on a task's examples with :mod:`scotd_kit.generation`, reads every
generation with the task's extractor (``TaskSpec.score``), votes when there are several samples,
and returns an :class:`EvalResult` holding both accuracies with bootstrap 95% intervals, the rate of
answers outside the label set (SCoTD Fig. 6), the decoding settings, library versions and one
record per example with every generated text -- enough to re-score without re-generating.

Modes:

* student (``demos=None``): the input is ``Q: {x}\\nA: `` with no demonstrations (SCoTD's student);
* prompting baseline (Table 2(a)): ``demos`` = ``[(x, rationale, y), ...]`` becomes SCoTD's few-shot
  block, prefilled once and shared by every example; ``cot=False`` drops the rationales, and a
  generation without the answer marker is then read as the answer itself without counting as
  malformed (the demos show no marker; every mode reads a marker-less text as itself, SCoTD's rule).

Self-consistency (SCoTD few-shot setting): ``k`` samples at ``temperature`` with top-k 50 (HF's
implicit default, which the original code ran with), majority vote over the extracted answers,
ties to the answer seen first. Every sample votes with SCoTD's reading of it
(:func:`scotd_kit.answers.extract_strict`, after SCoTD's ``AnswerCleaner`` and the
``Counter(answers).most_common(1)`` vote of ``simple_main.py`` in the released code): a malformed
sample (no answer marker) votes with its own cut text (``split(" So the answer is: ")[-1]`` of a
text without the marker is the whole text), so malformed samples are scattered, mostly distinct
votes rather than one shared "no answer" bloc, and a marker-less ``(a)`` is a vote for ``(a)``
like ``So the answer is: (a)`` -- if it wins, the example's answer is ``(a)``.  Greedy decoding
reads its one text the same way.  ``drop_malformed=True`` leaves marker-less samples out of the
vote (a greedy text without a marker is then no answer); the share of malformed samples is
reported with every result (``malformed``).  One difference from SCoTD's code stays: strict
answers vote lower-cased (as the strict match compares them), where SCoTD counts ``(A)`` and
``(a)`` as two answers before lower-casing the winner.

A result's records keep every generated text; :func:`rescore` recomputes a result from them
(after a change of the scorer, ``SCORER_VERSION``) without generating again.
"""
from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from . import answers
from .generation import GenerationConfig, generate
from .io import read_jsonl, write_json, write_jsonl
from .journal import Journal
from .runs import writer_lock
from .prompts import few_shot_block, student_input
from .tasks import Example, TaskSpec, get_task

DECODINGS = ("greedy", "self_consistency")
STOP = ("\n\n",)
# bump when reading or voting changes: cached results are keyed by it and re-scored from their texts
SCORER_VERSION = "4-scotd-split"
# an evaluation with an out_dir decodes in parts of about this many sequences, each written as it finishes
# (what a kill can lose); large enough that the decode slots stay full across most of a part
CHUNK_ROWS = 512
PROGRESS_FILE = "progress.jsonl"


@dataclass
class EvalResult:
    task: str
    n: int
    accuracy: float                      # strict (SCoTD's rule)
    accuracy_flexible: float
    ci95: tuple[float, float]            # bootstrap interval of the strict accuracy
    ci95_flexible: tuple[float, float]
    out_of_label_set: float              # share of examples whose final answer is outside the label set
    malformed: float                     # share of generations with no answer marker
    decoding: dict
    versions: dict
    seed: int
    records: list[dict] = field(default_factory=list, repr=False)

    def summary(self) -> dict:
        """Everything but the per-example records (what tables and caches keep)."""
        out = asdict(self)
        out.pop("records")
        out["ci95"], out["ci95_flexible"] = list(self.ci95), list(self.ci95_flexible)
        return out

    def save(self, out_dir: str | Path) -> Path:
        """``summary.json`` + ``records.jsonl``, each written atomically; records first, so a
        ``summary.json`` (what caches test for) never points at missing records."""
        out_dir = Path(out_dir)
        write_jsonl(out_dir / "records.jsonl", self.records)
        write_json(out_dir / "summary.json", self.summary())
        return out_dir


# --- small pure pieces ------------------------------------------------------------------------------

def bootstrap_ci(correct: Sequence[float], n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of the mean of ``correct`` (1/0 per example, or the share of
    several seeds' students right on it: :func:`scotd_kit.stats.seed_scores`).

    Resampling n binary outcomes with replacement and averaging is exactly Binomial(n, p_hat) / n,
    so the resampled means are drawn from that directly: the same distribution as the textbook
    loop over index resamples, in O(n_boot) instead of O(n_boot * n). Fractional scores are resampled.
    """
    import numpy as np

    from .stats import resampled_means

    n = len(correct)
    if n == 0:
        return (math.nan, math.nan)
    scores = [float(c) for c in correct]
    rng = np.random.default_rng(seed)
    if all(x in (0.0, 1.0) for x in scores):
        means = rng.binomial(n, sum(scores) / n, size=n_boot) / n
    else:
        means = resampled_means(scores, n_boot, rng)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return (float(lo), float(hi))


def correct_by_id(records_path: str | Path, key: str = "correct_strict") -> dict[str, bool]:
    """``{example id: correct}`` of an evaluation's stored records (``key``: strict or flexible)."""
    return {str(r["id"]): bool(r[key]) for _, r in read_jsonl(records_path)}


def majority_vote(votes: Sequence[str | None], *, drop_none: bool = False) -> str | None:
    """The most frequent vote; ties go to the vote seen first. ``None`` (no answer) is a vote
    unless ``drop_none``; with nothing left to count the result is ``None``."""
    if drop_none:
        votes = [v for v in votes if v is not None]
    if not votes:
        return None
    counts = Counter(votes)
    best = max(counts.values())
    return next(v for v in votes if counts[v] == best)


def demo_prefix(demos: Sequence[tuple[str, str, str]], cot: bool = True) -> str:
    """SCoTD's few-shot block without the final question: ``prefix + student_input(x)`` is exactly
    ``few_shot_prompt(demos, x)``. ``cot=False`` drops every rationale (the no-CoT baseline)."""
    checked = []
    for i, demo in enumerate(demos):
        if not (isinstance(demo, (tuple, list)) and len(demo) == 3 and all(isinstance(s, str) for s in demo)):
            raise ValueError(f"demo {i} must be a (question, rationale, answer) tuple of strings, got {demo!r:.120}")
        x, r, y = demo
        checked.append((x, r if cot else "", y))
    return few_shot_block(checked)


def example_seed(seed: int, example_id: str) -> int:
    """A sampling seed per example, from its id: an example's samples do not move when the
    example list is cut, reordered or extended."""
    return int.from_bytes(hashlib.sha256(f"eval/{seed}/{example_id}".encode()).digest()[:8], "little") >> 1


def versions() -> dict:
    import torch
    import transformers

    from . import __version__

    return {"scotd_kit": __version__, "torch": torch.__version__, "transformers": transformers.__version__}


# --- evaluate --------------------------------------------------------------------------------------

def evaluate(model, tokenizer, task: str | TaskSpec, examples: Sequence[Example], *, decoding: str = "greedy",
             k: int = 30, temperature: float = 0.7, top_k: int = 50, max_new_tokens: int = 256,
             demos: Sequence[tuple[str, str, str]] | None = None, cot: bool = True, drop_malformed: bool = False,
             seed: int = 0, batch_size: int | None = None, out_dir: str | Path | None = None,
             progress: bool = True, greedy_dir: str | Path | None = None) -> EvalResult:
    """Decode ``examples`` of ``task`` and score them; see the module docstring.

    ``batch_size`` counts sequences decoded together (decode slots; None: chosen from free memory),
    as in :func:`scotd_kit.generation.generate`: an example's k samples share its prefill and fill
    slots as they open, greedy examples are scheduled longest first. Greedy results do not depend on it; sampled ones do
    not depend on it nor on which other examples are evaluated (seeds come from example ids).

    ``out_dir``: the result is saved there (``records.jsonl``, ``summary.json``); while it runs, each part of
    about ``CHUNK_ROWS`` sequences is written to ``progress.jsonl`` as it finishes, and a rerun after a kill
    decodes only what is missing (the same texts as one uninterrupted run in fp32; in bf16 the rows a matmul
    shares move a few sampled texts, as the decode-slot count does). One ``out_dir`` serves one model.

    ``greedy_dir`` (self-consistency with an ``out_dir`` only): each example's greedy completion is decoded in the
    same calls as its samples (``generate(greedy_row=True)``: on the CPU it shares the rows of samples with its
    tokens) and the greedy evaluation saved there, as ``evaluate(decoding="greedy")`` would save it.
    """
    spec = get_task(task)
    if decoding not in DECODINGS:
        raise ValueError(f"decoding must be one of {DECODINGS}, not {decoding!r}")
    examples = list(examples)
    for i, ex in enumerate(examples):
        if not isinstance(ex, Example):
            raise TypeError(f"examples[{i}] is a {type(ex).__name__}, not a scotd_kit.tasks.Example")
    sc = decoding == "self_consistency"
    if greedy_dir is not None and not (sc and out_dir is not None):
        raise ValueError("greedy_dir goes with decoding='self_consistency' and an out_dir")
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=sc, temperature=temperature if sc else 1.0,
                              top_k=top_k, n=k if sc else 1, stop=STOP, seed=seed,
                              logprobs=False)   # scoring reads texts only
    prefix = demo_prefix(demos, cot) if demos else ""

    def settings_of(decoding: str) -> dict:
        sc = decoding == "self_consistency"
        return dict(decoding=decoding, k=k if sc else 1, temperature=temperature if sc else None,
                    top_k=top_k if sc else None, max_new_tokens=max_new_tokens, stop=list(STOP),
                    drop_malformed=drop_malformed, cot=cot, n_demos=len(demos or ()), prefix=prefix,
                    space_boundary=bool(demos),
                    batch_size=batch_size, model=_model_name(model), scorer=SCORER_VERSION)

    settings = settings_of(decoding)

    def decode(part: list[Example]) -> list[dict]:
        prompts = [student_input(ex.question) for ex in part]
        gens = generate(model, tokenizer, prompts, config, prefix=prefix,
                        seeds=[example_seed(seed, ex.id) for ex in part], batch_size=batch_size,
                        progress=progress and out_dir is None, space_boundary=bool(demos),
                        **({"greedy_row": True} if greedy_dir is not None else {}))
        out = []
        for ex, prompt, samples in zip(part, prompts, gens):
            rec = {"id": str(ex.id), "prompt": prompt, "texts": [g.text for g in samples[:config.n]],
                   "finish_reasons": [g.finish_reason for g in samples[:config.n]]}
            if greedy_dir is not None:
                rec["greedy"] = {"texts": [samples[-1].text], "finish_reasons": [samples[-1].finish_reason]}
            out.append(rec)
        return out

    read_bare = demos is not None and not cot
    if out_dir is None:
        return _scored(spec, examples, decode(examples) if examples else [], settings, seed, read_bare=read_bare,
                       drop_malformed=drop_malformed)
    with writer_lock(out_dir):         # one evaluation writes an out_dir at a time
        # the decode-slot count changes no text: a rerun with another one still resumes
        journal = Journal(Path(out_dir) / PROGRESS_FILE, {**settings, "batch_size": None, "seed": seed,
                                                          **({"greedy_alongside": True} if greedy_dir else {})})
        generated = _decode_as_it_goes(decode, examples, journal, rows_per_example=config.n + (greedy_dir is not None),
                                       progress=progress)
        result = _scored(spec, examples, generated, settings, seed, read_bare=read_bare, drop_malformed=drop_malformed)
        if greedy_dir is not None:
            greedy = [{"prompt": g["prompt"], **g["greedy"]} for g in generated]
            _scored(spec, examples, greedy, settings_of("greedy"), seed, read_bare=read_bare,
                    drop_malformed=drop_malformed).save(greedy_dir)
        result.save(out_dir)
        journal.remove()
    return result


def _scored(spec: TaskSpec, examples: list[Example], generated: list[dict], settings: dict, seed: int, *,
            read_bare: bool, drop_malformed: bool) -> EvalResult:
    records = [score_example(spec, ex, g["prompt"], g["texts"], g["finish_reasons"], read_bare=read_bare,
                             drop_malformed=drop_malformed) for ex, g in zip(examples, generated)]
    return summarize(spec.name, records, settings, seed)


def _decode_as_it_goes(decode, examples: list[Example], journal: Journal, *, rows_per_example: int,
                       progress: bool) -> list[dict]:
    """``decode(examples)`` in parts of about ``CHUNK_ROWS`` sequences, each part's texts written to ``journal``
    as it finishes; texts a killed run wrote for the same example and prompt are taken, not decoded again.
    Sampling seeds come from example ids and greedy rows do not depend on their batch mates, so the texts
    are those of one uninterrupted call."""
    from tqdm.auto import tqdm

    done = journal.done()
    have = {str(ex.id): done[str(ex.id)] for ex in examples
            if str(ex.id) in done and done[str(ex.id)]["prompt"] == student_input(ex.question)}
    todo = [ex for ex in examples if str(ex.id) not in have]
    per_part = max(1, CHUNK_ROWS // rows_per_example)
    with tqdm(total=len(examples), initial=len(examples) - len(todo), desc="evaluate", unit="example",
              disable=not progress) as bar:
        for start in range(0, len(todo), per_part):
            part = decode(todo[start:start + per_part])
            journal.append(part)
            have.update((g["id"], g) for g in part)
            bar.update(len(part))
    return [have[str(ex.id)] for ex in examples]


def score_example(spec: TaskSpec, ex: Example, prompt: str, texts: Sequence[str], finish_reasons: Sequence[str],
                  *, read_bare: bool = False, drop_malformed: bool = False) -> dict:
    """One example's record: every text, its strict / flexible answers, the votes and their scores.

    ``read_bare``: a generation with no answer marker is read as the answer itself and not counted as
    malformed (no-CoT prompting, where the model is shown ``(b)`` rather than ``So the answer is: (b)``);
    without it, SCoTD's reader gives the same answer but the sample counts as malformed.
    """
    try:
        read = [_bare_as_answer(spec, t) if read_bare else t for t in texts]
        scores = [spec.score(t, ex) for t in read]
        votes = _strict_votes(scores, drop_malformed)
        winner = majority_vote(votes, drop_none=True)
        vote_strict = winner
        flexible = [s["flexible"] for s in scores]
        vote_flexible = _answer(majority_vote(_flexible_votes(flexible, read, drop_malformed), drop_none=drop_malformed))
        final = answers.Extraction(strict=vote_strict, flexible=vote_flexible, marker_found=vote_strict is not None)
        correct_strict = answers.strict_match(final, ex.label)
        correct_flexible = answers.flexible_match(final, ex.label, spec.answer_type)
    except Exception as e:  # a task rule that breaks on some text: say which example, keep the cause
        raise RuntimeError(f"scoring example {ex.id!r} of task {spec.name!r} failed: {type(e).__name__}: {e}") from e
    # the voted answer's label-set status is that of the first sample that gave it
    first = votes.index(winner) if winner in votes else 0
    return {
        "id": ex.id, "prompt": prompt, "gold": ex.label,
        "texts": list(texts), "finish_reasons": list(finish_reasons),
        "strict": [s["strict"] for s in scores], "flexible": flexible, "marker_found": [s["marker_found"] for s in scores],
        "vote_strict": vote_strict, "vote_flexible": vote_flexible,
        "correct_strict": correct_strict, "correct_flexible": correct_flexible,
        "in_label_set": bool(scores[first]["in_label_set"]) if scores else False,
    }


def _strict_votes(scores: Sequence[dict], drop_malformed: bool) -> list[str | None]:
    """Strict votes as SCoTD's reader casts them: every sample votes with its reading
    (``extract_strict``: after the marker, or its own cut text without one), lower-cased as the
    strict match compares them; so malformed samples only agree when their texts do, and a
    marker-less ``(a)`` votes with the ``(a)`` bloc.  ``drop_malformed``: marker-less samples do
    not vote (``None``, dropped by the vote)."""
    return [None if s["strict"] is None or (drop_malformed and not s["marker_found"]) else s["strict"].lower()
            for s in scores]


def _flexible_votes(answers_: Sequence[str | None], texts: Sequence[str], drop_malformed: bool) -> list:
    """Flexible votes: a sample with nothing answer-shaped votes with its own cut text (lower-cased,
    stripped), tagged ``("unread", text)`` so such samples only agree when their texts do, and a
    winning tagged vote means no flexible answer.  ``drop_malformed``: they do not vote."""
    if drop_malformed:
        return list(answers_)
    return [a if a is not None else ("unread", answers.cut_generation(t).strip().lower())
            for a, t in zip(answers_, texts)]


def _answer(vote):
    return None if isinstance(vote, tuple) else vote


def _bare_as_answer(spec: TaskSpec, text: str) -> str:
    cut = answers.cut_generation(text)
    if any(m in " " + cut for m in spec.markers):
        return text
    return spec.markers[0].lstrip() + cut.strip()


def summarize(task: str, records: list[dict], decoding: dict, seed: int) -> EvalResult:
    """Accuracies, intervals and rates of a list of example records (re-scoring reuses this)."""
    strict = [r["correct_strict"] for r in records]
    flexible = [r["correct_flexible"] for r in records]
    n_texts = sum(len(r["marker_found"]) for r in records)
    return EvalResult(
        task=task, n=len(records),
        accuracy=_mean(strict), accuracy_flexible=_mean(flexible),
        ci95=bootstrap_ci(strict, seed=seed), ci95_flexible=bootstrap_ci(flexible, seed=seed),
        out_of_label_set=_mean([not r["in_label_set"] for r in records]),
        malformed=(sum(not m for r in records for m in r["marker_found"]) / n_texts) if n_texts else math.nan,
        decoding=decoding, versions=versions(), seed=seed, records=records)


def rescore(task: str | TaskSpec, examples: Sequence[Example], records: Sequence[dict], decoding: dict,
            seed: int = 0) -> EvalResult:
    """A result recomputed from stored generations (``records.jsonl``) with today's scorer: nothing is
    generated again. ``examples`` supply labels and choice texts; ``decoding`` is the stored settings."""
    spec = get_task(task)
    by_id = {str(ex.id): ex for ex in examples}
    read_bare = bool(decoding.get("n_demos")) and not decoding.get("cot", True)
    out = []
    for r in records:
        ex = by_id.get(str(r["id"]))
        if ex is None:
            raise ValueError(f"stored record {r['id']!r} has no example among the {len(by_id)} given")
        out.append(score_example(spec, ex, r["prompt"], r["texts"], r["finish_reasons"], read_bare=read_bare,
                                 drop_malformed=bool(decoding.get("drop_malformed"))))
    return summarize(spec.name, out, {**decoding, "scorer": SCORER_VERSION}, seed)


def _mean(values: Sequence[bool]) -> float:
    return sum(bool(v) for v in values) / len(values) if values else math.nan


def _model_name(model) -> str:
    config = getattr(model, "config", None)
    return str(getattr(config, "_name_or_path", "") or type(model).__name__)


# --- contrast sets (SCoTD Fig. 5) ------------------------------------------------------------------

@dataclass
class ContrastResult:
    original: EvalResult
    contrast: EvalResult
    consistency: float           # pairs with both the original and its contrast example right (strict)
    consistency_flexible: float

    def summary(self) -> dict:
        return {"accuracy_original": self.original.accuracy, "accuracy_contrast": self.contrast.accuracy,
                "accuracy_original_flexible": self.original.accuracy_flexible,
                "accuracy_contrast_flexible": self.contrast.accuracy_flexible,
                "consistency": self.consistency, "consistency_flexible": self.consistency_flexible,
                "n_pairs": self.original.n, "original": self.original.summary(), "contrast": self.contrast.summary()}


def evaluate_contrast(model, tokenizer, original_examples: Sequence[Example], contrast_examples: Sequence[Example],
                      *, task: str | TaskSpec = "imdb", out_dir: str | Path | None = None, **kw: Any) -> ContrastResult:
    """Accuracy on an original set and its contrast set, paired by position (the i-th contrast
    example is the minimal edit of the i-th original, as in Gardner et al.'s files), and the
    contrast consistency: the share of pairs where both are answered right."""
    original_examples, contrast_examples = list(original_examples), list(contrast_examples)
    if len(original_examples) != len(contrast_examples):
        raise ValueError(f"contrast sets pair by position: {len(original_examples)} original examples "
                         f"but {len(contrast_examples)} contrast examples")
    out = Path(out_dir) if out_dir is not None else None
    orig = evaluate(model, tokenizer, task, original_examples, out_dir=out and out / "original", **kw)
    cont = evaluate(model, tokenizer, task, contrast_examples, out_dir=out and out / "contrast", **kw)
    pairs = list(zip(orig.records, cont.records))
    result = ContrastResult(
        original=orig, contrast=cont,
        consistency=_mean([a["correct_strict"] and b["correct_strict"] for a, b in pairs]),
        consistency_flexible=_mean([a["correct_flexible"] and b["correct_flexible"] for a, b in pairs]))
    if out is not None:
        write_json(out / "summary.json", result.summary())
    return result


def chance_of(spec, golds: Sequence[str] = ()) -> float | None:
    """1 / |label set| for a closed-set task (multiple choice, yes/no); for numbers, the accuracy of the
    best constant answer on the evaluated examples (the share of their most common gold answer)."""
    if spec.labels:
        return 1 / len(spec.labels)
    if not golds:
        return None
    return Counter(golds).most_common(1)[0][1] / len(golds)
