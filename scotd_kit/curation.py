"""From a teacher corpus to training data: filters, SCoTD's training instances, baselines, downsampling.

Everything here is a plain function over plain data: corpus records are dicts (the fields written
by :mod:`scotd_kit.corpus`; only the fields a function needs are checked), examples are
:class:`scotd_kit.tasks.Example`, and a *training instance* is the dict the trainer consumes::

    {"id": str, "input": "Q: {x}\\nA: ", "targets": ["{rationale} So the answer is: {y}\\n\\n", ...]}

The trainer draws one target per instance per epoch uniformly at random (SCoTD's balanced sampling,
seeded here where the original seeded from the clock), so ``targets`` may repeat a text: a CoT the
teacher sampled twice is twice as likely, as in the paper.

Settings (PAPERS.md section 1):

* ``"full"`` (supervised): keep only CoTs whose answer is correct (:func:`filter_correct`);
  instances left without one are dropped.
* ``"few_shot"``: only the prompt exemplars are labelled, so every CoT is kept.

Downsampling to k CoTs per instance (Fig. 7): :func:`downsample_random`,
:func:`downsample_diversity`, :func:`downsample_likelihood`, :func:`downsample_open_endedness`.
Data-size curves (Figs. 2, 3; Table 3(b)): :func:`first_n_per_instance`, :func:`subset_instances`;
both are nested (a smaller subset is contained in every larger one), so curves compare like with like.
"""
from __future__ import annotations

import random
from collections import OrderedDict
from typing import Any, Callable, Iterable, Sequence

from . import prompts
from .io import DataError

Record = dict
TrainInstance = dict

__all__ = [
    "EmptySelectionError", "filter_correct", "keep_all", "filter_stats", "build_instances",
    "label_only_instances", "greedy_cot_instances", "downsample", "downsample_random",
    "downsample_diversity", "downsample_likelihood", "downsample_open_endedness", "unique_bigrams",
    "subset_instances", "first_n_per_instance", "group_by_instance", "fig7_records", "open_endedness_quotas",
]


class EmptySelectionError(ValueError):
    """A filter or selection left nothing; the message names the filter and why."""


# ---------------------------------------------------------------- record access

def _where(record: Any, i: int) -> str:
    key = record.get("key") if isinstance(record, dict) else None
    return f"corpus record {i}" + (f" (key={key!r})" if key is not None else "")


def _need(records: Sequence[Record], fields: Iterable[str]) -> None:
    """Fail on the first record that lacks one of ``fields``, naming the record and the field."""
    fields = tuple(fields)
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise DataError(f"{_where(r, i)}: expected a dict, got {type(r).__name__}")
        for f in fields:
            if f not in r:
                raise DataError(f"{_where(r, i)}: missing field {f!r} (needed here: {', '.join(fields)})")


def _nonempty(result: list, before: int, what: str, why: str) -> list:
    if before and not result:
        raise EmptySelectionError(f"{what} left none of {before} records: {why}")
    return result


def group_by_instance(records: Sequence[Record]) -> "OrderedDict[str, list[Record]]":
    """Records per ``instance_id`` (as str), instances in first-seen order, records by ``sample_index``."""
    _need(records, ("instance_id",))
    groups: OrderedDict[str, list[Record]] = OrderedDict()
    for r in records:
        groups.setdefault(str(r["instance_id"]), []).append(r)
    for rs in groups.values():
        # sample order is the teacher's draw order; records without one keep their corpus order
        rs.sort(key=lambda r: r.get("sample_index") if r.get("sample_index") is not None else 0)
    return groups


def _flatten(groups: dict[str, list[Record]]) -> list[Record]:
    return [r for rs in groups.values() for r in rs]


# ---------------------------------------------------------------- filters

def filter_correct(records: Sequence[Record], *, flexible: bool = False) -> list[Record]:
    """The supervised ("full") filter: drop CoTs whose answer is wrong.

    ``correct`` (strict match) by default, as SCoTD's ``score`` (its answer reader's match, so a
    marker-less CoT whose cut text is the gold label counts as correct, as in the released corpora);
    ``flexible=True`` uses ``correct_flexible``.  Instances with no correct CoT disappear with their
    records.
    """
    field = "correct_flexible" if flexible else "correct"
    _need(records, ("instance_id", field))
    kept = [r for r in records if r[field] is True]
    return _nonempty(kept, len(records), "filter_correct",
                     f"no record has {field}=True (is the teacher answering in the task's label format?)")


