"""Answer extraction and scoring: an explicit, tested pipeline (lm-evaluation-harness habit).

Two readings of every generation are reported side by side:

* **strict** -- SCoTD's official rule (``AnswerCleaner`` "answer_split" in
  ``dataset/answer_cleaner.py`` of the released code, github.com/liunian-harold-li/scotd): strip
  leading newlines, cut at the first blank line, ``split(" So the answer is: ")[-1]`` (the text after
  the last marker that a left-to-right split finds), strip, compare lower-cased with the gold label
  string.  A text *without* the marker is read as itself, so a bare ``(a)`` is the answer ``(a)``,
  and a rambling text is an answer that matches no label.  Whether the marker was there is reported
  separately (``marker_found``: the malformed share).
* **flexible** -- a task-aware reading that forgives format slips: ``(B)`` vs ``(b)``, a choice
  written as its text, ``$1,200.50`` vs ``1200.5``, a missing marker (then the last answer-shaped
  span of the text counts), a label without its final period.

Where the kit reads differently from SCoTD, and why, is listed in one place: docs/answer_reading.md.
Numbers are parsed by the explicit rules of :func:`parse_number`; nothing is ever ``eval``-ed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Sequence

ANSWER_MARKER = " So the answer is: "

CHOICE = "choice"   # gold is a parenthesised letter such as "(a)" or "(B)"
NUMBER = "number"   # gold is a number written canonically, e.g. "1200.5"
LABEL = "label"     # gold is one of a closed set of words, e.g. "yes" / "no"
ANSWER_TYPES = (CHOICE, NUMBER, LABEL)


def cut_generation(text: str) -> str:
    """SCoTD's first step: drop leading newlines, keep what comes before the first blank line."""
    return text.lstrip("\n").split("\n\n", 1)[0]


def _last_split(cut: str, marker: str) -> int:
    """Start of the last occurrence of ``marker`` that ``cut.split(marker)`` splits at (``-1``: none).

    ``str.split`` scans left to right and never reuses a character, so in ``"x So the answer is: So the
    answer is: (a)"`` the second marker has no space of its own and the tail is ``"So the answer is:
    (a)"``; a backwards search (``rfind``) would find an overlapping marker instead."""
    last, pos = -1, cut.find(marker)
    while pos >= 0:
        last, pos = pos, cut.find(marker, pos + len(marker))
    return last


def split_at_answer(text: str, markers: Sequence[str] = (ANSWER_MARKER,)) -> tuple[str, str] | None:
    """``(rationale, answer)`` of a generation as SCoTD splits it, both stripped; ``None`` without a marker.

    The cut generation is split where ``split(marker)[-1]`` would begin (of several markers, the one
    found latest).  A text with no such marker that *starts* with ``So the answer is:`` (the kit's
    label-only target) is read after it, with an empty rationale: SCoTD's marker needs a space before
    it, and would read the whole text as the answer."""
    cut = cut_generation(text)
    found = [(pos, len(m)) for m in markers if (pos := _last_split(cut, m)) >= 0]
    if found:
        pos, size = max(found)
        return cut[:pos].strip(), cut[pos + size:].strip()
    for marker in markers:
        head = marker.lstrip()
        if head and cut.startswith(head):
            return "", cut[len(head):].strip()
    return None


def answer_after_marker(text: str, markers: Sequence[str] = (ANSWER_MARKER,)) -> str | None:
    """Text after the answer marker of the cut generation (:func:`split_at_answer`), or ``None``.

    This is the marker-only reading (what a teacher CoT's training target is built from); the
    *scored* reading is :func:`extract_strict`.
    """
    split = split_at_answer(text, markers)
    return split[1] if split is not None else None


def extract_strict(text: str, markers: Sequence[str] = (ANSWER_MARKER,)) -> str:
    """SCoTD's answer reader: the text after the marker of the cut generation, stripped, or -- without
    a marker -- the cut generation itself, stripped (never ``None``).

    SCoTD's ``AnswerCleaner`` does ``text.split(" So the answer is: ")[-1]``, which is the whole
    (cut) text when there is no marker; greedy scoring and the self-consistency vote both use that
    reading, so a marker-less ``(a)`` is the answer ``(a)``.  Whether a marker was found is
    :func:`answer_after_marker` ``is not None`` (``Extraction.marker_found``).  The few places where
    the kit reads differently are listed in docs/answer_reading.md.
    """
    after = answer_after_marker(text, markers)
    return after if after is not None else cut_generation(text).strip()


