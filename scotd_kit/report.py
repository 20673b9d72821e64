"""Result cells next to the papers' numbers, tables and figure files.

Every notebook ends with a list of :class:`Cell` rows; ``save_result`` writes them as CSV /
Markdown (``<name>.csv``, ``<name>.md``) beside the figure (``<name>.png``, ``<name>.pdf``).
``scotd-kit reproduce`` gathers the ``*.cells.json`` files into one summary.

A difference to the paper is computed only where the kit ran the paper's own task with the paper's
settings (``profiles.differences_from_paper``); every other row says "not comparable: <why>", and a
cell that could not be made says why.  Every row keeps strict and flexible accuracy, n, the CI,
the malformed share of self-consistency samples and the run directory it came from.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from .io import atomic_write_text
from .profiles import CORPUS_SETTINGS, Profile, differences_from_paper


@dataclass
class Cell:
    notebook: str
    table: str                 # "Table 2(b)", "Fig. 2", ...
    row: str                   # e.g. "full / SCoTD"
    column: str                # the paper's task (or measure) of this cell
    ours: float | None         # accuracy in percent (strict, SCoTD's rule), measured by this run
    paper: float | None        # the paper's verified number, if it has one
    profile: str
    task_run: str              # the task the kit actually ran
    n: int | None = None       # examples behind ``ours``
    ci_low: float | None = None
    ci_high: float | None = None
    ours_flexible: float | None = None
    malformed: float | None = None   # self-consistency: % of samples without an answer marker
    run: str = ""                    # the evaluation run(s) behind ``ours`` (generations, summary; "; " between)
    student_run: str = ""            # the student run(s) that evaluation scored ("" for a model by name)
    corpus_run: str = ""             # the teacher corpus run(s) that student trained on ("" when none)
    not_comparable: str = ""         # why the settings are not the paper's ("" when they are)
    unavailable: str = ""            # why the cell could not be made under these settings

    @property
    def comparable(self) -> bool:
        return (self.task_run == self.column and self.profile in ("colab", "paper") and not self.not_comparable
                and not self.unavailable)

    @property
    def diff(self) -> float | None:
        if self.ours is None or self.paper is None or not self.comparable:
            return None
        return round(self.ours - self.paper, 1)

    @property
    def note(self) -> str:
        if self.unavailable:
            return f"cannot be made: {self.unavailable}"
        if self.comparable:
            return ""
        if self.not_comparable:
            return f"not comparable: {self.not_comparable}"
        if self.task_run != self.column:
            return f"not comparable: {self.profile} profile: {self.task_run} stands in for {self.column}"
        return f"not comparable: {self.profile} profile settings"

    def as_row(self) -> dict:
        return {**asdict(self), "diff": self.diff, "note": self.note}


def cell(p: Profile, notebook: str, table: str, row: str, column: str, result, paper: float | None = None,
         *, ignore: tuple = (), **used) -> Cell:
    """A :class:`Cell` from a :func:`scotd_kit.stages.evaluate` result (or the reason it could not be made):
    strict and flexible accuracy, n, CI, malformed share, the runs behind it, and why it is not comparable
    with the paper's number when it is not. ``used``: settings this cell used instead of the profile's
    (``student=...``); ``ignore``: settings the cell matches with the paper's own point (``n_cots`` on the
    N grid) or that do not apply (training, for prompting)."""
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


def filter_cell(p: Profile, notebook: str, paper_task: str, stats) -> Cell:
    """§3.1's number for ``paper_task``: the share of the teacher's CoTs the supervised filter drops
    (``stats``: :func:`scotd_kit.stages.filter_stats`, or the reason the corpus could not be made)."""
    from . import paper

    why = [d for d in differences_from_paper(p) if d.split("=")[0] in CORPUS_SETTINGS or d.endswith(" profile")]
    made = {} if isinstance(stats, Exception) else stats
    return Cell(notebook, "§3.1 filter", "CoTs dropped (%)", paper_task,
                100 * made["dropped_share"] if made else None, paper.FILTER_DROPPED.get(paper_task), p.name,
                p.task(paper_task), made.get("samples"), corpus_run=made.get("corpus_run", ""),
                not_comparable="; ".join(why), unavailable="" if made else str(stats))


def cells_frame(cells):
    import pandas as pd

    cols = ["notebook", "table", "row", "column", "task_run", "ours", "ours_flexible", "ci_low", "ci_high", "n",
            "malformed", "paper", "diff", "profile", "note", "run", "student_run", "corpus_run"]
    return pd.DataFrame([c.as_row() for c in cells], columns=cols)


def markdown_table(frame) -> str:
    """A plain Markdown table (no ``tabulate`` dependency)."""
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_md(row[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _md(v) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    return f"{v:.1f}" if isinstance(v, float) else str(v).replace("|", "/").replace("\n", " ")


def save_result(name: str, cells, out_dir: str | Path, figure=None, table=None) -> Path:
    """Write ``name``'s cells (CSV, Markdown, JSON) and figure (PNG, PDF) under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = cells_frame(cells)
    shown = table if table is not None else frame
    atomic_write_text(out / f"{name}.csv", shown.to_csv(index=False))
    atomic_write_text(out / f"{name}.md", markdown_table(shown))
    atomic_write_text(out / f"{name}.cells.json", json.dumps([c.as_row() for c in cells], indent=1) + "\n")
    if figure is not None:
        for ext in ("png", "pdf"):
            figure.savefig(out / f"{name}.{ext}", dpi=150, bbox_inches="tight")
    return out


def write_cot_samples(path: str | Path, teacher_records, student_records, *, per_instance: int = 3,
                      instances: int = 2, profile: str = "", task_run: str = "") -> Path:
    """A Table 1-style sample: the teacher's CoTs for a few training instances and the student's CoT
    for a few test questions, written as Markdown (the texts verbatim, in code blocks)."""
    from collections import OrderedDict

    lines = [f"# Table 1-style sample of CoTs ({profile} profile, task run: {task_run})", "",
             "## Teacher CoTs (training instances)", ""]
    groups: "OrderedDict[str, list]" = OrderedDict()
    for r in teacher_records:
        groups.setdefault(str(r["instance_id"]), []).append(r)
    for iid, rs in list(groups.items())[:instances]:
        lines += [f"### instance {iid} (gold {rs[0].get('gold')})", ""]
        for r in rs[:per_instance]:
            lines += [f"- correct: {r.get('correct')}", "", "```", str(r.get("text", "")).strip(), "```", ""]
    lines += ["## Student CoTs (test questions, first sample)", ""]
    for r in list(student_records)[:instances * per_instance]:
        lines += [f"### {r['id']} (gold {r['gold']}, correct: {r['correct_strict']})", "", "```",
                  str(r["prompt"]).strip(), str(r["texts"][0] if r["texts"] else "").strip(), "```", ""]
    return atomic_write_text(Path(path), "\n".join(lines) + "\n")
