"""SCoTD's central claims, checked on one profile's runs: ``claims.csv`` and the table on top of ``summary.md``.

Four claims, each one row ``claim, ours, ci_low, ci_high, n, holds`` (percentage points):

1. **teacher signal**: the teacher's few-shot CoT accuracy (greedy, and self-consistency) is above chance
   -- ``holds`` when the 95% bootstrap interval's low end is above chance; the correct-CoT yield of its
   sampled corpus (SCoTD §3.1's filter statistics) is reported beside it (``holds`` empty: a number, not a test);
2. **SCoTD beats label-only** (full setting, same student and instances): the paired bootstrap interval of
   the accuracy difference is above 0;
3. **N CoTs beat 1 CoT** per instance (full setting): the paired interval is above 0; where the profile has
   ``grid_seeds`` (the demo: a random student moves ~10 points with its seed alone), each side is the mean
   of one student per seed, every example scoring the share of them right on it;
4. **self-consistency**, as SCoTD's Table 3(a) has it, in two rows over the same students (paired, SC minus
   greedy, at the grid's largest N, each side the mean over ``grid_seeds`` where the profile has several):

   * **4a** it *helps the few-shot SCoTD student* (all sampled CoTs, unfiltered; the paper: CSQA +4.5, OBQA
     +13.4): holds when the paired 95% interval is above 0; an interval that contains 0 reads
     ``not shown at this scale`` under the small profiles (smoke, demo), ``no`` at the paper's scale;
   * **4b** it *does not change the full-setting student* (the paper: -0.2 / +0.0 / -2.2): holds when the
     interval contains 0 and its low end is above -3 points.

Paired intervals come from :func:`scotd_kit.stats.paired_bootstrap` over the same evaluation examples.
The runs are the notebooks' own (the same run store): computing claims after the notebooks trains nothing new
(it may decode: claim 4's self-consistency over the grid's other seeds).
"""
from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from .stats import paired_bootstrap

COLUMNS = ("claim", "ours", "ci_low", "ci_high", "n", "holds", "detail")
NOT_SHOWN = "not shown at this scale"      # a claim's interval holds 0 where the profile is too small to tell
SMALL_PROFILES = ("smoke", "demo")
NO_CHANGE_MARGIN = 3.0                      # claim 4b: "no change" allows a loss of at most this many points


@dataclass
class Claim:
    claim: str
    ours: float | None          # percentage points (an accuracy, or a difference of two)
    ci_low: float | None
    ci_high: float | None
    n: int | None
    holds: bool | str | None    # None: reported, not tested (or could not be made); NOT_SHOWN: see 4a
    detail: str = ""            # what was compared, or why the claim could not be checked


def paired_claim(name: str, correct_a: Sequence[float], correct_b: Sequence[float], *, rule: str = "ci",
                 detail: str = "", seed: int = 0, small: bool = False) -> Claim:
    """``a`` minus ``b`` with its paired 95% interval, judged by ``rule``:

    * ``"ci"``: holds when the interval is above 0 (with ``small``: an interval that contains 0 is
      :data:`NOT_SHOWN`, not a "no"; one below 0 is a "no");
    * ``"no_change"``: holds when the interval contains 0 and its low end is above -NO_CHANGE_MARGIN points.
    """
    d = paired_bootstrap(correct_a, correct_b, seed=seed)
    if rule == "ci":
        holds = True if d.ci_low > 0 else (NOT_SHOWN if small and d.ci_high >= 0 else False)
    elif rule == "no_change":
        holds = d.ci_low <= 0 <= d.ci_high and 100 * d.ci_low > -NO_CHANGE_MARGIN
    else:
        raise ValueError(f"rule must be 'ci' or 'no_change', not {rule!r}")
    text = f"{100 * d.accuracy_a:.1f} vs {100 * d.accuracy_b:.1f}" + (f"; {detail}" if detail else "")
    return Claim(name, 100 * d.diff, 100 * d.ci_low, 100 * d.ci_high, d.n, holds, text)