def keep_all(records: Sequence[Record]) -> list[Record]:
    """The few-shot setting keeps every CoT (no labels to filter with)."""
    return list(records)


def filter_stats(records: Sequence[Record], *, flexible: bool = False) -> dict:
    """What :func:`filter_correct` removes: SCoTD reports 40.4% (CSQA), 45.0% (OBQA), 34.2% (QuaRel) dropped.

    ``samples``: CoTs; ``kept``: correct CoTs; ``dropped_share``: 1 - kept / samples;
    ``instances``: distinct instances; ``instances_dropped``: instances with no correct CoT.
    """
    field = "correct_flexible" if flexible else "correct"
    _need(records, ("instance_id", field))
    groups = group_by_instance(records)
    kept = sum(1 for r in records if r[field] is True)
    dropped_instances = sum(1 for rs in groups.values() if not any(r[field] is True for r in rs))
    return {"samples": len(records), "kept": kept,
            "dropped_share": (1 - kept / len(records)) if records else 0.0,
            "instances": len(groups), "instances_dropped": dropped_instances}


# ---------------------------------------------------------------- training instances

def _examples_by_id(examples: Sequence) -> dict[str, Any]:
    by_id = {}
    for e in examples:
        by_id[str(e.id)] = e
    return by_id


def _record_target(r: Record, i: int) -> str:
    rationale, answer = r["rationale"], r["answer"]
    if rationale is None or answer is None:
        raise DataError(f"{_where(r, i)}: no rationale/answer to train on (parse_status="
                        f"{r.get('parse_status')!r}); drop unparsed records first")
    return prompts.target(str(rationale), str(answer))


def build_instances(records: Sequence[Record], examples: Sequence, setting: str = "full", *,
                    flexible: bool = False) -> list[TrainInstance]:
    """SCoTD's training instances: one per example, every surviving teacher CoT as a target.

    What SCoTD trains on is the teacher's own text, ``rationale + " So the answer is: " + answer``
    (the released corpora's ``response``), not the rationale glued to the gold label.  In the
    ``"full"`` setting the filter has already made ``answer`` equal to gold (up to case); in the
    ``"few_shot"`` setting wrong answers are kept, as in the paper.  Records without an answer
    marker (``answer is None``) have no target in that format and are left out in both settings --
    also one whose cut text is the gold label, which SCoTD's score (and so ``correct`` and
    :func:`filter_stats`) counts as correct; SCoTD's code would train on such a text verbatim.

    Instances follow the order of ``examples``; examples without a surviving CoT are left out.
    A record whose ``instance_id`` names no example is an error (a corpus from another split/task).
    """
    if setting not in ("full", "few_shot"):
        raise ValueError(f"setting must be 'full' or 'few_shot', not {setting!r}")
    _need(records, ("instance_id", "rationale", "answer"))
    if setting == "full":
        records = filter_correct(records, flexible=flexible)
    by_id = _examples_by_id(examples)
    targets: dict[str, list[str]] = {}
    for i, r in enumerate(records):
        iid = str(r["instance_id"])
        if iid not in by_id:
            raise DataError(f"{_where(r, i)}: instance_id {iid!r} is not among the {len(by_id)} examples given "
                            f"(corpus of another task or split?)")
        if r["answer"] is None or r["rationale"] is None:
            continue
        targets.setdefault(iid, []).append(_record_target(r, i))
    instances = [{"id": str(e.id), "input": prompts.student_input(e.question), "targets": targets[str(e.id)]}
                 for e in examples if str(e.id) in targets]
    return _nonempty(instances, len(records), f"build_instances(setting={setting!r})",
                     "no record has both a rationale and a parsed answer")


def label_only_instances(examples: Sequence) -> list[TrainInstance]:
    """Table 2(b)'s label-only baseline: the target is ``So the answer is: {y}\\n\\n``."""
    return [{"id": str(e.id), "input": prompts.student_input(e.question), "targets": [prompts.target("", e.label)]}
            for e in examples]


