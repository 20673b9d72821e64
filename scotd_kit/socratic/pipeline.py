"""The Socratic stages the notebooks chain, each a run under ``<runs>/<profile>/socratic/`` keyed by its spec.

Every stage takes the Socratic settings (:func:`~scotd_kit.socratic.settings.socratic_settings`, which name
their profile): ``decompositions`` (gold or a teacher's, with kept / asked counts: the corpus and its
filter), ``instances`` (per role), ``students`` (trained once per distinct setting), ``evaluate`` (one
student kind on the test problems; the iterative one with any QG / QA sizes).  A rerun whose runs exist
only reads them back.

::

    s = socratic_settings("demo")                          # or smoke / colab / paper; teacher="openai:<model>"
    students(s, "demo_socratic", "iterative")              # QG + QA, trained once
    r = evaluate(s, "demo_socratic", "iterative")          # the loop on the test problems
"""
from __future__ import annotations

import json
import warnings
from dataclasses import asdict
from pathlib import Path

from ..hardware import choose
from ..models import placement
from ..io import DataError, write_json, write_jsonl
from ..paths import runs_root
from ..journal import Journal
from ..exemplars import exemplars_hash as demos_hash
from ..runs import (SPEC_FILE, checked, examples_hash, fingerprint, instances_hash, model_ref, seal, write_spec,
                    writer_lock)
from ..tasks import get_task, load_split
from ..teachers import teacher_from_spec
from ..training import load_any
from . import decompositions as dec
from . import instances as inst
from .loop import LoopConfig, Trace, solve_iterative
from .scoring import score_generated, score_trace, summary
from .settings import SocraticSettings, differences_from_paper

FORMAT_VERSION = 1   # bump when formats.py changes what a student is trained on


def runs_dir(s: SocraticSettings) -> Path:
    """Where these settings' profile keeps its Socratic runs (beside its SCoTD runs)."""
    return runs_root() / s.profile / "socratic"


def differences(s: SocraticSettings, *students: str) -> list[str]:
    """Why cells of these students under these settings are not the paper's (never empty: the
    paper's Socratic settings are not known, see :func:`differences_from_paper`)."""
    return differences_from_paper(s.profile, s, *students)


# --- data ------------------------------------------------------------------------------------

def examples(s: SocraticSettings, task: str, split: str | None = None) -> list:
    """Training (``split="train"``) or evaluation examples (the task's declared eval split)."""
    spec = get_task(task)
    split = split or spec.eval_split
    limit = s.train_limit if split == "train" else s.eval_limit
    if s.real_limit is not None and not spec.generate:
        limit = min(x for x in (limit, s.real_limit) if x is not None)
    return load_split(spec, split, limit=limit, seed=s.seed)


def sources(s: SocraticSettings, task: str) -> list[str]:
    """Decomposition sources that give ``task`` training data: gold steps when the task has them,
    the teacher's when one is set and it kept any (sampling them now, cached)."""
    out = ["gold"] if dec.has_gold(examples(s, task, "train")[:1]) else []
    if s.teacher:
        _, report = decompositions(s, task, "teacher")
        if report["kept"]:
            out.append("teacher")
        else:
            warnings.warn(f"{task}: the teacher {s.teacher} kept no decomposition of {report['asked']} "
                          f"asked (dropped: {report['dropped']}); its Socratic students are not trained")
    return out


def cells_to_run(s: SocraticSettings, task: str) -> list[tuple[str, str | None]]:
    """``(kind, source)`` pairs this task can train: baselines need labels (CoT a gold rationale),
    Socratic students a decomposition source (gold steps or a teacher)."""
    train = examples(s, task, "train")[:1]
    out = [("answer_only", None)]
    try:
        inst.gold_rationale(train[0])
        out.append(("cot", None))
    except DataError:
        pass   # no gold rationale (SVAMP): no CoT baseline
    return out + [(kind, src) for src in sources(s, task) for kind in ("unified", "iterative")]


def cells_unavailable(s: SocraticSettings, task: str) -> list[tuple[str, str]]:
    """``(kind, why)`` for each student kind this task cannot train under these settings (the
    main table shows them as cells that cannot be made, not as missing rows)."""
    made = {kind for kind, _ in cells_to_run(s, task)}
    name = get_task(task).name
    if s.teacher:
        no_source = (f"no gold decompositions in {name}'s data, and the teacher {s.teacher} kept none")
    else:
        no_source = (f"no gold decompositions in {name}'s data and no teacher to write them "
                     f"(-p socratic='{{teacher: <model name | openai:<model>>}}')")
    why = {"cot": f"no gold rationale in {name}'s data", "unified": no_source, "iterative": no_source}
    return [(kind, why[kind]) for kind in ("cot", "unified", "iterative") if kind not in made]