def above_chance_claim(name: str, correct: Sequence[bool], chance: float | None, *, detail: str = "",
                       seed: int = 0) -> Claim:
    """An accuracy with its 95% bootstrap interval; holds when the interval's low end is above ``chance``."""
    from .evaluation import bootstrap_ci

    n = len(correct)
    acc = sum(bool(c) for c in correct) / n
    lo, hi = bootstrap_ci(correct, n_boot=10_000, seed=seed)
    holds = None if chance is None else lo > chance
    chance_text = "no chance level known" if chance is None else f"chance {100 * chance:.1f}"
    return Claim(name, 100 * acc, 100 * lo, 100 * hi, n, holds, f"{chance_text}" + (f"; {detail}" if detail else ""))


def unavailable(name: str, why: Exception | str) -> Claim:
    return Claim(name, None, None, None, None, None, f"could not be made: {why}")


def paired_lists(a: dict[str, float], b: dict[str, float]) -> tuple[list[float], list[float]]:
    ids = [i for i in a if i in b]
    if len(ids) != len(a) or len(ids) != len(b):
        raise ValueError(f"paired comparison over different examples: {len(a)} vs {len(b)} ({len(ids)} shared)")
    return [a[i] for i in ids], [b[i] for i in ids]


def golds_of(records_path: str | Path) -> list[str]:
    from .io import read_jsonl

    return [str(r["gold"]) for _, r in read_jsonl(records_path)]


def compute(p, paper_task: str | None = None) -> list[Claim]:
    """The four claims on ``paper_task`` (default: the profile's first) from profile ``p``'s runs (made if
    missing), through the same stages the notebooks chain (:mod:`scotd_kit.stages`)."""
    import functools

    from . import evaluation, stages
    from .evaluation import correct_by_id
    from .tasks import get_task

    paper_task = paper_task or stages.tasks(p)[0]
    spec = get_task(p.task(paper_task))
    teacher = stages.teacher_spec(p, paper_task)
    n_max = max(p.n_grid)
    out: list[Claim] = []

    def run(name, fn):
        try:
            out.append(fn())
        except Exception as e:  # a claim that cannot be made is reported, never hidden
            out.append(unavailable(name, f"{type(e).__name__}: {e}"))

    def made(result):
        """A stage's result, or its reason for not being made raised (``run`` reports it)."""
        if isinstance(result, Exception):
            raise result
        return result

    @functools.cache
    def sampled():
        return stages.corpus(p, paper_task, n=max(p.n_cots, n_max))

    def student(training: str, setting: str = "full", n: int | None = None, seed: int | None = None):
        records = None if (training, setting) == ("label_only", "full") else sampled()
        train = stages.instances(p, paper_task, records, setting=setting, training=training, n=n)
        return made(stages.student(p, train, seed=seed))

    def acc_ids(model, decoding="greedy", **kw):
        r = made(stages.evaluate(p, model, paper_task, decoding=decoding, **kw))
        return correct_by_id(r["records_path"])

    demos = stages.exemplars(p, paper_task)

    def teacher_claim(decoding, name):
        r = made(stages.evaluate(p, teacher, paper_task, decoding=decoding, demos=demos))
        chance = evaluation.chance_of(spec, golds_of(r["records_path"]))
        how = "" if spec.labels else " (chance: the best constant answer)"
        return above_chance_claim(name, list(correct_by_id(r["records_path"]).values()), chance,
                                  detail=f"teacher {teacher}, {len(demos)} shots{how}")

    for decoding, label in (("greedy", "greedy"), ("self_consistency", f"self-consistency k={p.sc_k}")):
        name = f"1. teacher few-shot CoT accuracy ({label}) above chance"
        run(name, lambda d=decoding, n=name: teacher_claim(d, n))

    def yield_claim():
        s = made(stages.filter_stats(p, sampled()))
        kept = 1 - s["dropped_share"]
        return Claim("1. teacher correct-CoT yield (share of sampled CoTs kept by the filter)", 100 * kept, None,
                     None, s["samples"], None, f"{s['instances'] - s['instances_dropped']} of {s['instances']} "
                                               f"instances keep at least one CoT; N={p.n_cots}")
    run("1. teacher correct-CoT yield", yield_claim)

    run("2. SCoTD student beats label-only (full setting, greedy)", lambda: paired_claim(
        "2. SCoTD student beats label-only (full setting, greedy)",
        *paired_lists(acc_ids(student("scotd", n=n_max)), acc_ids(student("label_only"))),
        detail=f"SCoTD N={n_max} vs label-only, same student {p.student}"))
    seeds = stages.grid_seeds(p)

    def grid_point(n, decoding="greedy", setting="full"):
        # Fig. 2's point: the mean over the grid's student seeds where the profile has several
        results = [stages.evaluate(p, student("scotd", setting, n, seed), paper_task, decoding=decoding)
                   for seed in seeds]
        r = made(stages.seed_mean(results, seeds, seed=p.seed))
        return r["scores_by_id"] if len(seeds) > 1 else correct_by_id(r["records_path"])

    over = f"mean of {len(seeds)} students (seeds {', '.join(map(str, seeds))}); " if len(seeds) > 1 else ""
    run("3. N CoTs per instance beat 1", lambda: paired_claim(
        f"3. N={n_max} CoTs per instance beat N=1 (full setting, greedy)",
        *paired_lists(grid_point(n_max), grid_point(1)), detail=f"{over}N={n_max} vs N=1"))
    sc = f"N={n_max}, k={p.sc_k}, T={p.sc_temperature}; {paper_sc_effect()}"
    name_a = "4a. self-consistency helps the few-shot SCoTD student (unfiltered CoTs)"
    run(name_a, lambda: paired_claim(
        name_a, *paired_lists(grid_point(n_max, "self_consistency", "few_shot"), grid_point(n_max, "greedy", "few_shot")),
        rule="ci", small=p.name in SMALL_PROFILES, detail=f"{over}SC minus greedy, {sc}"))
    name_b = "4b. self-consistency does not change the full-setting SCoTD student"
    run(name_b, lambda: paired_claim(
        name_b, *paired_lists(grid_point(n_max, "self_consistency"), grid_point(n_max)), rule="no_change",
        detail=f"{over}SC minus greedy, interval within [-{NO_CHANGE_MARGIN:g}, +) and holding 0; {sc}"))
    return out


