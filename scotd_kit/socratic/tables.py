"""Rows the Socratic notebooks show: paired differences between students, bad-output counts."""
from __future__ import annotations

from ..stats import paired_bootstrap

LABELS = {"answer_only": "answer-only", "cot": "CoT", "unified": "Socratic unified", "iterative": "Socratic iterative"}
PAIRS = (("iterative", "answer_only"), ("iterative", "cot"), ("unified", "answer_only"), ("unified", "cot"),
         ("iterative", "unified"))


def label(kind: str, source: str | None) -> str:
    return LABELS[kind] + (f" ({source})" if source else "")


def runs_of(result: dict) -> dict:
    """A :class:`~scotd_kit.report.Cell`'s run fields from a ``pipeline.evaluate`` result: the evaluation run,
    the student runs it scored and the teacher's decomposition run they trained on ("" for gold ones)."""
    return {"run": result["run_dir"], "student_run": result["student_run"], "corpus_run": result["corpus_run"]}


def _aligned(a: dict, b: dict) -> tuple[list[bool], list[bool]]:
    by_id = {r["id"]: r["correct"] for r in b["records"]}
    ids = [r["id"] for r in a["records"]]
    if set(ids) != set(by_id):
        raise ValueError("paired comparison of runs on different examples")
    return [r["correct"] for r in a["records"]], [by_id[i] for i in ids]


def paired_rows(runs: dict, seed: int = 0) -> list[dict]:
    """``runs[(column, task, size, kind, source)] = pipeline.evaluate(...)`` -> one row per compared pair
    (accuracy difference in points and its 95% paired bootstrap interval)."""
    rows = []
    for (column, task, size, kind, source), run in runs.items():
        for a, b in PAIRS:
            if kind != a:
                continue
            for (c2, t2, s2, k2, src2), other in runs.items():
                if (c2, t2, s2, k2) != (column, task, size, b) or (b in ("unified", "iterative") and src2 != source):
                    continue
                d = paired_bootstrap(*_aligned(run, other), seed=seed)
                rows.append({"column": column, "task_run": task, "student": size, "a": label(a, source),
                             "b": label(b, src2), "acc_a": 100 * d.accuracy_a, "acc_b": 100 * d.accuracy_b,
                             "diff": 100 * d.diff, "ci_low": 100 * d.ci_low, "ci_high": 100 * d.ci_high, "n": d.n})
    return rows


def category_rows(runs: dict) -> list[dict]:
    """Bad-output counts per run (every category present in any run, zeros shown)."""
    keys = sorted({k for r in runs.values() for k in r["categories"]})
    return [{"task_run": t, "student": s, "kind": label(k, src), "n": r["n"],
             **{c: r["categories"].get(c, 0) for c in keys}}
            for (_, t, s, k, src), r in runs.items()]


def stored_rows(stored: list[dict]) -> dict:
    """``pipeline.stored_runs(s)`` keyed like :func:`paired_rows` wants, read from each run's settings."""
    out = {}
    for r in stored:
        st = r["settings"]
        sizes = r.get("sizes") or {role: _model_of(m) for role, m in st["models"].items()}
        size = (f"QG {sizes['qg']} / QA {sizes['qa']}" if len(set(sizes.values())) > 1
                else next(iter(sizes.values())))
        source = r.get("source") if r["kind"] in ("unified", "iterative") else None
        out[(st["task"], st["task"], size, r["kind"], source)] = r
    return out


def _model_of(model_dir: str) -> str:
    """The model size of a student named by its directory (evaluations stored before they recorded sizes)."""
    import json
    from pathlib import Path

    done = Path(model_dir).parent / "done.json"   # written beside every trained student
    return json.loads(done.read_text())["settings"]["model"] if done.exists() else model_dir
