"""The pipeline steps the notebooks chain, cached by a hash of their settings.

``Lab(profile)`` is the only stateful object: it knows the profile and where runs are cached.
Each step is one call with plain arguments; its result is stored under
``<runs>/<kind>/<hash>/`` so notebooks that need the same trained student (the full-SCoTD N=30
student serves Table 2(b), Table 3(a), Fig. 2's 30x point, Fig. 3's 100% point and Fig. 4's
largest size) reuse it, and rerunning a notebook whose runs exist only re-renders.
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

from .io import write_json
from .paths import cache_dir
from .profiles import Profile, get_profile
from .tasks import get_task, load_split

SETTINGS = ("few_shot", "full")
TRAININGS = ("label_only", "greedy_cot", "scotd")
STRATEGIES = ("random", "diversity", "likelihood", "open_endedness")


def settings_hash(kind: str, settings: dict) -> str:
    blob = json.dumps({"kind": kind, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Lab:
    def __init__(self, profile: str | Profile = "demo", runs_dir: str | Path | None = None, **overrides):
        self.profile = get_profile(profile, **overrides)
        # SCOTD_RUNS_DIR lets a batch run (or the tests) keep its runs apart from the user's cache
        root = runs_dir or os.environ.get("SCOTD_RUNS_DIR") or cache_dir() / "runs"
        self.root = Path(root) / self.profile.name

    # --- data --------------------------------------------------------------------------------

    def examples(self, paper_task: str, split: str | None = None) -> list:
        """Examples of the task this profile runs for ``paper_task`` (limited by the profile)."""
        p = self.profile
        split = split or p.eval_split
        task = get_task(p.task(paper_task))
        limit = p.train_limit if split == p.train_split else p.eval_limit
        return load_split(task, p.split(task.name, split), limit=limit, seed=p.seed)

    # --- teacher -----------------------------------------------------------------------------

    def corpus(self, paper_task: str, *, n: int | None = None, greedy: bool = False) -> list[dict]:
        """The teacher's CoTs for the training instances: N sampled (T=1) or one greedy per instance.

        The corpus is resumable and topped up: asking for N=30 after N=5 samples only 25 more.
        """
        from .sampling import sample_corpus

        p = self.profile
        task = p.task(paper_task)
        n = 1 if greedy else (n or p.n_cots)
        kind = "greedy" if greedy else "sampled"
        if not greedy and p.teacher_temperature != 1.0:
            kind += f"-t{p.teacher_temperature}"
        path = self.root / "corpora" / f"{_slug(p.teacher)}-{kind}" / f"{task}.jsonl"
        corpus = sample_corpus(task, self.examples(paper_task, p.train_split), teacher_from_spec(p.teacher),
                               n=n, corpus_path=path, temperature=0.0 if greedy else p.teacher_temperature,
                               max_new_tokens=p.teacher_max_new_tokens, seed=p.seed,
                               batch_size=p.teacher_batch_size)
        return [r for r in corpus.records() if r["sample_index"] < n]

    # --- training data -------------------------------------------------------------------------

    def instances(self, paper_task: str, *, setting: str = "full", training: str = "scotd", n: int | None = None,
                  fraction: float = 1.0, strategy: str | None = None, k: int | None = None) -> list[dict]:
        """Training instances for one cell of the papers' tables (see ``curation``)."""
        from . import curation

        if setting not in SETTINGS or training not in TRAININGS:
            raise ValueError(f"setting must be one of {SETTINGS} and training one of {TRAININGS}")
        examples = self.examples(paper_task, self.profile.train_split)
        if training == "label_only" and setting == "full":
            instances = curation.label_only_instances(examples)
        elif training == "label_only":
            # few-shot: no gold labels beyond the prompt's; the teacher's answers are the labels
            instances = curation.teacher_label_instances(self.corpus(paper_task, n=n), examples)
        elif training == "greedy_cot":
            instances = curation.greedy_cot_instances(self.corpus(paper_task, greedy=True), examples, setting=setting)
        else:
            records = curation.first_n_per_instance(self.corpus(paper_task, n=n), n or self.profile.n_cots)
            if strategy is not None:
                records = curation.downsample(records, strategy, k=k or self.profile.downsample_k,
                                              seed=self.profile.seed)
            instances = curation.build_instances(records, examples, setting=setting)
        return curation.subset_instances(instances, fraction, seed=self.profile.seed) if fraction < 1 else instances

    # --- students ------------------------------------------------------------------------------

    def student(self, paper_tasks: str | tuple, *, setting: str = "full", training: str = "scotd",
                n: int | None = None, fraction: float = 1.0, strategy: str | None = None,
                student: str | None = None) -> Path:
        """A fine-tuned student directory, trained once per distinct setting."""
        from .training import TrainConfig, fine_tune

        p = self.profile
        tasks = (paper_tasks,) if isinstance(paper_tasks, str) else tuple(paper_tasks)
        key = dict(tasks=[p.task(t) for t in tasks], setting=setting, training=training,
                   n=None if training == "label_only" and setting == "full" else (n or p.n_cots),
                   fraction=fraction, strategy=strategy, student=student or p.student, teacher=p.teacher,
                   method=p.method, steps=p.max_steps, epochs=p.train_epochs, batch=p.batch_size,
                   lr=p.learning_rate, max_length=p.max_length, seed=p.seed,
                   train_limit=p.train_limit)
        out = self.root / "students" / settings_hash("student", key)
        done = out / "result.json"
        if done.exists():
            return Path(json.loads(done.read_text())["model_dir"])
        instances = [i for t in tasks for i in self.instances(t, setting=setting, training=training, n=n,
                                                              fraction=fraction, strategy=strategy)]
        base = TrainConfig.paper if p.name == "paper" else TrainConfig.small
        config = base(max_steps=p.max_steps, num_train_epochs=p.train_epochs, per_device_train_batch_size=p.batch_size,
                      learning_rate=p.learning_rate, max_length=p.max_length,
                      save_steps=min(p.max_steps, 500) if p.max_steps > 0 else 500)
        result = fine_tune(student or p.student, instances, output_dir=out, method=p.method, config=config,
                           seed=p.seed)
        write_json(done, {"model_dir": str(result.model_dir), "settings": key, "instances": len(instances)})
        return Path(result.model_dir)

    # --- evaluation ----------------------------------------------------------------------------

    def accuracy(self, model: str | Path, paper_task: str, *, decoding: str = "greedy", split: str | None = None,
                 demos: list | None = None, cot: bool = True) -> dict:
        """Accuracy summary (strict and flexible, 95% CI) of a student directory or a model name.

        ``demos`` turns it into a few-shot prompting baseline (Table 2(a)); ``cot=False`` drops
        the demos' rationales.
        """
        from .evaluation import evaluate

        p = self.profile
        task = p.task(paper_task)
        split = split or p.eval_split
        key = dict(model=str(model), task=task, split=split, decoding=decoding, k=p.sc_k, t=p.sc_temperature,
                   max_new_tokens=p.student_max_new_tokens, limit=p.eval_limit, seed=p.seed,
                   demos=bool(demos), cot=cot)
        out = self.root / "evals" / settings_hash("eval", key)
        done = out / "summary.json"
        if done.exists():
            return {**json.loads(done.read_text()), "records_path": str(out / "records.jsonl")}
        model_obj, tok = load_any(model)
        result = evaluate(model_obj, tok, task, self.examples(paper_task, split), decoding=decoding, k=p.sc_k,
                          temperature=p.sc_temperature, max_new_tokens=p.student_max_new_tokens, demos=demos,
                          cot=cot, seed=p.seed, out_dir=out)
        return {**result.summary(), "records_path": str(out / "records.jsonl")}


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]


@lru_cache(maxsize=2)
def load_any(model: str | Path):
    """A model name or a fine-tuned student directory (full model or LoRA adapter)."""
    from .training import load_student

    path = Path(model)
    if path.is_dir() and (path / "scotd_student.json").exists():   # written by training.fine_tune
        return load_student(path)
    from .models import load_model

    return load_model(str(model))


@lru_cache(maxsize=2)
def teacher_from_spec(spec: str):
    """``"replay:<dir>"`` (SCoTD's released ``*_30x.json``), ``"openai:<model>"`` (an OpenAI-compatible
    endpoint at ``$OPENAI_BASE_URL``, key from ``$OPENAI_API_KEY``), or a model name / path (local)."""
    from . import teachers

    kind, _, rest = spec.partition(":")
    if kind == "replay":
        return teachers.make_teacher("replay", rest)
    if kind == "openai":
        return teachers.make_teacher("openai", rest,
                                     base_url=os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1"))
    return teachers.make_teacher("local", spec)
