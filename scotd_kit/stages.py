"""SCoTD's pipeline as stage functions over one run store: a notebook chains them in the paper's order.

::

    p = stages.settings("demo")                                  # the profile, with any overrides
    corpus = stages.corpus(p, "commonsense_qa")                  # the teacher's N CoTs per instance
    train = stages.instances(p, "commonsense_qa", corpus)        # the filter: correct CoTs only
    student = stages.student(p, train)                           # fine-tuning
    result = stages.evaluate(p, student, "commonsense_qa")       # decoding and scoring

Each stage's result is a run under ``<runs>/<profile>/<kind>/<key>/`` (:mod:`scotd_kit.runs`): the key is
the fingerprint of a plain spec of everything that shapes the result (content, never a path), stored beside
it in ``spec.json``; asking again for a run that exists reads it back.  Whatever cannot be made under a
profile's settings (a greedy CoT from a T=1 release, a filter that left nothing) is returned as the reason
(:class:`NotAvailable`, :class:`~scotd_kit.curation.EmptySelectionError`) and passed on by every later
stage, so a notebook's cell shows why instead of the notebook stopping.

Notebooks that need the same student (the full-setting SCoTD student serves Table 2(b), 3(a), Fig. 2,
Fig. 3's 100% point and Fig. 4) reuse its run; rerunning a notebook whose runs exist only re-renders.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

from . import curation
from .io import write_json
from .paths import runs_root
from .profiles import Profile, get_profile
from .runs import SPEC_FILE, checked, examples_hash, fingerprint, instances_hash, model_ref, seal, sealed, write_spec
from .tasks import get_task, load_split

SETTINGS = ("few_shot", "full")
TRAININGS = ("label_only", "greedy_cot", "scotd")
STUDENT_RUN_FILE = "lab.json"   # the run's record beside fine_tune's own result.json (never the same file)


class NotAvailable(RuntimeError):
    """A run the kit cannot make under these settings; the message says why and what would make it."""


UNAVAILABLE = (NotAvailable, curation.EmptySelectionError)


class Corpus(list):
    """A teacher's records for one task's training instances, with the run they are stored in."""

    def __init__(self, records, *, key: str, run_dir: Path, greedy: bool, n: int):
        super().__init__(records)
        self.key, self.run_dir, self.greedy, self.n = key, run_dir, greedy, n   # n: CoTs per instance asked for


class Instances(list):
    """Training instances (``{"id", "input", "targets"}``) with the tasks they come from, the corpus run each
    task's instances were built from (None where gold labels alone made them) and how they were chosen
    (``how``: setting, training, n, fraction, strategy, demonstrations; stored with the student)."""

    def __init__(self, items, *, tasks: tuple, corpora: tuple, how: dict):
        super().__init__(items)
        self.tasks, self.corpora, self.how = tasks, corpora, how


def _passes_unavailable(fn):
    """A stage given the reason an earlier stage could not run returns that reason; one that cannot run
    itself returns its own (an :data:`UNAVAILABLE` error), never raising it into the notebook."""

    @functools.wraps(fn)
    def stage(*args, **kwargs):
        for a in args:
            if isinstance(a, Exception):
                return a
        try:
            return fn(*args, **kwargs)
        except UNAVAILABLE as e:
            return e

    return stage


# --- settings and data --------------------------------------------------------------------------------

def settings(profile: str | Profile = "demo", notebook: str | None = None, **overrides) -> Profile:
    """The profile a notebook runs with: its own settings for ``notebook`` first, the caller's overrides win."""
    base = get_profile(profile)
    return get_profile(base, **{**base.for_notebook(notebook), **overrides})


def runs_dir(p: Profile) -> Path:
    """Where this profile's runs are stored (``SCOTD_RUNS_DIR`` or the cache's ``runs``, one folder per profile)."""
    return runs_root() / p.name


def tasks(p: Profile, chosen=None) -> list[str]:
    """The paper tasks a notebook covers: ``chosen`` if given, else the profile's."""
    return list(dict.fromkeys(chosen or p.tasks))


