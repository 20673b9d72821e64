"""Small file helpers: every reader names the file and line of a bad record, every writer is atomic."""
from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator


class DataError(ValueError):
    """A record that cannot be read or understood; the message names the file and line."""


def _text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line_number, text)`` of each line (newline kept); bad UTF-8 is a DataError naming the line."""
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                yield lineno, raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}:{lineno}: not valid UTF-8 (byte {e.start + 1} of the line: "
                                f"{raw[e.start:e.start + 4]!r}); re-save the file as UTF-8") from None


def _parse(path: Path, lineno: int, parse):
    """``parse()``; JSON that is bad or nested too deeply is a DataError naming the line it starts on."""
    try:
        return parse()
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
    except RecursionError:
        raise DataError(f"{path}:{lineno}: JSON nested too deeply") from None


def _object(path: Path, lineno: int, record) -> dict:
    if not isinstance(record, dict):
        raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
    return record


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, record)`` for each non-empty line of a JSON-lines file."""
    path = Path(path)
    empty = True
    for lineno, line in _text_lines(path):
        if not line.strip():
            continue
        empty = False
        yield lineno, _object(path, lineno, _parse(path, lineno, lambda: json.loads(line)))
    if empty:
        raise DataError(f"{path}: no records (the file is empty)")


def _json_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        lineno = raw[:e.start].count(b"\n") + 1
        raise DataError(f"{path}:{lineno}: not valid UTF-8; re-save the file as UTF-8") from None


def read_json_list(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield ``(index, record)`` for a file holding one JSON list of objects (index from 1)."""
    for i, (_, record) in enumerate(read_json_records(path), 1):
        yield i, record


def read_json_records(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, record)`` for a file holding one JSON list of objects: the line where
    each record starts, so a bad record is reported where an editor shows it."""
    path = Path(path)
    text = _json_text(path)
    decoder = json.JSONDecoder()
    pos = _skip(text, 0)
    if not text.startswith("[", pos):
        kind = "nothing" if pos >= len(text) else f"{text[pos]!r}"
        raise DataError(f"{path}:{text.count(chr(10), 0, pos) + 1}: expected a JSON list of records, found {kind}")
    pos, count, line, line_pos = _skip(text, pos + 1), 0, 1, 0
    while not text.startswith("]", pos):
        line, line_pos = line + text.count("\n", line_pos, pos), pos
        record, end = _parse(path, line, lambda: decoder.raw_decode(text, pos))
        count += 1
        yield line, _object(path, line, record)
        pos = _skip(text, end)
        if text.startswith(",", pos):
            pos = _skip(text, pos + 1)
        elif not text.startswith("]", pos):
            raise DataError(f"{path}:{text.count(chr(10), 0, pos) + 1}: expected ',' or ']' after a record")
    if _skip(text, pos + 1) != len(text):
        raise DataError(f"{path}: text after the closing ']' of the list")
    if not count:
        raise DataError(f"{path}: no records (the list is empty)")


def _skip(text: str, pos: int) -> int:
    """The position of the next non-whitespace character (JSON whitespace) at or after ``pos``."""
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


# A long review is data, not an attack: csv's default 128 KiB field limit would cut IMDB-sized text.
_FIELD_LIMIT = 64 * 2 ** 20


def read_table(path: str | Path, delimiter: str = "\t", fieldnames: list[str] | None = None,
               quoting: int = csv.QUOTE_MINIMAL) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, row)`` of a TSV/CSV file with a header (or ``fieldnames``), one row a line.

    ``quoting=csv.QUOTE_NONE`` for files that never quote (GLUE's SST-2): a stray ``"`` is then
    text.  With quoting, a quote that swallows a line break would merge rows: that is an error
    naming the lines, as is a row with the wrong number of columns.
    """
    path = Path(path)
    csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
    lines = _text_lines(path)
    reader = csv.DictReader((line for _, line in lines), delimiter=delimiter, fieldnames=fieldnames,
                            quoting=quoting)
    last, rows = 1 if fieldnames is None else 0, 0
    try:
        for row in reader:
            if reader.line_num - last > 1:
                raise DataError(f"{path}:{last + 1}: a quote opened here is closed on line {reader.line_num}, "
                                f"merging {reader.line_num - last} lines into one row; fix the stray quote")
            last = reader.line_num
            if None in row or any(v is None for v in row.values()):
                raise DataError(f"{path}:{reader.line_num}: expected {len(reader.fieldnames)} columns "
                                f"({', '.join(reader.fieldnames)})")
            rows += 1
            yield reader.line_num, row
    except csv.Error as e:
        raise DataError(f"{path}:{reader.line_num}: {e}") from None
    if not rows:
        raise DataError(f"{path}: no rows under the header")


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` so that readers see the old file or the new one, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:     # a full disk says "[Errno 28]" and nothing of where: name the file
        Path(tmp).unlink(missing_ok=True)
        if str(path) in str(e):
            raise
        raise OSError(e.errno, f"writing {path} failed ({e.strerror or e}); the previous {path.name}, if any, "
                               f"is unchanged") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_jsonl(path: str | Path, records: Iterable[dict]) -> Path:
    return atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
