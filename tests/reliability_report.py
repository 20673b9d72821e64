"""Figures of the reliability campaign: the tests record what they tried, docs/reliability.md shows it.

A campaign test calls :func:`record`; when ``SCOTD_RELIABILITY_REPORT`` names a file, the entry is
appended to it (JSON lines), otherwise nothing is written.  ``python -m tests.reliability_report
FILE`` renders the entries into the table between the markers of ``docs/reliability.md``::

    SCOTD_RELIABILITY_REPORT=/tmp/rel.jsonl python -m pytest -q tests/test_reliability_*.py
    python -m tests.reliability_report /tmp/rel.jsonl
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

ENV = "SCOTD_RELIABILITY_REPORT"
DOC = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"


def record(test: str, fault: str, tried: int, outcome: str, lost: int, **figures) -> None:
    """One fault or input class: how often it was tried, what happened, how many samples / steps /
    rows were lost or paid twice (the target is 0), and any measured figures."""
    path = os.environ.get(ENV)
    if not path:
        return
    entry = {"test": test, "fault": fault, "tried": tried, "outcome": outcome, "lost": lost,
             "figures": figures, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
             "heavy": os.environ.get("SCOTD_TEST_HEAVY") == "1"}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def render(entries: list[dict]) -> str:
    when = max((e["when"] for e in entries), default="never")
    lines = [f"Measured {when} on {platform.machine()} / Python {sys.version.split()[0]}"
             f"{' (heavy variants)' if any(e['heavy'] for e in entries) else ''}.", "",
             "| fault or input class | tried | what happened | lost or paid twice | measured | test |",
             "|---|---|---|---|---|---|"]
    for e in entries:
        figs = ", ".join(f"{k} {v}" for k, v in e["figures"].items())
        lines.append(f"| {e['fault']} | {e['tried']} | {e['outcome']} | {e['lost']} | {figs} | `{e['test']}` |")
    return "\n".join(lines)


def main(path: str) -> None:
    entries = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    doc = DOC.read_text(encoding="utf-8")
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{render(entries)}\n{END}{tail}", encoding="utf-8")
    print(f"{DOC}: {len(entries)} rows")


if __name__ == "__main__":
    main(sys.argv[1])