def eval_split(p: Profile, paper_task: str) -> str:
    """The split results are reported on: the profile's if it names one, else the task spec's."""
    return p.eval_split or get_task(p.task(paper_task)).eval_split


def examples(p: Profile, paper_task: str, split: str | None = None) -> list:
    """Examples of the task this profile runs for ``paper_task`` (limited by the profile)."""
    split = split or eval_split(p, paper_task)
    task = get_task(p.task(paper_task))
    limit = p.limit(task.name, "train" if split == p.train_split else "eval")
    return load_split(task, p.split(task.name, split), limit=limit, seed=p.seed)


def chance(p: Profile, paper_task: str, split: str | None = None) -> float | None:
    """Guessing's accuracy in percent on the examples results are reported on: 1 / |labels| for a
    closed-set task, the best constant answer's share for numbers (None without examples)."""
    from .evaluation import chance_of

    golds = [str(e.label) for e in examples(p, paper_task, split)]
    c = chance_of(get_task(p.task(paper_task)), golds)
    return None if c is None else 100 * c


def exemplars(p: Profile, paper_task: str) -> list:
    """The few-shot exemplars of the task run (the profile may replace a task's own)."""
    from .exemplars import get_exemplars

    task = p.task(paper_task)
    own = p.exemplars.get(paper_task) or p.exemplars.get(task)
    return [tuple(d) for d in own] if own else get_exemplars(task)


def grid_seeds(p: Profile) -> tuple:
    """The student seeds each point of the CoTs-per-instance grid averages (Fig. 2, claim 3)."""
    return tuple(p.grid_seeds) or (p.seed,)


# --- teacher: the corpus ----------------------------------------------------------------------------------

def teacher_spec(p: Profile, paper_task: str, *, greedy: bool = False) -> str:
    """The teacher of ``paper_task``'s corpus: ``teachers[task]`` or ``teacher``; a released-corpora
    directory is resolved to the task's file.  Greedy CoTs never come from a T=1 release."""
    from .teachers.replay import released_file

    task = p.task(paper_task)
    spec = p.teachers.get(paper_task) or p.teachers.get(task) or p.teacher
    if greedy:
        if p.greedy_teacher:
            spec = p.greedy_teacher
        elif spec.startswith("replay:"):
            raise NotAvailable("SCoTD's released corpora hold T=1 samples only, no greedy CoT; name a teacher "
                               "for greedy CoTs (-p greedy_teacher=MODEL) to make this cell")
    if spec.startswith("replay:"):
        try:
            spec = "replay:" + str(released_file(spec.split(":", 1)[1], task))
        except FileNotFoundError as e:
            raise NotAvailable(str(e)) from None
    return spec


_REPLAYS: dict = {}     # a released corpus is parsed once per process


def _teacher(p: Profile, spec: str):
    from .teachers import teacher_from_spec

    if spec.startswith("replay:"):
        if spec not in _REPLAYS:
            _REPLAYS[spec] = teacher_from_spec(spec)
        return _REPLAYS[spec]
    return teacher_from_spec(spec, dtype=p.teacher_dtype)


def _corpus_plan(p: Profile, paper_task: str, greedy: bool):
    """(teacher, exemplars, sampling settings, corpus spec) of ``paper_task``'s corpus."""
    from .exemplars import exemplars_hash
    from .teachers import SamplingSettings

    spec = teacher_spec(p, paper_task, greedy=greedy)
    if spec.startswith("replay:") and p.teacher_temperature != 1.0:
        raise NotAvailable(f"SCoTD's released corpora were sampled at T=1, not teacher_temperature="
                           f"{p.teacher_temperature}")
    teacher = _teacher(p, spec)
    demos = exemplars(p, paper_task)
    sampling = SamplingSettings(temperature=0.0 if greedy else p.teacher_temperature,
                                max_new_tokens=p.teacher_max_new_tokens, seed=p.seed)
    run_spec = dict(teacher=teacher.id, task=p.task(paper_task), settings=sampling.as_dict(),
                    exemplars=exemplars_hash(demos))
    return teacher, demos, sampling, run_spec