def decompositions(s: SocraticSettings, task: str, source: str = "gold") -> tuple[list, dict]:
    """``(decompositions of the training problems, {"asked", "kept", ...})``."""
    train = examples(s, task, "train")
    if source == "gold":
        kept, report = dec.gold_decompositions(train)
        return kept, report.as_dict()
    if source != "teacher":
        raise ValueError(f"source must be one of {dec.SOURCES}, not {source!r}")
    if not s.teacher:
        raise ValueError("no teacher: set socratic_settings(..., teacher='<model name | openai:<model>>')")
    spec = _decompositions_spec(s, task)
    run_dir = _decompositions_dir(s, spec)
    if not (run_dir / SPEC_FILE).exists():
        write_spec(run_dir, "socratic-decompositions", spec)
    path = run_dir / f"{get_task(task).name}.jsonl"
    dec.sample_teacher_decompositions(task, train, teacher_from_spec(s.teacher), corpus_path=path,
                                      n=s.teacher_n, max_new_tokens=s.teacher_max_new_tokens,
                                      seed=s.seed, temperature=spec["temperature"])
    kept, report = dec.read_teacher_decompositions(path, train, n=s.teacher_n)
    return kept, report.as_dict()


def _decompositions_spec(s: SocraticSettings, task: str) -> dict:
    # keyed by everything that shapes a sample: another budget or seed never tops up (or mixes into) this one
    return dict(teacher=s.teacher, task=get_task(task).name, max_new_tokens=s.teacher_max_new_tokens,
                seed=s.seed, temperature=0.0, demos=demos_hash(dec.teacher_demos(task)))


def _decompositions_dir(s: SocraticSettings, spec: dict) -> Path:
    return runs_dir(s) / "corpora" / fingerprint("socratic-decompositions", spec)


def instances(s: SocraticSettings, task: str, kind: str, source: str = "gold") -> dict[str, list[dict]]:
    """Training instances per role: ``{"student": ...}`` or, for ``iterative``, ``{"qg", "qa"}``."""
    if kind == "answer_only":
        return {"student": inst.answer_only(examples(s, task, "train"))}
    if kind == "cot":
        return {"student": inst.cot(examples(s, task, "train"))}
    decs, _ = decompositions(s, task, source)
    if kind == "unified":
        return {"student": inst.unified(decs)}
    if kind == "iterative":
        return {"qg": inst.qg(decs), "qa": inst.qa(decs)}
    raise ValueError(f"kind must be one of {inst.KINDS}, not {kind!r}")


# --- students --------------------------------------------------------------------------------