def paper_sc_effect() -> str:
    """SCoTD's own Table 3(a) as SC minus greedy, to read claim 4 against: the paper finds the gain for
    few-shot students, not for full-setting ones."""
    from . import paper

    def diffs(setting):
        yes, no = paper.TABLE_3A[(setting, "yes")], paper.TABLE_3A[(setting, "no")]
        return " / ".join(f"{yes[t] - no[t]:+.1f}" for t in paper.TASKS)

    return (f"paper (Table 3(a), SC minus greedy, {' / '.join(paper.TASKS)}): full {diffs('full')}, "
            f"few-shot {diffs('few-shot')}")


def verdict(holds: bool | str | None) -> str:
    """``yes`` / ``no`` / :data:`NOT_SHOWN` / empty (reported, not tested)."""
    if holds is None:
        return ""
    return holds if isinstance(holds, str) else ("yes" if holds else "no")


def to_csv(claims: Sequence[Claim]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for c in claims:
        row = asdict(c)
        for k in ("ours", "ci_low", "ci_high"):
            row[k] = "" if row[k] is None else f"{row[k]:.1f}"
        row["holds"] = verdict(c.holds)
        row["n"] = "" if c.n is None else c.n
        w.writerow(row)
    return buf.getvalue()


def markdown(claims: Sequence[Claim]) -> str:
    """The claims table for the top of ``summary.md``."""
    def f(v):
        return "" if v is None else f"{v:.1f}"
    lines = ["| claim | ours | 95% CI | n | holds | detail |", "|---|---|---|---|---|---|"]
    for c in claims:
        ci = "" if c.ci_low is None else f"[{f(c.ci_low)}, {f(c.ci_high)}]"
        holds = f"**{verdict(c.holds)}**" if c.holds is not None else ""
        lines.append(f"| {c.claim} | {f(c.ours)} | {ci} | {'' if c.n is None else c.n} | {holds} | "
                     f"{c.detail.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def read_csv(path: str | Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write(p, out_dir: str | Path, paper_task: str | None = None) -> list[Claim]:
    """Compute the claims of profile ``p`` and write ``claims.csv`` (and ``claims.md``) under ``out_dir``."""
    from .io import atomic_write_text

    claims = compute(p, paper_task)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "claims.csv", to_csv(claims))
    atomic_write_text(out / "claims.md", markdown(claims))
    return claims