def gold_cot_instances(examples: Sequence) -> list[TrainInstance]:
    """One gold CoT per instance from ``meta["rationale"]`` (the demo tasks carry one)."""
    out = []
    for e in examples:
        if "rationale" not in e.meta:
            raise DataError(f"example {e.id!r}: no meta['rationale'] to build a gold CoT from")
        out.append({"id": str(e.id), "input": prompts.student_input(e.question),
                    "targets": [prompts.target(e.meta["rationale"], e.label)]})
    return out


def _is_greedy(r: Record) -> bool:
    s = r.get("settings") or {}
    if not isinstance(s, dict):
        return False
    return s.get("decoding") == "greedy" or s.get("do_sample") is False or s.get("temperature") in (0, 0.0)


def greedy_cot_instances(records: Sequence[Record], examples: Sequence, setting: str = "few_shot") -> list[TrainInstance]:
    """Table 2(b)'s greedy-CoT baseline: one greedy teacher CoT per instance.

    ``records`` is a greedy corpus (one record per instance) or a mixed one: per instance the
    record whose ``settings`` say greedy (``decoding="greedy"``, ``do_sample=False`` or
    ``temperature=0``) is taken, else the first by ``sample_index``.  In the ``"full"`` setting a
    wrong greedy CoT is dropped with its instance, as the full filter does for sampled CoTs.
    """
    groups = group_by_instance(records)
    chosen = []
    for rs in groups.values():
        greedy = [r for r in rs if _is_greedy(r)]
        chosen.append((greedy or rs)[0])
    return build_instances(chosen, examples, setting)


# ---------------------------------------------------------------- downsampling (Fig. 7)

def _rng(seed: int, *parts: Any) -> random.Random:
    # str seeds hash stably across processes (unlike hash()), so selections are reproducible
    return random.Random("/".join(map(str, (seed, *parts))))


def downsample_random(records: Sequence[Record], k: int, seed: int = 0) -> list[Record]:
    """k CoTs per instance uniformly at random (fewer where an instance has fewer)."""
    groups = group_by_instance(records)
    out = {iid: sorted(_rng(seed, "random", iid).sample(range(len(rs)), min(k, len(rs)))) for iid, rs in groups.items()}
    return [groups[iid][j] for iid, js in out.items() for j in js]


def downsample_likelihood(records: Sequence[Record], k: int) -> list[Record]:
    """The k CoTs per instance with the highest teacher mean token log-probability."""
    _need(records, ("instance_id", "mean_logprob"))
    for i, r in enumerate(records):
        if not isinstance(r["mean_logprob"], (int, float)):
            raise DataError(f"{_where(r, i)}: mean_logprob is {r['mean_logprob']!r}; the likelihood strategy "
                            f"needs teacher log-probs (a teacher backend that returns them)")
    groups = group_by_instance(records)
    return _flatten({iid: sorted(rs, key=lambda r: -r["mean_logprob"])[:k] for iid, rs in groups.items()})


def _minilm_embed(texts: list[str]):
    from sentence_transformers import SentenceTransformer

    from .assets import minilm_dir

    model = SentenceTransformer(str(minilm_dir()), device="cpu")
    return model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=len(texts) > 256)


def _cluster_members(vectors, k: int, rng: random.Random) -> list[int]:
    """Indices of one member per cluster: agglomerative (Ward) clustering cut into exactly k clusters,
    then a random member of each cluster, as SCoTD's diversity strategy picks (not the most
    typical one: the centre would bias the selection towards the teacher's modal phrasing)."""
    import numpy as np
    from scipy.cluster.hierarchy import cut_tree, linkage

    vectors = np.asarray(vectors, dtype=np.float64)
    labels = cut_tree(linkage(vectors, method="ward"), n_clusters=k).ravel()
    return sorted(rng.choice([int(m) for m in np.flatnonzero(labels == c)]) for c in range(k))


