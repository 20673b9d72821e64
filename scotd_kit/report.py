"""Result cells next to the papers' numbers, tables and figure files.

Every notebook ends with a list of :class:`Cell` rows; ``save_result`` writes them as CSV /
Markdown (``<name>.csv``, ``<name>.md``) beside the figure (``<name>.png``, ``<name>.pdf``).
``scotd-kit reproduce`` gathers the ``*.cells.json`` files into one summary.

A difference to the paper is computed only where the kit ran the paper's own task; under the
``smoke`` / ``demo`` profiles a demo task stands in, and the row says so instead.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from .io import atomic_write_text


@dataclass
class Cell:
    notebook: str
    table: str                 # "Table 2(b)", "Fig. 2", ...
    row: str                   # e.g. "full / SCoTD"
    column: str                # the paper's task (or measure) of this cell
    ours: float | None         # accuracy in percent, measured by this run
    paper: float | None        # the paper's verified number, if it has one
    profile: str
    task_run: str              # the task the kit actually ran
    n: int | None = None       # examples behind ``ours``
    ci_low: float | None = None
    ci_high: float | None = None

    @property
    def comparable(self) -> bool:
        return self.task_run == self.column and self.profile in ("colab", "paper")

    @property
    def diff(self) -> float | None:
        if self.ours is None or self.paper is None or not self.comparable:
            return None
        return round(self.ours - self.paper, 1)

    @property
    def note(self) -> str:
        if self.comparable:
            return ""
        if self.task_run != self.column:
            return f"{self.profile} profile: {self.task_run} stands in for {self.column}; not a reproduction"
        return f"{self.profile} profile settings; not a reproduction"

    def as_row(self) -> dict:
        return {**asdict(self), "diff": self.diff, "note": self.note}


def cells_frame(cells):
    import pandas as pd

    cols = ["notebook", "table", "row", "column", "task_run", "ours", "ci_low", "ci_high", "n", "paper", "diff",
            "profile", "note"]
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