def students(s: SocraticSettings, task: str, kind: str, *, source: str = "gold", size: str | None = None) -> dict[str, Path]:
    """Fine-tuned student directories per role (trained once per distinct setting)."""
    from ..training import TrainConfig, fine_tune

    size, spec = size or s.sizes[-1], get_task(task)
    # GSM8K's problems and steps are far longer than the stand-in's: they get their own length
    real = not spec.generate
    trained = choose(s.precision, role="training")       # the hardware rule's precision and device
    max_length = s.real_max_length if s.real_max_length and real else s.max_length
    steps = s.real_train_steps if s.real_train_steps is not None and real else s.train_steps
    base = dict(task=spec.name, kind=kind, source=source if kind in ("unified", "iterative") else None,
                model=size, method=s.method, precision=trained.precision, device=trained.device, steps=steps,
                epochs=s.train_epochs,
                batch=s.batch_size, lr=s.learning_rate, max_length=max_length, train_limit=s.train_limit,
                real_limit=s.real_limit, seed=s.seed, format=FORMAT_VERSION,
                teacher=(s.teacher, s.teacher_n) if source == "teacher" else None)
    roles = ("qg", "qa") if kind == "iterative" else ("student",)
    out, data = {}, instances(s, task, kind, source)
    for role in roles:
        key = {**base, "role": role, "data": instances_hash(data[role])}   # a changed answer key retrains
        run_dir = runs_dir(s) / "students" / fingerprint("socratic-student", key)
        done = run_dir / "done.json"
        if checked(run_dir):          # sealed and intact (a corrupt run is set aside and trained again)
            out[role] = run_dir / "final"      # fine_tune's model is always there: no stored path to go stale
            continue
        config = TrainConfig.small(max_steps=steps, num_train_epochs=s.train_epochs,
                                   per_device_train_batch_size=s.batch_size, learning_rate=s.learning_rate,
                                   max_length=max_length, warmup_steps=min(10, max(0, steps // 10)),
                                   save_steps=max(steps, 50) if steps > 0 else 500,
                                   precision=s.precision)
        fine_tune(size, data[role], output_dir=run_dir, method=s.method, config=config, seed=s.seed)
        write_spec(run_dir, "socratic-student", key)
        write_json(done, {"model_dir": "final", "settings": key, "instances": len(data[role])})
        seal(run_dir, SPEC_FILE, "done.json", "final")
        out[role] = run_dir / "final"
    return out


# --- evaluation ------------------------------------------------------------------------------

def loop_config(s: SocraticSettings) -> LoopConfig:
    return LoopConfig(max_steps=s.step_limit, qg_max_new_tokens=s.qg_max_new_tokens,
                      qa_max_new_tokens=s.qa_max_new_tokens)


def evaluate(s: SocraticSettings, task: str, kind: str, *, source: str = "gold", size: str | None = None,
             qg_size: str | None = None, qa_size: str | None = None) -> dict:
    """Summary (``accuracy``, ``ci95``, ``n``, ``categories``) and per-example records of one student.

    ``qg_size`` / ``qa_size`` (iterative only) pick each role's model size; both default to ``size``.
    """
    size = size or s.sizes[-1]
    if kind == "iterative":
        models = {"qg": students(s, task, kind, source=source, size=qg_size or size)["qg"],
                  "qa": students(s, task, kind, source=source, size=qa_size or size)["qa"]}
    else:
        models = students(s, task, kind, source=source, size=size)
    spec = get_task(task)
    tested = examples(s, task)
    # the students by their place in the run store (never an absolute path), the examples by their content
    key = dict(models={k: model_ref(v, runs_dir(s)) for k, v in models.items()}, examples=examples_hash(tested),
               task=spec.name, split=spec.eval_split,
               limit=s.eval_limit, real_limit=s.real_limit, loop=loop_config(s).__dict__,
               answer_tokens=s.answer_max_new_tokens, seed=s.seed)
    where = placement(None, role="evaluation")           # precision and device change the generated text
    key.update(precision=where.precision, device=where.device)
    if kind != "iterative":      # their records keep evaluate()'s strict reading: a scorer change is a new run
        from ..evaluation import SCORER_VERSION
        key["scorer"] = SCORER_VERSION
    out = runs_dir(s) / "evals" / fingerprint("socratic-eval", key)
    behind = _runs_behind(s, out, models, task, source if kind in ("unified", "iterative") else "gold")
    if checked(out):                  # sealed and intact (a corrupt run is set aside and made again)
        return {**_read(out), **behind}
    with writer_lock(out):
        if checked(out):              # made by another process while this one waited
            return {**_read(out), **behind}
        write_spec(out, "socratic-eval", key)
        records = (_iterative(s, models, tested, spec, Journal(out / "progress.jsonl", key))
                   if kind == "iterative" else _generated(s, models["student"], tested, spec, kind, out))
        write_jsonl(out / "records.jsonl", records)
        sizes = ({"qg": qg_size or size, "qa": qa_size or size} if kind == "iterative" else {"student": size})
        write_json(out / "summary.json", {**summary(records, seed=s.seed), "settings": key, "kind": kind,
                                          "source": source, "sizes": sizes})
        seal(out, SPEC_FILE, "records.jsonl", "summary.json")
        (out / "progress.jsonl").unlink(missing_ok=True)
    return {**_read(out), **behind}


def _runs_behind(s: SocraticSettings, out: Path, models: dict, task: str, source: str) -> dict:
    """The evaluation run, the student runs it scores and the teacher's decompositions they trained on
    (none for gold decompositions or labels: those come with the task's data)."""
    corpus = _decompositions_dir(s, _decompositions_spec(s, task)) if source == "teacher" else ""
    students = "; ".join(str(Path(m).parent) for m in dict.fromkeys(models.values()))
    return {"run_dir": str(out), "student_run": students, "corpus_run": str(corpus)}


def _iterative(s: SocraticSettings, models: dict, problems: list, spec, journal: Journal) -> list[dict]:
    """The loop's traces, each written as its problem ends; a rerun after a kill solves only the rest."""
    done = journal.done()
    traces = {str(ex.id): Trace(**{k: v for k, v in done[str(ex.id)].items() if k != "id"})
              for ex in problems if str(ex.id) in done and done[str(ex.id)]["question"] == ex.question}
    todo = [ex for ex in problems if str(ex.id) not in traces]
    if todo:
        def finished(ended):
            journal.append([{"id": str(todo[i].id), **asdict(t)} for i, t in ended])

        for ex, t in zip(todo, solve_iterative(load_any(str(models["qg"])), load_any(str(models["qa"])),
                                               [ex.question for ex in todo], loop_config(s),
                                               batch_size=s.decode_batch_size, progress=True,
                                               finished=finished)):
            traces[str(ex.id)] = t
    return [score_trace(spec, ex, traces[str(ex.id)]) for ex in problems]


def _generated(s: SocraticSettings, model_dir: Path, problems: list, spec, kind: str, out: Path) -> list[dict]:
    from ..evaluation import evaluate

    model, tok = load_any(str(model_dir))
    # evaluate() writes its texts as it goes under generation/ (and resumes from them)
    result = evaluate(model, tok, spec, problems, max_new_tokens=s.answer_max_new_tokens,
                      batch_size=s.decode_batch_size, seed=s.seed, out_dir=out / "generation")
    return [score_generated(r, unified=kind == "unified") for r in result.records]


def stored_runs(s: SocraticSettings) -> list[dict]:
    """Every evaluation stored under this profile's runs (tables can be rebuilt from them alone)."""
    return [_read(p.parent) for p in sorted((runs_dir(s) / "evals").glob("*/summary.json")) if checked(p.parent)]


def _read(out: Path) -> dict:
    records = [json.loads(l) for l in (out / "records.jsonl").read_text(encoding="utf-8").splitlines() if l]
    return {**json.loads((out / "summary.json").read_text(encoding="utf-8")), "records": records,
            "records_path": str(out / "records.jsonl")}