def _check_release_holds(teacher, train: list, n: int) -> None:
    available = getattr(teacher, "available", None)
    if available is None:
        return
    have = min((available(int(e.meta.get("index", i))) for i, e in enumerate(train)), default=0)
    if have < n:
        raise NotAvailable(f"{teacher.id} holds {have} CoTs for some instance; N={n} cannot be made from it "
                           f"(sample more from a teacher you name: -p teachers=...)")


@_passes_unavailable
def corpus(p: Profile, paper_task: str, *, n: int | None = None, greedy: bool = False) -> Corpus:
    """The teacher's CoTs for the training instances: ``n`` sampled per instance (default: the profile's
    ``n_cots``), or one greedy per instance.

    The run is keyed by the teacher, its sampling settings, the exemplars and the task, so a corpus asked
    for under other settings never mixes with an old one; it is resumable and topped up (N=30 after N=5
    samples only 25 more).  Each record carries its verdict, judged against today's gold.
    """
    from .sampling import judged, sample_corpus
    from .teachers import LocalTeacher, VLLMTeacher

    n = 1 if greedy else (n or p.n_cots)
    teacher, demos, sampling, run_spec = _corpus_plan(p, paper_task, greedy)
    task = p.task(paper_task)
    train = examples(p, paper_task, p.train_split)
    _check_release_holds(teacher, train, n)
    if isinstance(teacher, (LocalTeacher, VLLMTeacher)):
        release()       # a teacher that loads weights in this process may need the memory a model held
    run_dir = _corpus_dir(p, run_spec)
    stored = sample_corpus(task, train, teacher, n=n, corpus_path=run_dir / f"{task}.jsonl",
                           temperature=sampling.temperature, max_new_tokens=p.teacher_max_new_tokens, seed=p.seed,
                           batch_size=p.teacher_batch_size, demos=demos, progress=False,
                           greedy_path=None if greedy else _greedy_alongside(p, paper_task, teacher))
    by_id = {str(e.id): e for e in train}
    spec = get_task(task)
    # a record's verdict is judged against today's gold: a corrected answer key changes which CoTs are kept
    records = [judged(spec, r, by_id[str(r["instance_id"])]) for r in stored.records()
               if r["sample_index"] < n and str(r["instance_id"]) in by_id and r["teacher"] == teacher.id]
    return Corpus(records, key=run_dir.name, run_dir=run_dir, greedy=greedy, n=n)


def _corpus_dir(p: Profile, run_spec: dict) -> Path:
    """The run directory of a corpus, its spec written beside it."""
    run_dir = runs_dir(p) / "corpora" / fingerprint("corpus", run_spec)
    if not (run_dir / SPEC_FILE).exists():
        write_spec(run_dir, "corpus", run_spec)
    return run_dir


def _greedy_alongside(p: Profile, paper_task: str, teacher) -> Path | None:
    """Where the sampled corpus's teacher writes Table 2(b)'s greedy CoTs as it samples (the same teacher
    decodes both; a teacher that cannot, or another greedy teacher, leaves them to their own run). Only for the
    tasks Table 2(b) covers (the profile's): another task's corpus (Fig. 5's IMDB) needs no greedy CoTs."""
    if paper_task not in p.tasks or not getattr(teacher, "greedy_alongside", False):
        return None
    try:
        greedy_teacher, _, _, run_spec = _corpus_plan(p, paper_task, greedy=True)
    except NotAvailable:
        return None
    if greedy_teacher.id != teacher.id:
        return None
    return _corpus_dir(p, run_spec) / f"{p.task(paper_task)}.jsonl"


@_passes_unavailable
def filter_stats(p: Profile, records: Corpus, n: int | None = None) -> dict:
    """What SCoTD's correct-only filter drops from the first ``n`` (default: the profile's N) CoTs per
    instance (§3.1: 40.4 / 45.0 / 34.2 %), with the corpus run it counted (``corpus_run``)."""
    n = n or p.n_cots
    return {**curation.filter_stats(curation.first_n_per_instance(records, n)), "corpus_run": str(records.run_dir)}


