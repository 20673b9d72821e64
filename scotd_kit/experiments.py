"""The pipeline steps the notebooks chain, cached by a key of everything that shapes their result.

``Lab(profile)`` is the only stateful object: it knows the profile, where runs are cached, and
which model it holds in memory (one at a time: a teacher or a student is released before the
next one loads or trains).  Each step is one call with plain arguments; its result is stored
under ``<runs>/<profile>/<kind>/<key>/`` where the key is a hash of

* corpora: the teacher's id (a replayed file's content hash included), its sampling settings,
  the exemplars and the task;
* students: the base model, the method, the whole ``TrainConfig`` (its shaping settings), the seed
  and a hash of the training instances themselves (so the corpus, the filter, the downsampling
  and the fraction are all in it);
* evaluations: the model (a student's key is in its path), the task, split, limit, decoding,
  demonstrations and seed; the summary is stored per scorer version, and a scorer change
  re-scores the stored generations without generating again.

Notebooks that need the same student (the full-SCoTD N=30 student serves Table 2(b), 3(a), Fig. 2,
Fig. 3's 100% point and Fig. 4) reuse it; rerunning a notebook whose runs exist only re-renders.
"""
from __future__ import annotations

import gc
import json
import os
from pathlib import Path

from .io import write_json
from .paths import runs_root
from .profiles import Profile, differences_from_paper, get_profile
from .runs import SPEC_FILE, checked, examples_hash, fingerprint, instances_hash, model_ref, seal, write_spec
from .tasks import get_task, load_split

SETTINGS = ("few_shot", "full")
TRAININGS = ("label_only", "greedy_cot", "scotd")
STUDENT_RUN_FILE = "lab.json"   # the Lab's record beside fine_tune's own result.json (never the same file)


class NotAvailable(RuntimeError):
    """A cell the kit cannot make under these settings; the message says why and what would make it."""


def device() -> str:
    """The device the hardware rule places models on (:mod:`scotd_kit.hardware`)."""
    from .hardware import machine

    return machine().device