# --- numbers -------------------------------------------------------------------------------------

# Signs people and models write: ASCII, the Unicode minus, an en dash, small and fullwidth forms.
_MINUS = "-\u2212\u2013\ufe63\uff0d"
_PLUS = "+\ufe62\uff0b"
# Spaces that only ever group thousands (no-break, narrow no-break, thin); a plain space is ambiguous.
_GROUP_SPACES = "\u00a0\u202f\u2009"
_CURRENCY = "$€£¥"
_MAX_DIGITS = 1000        # a longer "number" is runaway text, and would pass Python's int->str limit
_MAX_EXPONENT = 100

_NUMBER_RE = re.compile(
    rf"(?<![\w.])[{_MINUS}{_PLUS}]?[{_CURRENCY}]?\s?"
    rf"(?:\d+ \d+\s*/\s*\d+|\d[\d,{_GROUP_SPACES}]*(?:\.\d+)?(?:\s*/\s*\d+)?|\.\d+)%?")
_DECIMAL_RE = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d{1,4}))?")
_GROUPED_RE = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_MIXED_RE = re.compile(r"(\d+)\s+(\d+)\s*/\s*(\d+)")
_FRACTION_RE = re.compile(r"(\d+)\s*/\s*(\d+)")


def parse_number(text: str) -> Fraction | None:
    """Parse one number written by a person or a model; ``None`` if ``text`` is not one.

    Rules, in order (anything else, or anything ambiguous, is ``None`` -- "no answer"):

    * spaces around, a trailing ``.``, one leading sign (``-``, ``+``, the Unicode minus, an en
      dash, small or fullwidth forms), a currency sign after it and a trailing ``%`` are set aside
      (the number is kept as written: "50%" -> 50);
    * thousands groups: ``1,200`` (commas only in groups of three; ``1,2`` is not one number) or
      ``1 200`` with a no-break / narrow / thin space; a plain space between digits is ambiguous
      ("12 345" may be two numbers) except in a mixed fraction;
    * ``a/b`` is a fraction (``b`` > 0); ``2 1/2`` is a mixed fraction (5/2) when ``a < b``;
    * a decimal is exact; ``1e5`` is read when the exponent is at most 100; ``inf`` and ``nan``
      are not numbers, nor is anything over 1,000 digits.
    """
    s = text.strip().rstrip(".").strip()
    negative = bool(s) and s[0] in _MINUS
    if s and s[0] in _MINUS + _PLUS:
        s = s[1:]
    s = s.lstrip(_CURRENCY).strip().removesuffix("%").strip()
    if not s or sum(c.isdigit() for c in s) > _MAX_DIGITS:
        return None
    value = _unsigned(s)
    return -value if negative and value is not None else value


def _unsigned(s: str) -> Fraction | None:
    if any(c in s for c in _GROUP_SPACES):
        s = s.translate({ord(c): "," for c in _GROUP_SPACES})
        if not _GROUPED_RE.fullmatch(s):
            return None
    if "," in s:
        if not _GROUPED_RE.fullmatch(s):
            return None
        s = s.replace(",", "")
    if m := _MIXED_RE.fullmatch(s):
        whole, num, den = (int(g) for g in m.groups())
        return whole + Fraction(num, den) if 0 < num < den else None
    if m := _FRACTION_RE.fullmatch(s):
        num, den = (int(g) for g in m.groups())
        return Fraction(num, den) if den else None
    m = _DECIMAL_RE.fullmatch(s)
    if not m or abs(int(m.group(1) or 0)) > _MAX_EXPONENT:
        return None
    return Fraction(Decimal(s))


def format_number(value: Fraction) -> str:
    """Canonical text of a number: ``7``, ``-3``, ``0.5``, ``1200.5``; repeating fractions as ``a/b``."""
    if value.denominator == 1:
        return str(value.numerator)
    d = value.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d != 1:
        return f"{value.numerator}/{value.denominator}"
    return format(Decimal(value.numerator) / Decimal(value.denominator), "f").rstrip("0").rstrip(".")


def last_number(text: str) -> Fraction | None:
    """The last number in ``text`` (commas that are not thousands groups split numbers)."""
    for match in reversed(list(_NUMBER_RE.finditer(text))):
        raw = match.group(0).strip().rstrip(",")
        value = parse_number(raw)
        if value is None and "," in raw:  # "3,4" or "1,2,3": the last group is the last number
            value = parse_number(raw.rsplit(",", 1)[1])
        if value is not None:
            return value
    return None


