"""Figures in the papers' layout: grouped bars for tables, lines for the scaling figures."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # batch runs and tests have no display; notebooks still show the figure
import matplotlib.pyplot as plt  # noqa: E402


def _task_label(frame, key: str, value) -> str:
    """``value`` of ``key``, naming the task actually run where a stand-in ran for the paper's task
    (cells keep the paper's task in ``column`` and the one run in ``task_run``)."""
    if key == "column" and "task_run" in frame:
        runs = list(dict.fromkeys(frame.loc[frame[key] == value, "task_run"]))
        if runs and runs != [value]:
            return f"{', '.join(map(str, runs))} (stand-in for {value})"
    return str(value)


def _comparable_paper(paper, y: str):
    """The paper's numbers only where the paper's own task ran: no reference bar over a stand-in."""
    if paper is not None and {"task_run", "column"} <= set(paper.columns):
        paper = paper.assign(**{y: paper[y].where(paper["task_run"] == paper["column"])})
    return paper


def grouped_bars(frame, *, x: str, hue: str, y: str, title: str, ylabel: str = "accuracy (%)", paper=None,
                 chance=None):
    """Bars of ``y`` grouped by ``x`` and coloured by ``hue``; ``paper`` (same shape) as hollow bars,
    drawn only for cells whose task is the paper's own (never over a stand-in task; the title says
    "hollow: paper" only when one is drawn). ``chance``: guessing's accuracy, one number for the whole
    plot or {hue value: number} (a dotted mark over each of that hue's bars)."""
    paper = _comparable_paper(paper, y)
    groups, hues = list(dict.fromkeys(frame[x])), list(dict.fromkeys(frame[hue]))
    width = 0.8 / max(len(hues), 1)
    fig, ax = plt.subplots(figsize=(max(4, 1.6 * len(groups) + 1), 3.2))
    drew_paper = drew_chance = False
    for j, h in enumerate(hues):
        sub = frame[frame[hue] == h].set_index(x)
        xs = [i + (j - (len(hues) - 1) / 2) * width for i in range(len(groups))]
        ax.bar(xs, [sub[y].get(g, float("nan")) for g in groups], width, label=_task_label(frame, hue, h))
        if paper is not None:
            ref = [paper[paper[hue] == h].set_index(x)[y].get(g, float("nan")) for g in groups]
            ax.bar(xs, ref, width, fill=False, edgecolor="black", linestyle="--", linewidth=0.8)
            drew_paper = drew_paper or any(v == v for v in ref)           # NaN != NaN: nothing drawn
        level = chance.get(h) if isinstance(chance, dict) else None
        if level is not None:
            ax.hlines([level] * len(xs), [v - width / 2 for v in xs], [v + width / 2 for v in xs], colors="black",
                      linestyles=":", linewidth=1.2, label=None if drew_chance else "chance")
            drew_chance = True
    if chance is not None and not isinstance(chance, dict):
        ax.axhline(chance, linestyle=":", color="black", linewidth=1.2, label="chance")
    labels = [str(g) for g in groups]
    # long row names ("teacher / self-consistency") overlap side by side: slant them when the longest is
    # wider than its group (~0.09 in per character at the default font, 1.6 in per group)
    slant = max(map(len, labels), default=0) * 0.09 > 1.6
    ax.set_xticks(range(len(groups)), labels, rotation=20 if slant else 0, ha="right" if slant else "center",
                  fontsize=7 if slant else None)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title} (hollow: paper)" if drew_paper else title, fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    ax.set_ylim(0, 100)
    fig.tight_layout()
    return fig


def lines(frame, *, x: str, hue: str, y: str, title: str, xlabel: str, ylabel: str = "accuracy (%)",
          hlines: dict | None = None, logx: bool = False):
    """One line per ``hue`` of ``y`` against ``x``; ``hlines`` = {label: value} reference lines."""
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    for h, sub in frame.groupby(hue, sort=False):
        sub = sub.sort_values(x)
        ax.plot(sub[x], sub[y], marker="o", label=str(h))
    for label, value in (hlines or {}).items():
        if value is None:                   # no chance for an open-ended task without examples
            continue
        ax.axhline(value, linestyle="--", color="grey", linewidth=1)
        ax.text(ax.get_xlim()[0], value, f" {label}", va="bottom", fontsize=7, color="grey")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def panels(frame, *, panel: str, x: str, hue: str, y: str, title: str, xlabel: str, ylabel: str = "accuracy (%)",
           hlines: dict | None = None):
    """One panel per value of ``panel`` (one per task, as the paper's Fig. 2), lines per ``hue`` in each;
    ``hlines`` = {panel value: {label: value}} reference lines (a label-only baseline, chance); a panel
    is titled with the task actually run where a stand-in ran for the paper's."""
    names = list(dict.fromkeys(frame[panel]))
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        for h, sub in frame[frame[panel] == name].groupby(hue, sort=False):
            sub = sub.sort_values(x)
            ax.plot(sub[x], sub[y], marker="o", label=str(h))
        for (label, value), style in zip((hlines or {}).get(name, {}).items(), ("--", ":", "-.")):
            if value is not None and value == value:   # None / NaN: a baseline that could not be made
                ax.axhline(value, linestyle=style, color="grey", linewidth=1, label=label)
        ax.set_title(_task_label(frame, panel, name), fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