def free_memory() -> None:
    """Give back what released models held (the GPU's cache too)."""
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class Lab:
    def __init__(self, profile: str | Profile = "demo", runs_dir: str | Path | None = None,
                 notebook: str | None = None, **overrides):
        # ``notebook``: the profile's own settings for that notebook apply first, the caller's overrides win
        base = get_profile(profile)
        self.profile = get_profile(base, **{**base.for_notebook(notebook), **overrides})
        self.root = Path(runs_dir or runs_root()) / self.profile.name
        self._held: tuple | None = None      # (model key, model, tokenizer): at most one in memory
        self._replays: dict = {}

    # --- data --------------------------------------------------------------------------------

    def tasks(self, tasks=None) -> list[str]:
        """The paper tasks a notebook covers: ``tasks`` if given, else the profile's."""
        return list(dict.fromkeys(tasks or self.profile.tasks))

    def eval_split(self, paper_task: str) -> str:
        """The split results are reported on: the profile's if it names one, else the task spec's."""
        return self.profile.eval_split or get_task(self.profile.task(paper_task)).eval_split

    def examples(self, paper_task: str, split: str | None = None) -> list:
        """Examples of the task this profile runs for ``paper_task`` (limited by the profile)."""
        p = self.profile
        split = split or self.eval_split(paper_task)
        task = get_task(p.task(paper_task))
        limit = p.limit(task.name, "train" if split == p.train_split else "eval")
        return load_split(task, p.split(task.name, split), limit=limit, seed=p.seed)

    def chance(self, paper_task: str, split: str | None = None) -> float | None:
        """Guessing's accuracy in percent on the examples results are reported on: 1 / |labels| for a
        closed-set task, the best constant answer's share for numbers (None without examples)."""
        from .claims import chance_of

        golds = [str(e.label) for e in self.examples(paper_task, split)]
        c = chance_of(get_task(self.profile.task(paper_task)), golds)
        return None if c is None else 100 * c

    def exemplars(self, paper_task: str) -> list:
        """The few-shot exemplars of the task run (the profile may replace a task's own)."""
        from .exemplars import get_exemplars

        task = self.profile.task(paper_task)
        own = self.profile.exemplars.get(paper_task) or self.profile.exemplars.get(task)
        return [tuple(d) for d in own] if own else get_exemplars(task)

    # --- teacher -----------------------------------------------------------------------------

    def teacher_spec(self, paper_task: str, *, greedy: bool = False) -> str:
        """The teacher of ``paper_task``'s corpus: ``teachers[task]`` or ``teacher``; a released-corpora
        directory is resolved to the task's file.  Greedy CoTs never come from a T=1 release."""
        from .teachers.replay import released_file

        p = self.profile
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

    def _teacher(self, spec: str):
        kind, _, rest = spec.partition(":")
        if kind == "replay":
            if spec not in self._replays:
                from .teachers import make_teacher

                self._replays[spec] = make_teacher("replay", rest)
            return self._replays[spec]
        return teacher_from_spec(spec, dtype=self.profile.teacher_dtype)

    def corpus(self, paper_task: str, *, n: int | None = None, greedy: bool = False) -> list[dict]:
        """The teacher's CoTs for the training instances: N sampled or one greedy per instance.

        The corpus file is keyed by the teacher, its sampling settings and the exemplars, so a corpus
        asked for under other settings never mixes with an old one; it is resumable and topped up
        (N=30 after N=5 samples only 25 more).
        """
        from .sampling import judged, sample_corpus

        p = self.profile
        task = p.task(paper_task)
        n = 1 if greedy else (n or p.n_cots)
        teacher, demos, settings, key = self._corpus_plan(paper_task, greedy)
        temperature = settings.temperature
        examples = self.examples(paper_task, p.train_split)
        self._check_release_holds(teacher, examples, n)
        if _holds_weights(teacher):
            self.release()      # the teacher may need the memory a student held
        run_dir = self.root / "corpora" / key
        if not (run_dir / "spec.json").exists():
            write_spec(run_dir, "corpus", self._corpus_spec(paper_task, teacher, demos, settings))
        corpus = sample_corpus(task, examples, teacher, n=n, corpus_path=run_dir / f"{task}.jsonl",
                               temperature=temperature, max_new_tokens=p.teacher_max_new_tokens, seed=p.seed,
                               batch_size=p.teacher_batch_size, demos=demos, progress=False)
        by_id = {str(e.id): e for e in examples}
        spec = get_task(task)
        # a record's verdict is judged against today's gold: a corrected answer key changes which CoTs are kept
        return [judged(spec, r, by_id[str(r["instance_id"])]) for r in corpus.records()
                if r["sample_index"] < n and str(r["instance_id"]) in by_id and r["teacher"] == teacher.id]

    def _corpus_plan(self, paper_task: str, greedy: bool):
        """(teacher, exemplars, sampling settings, corpus key) of ``paper_task``'s corpus."""
        from .teachers import SamplingSettings

        p = self.profile
        spec = self.teacher_spec(paper_task, greedy=greedy)
        if spec.startswith("replay:") and p.teacher_temperature != 1.0:
            raise NotAvailable(f"SCoTD's released corpora were sampled at T=1, not teacher_temperature="
                               f"{p.teacher_temperature}")
        teacher = self._teacher(spec)
        demos = self.exemplars(paper_task)
        settings = SamplingSettings(temperature=0.0 if greedy else p.teacher_temperature,
                                    max_new_tokens=p.teacher_max_new_tokens, seed=p.seed)
        key = fingerprint("corpus", self._corpus_spec(paper_task, teacher, demos, settings))
        return teacher, demos, settings, key

    def _corpus_spec(self, paper_task: str, teacher, demos, settings) -> dict:
        from .exemplars import exemplars_hash

        return dict(teacher=teacher.id, task=self.profile.task(paper_task), settings=settings.as_dict(),
                    exemplars=exemplars_hash(demos))

    def corpus_key(self, paper_task: str, training: str, setting: str) -> str | None:
        """The key of the corpus a cell trains on (None: the full label-only student needs none)."""
        if training == "label_only" and setting == "full":
            return None
        return self._corpus_plan(paper_task, training == "greedy_cot")[3]

    @staticmethod
    def _check_release_holds(teacher, examples, n: int) -> None:
        available = getattr(teacher, "available", None)
        if available is None:
            return
        have = min((available(int(e.meta.get("index", i))) for i, e in enumerate(examples)), default=0)
        if have < n:
            raise NotAvailable(f"{teacher.id} holds {have} CoTs for some instance; N={n} cannot be made from it "
                               f"(sample more from a teacher you name: -p teachers=...)")

    # --- training data -------------------------------------------------------------------------

    def instances(self, paper_task: str, *, setting: str = "full", training: str = "scotd", n: int | None = None,
                  fraction: float = 1.0, strategy: str | None = None, k: int | None = None,
                  demonstrations: bool = False) -> list[dict]:
        """Training instances for one cell of the papers' tables (see ``curation``).

        ``fraction``: a share of D_train's instances taken *before* the teacher's CoTs are filtered,
        the same instances for every line of Fig. 3.  ``strategy``: Fig. 7 (full setting only):
        filter to the correct CoTs, then downsample to ``k`` per instance.  ``demonstrations``:
        MetaICL-style inputs (Fig. 6), the task's exemplars in front of every question, with their
        rationales for CoT training and without for label-only training.
        """
        from . import curation

        p = self.profile
        if setting not in SETTINGS or training not in TRAININGS:
            raise ValueError(f"setting must be one of {SETTINGS} and training one of {TRAININGS}")
        if strategy is not None and (setting != "full" or training != "scotd"):
            raise ValueError("Fig. 7's downsampling chooses among correct CoTs: setting='full', training='scotd'")
        examples = self.examples(paper_task, p.train_split)
        if fraction < 1:
            examples = curation.subset_instances(examples, fraction, seed=p.seed)
        ids = {str(e.id) for e in examples}

        def records(**kw):
            return [r for r in self.corpus(paper_task, **kw) if str(r["instance_id"]) in ids]

        if training == "label_only" and setting == "full":
            instances = curation.label_only_instances(examples)
        elif training == "label_only":
            # few-shot: no gold labels beyond the prompt's; the teacher's answers are the labels
            instances = curation.teacher_label_instances(records(n=n), examples)
        elif training == "greedy_cot":
            instances = curation.greedy_cot_instances(records(greedy=True), examples, setting=setting)
        else:
            chosen = curation.first_n_per_instance(records(n=n), n or p.n_cots)
            if strategy is not None:
                chosen = curation.fig7_records(chosen, strategy, k=k or p.downsample_k, seed=p.seed)
            instances = curation.build_instances(chosen, examples, setting=setting)
        if demonstrations:
            prefix = _demo_block(self.exemplars(paper_task), cot=training != "label_only")
            instances = [{**inst, "input": prefix + inst["input"]} for inst in instances]
        return instances

    def filter_stats(self, paper_task: str, n: int | None = None) -> dict:
        """What SCoTD's correct-only filter drops from this task's corpus (§3.1: 40.4 / 45.0 / 34.2 %)."""
        from .curation import filter_stats, first_n_per_instance

        n = n or self.profile.n_cots
        return filter_stats(first_n_per_instance(self.corpus(paper_task, n=n), n))

    # --- students ------------------------------------------------------------------------------

    def train_config(self, **overrides):
        from .training import TrainConfig

        p = self.profile
        return TrainConfig.recipe(p.train_recipe, **{**p.train_overrides(), **overrides})

    def student(self, paper_tasks: str | tuple, *, setting: str = "full", training: str = "scotd",
                n: int | None = None, fraction: float = 1.0, strategy: str | None = None,
                student: str | None = None, demonstrations: bool = False, seed: int | None = None) -> Path:
        """A fine-tuned student directory, trained once per distinct (data, model, config, seed); ``seed``
        (default: the profile's) seeds the training run (initialisation of a random student, batch order)."""
        from .training import fine_tune

        p = self.profile
        tasks = (paper_tasks,) if isinstance(paper_tasks, str) else tuple(paper_tasks)
        instances = [i for t in tasks for i in self.instances(t, setting=setting, training=training, n=n,
                                                              fraction=fraction, strategy=strategy,
                                                              demonstrations=demonstrations)]
        config = self.train_config()
        base = student or p.student
        seed = p.seed if seed is None else seed
        key = dict(student=model_ref(base, self.root), method=p.method, seed=seed, config=config.shaping_settings(),
                   select_checkpoint=p.select_checkpoint,
                   data=instances_hash(instances), corpora=[self.corpus_key(t, training, setting) for t in tasks])
        out = self.root / "students" / fingerprint("student", key)
        done = out / STUDENT_RUN_FILE
        if checked(out):                # sealed and intact (a corrupt run is set aside and trained again)
            return out / "final"        # fine_tune's model is always there: no stored path to go stale
        self.release()          # nothing else in memory while a student trains
        select = self._checkpoint_selection(tasks[0]) if p.select_checkpoint else {}
        result = fine_tune(base, instances, output_dir=out, method=p.method, config=config, seed=seed, **select)
        free_memory()
        cell = dict(tasks=[p.task(t) for t in tasks], setting=setting, training=training, n=n or p.n_cots,
                    fraction=fraction, strategy=strategy, demonstrations=demonstrations, seed=seed)
        # every evaluated checkpoint's score stays with the run; the reported model is the best one when selecting
        checkpoints = [{"step": h["step"], "accuracy": h.get("eval_accuracy")} for h in result.eval_history]
        write_spec(out, "student", key)
        write_json(done, {"model_dir": "final", "key": key, "cell": cell, "instances": len(instances),
                          "profile": p.name, "checkpoints": checkpoints,
                          "best_checkpoint": result.best_checkpoint, "best_accuracy": result.best_metric})
        seal(out, SPEC_FILE, STUDENT_RUN_FILE, "final")
        return out / "final"

    def _checkpoint_selection(self, paper_task: str) -> dict:
        """``fine_tune``'s arguments for SCoTD's checkpoint selection: greedy accuracy on the split results are
        reported on (as SCoTD selected; fine_tune warns that this is optimistic), on TrainConfig's schedule."""
        from .evaluation import evaluate

        p, split = self.profile, self.eval_split(paper_task)
        examples = self.examples(paper_task, split)

        def eval_fn(model, tokenizer):
            r = evaluate(model, tokenizer, p.task(paper_task), examples, decoding="greedy",
                         max_new_tokens=p.student_max_new_tokens, seed=p.seed, progress=False)
            return {"accuracy": r.summary()["accuracy"]}

        return dict(eval_fn=eval_fn, eval_split=split, reported_split=split)

    # --- evaluation ----------------------------------------------------------------------------

    def accuracy(self, model: str | Path, paper_task: str, *, decoding: str = "greedy", split: str | None = None,
                 demos: list | None = None, cot: bool = True) -> dict:
        """Accuracy summary (strict and flexible, 95% CI, malformed share) of a student or a model name,
        with ``records_path`` (every generated text) and ``run_dir``.

        ``demos`` turns it into a few-shot prompting baseline (Table 2(a)) or MetaICL-style testing
        (Fig. 6); ``cot=False`` drops the demos' rationales.
        """
        from . import evaluation
        from .exemplars import exemplars_hash
        from .io import read_jsonl

        p = self.profile
        task = p.task(paper_task)
        split = split or self.eval_split(paper_task)
        sc = decoding == "self_consistency"
        # the profile's teacher is evaluated in the precision it samples in (teacher_dtype); the precision and
        # device the hardware rule resolves are part of the key (they change the generated text)
        dtype = p.teacher_dtype if str(model) == p.teacher else None
        where = placement_of(model, dtype)
        examples = self.examples(paper_task, split)
        # the model by its place in the run store (never an absolute path) and the examples by their content
        ref = model_ref(model, self.root)
        key = dict(model=ref, examples=examples_hash(examples), task=task,
                   split=p.split(task, split), decoding=decoding,
                   k=p.sc_k if sc else 1, t=p.sc_temperature if sc else None, max_new_tokens=p.student_max_new_tokens,
                   limit=p.limit(task, "eval"), seed=p.seed, demos=exemplars_hash(demos) if demos else None, cot=cot,
                   # few-shot prompts end at a token boundary (generate(space_boundary=True)): another text
                   **({"space_boundary": True} if demos else {}), precision=where.precision, device=where.device)
        out = self.root / "evals" / fingerprint("eval", key)
        scored = out / f"summary-{evaluation.SCORER_VERSION}.json"
        records_path = out / "records.jsonl"
        extra = {"records_path": str(records_path), "run_dir": str(out), **self._runs_behind(ref)}
        if checked(out):            # sealed and intact (a corrupt run is set aside and made again)
            if scored.exists():
                return {**json.loads(scored.read_text()), **extra}
            # generated before under another scorer: re-score the stored texts
            stored = json.loads((out / "summary.json").read_text())
            result = evaluation.rescore(task, examples, [r for _, r in read_jsonl(records_path)],
                                        stored["decoding"], seed=p.seed)
        else:
            write_spec(out, "eval", key)
            model_obj, tok = self._load(model, dtype)
            result = evaluation.evaluate(model_obj, tok, task, examples, decoding=decoding, k=p.sc_k,
                                         temperature=p.sc_temperature, max_new_tokens=p.student_max_new_tokens,
                                         demos=demos, cot=cot, seed=p.seed, out_dir=out, progress=False)
        write_json(scored, result.summary())
        seal(out, SPEC_FILE, "records.jsonl", "summary.json", scored.name)
        return {**result.summary(), **extra}

    def _runs_behind(self, ref: str) -> dict:
        """The student run a model (by its :func:`~scotd_kit.runs.model_ref`) was made by and the corpus runs that
        student trained on, read from the student's ``spec.json`` (both "" for a model given by name, the corpus
        "" for gold labels alone)."""
        if not ref.startswith("run:students/"):
            return {"student_run": "", "corpus_run": ""}
        student = self.root / Path(ref.removeprefix("run:")).parent         # students/<key>/final -> students/<key>
        stored = student / SPEC_FILE
        spec = json.loads(stored.read_text(encoding="utf-8"))["spec"] if stored.exists() else {}
        corpora = [str(self.root / "corpora" / key) for key in dict.fromkeys(spec.get("corpora") or []) if key]
        return {"student_run": str(student), "corpus_run": "; ".join(corpora)}

    def _load(self, model: str | Path, dtype: str | None = None):
        """The model (``dtype``: a precision request, None for the hardware rule's), placed by the rule
        (:func:`scotd_kit.models.load_model`); the model held before is released first."""
        key = f"{model}|{dtype}" if dtype else str(model)
        if self._held is not None and self._held[0] == key:
            return self._held[1], self._held[2]
        self.release()
        model_obj, tok = load_any(model, dtype=dtype)
        self._held = (key, model_obj, tok)
        return model_obj, tok

    def release(self) -> None:
        """Drop the model held in memory and close in-process vLLM engines (before a teacher samples or a
        student trains): an engine keeps the GPU memory it reserved until it is shut down."""
        from .teachers.vllm_backend import close_all

        self._held = None
        close_all()
        free_memory()

    def measure(self, paper_task: str, *, decoding: str = "greedy", split: str | None = None,
                demos: list | None = None, cot: bool = True, train_tasks=None, seeds: tuple = (), **student):
        """``accuracy`` of the student trained with ``student`` settings on ``train_tasks`` (default:
        ``paper_task``), or the reason it cannot be made here (a :class:`NotAvailable`, or a filter that
        left nothing) -- to be shown in its cell instead of stopping the notebook. With two or more
        ``seeds``, one student per training seed and their mean (:func:`seed_mean`)."""
        from .curation import EmptySelectionError

        try:
            runs = [self.accuracy(self.student(train_tasks or paper_task, seed=seed, **student), paper_task,
                                  decoding=decoding, split=split, demos=demos, cot=cot)
                    for seed in (seeds or (None,))]
            return seed_mean(runs, seeds, seed=self.profile.seed) if len(runs) > 1 else runs[0]
        except (NotAvailable, EmptySelectionError) as e:
            return e

    @property
    def grid_seeds(self) -> tuple:
        """The student seeds each point of the CoTs-per-instance grid averages (Fig. 2, claim 3)."""
        return tuple(self.profile.grid_seeds) or (self.profile.seed,)

    # --- cells ---------------------------------------------------------------------------------

    def cell(self, notebook: str, table: str, row: str, column: str, result, paper: float | None = None,
             *, ignore: tuple = (), **used):
        """A :class:`~scotd_kit.report.Cell` from an ``accuracy`` result (or the :class:`NotAvailable`
        that stopped it): strict and flexible accuracy, n, CI, malformed share, run directory, and why
        it is not comparable with the paper's number when it is not. ``used``: settings this cell used
        instead of the profile's (``student=...``); ``ignore``: settings the cell matches with the
        paper's own point (``n_cots`` on the N grid) or that do not apply (training, for prompting)."""
        from .report import Cell

        p = self.profile
        task_run = p.task(column)
        why = [d for d in differences_from_paper(p, **used) if d.split("=")[0] not in ignore]
        if task_run != column:
            why.insert(0, f"{task_run} stands in for {column}")
        if isinstance(result, Exception):
            return Cell(notebook, table, row, column, None, paper, p.name, task_run,
                        not_comparable="; ".join(why), unavailable=str(result))
        r = result
        if r.get("seeds"):
            each = " / ".join(f"{100 * a:.1f}" for a in r["per_seed"])
            why.append(f"mean of {len(r['seeds'])} students, seeds {', '.join(map(str, r['seeds']))} ({each})")
        sc = (r.get("decoding") or {}).get("decoding") == "self_consistency"
        return Cell(notebook, table, row, column, 100 * r["accuracy"], paper, p.name, task_run, r["n"],
                    100 * r["ci95"][0], 100 * r["ci95"][1], ours_flexible=100 * r["accuracy_flexible"],
                    malformed=100 * r["malformed"] if sc else None, run=r.get("run_dir", ""),
                    student_run=r.get("student_run", ""), corpus_run=r.get("corpus_run", ""),
                    not_comparable="; ".join(why))


    def filter_cell(self, notebook: str, paper_task: str):
        """§3.1's number for ``paper_task``: the share of the teacher's CoTs the supervised filter drops."""
        from . import paper
        from .report import Cell

        p = self.profile
        try:
            stats = self.filter_stats(paper_task)
        except NotAvailable as e:
            stats = e
        why = [d for d in differences_from_paper(p) if d.split("=")[0] in CORPUS_SETTINGS or d.endswith(" profile")]
        common = dict(not_comparable="; ".join(why))
        if isinstance(stats, Exception):
            return Cell(notebook, "§3.1 filter", "CoTs dropped (%)", paper_task, None,
                        paper.FILTER_DROPPED.get(paper_task), p.name, p.task(paper_task), unavailable=str(stats),
                        **common)
        return Cell(notebook, "§3.1 filter", "CoTs dropped (%)", paper_task, 100 * stats["dropped_share"],
                    paper.FILTER_DROPPED.get(paper_task), p.name, p.task(paper_task), stats["samples"], **common)