# --- the filter: training instances ------------------------------------------------------------------------

def instances(p: Profile, paper_task: str, records: Corpus | None = None, *, setting: str = "full",
              training: str = "scotd", n: int | None = None, fraction: float = 1.0, strategy: str | None = None,
              k: int | None = None, demonstrations: bool = False) -> Instances:
    """Training instances for one cell of the papers' tables (see :mod:`scotd_kit.curation`) from ``records``:
    the sampled corpus for SCoTD and few-shot label-only training, the greedy one for greedy-CoT training,
    none for full-setting label-only training (gold labels alone).

    ``n``: the first ``n`` sampled CoTs per instance (default: the profile's N).  ``fraction``: a share of
    D_train's instances taken *before* the teacher's CoTs are filtered, the same instances for every line of
    Fig. 3.  ``strategy``: Fig. 7 (full setting only): filter to the correct CoTs, then downsample to ``k``
    per instance.  ``demonstrations``: MetaICL-style inputs (Fig. 6), the task's exemplars in front of every
    question, with their rationales for CoT training and without for label-only training.
    """
    if setting not in SETTINGS or training not in TRAININGS:
        raise ValueError(f"setting must be one of {SETTINGS} and training one of {TRAININGS}")
    if strategy is not None and (setting != "full" or training != "scotd"):
        raise ValueError("Fig. 7's downsampling chooses among correct CoTs: setting='full', training='scotd'")
    gold_only = training == "label_only" and setting == "full"     # gold labels alone: no corpus needed
    return _instances(p, paper_task, None if gold_only else records, setting=setting, training=training,
                      n=n or p.n_cots, fraction=fraction, strategy=strategy, k=k, demonstrations=demonstrations)


@_passes_unavailable
def _instances(p: Profile, paper_task: str, records: Corpus | None, *, setting: str, training: str, n: int,
               fraction: float, strategy: str | None, k: int | None, demonstrations: bool) -> Instances:
    gold_only = records is None
    if not gold_only:
        if records.greedy != (training == "greedy_cot"):
            raise ValueError(f"{training} training needs the {'greedy' if training == 'greedy_cot' else 'sampled'} "
                             f"corpus, not the {'greedy' if records.greedy else 'sampled'} one")
        if not records.greedy and n > records.n:
            raise ValueError(f"N={n} CoTs per instance from a corpus of {records.n}: ask stages.corpus(..., n={n})")
    train = examples(p, paper_task, p.train_split)
    if fraction < 1:
        train = curation.subset_instances(train, fraction, seed=p.seed)
    ids = {str(e.id) for e in train}
    kept = [] if gold_only else [r for r in records if str(r["instance_id"]) in ids and r["sample_index"] < n]
    if gold_only:
        items = curation.label_only_instances(train)
    elif training == "label_only" and setting == "few_shot":
        # few-shot: no gold labels beyond the prompt's; the teacher's answers are the labels
        items = curation.teacher_label_instances(kept, train)
    elif training == "greedy_cot":
        items = curation.greedy_cot_instances(kept, train, setting=setting)
    else:
        chosen = curation.first_n_per_instance(kept, n)
        if strategy is not None:
            chosen = curation.fig7_records(chosen, strategy, k=k or p.downsample_k, seed=p.seed)
        items = curation.build_instances(chosen, train, setting=setting)
    if demonstrations:
        from .prompts import few_shot_block

        prefix = few_shot_block([(x, r if training != "label_only" else "", y) for x, r, y in exemplars(p, paper_task)])
        items = [{**item, "input": prefix + item["input"]} for item in items]
    how = dict(setting=setting, training=training, n=n, fraction=fraction, strategy=strategy,
               demonstrations=demonstrations)
    return Instances(items, tasks=(paper_task,), corpora=(None if gold_only else records.key,), how=how)