def downsample_diversity(records: Sequence[Record], k: int, *, seed: int = 0,
                         embed: Callable[[list[str]], Any] | None = None) -> list[Record]:
    """k CoTs per instance that cover its distinct reasoning: rationales embedded with
    all-MiniLM-L6-v2 (offline), clustered hierarchically into k clusters, a random CoT per cluster.

    ``embed`` (texts -> array of vectors) replaces the sentence encoder (tests, other encoders).
    """
    _need(records, ("instance_id", "rationale"))
    groups = group_by_instance(records)
    todo = [rs for rs in groups.values() if len(rs) > k]
    texts = [str(r["rationale"] or "") for rs in todo for r in rs]
    vectors = (embed or _minilm_embed)(texts) if texts else []
    out, start = {}, 0
    for iid, rs in groups.items():
        if len(rs) <= k:
            out[iid] = rs
            continue
        block = vectors[start:start + len(rs)]
        start += len(rs)
        out[iid] = [rs[j] for j in _cluster_members(block, k, _rng(seed, "diversity", iid))]
    return _flatten(out)


def unique_bigrams(texts: Iterable[str]) -> int:
    """Distinct lowercased word bigrams across ``texts`` (the open-endedness measure of Fig. 7)."""
    grams = set()
    for t in texts:
        words = str(t or "").lower().split()
        grams.update(zip(words, words[1:]))
    return len(grams)


OPEN_ENDEDNESS_PATTERN = (1, 3, 5, 7, 9)   # SCoTD Fig. 7: CoTs kept per quintile at k=5


