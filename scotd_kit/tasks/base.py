"""What a task is: a small declarative spec (lm-evaluation-harness habit).

A :class:`TaskSpec` says where a dataset's splits live (hub id, or the original published files
under :func:`scotd_kit.paths.data_dir`, or a generator), how one raw record becomes an
:class:`Example` (the question formatted exactly as SCoTD's code does, and the gold label), and
how answers are read from generated text.  Loading, extraction and scoring are shared code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from .. import answers
from ..io import DataError

Record = dict
Reader = Callable[[Path], Iterator[tuple[int, Record]]]


@dataclass(frozen=True)
class Example:
    """One instance: ``question`` is x as the student sees it after ``Q: ``; ``label`` is gold y."""

    id: str
    question: str
    label: str
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FileSplit:
    """A split stored in its original published file, relative to the data dir."""

    path: str
    reader: Reader


@dataclass(frozen=True)
class HubSplit:
    """A split on the Hugging Face hub, loaded through ``datasets.load_dataset``."""

    path: str
    split: str
    name: str | None = None


@dataclass(frozen=True)
class TaskSpec:
    name: str
    description: str
    answer_type: str                                    # answers.CHOICE | NUMBER | LABEL
    from_file: Callable[[Record, str], Example] | None = None   # (record, where) -> Example
    from_hub: Callable[[Record, str], Example] | None = None
    files: Mapping[str, FileSplit] = field(default_factory=dict)
    hub: Mapping[str, HubSplit] = field(default_factory=dict)
    generate: Callable[[str, int], list[Example]] | None = None  # (split, seed) -> examples
    generated_splits: Sequence[str] = ()
    # few-shot CoT exemplars [(x, rationale, y), ...] in this task's own format, or a function that
    # builds them (generated tasks); the teacher prompt and the prompting baselines use them
    exemplars: Sequence[tuple[str, str, str]] | Callable[[], Sequence[tuple[str, str, str]]] = ()
    labels: Sequence[str] = ()          # the closed label set (choice tasks: the largest one)
    aliases: Sequence[str] = ()         # position-aligned with labels, for flexible matching
    markers: Sequence[str] = (answers.ANSWER_MARKER,)
    data_subdir: str = ""               # where the original files sit under the data dir
    eval_split: str = "validation"      # the split results are reported on (a profile may override it)

    def few_shot_exemplars(self) -> list[tuple[str, str, str]]:
        """The task's few-shot CoT exemplars ``[(x, rationale, y), ...]`` (empty: none are known)."""
        return [tuple(e) for e in (self.exemplars() if callable(self.exemplars) else self.exemplars)]

    @property
    def splits(self) -> list[str]:
        return sorted(set(self.files) | set(self.hub) | set(self.generated_splits))

    def extract(self, text: str, example: Example | None = None) -> answers.Extraction:
        """Read the strict and flexible answers of one generation for this task."""
        labels = tuple(example.meta.get("labels", self.labels)) if example else tuple(self.labels)
        choice_texts = tuple(example.meta.get("choice_texts", ())) if example else ()
        return answers.extract(text, self.answer_type, labels, markers=self.markers,
                               choice_texts=choice_texts, aliases=self.aliases)

    def score(self, text: str, example: Example) -> dict:
        """Extraction and both matches for one generation, as a plain record."""
        ex = self.extract(text, example)
        labels = tuple(example.meta.get("labels", self.labels))
        return {
            "strict": ex.strict,
            "flexible": ex.flexible,
            "marker_found": ex.marker_found,
            "strict_correct": answers.strict_match(ex, example.label),
            "flexible_correct": answers.flexible_match(ex, example.label, self.answer_type),
            # Fig. 6 counts answers outside the label set; numbers have no closed set
            "in_label_set": (ex.flexible is not None) if not labels else
                            (ex.strict is not None and ex.strict.lower() in {l.lower() for l in labels}),
        }


def require(record: Record, key: str, where: str) -> Any:
    """``record[key]``, or a :class:`DataError` naming where the record came from."""
    if not isinstance(record, Mapping) or key not in record:
        raise DataError(f"{where}: missing field {key!r}")
    return record[key]


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def text_field(record: Record, key: str, where: str) -> str:
    """A non-empty string field (a question, a premise): anything else is a :class:`DataError`."""
    value = require(record, key, where)
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: field {key!r} must be a non-empty string, not {_kind(value)} {str(value)[:40]!r}")
    return value


def id_field(record: Record, key: str, where: str) -> str:
    """An id: a non-empty string or an integer (``null`` would silently become ``"None"``)."""
    value = require(record, key, where)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or (isinstance(value, str) and not value.strip()):
        raise DataError(f"{where}: field {key!r} must be a non-empty string or an integer, not {_kind(value)}")
    return str(value)


def string_list(record: Record, key: str, where: str) -> list[str]:
    """An optional list of strings (``"abc"`` is not three facts)."""
    value = record.get(key, []) if isinstance(record, Mapping) else []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataError(f"{where}: field {key!r} must be a list of strings, not {_kind(value)}")
    return value


def mapping_field(record: Record, key: str, where: str) -> Mapping:
    value = require(record, key, where)
    if not isinstance(value, Mapping):
        raise DataError(f"{where}: field {key!r} must be an object, not {_kind(value)}")
    return value


def choice_list(labels: Any, texts: Any, key: Any, where: str, count: int) -> tuple[list[str], list[str], str]:
    """``(labels, texts, answer key)`` of a multiple-choice record, checked: ``count`` choices with
    distinct single-letter labels and non-empty texts, and a key that is one of the labels."""
    if not isinstance(labels, list) or not isinstance(texts, list) or len(labels) != len(texts):
        raise DataError(f"{where}: choices must be a list of {{label, text}} objects")
    if len(labels) != count:
        raise DataError(f"{where}: {len(labels)} choices, this task has {count}")
    for label, text in zip(labels, texts):
        if not isinstance(label, str) or not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}: choice {label!r} must have a string label and a non-empty text")
    if len({l.strip().upper() for l in labels}) != count:
        raise DataError(f"{where}: duplicate choice labels {labels}")
    if not isinstance(key, str) or key not in labels:
        raise DataError(f"{where}: answerKey {key!r} is not one of the choice labels {labels}")
    return labels, texts, key


def record_choices(question: Mapping, where: str) -> tuple[list, list]:
    """Labels and texts of ``question["choices"]`` (a list of ``{"label", "text"}`` objects)."""
    choices = require(question, "choices", where)
    if not isinstance(choices, list) or not all(isinstance(c, Mapping) for c in choices):
        raise DataError(f"{where}: field 'choices' must be a list of {{label, text}} objects, not {_kind(choices)}")
    return [c.get("label") for c in choices], [c.get("text") for c in choices]


def hub_choices(record: Record, where: str) -> tuple[list, list]:
    """Labels and texts of a hub record's ``choices`` (``{"label": [...], "text": [...]}``)."""
    ch = mapping_field(record, "choices", where)
    return list(ch.get("label") or []), list(ch.get("text") or [])


def letter_label(letter: str, where: str, lower: bool = True) -> str:
    """``"B"`` -> ``"(b)"``; SCoTD writes choice labels in parentheses."""
    letter = str(letter).strip()
    if len(letter) != 1 or not letter.isalpha():
        raise DataError(f"{where}: answer key {letter!r} is not a single letter")
    return f"({letter.lower() if lower else letter.upper()})"
