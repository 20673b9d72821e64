"""Work written as it goes: the finished items of a long run, appended to a JSON-lines file and read
back when the run is made again, so a kill loses at most the batch in flight.

A journal belongs to one piece of work, named by its header (the settings its items were made under,
the first line): a journal with another header is from other work and is started afresh.  Each batch is
one ``write`` + ``fsync``; a kill tears at most the last line, which the reader drops (that item is made
again).  A failed write (a full disk) is cut back to the last whole line and raised as an ``OSError``
naming the file: what was written before stays, and a rerun resumes from it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path


class Journal:
    """``done()``: ``{id: item}`` of the items written so far; ``append(items)``: write a batch."""

    def __init__(self, path: str | Path, header: dict):
        self.path = Path(path)
        self.header = json.loads(json.dumps(header, sort_keys=True, default=str))

    def done(self) -> dict[str, dict]:
        try:
            lines = self.path.read_bytes().split(b"\n")
        except FileNotFoundError:
            return {}
        items: dict[str, dict] = {}
        for i, raw in enumerate(lines):
            try:
                record = json.loads(raw)
            except ValueError:              # the torn last line of a kill (or an empty tail): made again
                break
            if i == 0:
                if record != {"header": self.header}:
                    return {}               # another run's journal: started afresh by the first append
                continue
            items[str(record["id"])] = record
        return items

    def append(self, items: list[dict]) -> None:
        if not items:
            return
        fresh = not self._same_header()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lines = ([json.dumps({"header": self.header}, sort_keys=True)] if fresh else []) + \
                [json.dumps(item) for item in items]   # ASCII: a lone surrogate cannot break a write
        data = ("\n".join(lines) + "\n").encode("utf-8")
        with open(self.path, "wb" if fresh else "r+b", buffering=0) as f:
            start = 0 if fresh else _after_last_line(f)     # a torn tail is cut away, not glued to
            f.seek(start)
            f.truncate()
            try:
                view = memoryview(data)
                while view:
                    view = view[f.write(view):]
                os.fsync(f.fileno())
            except OSError as e:
                f.truncate(start)           # never half a batch: the rerun asks for all of it again
                raise OSError(e.errno, f"writing the progress of this run to {self.path} failed ({e.strerror or e}); "
                                       f"the items written before are kept and a rerun resumes from them") from None

    def _same_header(self) -> bool:
        try:
            with open(self.path, "rb") as f:
                return json.loads(f.readline()) == {"header": self.header}
        except (OSError, ValueError):
            return False

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _after_last_line(f) -> int:
    """The offset just past the file's last newline (its end when it ends with one)."""
    size = f.seek(0, os.SEEK_END)
    pos = size
    while pos > 0:
        step = min(pos, 1 << 16)
        f.seek(pos - step)
        block = f.read(step)
        cut = block.rfind(b"\n")
        if cut >= 0:
            return pos - step + cut + 1
        pos -= step
    return 0
