"""A teacher corpus on disk: append-only JSON lines, written as samples arrive, resumable.

Each record is keyed by a hash of (teacher id, prompt hash, sampling settings, instance id,
sample index), so a rerun with the same settings finds what it already has and asks only for the
rest (top-up from N=5 to N=30 asks for 25 more per instance); changing any of them asks anew.

Crash safety: a batch is written with one ``write`` and ``fsync``-ed, so at worst the last line is
torn.  The writer (:meth:`Corpus.writer`) detects it, warns with the file and line, truncates it
away and lets the sampler ask for that sample again; readers skip it with the same warning.  A
writer holds ``<corpus>.lock`` (filelock): a second run on the same corpus is refused.  Readers
take no lock: a writer only appends whole records, so a reader sees every record written before
it looked (``sample_corpus`` with nothing missing is a reader).

Record schema (curation reads these names):
``key, task, instance_id, index, sample_index, teacher, settings, prompt_hash, gold, text,
rationale, answer, answer_flexible, correct, correct_flexible, parse_status, mean_logprob,
prompt_tokens, completion_tokens``.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from filelock import FileLock, Timeout

from .io import DataError

RECORD_FIELDS = ("key", "task", "instance_id", "index", "sample_index", "teacher", "settings", "prompt_hash",
                 "gold", "text", "rationale", "answer", "answer_flexible", "correct", "correct_flexible",
                 "parse_status", "mean_logprob", "prompt_tokens", "completion_tokens")
PARSE_STATUSES = ("ok", "no_marker", "empty", "length")
_KEY_FIELDS = ("teacher", "prompt_hash", "settings", "instance_id", "sample_index")


class CorpusLockedError(RuntimeError):
    """Another run holds the corpus."""


class TornLineWarning(UserWarning):
    """The last line of a corpus was cut by a crash."""


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def record_key(teacher_id: str, prompt_hash: str, settings: dict, instance_id: str, sample_index: int) -> str:
    """The identity of one sample; any change in what would produce it changes the key."""
    payload = json.dumps([teacher_id, prompt_hash, settings, str(instance_id), int(sample_index)],
                         sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:24]


def _scan(path: Path) -> tuple[list[dict], int, int | None]:
    """``(records, bytes of complete records, line number of a torn last line or None)``.

    A line is complete when it ends with a newline, or when it is the last line and a whole,
    verified record (a crash between the record and its newline loses nothing).  A bad complete
    line -- not JSON, or a key that does not match the record's content (an edited file) -- is
    corruption, not a crash, and raises :class:`DataError` naming the file and line.
    """
    records, good_bytes, torn = [], 0, None
    if not path.exists():
        return records, 0, None
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.endswith(b"\n"):
                rec = _parse_tail(raw)
                if rec is None:
                    torn = lineno
                    break
            good_bytes += len(raw)
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise DataError(f"{path}:{lineno}: corpus line is not valid JSON ({e}); "
                                f"fix or remove that line") from None
            problem = _key_problem(rec)
            if problem:
                raise DataError(f"{path}:{lineno}: {problem}; the file was edited or mixed with another "
                                f"corpus -- restore it or remove that line (the sample is then asked again)")
            records.append(rec)
    return records, good_bytes, torn


def _parse_tail(raw: bytes) -> dict | None:
    """A last line without its newline: the record if it is whole and its key verifies, else None."""
    try:
        rec = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return rec if _key_problem(rec) is None else None


def _key_problem(rec) -> str | None:
    """Why ``rec`` is not a record whose key is the hash of its own content; None when it is."""
    if not isinstance(rec, dict) or "key" not in rec:
        return "corpus record without a 'key'"
    missing = [k for k in _KEY_FIELDS if k not in rec]
    if missing:
        return f"corpus record {rec['key']!r} lacks {', '.join(missing)}"
    if type(rec["sample_index"]) is not int:
        return f"corpus record {rec['key']!r}: sample_index {rec['sample_index']!r} is not an integer"
    try:
        expected = record_key(rec["teacher"], rec["prompt_hash"], rec["settings"], rec["instance_id"],
                              rec["sample_index"])
    except (TypeError, ValueError):
        return f"corpus record {rec['key']!r} has fields of the wrong type"
    if expected != rec["key"]:
        return (f"key {rec['key']!r} does not match the record's teacher / prompt / settings / instance "
                f"{rec['instance_id']!r} / sample {rec['sample_index']!r}")
    return None


def _warn_torn(path: Path, lineno: int, action: str) -> None:
    warnings.warn(f"{path}:{lineno}: torn last line (a write cut short, e.g. by a crash); {action}",
                  TornLineWarning, stacklevel=3)


class Corpus:
    """Read access to a corpus file; :meth:`writer` gives the single writer."""

    def __init__(self, path: str | os.PathLike):
        # the resolved path: a corpus reached through a symlink or "../" shares its lock and ledger
        self.path = Path(os.path.realpath(path))
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.ledger_path = self.path.with_name(self.path.stem + ".ledger.json")
        self.estimate = None   # set by a dry run of sample_corpus
        self.stopped = None    # why the last sampling run stopped early ("budget"), if it did

    def __repr__(self) -> str:
        return f"Corpus({str(self.path)!r})"

    def records(self) -> list[dict]:
        """Every complete record, first occurrence of each key, in file order."""
        records, _, torn = _scan(self.path)
        if torn is not None:
            _warn_torn(self.path, torn, "skipped (the next sampling run truncates it and asks again)")
        seen, out = set(), []
        for r in records:
            if r["key"] not in seen:
                seen.add(r["key"])
                out.append(r)
        return out

    def __iter__(self) -> Iterator[dict]:
        return iter(self.records())

    def __len__(self) -> int:
        return len(self.records())

    def keys(self) -> set[str]:
        return {r["key"] for r in self.records()}

    def complete_keys(self) -> set[str]:
        """The keys of the complete records, read without the lock and without a warning: a torn last
        line may be a writer's batch in flight, and the writer repairs what a crash left."""
        records, _, _ = _scan(self.path)
        return {r["key"] for r in records}

    def by_instance(self) -> dict[str, list[dict]]:
        """``instance_id -> records`` sorted by sample index (instances in first-seen order)."""
        groups: dict[str, list[dict]] = defaultdict(list)
        for r in self.records():
            groups[str(r["instance_id"])].append(r)
        return {k: sorted(v, key=lambda r: r["sample_index"]) for k, v in groups.items()}

    def count(self, instance_id: str) -> int:
        return len(self.by_instance().get(str(instance_id), []))

    @contextmanager
    def writer(self) -> Iterator["CorpusWriter"]:
        """Hold the corpus lock, repair a torn tail, and yield an appender."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.lock_path), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise CorpusLockedError(
                f"{self.path} is being written by another sampling run (lock file {self.lock_path}); "
                f"wait for it to finish, or use another corpus_path. If no run is alive, the lock is "
                f"released automatically.") from None
        try:
            writer = CorpusWriter(self.path)
            try:
                yield writer
            finally:
                writer.close()
        finally:
            lock.release()


class CorpusWriter:
    """Appends batches; each batch is one write + fsync, so a crash tears at most the last line.

    A failed write (disk full, file size limit) is undone: the file is cut back to its last
    complete record, so the corpus never holds half a batch and the ledger can match it.
    """

    def __init__(self, path: Path):
        self.path = path
        records, good_bytes, torn = _scan(path)
        if torn is not None:
            _warn_torn(path, torn, "truncated away; that sample will be asked again")
            with path.open("r+b") as f:
                f.truncate(good_bytes)
                f.flush()
                os.fsync(f.fileno())
        self.keys = {r["key"] for r in records}
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if good_bytes and not _ends_with_newline(path):
            self._write(b"\n")           # a whole last record that lost only its newline

    def append(self, records: Iterable[dict]) -> int:
        """Write new records (keys already present are skipped); returns how many were written."""
        lines, keys = [], []
        for r in records:
            if r["key"] in self.keys or r["key"] in keys:
                continue
            keys.append(r["key"])
            lines.append(_line(r))
        if lines:
            self._write(b"".join(lines))
            self.keys.update(keys)
        return len(lines)

    def _write(self, data: bytes) -> None:
        size = os.fstat(self._fd).st_size
        try:
            _write_all(self._fd, data)
            os.fsync(self._fd)
        except OSError as e:
            os.ftruncate(self._fd, size)    # frees what the failed write took: no half batch stays
            raise OSError(e.errno, f"writing {self.path} failed ({e.strerror}); the batch was not kept "
                                   f"(the corpus holds every earlier sample); fix the cause and rerun to "
                                   f"continue") from None

    def close(self) -> None:
        os.close(self._fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _line(record: dict) -> bytes:
    text = json.dumps(record, ensure_ascii=False) + "\n"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # a lone surrogate (valid JSON from a server, not encodable as UTF-8): \u-escape it, losslessly
        return (json.dumps(record, ensure_ascii=True) + "\n").encode("ascii")


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def load_corpus(path: str | os.PathLike) -> list[dict]:
    """All records of a corpus file (a torn last line is skipped with a warning)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"corpus {path} does not exist")
    return Corpus(path).records()