def multitask(parts: list) -> Instances:
    """Multitask training data (Fig. 6): every task's instances in order, all chosen the same way; a part
    that could not be made is returned as its reason."""
    failed = [part for part in parts if isinstance(part, Exception)]
    if failed:
        return failed[0]
    if len({json.dumps(part.how, sort_keys=True) for part in parts}) > 1:
        raise ValueError(f"multitask instances are chosen one way for every task: {[part.how for part in parts]}")
    return Instances([item for part in parts for item in part], tasks=sum((part.tasks for part in parts), ()),
                     corpora=sum((part.corpora for part in parts), ()), how=parts[0].how)


# --- training: the student ----------------------------------------------------------------------------------

def train_config(p: Profile, **overrides):
    """The profile's ``TrainConfig``: its recipe with the profile's own TrainConfig settings on top."""
    from .training import TrainConfig

    return TrainConfig.recipe(p.train_recipe, **{**p.train_overrides(), **overrides})


@_passes_unavailable
def student(p: Profile, train: Instances, *, base: str | None = None, seed: int | None = None) -> Path:
    """A fine-tuned student directory, trained once per distinct (instances, model, config, seed): ``base``
    (default: the profile's student) fine-tuned on ``train`` with the profile's method and recipe; ``seed``
    (default: the profile's) seeds the training run (a random student's initialisation, batch order)."""
    from .training import fine_tune

    config = train_config(p)
    base = base or p.student
    seed = p.seed if seed is None else seed
    root = runs_dir(p)
    key = dict(student=model_ref(base, root), method=p.method, seed=seed, config=config.shaping_settings(),
               select_checkpoint=p.select_checkpoint, data=instances_hash(train), corpora=list(train.corpora))
    out = root / "students" / fingerprint("student", key)
    if checked(out):                # sealed and intact (a corrupt run is set aside and trained again)
        return out / "final"        # fine_tune's model is always there: no stored path to go stale
    release()                       # nothing else in memory while a student trains
    select = _checkpoint_selection(p, train.tasks[0]) if p.select_checkpoint else {}
    result = fine_tune(base, list(train), output_dir=out, method=p.method, config=config, seed=seed, **select)
    _free_memory()
    # every evaluated checkpoint's score stays with the run; the reported model is the best one when selecting
    checkpoints = [{"step": h["step"], "accuracy": h.get("eval_accuracy")} for h in result.eval_history]
    write_spec(out, "student", key)
    cell = dict(tasks=[p.task(t) for t in train.tasks], **train.how, seed=seed)
    write_json(out / STUDENT_RUN_FILE, {"model_dir": "final", "key": key, "cell": cell, "instances": len(train),
                                        "profile": p.name, "checkpoints": checkpoints,
                                        "best_checkpoint": result.best_checkpoint, "best_accuracy": result.best_metric})
    seal(out, SPEC_FILE, STUDENT_RUN_FILE, "final")
    return out / "final"


def _checkpoint_selection(p: Profile, paper_task: str) -> dict:
    """``fine_tune``'s arguments for SCoTD's checkpoint selection: greedy accuracy on the split results are
    reported on (as SCoTD selected; fine_tune warns that this is optimistic), on TrainConfig's schedule."""
    from .evaluation import evaluate as run_eval

    split = eval_split(p, paper_task)
    reported = examples(p, paper_task, split)

    def eval_fn(model, tokenizer):
        r = run_eval(model, tokenizer, p.task(paper_task), reported, decoding="greedy",
                     max_new_tokens=p.student_max_new_tokens, seed=p.seed, progress=False)
        return {"accuracy": r.summary()["accuracy"]}

    return dict(eval_fn=eval_fn, eval_split=split, reported_split=split)


# --- decoding: the evaluation ------------------------------------------------------------------------------