CORPUS_SETTINGS = ("teacher", "teacher_temperature", "n_cots", "train_limit", "exemplars")
TRAINING_SETTINGS = ("train_recipe", "max_steps", "per_device_train_batch_size", "learning_rate", "max_length",
                     "warmup_steps", "train_args", "method", "n_cots", "train_limit", "teacher", "teacher_temperature")


def seed_mean(runs: list[dict], seeds, *, seed: int = 0) -> dict:
    """One accuracy summary for students that differ only by their training seed, evaluated on the same
    examples: each example scores the share of them right on it, and the interval resamples examples.

    A student trained from random weights on a few hundred instances moves by ~10 points with its seed
    alone (docs/demo_design.md, "Three seeds"), more than the effect a demo cell is there to show; the mean
    over seeds measures the recipe rather than one draw of it. ``records_paths`` and ``run_dir`` name
    every run behind the mean, ``per_seed`` their own accuracies.
    """
    from .evaluation import bootstrap_ci, correct_by_id
    from .stats import seed_scores

    strict = seed_scores([correct_by_id(r["records_path"]) for r in runs])
    flexible = seed_scores([correct_by_id(r["records_path"], "correct_flexible") for r in runs])
    n = len(strict)
    return {**runs[0], "accuracy": sum(strict.values()) / n, "accuracy_flexible": sum(flexible.values()) / n,
            "ci95": list(bootstrap_ci(list(strict.values()), seed=seed)),
            "ci95_flexible": list(bootstrap_ci(list(flexible.values()), seed=seed)),
            "malformed": sum(r["malformed"] for r in runs) / len(runs), "n": n, "scores_by_id": strict,
            "seeds": list(seeds), "per_seed": [r["accuracy"] for r in runs],
            "records_paths": [r["records_path"] for r in runs], "records_path": None,
            "run_dir": "; ".join(r["run_dir"] for r in runs),
            "student_run": "; ".join(r["student_run"] for r in runs if r.get("student_run")),
            "corpus_run": "; ".join(dict.fromkeys(c for r in runs for c in (r.get("corpus_run") or "").split("; ") if c))}