# --- choices and labels --------------------------------------------------------------------------

_CHOICE_RE = re.compile(r"\(([A-Za-z])\)")


def _find_choice(text: str, labels: Sequence[str], choice_texts: Sequence[str]) -> str | None:
    by_letter = {label.strip("()").lower(): label for label in labels}
    for match in reversed(list(_CHOICE_RE.finditer(text))):
        label = by_letter.get(match.group(1).lower())
        if label is not None:
            return label
    bare = text.strip().rstrip(".").strip()
    if bare.lower() in by_letter:           # "B" or "b." as the whole answer
        return by_letter[bare.lower()]
    return _find_label(text, labels, choice_texts) if choice_texts else None


def _find_label(text: str, labels: Sequence[str], aliases: Sequence[str] = ()) -> str | None:
    """The label whose name (or alias, position-aligned with ``labels``) occurs last in ``text``.

    A label's final period is not needed (ANLI's ``no.`` is read in "the answer is no")."""
    lowered = text.lower()
    best = -1, 0, None
    names = list(zip(labels, labels)) + list(zip(aliases, labels))
    for name, label in names:
        name = name.lower().removesuffix(".")
        if not name:
            continue
        for m in re.finditer(r"(?<!\w)" + re.escape(name) + r"(?!\w)", lowered):
            # latest occurrence wins; at the same place the longer name wins
            key = (m.start(), len(name))
            if key > best[:2]:
                best = m.start(), len(name), label
    return best[2]


# --- the pipeline --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Extraction:
    """What was read from one generation."""

    strict: str | None     # SCoTD's reading, verbatim (stripped): after the marker, or the cut text
                           # without one; None only where nothing was read (e.g. no final answer)
    flexible: str | None   # canonical label / number text, or None if nothing answer-shaped
    marker_found: bool     # the answer marker was there (False: a "malformed" generation)


def extract(text: str, answer_type: str, labels: Sequence[str] = (), *,
            markers: Sequence[str] = (ANSWER_MARKER,), choice_texts: Sequence[str] = (),
            aliases: Sequence[str] = ()) -> Extraction:
    """Read the strict and flexible answers of one generation for a task's answer type."""
    if answer_type not in ANSWER_TYPES:
        raise ValueError(f"unknown answer type {answer_type!r}; expected one of {ANSWER_TYPES}")
    after = answer_after_marker(text, markers)
    strict = after if after is not None else cut_generation(text).strip()   # = extract_strict(text, markers)
    region = strict
    if answer_type == NUMBER:
        value = last_number(region)
        flexible = format_number(value) if value is not None else None
    elif answer_type == CHOICE:
        flexible = _find_choice(region, labels, choice_texts)
    else:
        flexible = _find_label(region, labels, aliases)
    return Extraction(strict=strict, flexible=flexible, marker_found=after is not None)


# A number as a strict answer may carry thousands commas (in groups of three), one currency ``$`` after its
# sign and one final period; lm-evaluation-harness's GSM8K strict match ignores the same.  Numeric golds are
# stored canonical ("1080") while GSM8K's own answers write "#### 1,080": without this the gold text itself
# would fail the strict match.  Anything else ("1,0,8,0", ",-3") is not a well-formed number and stays wrong.
_STRICT_NUMBER = re.compile(r"[-+]?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?\.?")


def _strict_number_text(answer: str) -> str | None:
    """``answer`` without its grouping commas, ``$`` and final period, if it is a well-formed number."""
    if not _STRICT_NUMBER.fullmatch(answer):
        return None
    return answer.removesuffix(".").replace(",", "").replace("$", "")


def strict_match(extraction: Extraction, gold: str) -> bool:
    """SCoTD's exact match after lower-casing; for a numeric gold, a well-formed number's grouping commas,
    ``$`` and final ``.`` aside.

    It compares ``extraction.strict`` whether or not a marker was found (SCoTD's reader): a
    marker-less generation whose cut text is the gold label is correct."""
    if extraction.strict is None:
        return False
    answer, gold = extraction.strict.lower(), gold.strip().lower()
    if answer == gold:
        return True
    return parse_number(gold) is not None and _strict_number_text(answer) == gold


def flexible_match(extraction: Extraction, gold: str, answer_type: str) -> bool:
    if extraction.flexible is None:
        return False
    if answer_type == NUMBER:
        a, b = parse_number(extraction.flexible), parse_number(gold)
        return a is not None and b is not None and a == b
    return extraction.flexible.lower() == gold.strip().lower()