@_passes_unavailable
def evaluate(p: Profile, model: str | Path, paper_task: str, *, decoding: str = "greedy", split: str | None = None,
             demos: list | None = None, cot: bool = True) -> dict:
    """Accuracy summary (strict and flexible, 95% CI, malformed share) of a student or a model name, with
    ``records_path`` (every generated text), ``run_dir`` and the runs behind it (``student_run``,
    ``corpus_run``).

    ``decoding``: "greedy" or "self_consistency" (the profile's ``sc_k`` samples at ``sc_temperature``).
    ``demos`` turns it into a few-shot prompting baseline (Table 2(a)) or MetaICL-style testing (Fig. 6);
    ``cot=False`` drops the demos' rationales.
    """
    from . import evaluation
    from .exemplars import exemplars_hash
    from .io import read_jsonl
    from .training import placement_of

    task = p.task(paper_task)
    split = split or eval_split(p, paper_task)
    sc = decoding == "self_consistency"
    # the profile's teacher is evaluated in the precision it samples in (teacher_dtype); the precision and
    # device the hardware rule resolves are part of the key (they change the generated text)
    dtype = p.teacher_dtype if str(model) == p.teacher else None
    where = placement_of(model, dtype)
    scored_examples = examples(p, paper_task, split)
    root = runs_dir(p)
    # the model by its place in the run store (never an absolute path) and the examples by their content
    ref = model_ref(model, root)

    def key_of(decoding: str) -> dict:
        sc = decoding == "self_consistency"
        return dict(model=ref, examples=examples_hash(scored_examples), task=task,
                    split=p.split(task, split), decoding=decoding,
                    k=p.sc_k if sc else 1, t=p.sc_temperature if sc else None, max_new_tokens=p.student_max_new_tokens,
                    limit=p.limit(task, "eval"), seed=p.seed, demos=exemplars_hash(demos) if demos else None, cot=cot,
                    # few-shot prompts end at a token boundary (generate(space_boundary=True)): another text
                    **({"space_boundary": True} if demos else {}), precision=where.precision, device=where.device)

    key = key_of(decoding)
    out = root / "evals" / fingerprint("eval", key)
    scored = out / f"summary-{evaluation.SCORER_VERSION}.json"
    records_path = out / "records.jsonl"
    extra = {"records_path": str(records_path), "run_dir": str(out), **_runs_behind(root, ref)}
    if checked(out):            # sealed and intact (a corrupt run is set aside and made again)
        if scored.exists():
            return {**json.loads(scored.read_text()), **extra}
        # generated before under another scorer: re-score the stored texts
        stored = json.loads((out / "summary.json").read_text())
        result = evaluation.rescore(task, scored_examples, [r for _, r in read_jsonl(records_path)],
                                    stored["decoding"], seed=p.seed)
    else:
        write_spec(out, "eval", key)
        # the greedy evaluation of the same model and prompts comes with the samples when it has no texts of its
        # own yet (Table 2(a) asks for both): its own run, keyed and sealed as a greedy call makes it
        greedy_key = key_of("greedy") if sc else None
        greedy_out = root / "evals" / fingerprint("eval", greedy_key) if sc else None
        alongside = greedy_out is not None and not sealed(greedy_out) and not any(
            (greedy_out / name).exists() for name in ("records.jsonl", evaluation.PROGRESS_FILE))
        if alongside:
            write_spec(greedy_out, "eval", greedy_key)
        model_obj, tok = _load(model, dtype)
        result = evaluation.evaluate(model_obj, tok, task, scored_examples, decoding=decoding, k=p.sc_k,
                                     temperature=p.sc_temperature, max_new_tokens=p.student_max_new_tokens,
                                     demos=demos, cot=cot, seed=p.seed, out_dir=out, progress=False,
                                     greedy_dir=greedy_out if alongside else None)
        if alongside:
            _seal_eval(greedy_out, json.loads((greedy_out / "summary.json").read_text()))
    _seal_eval(out, result.summary())
    return {**result.summary(), **extra}


def _seal_eval(out: Path, summary: dict) -> None:
    """An evaluation run's summary under today's scorer, and the run sealed."""
    from . import evaluation

    scored = out / f"summary-{evaluation.SCORER_VERSION}.json"
    write_json(scored, summary)
    seal(out, SPEC_FILE, "records.jsonl", "summary.json", scored.name)