def _holds_weights(teacher) -> bool:
    """A teacher that loads a model in this process (a local or vLLM one), not a file or an endpoint."""
    from .teachers import LocalTeacher, VLLMTeacher

    return isinstance(teacher, (LocalTeacher, VLLMTeacher))


def _demo_block(demos, cot: bool) -> str:
    from .prompts import few_shot_block

    return few_shot_block([(x, r if cot else "", y) for x, r, y in demos])


def load_any(model: str | Path, *, dtype: str | None = None):
    """A model name or a fine-tuned student directory (full model or LoRA adapter); ``dtype`` (a name)
    for a model loaded by name, None for the device's preferred one."""
    from .training import STUDENT_FILE, load_student

    path = Path(model)
    if path.is_dir() and (path / STUDENT_FILE).exists():   # written by training.fine_tune
        # a LoRA adapter is folded into its base for decoding (one matmul per layer instead of three);
        # a quantised base cannot take it and keeps the adapter
        return load_student(path, merge=True, dtype=dtype)
    from .models import load_model

    return load_model(str(model), dtype=dtype)


def teacher_from_spec(spec: str, *, dtype: str | None = None):
    """``"replay:<file>"`` (one of SCoTD's released ``*_30x.json``), ``"openai:<model>"`` (an
    OpenAI-compatible endpoint at ``$OPENAI_BASE_URL``, key from ``$OPENAI_API_KEY``; with
    ``SCOTD_ONE_SAMPLE_PER_CALL=1`` one call per sample seed, as a ``vllm serve`` teacher wants:
    docs/vllm.md), ``"vllm:<model>"`` (in-process vLLM, its engine built on first use), or a model
    name / path (local, loaded on first use, on the GPU when there is one). ``dtype``: the precision of
    a local or vLLM model, e.g. ``"bfloat16"``, None for the device's (or vLLM's) preferred one."""
    from . import teachers

    kind, _, rest = spec.partition(":")
    if kind == "replay":
        return teachers.make_teacher("replay", rest)
    if kind == "openai":
        return teachers.make_teacher("openai", rest,
                                     base_url=os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1"),
                                     one_sample_per_call=os.environ.get("SCOTD_ONE_SAMPLE_PER_CALL", "") == "1")
    if kind == "vllm":
        return teachers.make_teacher("vllm", rest, dtype=dtype)
    return _local_teacher(spec, dtype)


def _local_teacher(spec: str, dtype: str | None = None):
    """A local teacher; :func:`scotd_kit.models.load_model` places it (on the GPU when there is one)."""
    from .teachers import LocalTeacher

    return LocalTeacher(spec, dtype=dtype)


def placement_of(model: str | Path, dtype: str | None = None):
    """Where and in which precision ``model`` (a name or a student directory) will be evaluated."""
    from .models import placement
    from .training import STUDENT_FILE

    path = Path(model)
    if path.is_dir() and (path / STUDENT_FILE).exists():
        meta = json.loads((path / STUDENT_FILE).read_text(encoding="utf-8"))
        return placement(dtype, role="evaluation", quantization=meta.get("quantization"))
    return placement(dtype, role="evaluation")