def open_endedness_quotas(capacity: Sequence[int], k: int,
                          pattern: Sequence[int] = OPEN_ENDEDNESS_PATTERN) -> list[int]:
    """CoTs per instance for instances ranked from least to most open-ended, spending the budget every
    Fig. 7 strategy gets: ``sum(min(k, capacity))``, what random, likelihood and diversity keep.

    The ranking is cut into ``len(pattern)`` equal groups whose quotas are proportional to
    ``pattern`` (k=5 on a multiple of 5 instances that each hold 9 CoTs gives exactly 1/3/5/7/9); every
    instance keeps at least one.  What an instance cannot use (it has fewer CoTs than its quota) goes
    to the most open-ended instances that have CoTs to spare, so the total is always the budget: the
    strategies differ in which CoTs they train on, never in how many.
    """
    n, q = len(capacity), len(pattern)
    if n == 0:
        return []
    weight = [pattern[min(q - 1, pos * q // n)] for pos in range(n)]
    budget = sum(min(k, c) for c in capacity)
    quota = [max(1, int(budget * w / sum(weight))) for w in weight]
    by_openness = sorted(range(n), key=lambda p: (-weight[p], -p))
    while sum(quota) > budget and any(q > 1 for q in quota):  # the floor of one CoT overspent: take it back
        quota[next(p for p in by_openness if quota[p] > 1)] -= 1
    for pos in by_openness:                                     # rounding remainder to the open-ended end
        if sum(quota) >= budget:
            break
        quota[pos] += 1
    quota = [min(c, qt) for c, qt in zip(capacity, quota)]
    spare = budget - sum(quota)
    for pos in reversed(range(n)):                              # unused budget, most open-ended first
        if spare <= 0:
            break
        extra = min(spare, capacity[pos] - quota[pos])
        quota[pos] += extra
        spare -= extra
    return quota


def downsample_open_endedness(records: Sequence[Record], k: int = 5, seed: int = 0,
                              pattern: Sequence[int] = OPEN_ENDEDNESS_PATTERN) -> list[Record]:
    """Instances ranked by unique bigrams across their CoTs; the more open-ended an instance, the more
    of its CoTs are kept (quintiles keep 1/3/5/7/9 at ``k=5``, see :func:`open_endedness_quotas`),
    chosen at random.  The total is the other strategies' (``min(k, available)`` summed over instances).
    Ties in the ranking are broken by instance order, so the split is deterministic.
    """
    _need(records, ("instance_id", "rationale"))
    groups = group_by_instance(records)
    ids = list(groups)
    score = {iid: unique_bigrams(r["rationale"] for r in groups[iid]) for iid in ids}
    first_seen = {iid: pos for pos, iid in enumerate(ids)}
    ranked = sorted(ids, key=lambda iid: (score[iid], first_seen[iid]))
    quota = dict(zip(ranked, open_endedness_quotas([len(groups[i]) for i in ranked], k, pattern)))
    out = {}
    for iid in ids:
        rs = groups[iid]
        js = sorted(_rng(seed, "open", iid).sample(range(len(rs)), quota[iid]))
        out[iid] = [rs[j] for j in js]
    return _flatten(out)


STRATEGIES = ("random", "diversity", "likelihood", "open_endedness")


def downsample(records: Sequence[Record], strategy: str, k: int = 5, seed: int = 0, **kwargs) -> list[Record]:
    """One entry point for Fig. 7's strategies: ``random | diversity | likelihood | open_endedness``.

    Give it the correct-only corpus (:func:`fig7_records`): SCoTD's strategies choose among the
    correct CoTs, each with the same budget of ``k`` CoTs per instance."""
    if strategy == "random":
        return downsample_random(records, k, seed)
    if strategy == "diversity":
        return downsample_diversity(records, k, seed=seed, **kwargs)
    if strategy == "likelihood":
        return downsample_likelihood(records, k)
    if strategy == "open_endedness":
        return downsample_open_endedness(records, k, seed=seed, **kwargs)
    raise ValueError(f"unknown downsampling strategy {strategy!r}; known: {', '.join(STRATEGIES)}")


# ---------------------------------------------------------------- nested data-size subsets

def first_n_per_instance(records: Sequence[Record], n: int) -> list[Record]:
    """The first ``n`` CoTs per instance in sampling order (Fig. 2, Table 3(b)): N=5 is inside N=10."""
    if n < 1:
        raise ValueError(f"n must be >= 1, not {n}")
    _need(records, ("instance_id",))
    return _flatten({iid: rs[:n] for iid, rs in group_by_instance(records).items()})


def _item_id(item: Any, i: int) -> str:
    if isinstance(item, dict) and "id" in item:
        return str(item["id"])
    if hasattr(item, "id"):
        return str(item.id)
    raise DataError(f"item {i}: missing field 'id'")


def subset_instances(items: Sequence[Any], fraction: float, seed: int = 0) -> list[Any]:
    """A ``fraction`` of the examples (or training instances) (Fig. 3), nested across fractions.

    Fig. 3 takes the fraction of D_train's instances *before* the teacher's CoTs are filtered, so
    pass the examples: every line of the figure then trains on the same instances.  Every fraction
    takes a prefix of the same seeded permutation of the ids, so the 20% subset lies inside the 40%
    one; the result keeps the input order.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], not {fraction}")
    ids = [_item_id(item, i) for i, item in enumerate(items)]
    order = sorted(ids)
    _rng(seed, "subset").shuffle(order)
    chosen = set(order[:max(1, round(fraction * len(ids)))] if ids else [])
    return [item for item, iid in zip(items, ids) if iid in chosen]


def fig7_records(records: Sequence[Record], strategy: str, k: int, seed: int = 0, **kwargs) -> list[Record]:
    """Fig. 7's pipeline in the paper's order: filter to the correct CoTs (C'), then downsample to
    ``k`` per instance with ``strategy`` -- every strategy chooses among correct CoTs only."""
    return downsample(filter_correct(records), strategy, k=k, seed=seed, **kwargs)


def teacher_label_instances(records: Sequence[Record], examples: Sequence) -> list[TrainInstance]:
    """Few-shot label-only baseline: no gold labels beyond the prompt's, so the teacher's own
    answers are the labels -- one ``So the answer is: {answer}`` target per answered sample
    (repeated answers weigh as often as the teacher gave them)."""
    _need(records, ("instance_id", "answer"))
    by_id = _examples_by_id(examples)
    targets: dict[str, list[str]] = {}
    for i, r in enumerate(records):
        iid = str(r["instance_id"])
        if iid not in by_id:
            raise DataError(f"{_where(r, i)}: instance_id {iid!r} is not among the {len(by_id)} examples given")
        if r["answer"] is not None:
            targets.setdefault(iid, []).append(prompts.target("", r["answer"]))
    instances = [{"id": str(e.id), "input": prompts.student_input(e.question), "targets": targets[str(e.id)]}
                 for e in examples if str(e.id) in targets]
    return _nonempty(instances, len(records), "teacher_label_instances", "no record has a parsed answer")