def _runs_behind(root: Path, ref: str) -> dict:
    """The student run a model (by its :func:`~scotd_kit.runs.model_ref`) was made by and the corpus runs that
    student trained on, read from the student's ``spec.json`` (both "" for a model given by name, the corpus
    "" for gold labels alone)."""
    if not ref.startswith("run:students/"):
        return {"student_run": "", "corpus_run": ""}
    student_dir = root / Path(ref.removeprefix("run:")).parent         # students/<key>/final -> students/<key>
    stored = student_dir / SPEC_FILE
    spec = json.loads(stored.read_text(encoding="utf-8"))["spec"] if stored.exists() else {}
    corpora = [str(root / "corpora" / key) for key in dict.fromkeys(spec.get("corpora") or []) if key]
    return {"student_run": str(student_dir), "corpus_run": "; ".join(corpora)}


def seed_mean(results: list, seeds, *, seed: int = 0):
    """One accuracy summary for students that differ only by their training seed, evaluated on the same
    examples: each example scores the share of them right on it, and the interval resamples examples.

    A student trained from random weights on a few hundred instances moves by ~10 points with its seed
    alone (docs/demo_design.md, "Three seeds"), more than the effect a demo cell is there to show; the mean
    over seeds measures the recipe rather than one draw of it. ``records_paths`` and ``run_dir`` name
    every run behind the mean, ``per_seed`` their own accuracies.  One result is returned as it is; a
    result that could not be made is returned as its reason.
    """
    from .evaluation import bootstrap_ci, correct_by_id
    from .stats import seed_scores

    failed = [r for r in results if isinstance(r, Exception)]
    if failed:
        return failed[0]
    if len(results) == 1:
        return results[0]
    strict = seed_scores([correct_by_id(r["records_path"]) for r in results])
    flexible = seed_scores([correct_by_id(r["records_path"], "correct_flexible") for r in results])
    n = len(strict)
    return {**results[0], "accuracy": sum(strict.values()) / n, "accuracy_flexible": sum(flexible.values()) / n,
            "ci95": list(bootstrap_ci(list(strict.values()), seed=seed)),
            "ci95_flexible": list(bootstrap_ci(list(flexible.values()), seed=seed)),
            "malformed": sum(r["malformed"] for r in results) / len(results), "n": n, "scores_by_id": strict,
            "seeds": list(seeds), "per_seed": [r["accuracy"] for r in results],
            "records_paths": [r["records_path"] for r in results], "records_path": None,
            "run_dir": "; ".join(r["run_dir"] for r in results),
            "student_run": "; ".join(r["student_run"] for r in results if r.get("student_run")),
            "corpus_run": "; ".join(dict.fromkeys(c for r in results
                                                  for c in (r.get("corpus_run") or "").split("; ") if c))}


# --- the one model held in memory ---------------------------------------------------------------------------

_HELD: list = []        # [(model key, model, tokenizer)]: at most one model in memory between stages


def _load(model: str | Path, dtype: str | None = None):
    """The model (``dtype``: a precision request, None for the hardware rule's), placed by the rule
    (:func:`scotd_kit.models.load_model`); the model held before is released first."""
    from .training import load_any

    key = f"{model}|{dtype}" if dtype else str(model)
    if _HELD and _HELD[0][0] == key:
        return _HELD[0][1], _HELD[0][2]
    release()
    model_obj, tok = load_any(model, dtype=dtype)
    _HELD.append((key, model_obj, tok))
    return model_obj, tok


def release() -> None:
    """Drop the model held in memory and close in-process vLLM engines (before a teacher samples or a
    student trains): an engine keeps the GPU memory it reserved until it is shut down."""
    from .teachers.vllm_backend import close_all

    _HELD.clear()
    close_all()
    _free_memory()


def _free_memory() -> None:
    """Give back what released models held (the GPU's cache too)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
