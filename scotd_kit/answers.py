"""Answer extraction and scoring: an explicit, tested pipeline (lm-evaluation-harness habit).

Two readings of every generation are reported side by side:

* **strict** -- SCoTD's official rule: strip leading newlines, cut at the first blank line, take
  the text after the LAST answer marker (`` So the answer is: ``), strip, compare lower-cased
  with the gold label string.  No marker, no answer.
* **flexible** -- a task-aware reading that forgives format slips: ``(B)`` vs ``(b)``, a choice
  written as its text, ``$1,200.50`` vs ``1200.5``, a missing marker (then the last answer-shaped
  span of the text counts).

Numbers are parsed by the explicit rules of :func:`parse_number`; nothing is ever ``eval``-ed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
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


def extract_strict(text: str, markers: Sequence[str] = (ANSWER_MARKER,)) -> str | None:
    """Text after the last answer marker of the cut generation, stripped; ``None`` without one.

    A space is put in front so that a generation that *starts* with ``So the answer is:``
    (a label-only student) is read like one whose marker follows a rationale.
    """
    cut = " " + cut_generation(text)
    best = -1, ""
    for marker in markers:
        pos = cut.rfind(marker)
        if pos > best[0]:
            best = pos, marker
    if best[0] < 0:
        return None
    return cut[best[0] + len(best[1]):].strip()


# --- numbers -------------------------------------------------------------------------------------

_NUMBER_RE = re.compile(
    r"(?<![\w.])-?[$€£]?\s?(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:\s*/\s*\d+)?%?")
_THOUSANDS_RE = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$")


def parse_number(text: str) -> Fraction | None:
    """Parse one number written by a person or a model; ``None`` if ``text`` is not one.

    Rules, in order: strip spaces, a trailing ``.``, currency signs and a trailing ``%`` (the
    number is kept as written: "50%" -> 50); ``1,200`` is a thousands separator only in groups
    of three, otherwise the text is not one number; ``a/b`` is a fraction; a decimal is exact.
    """
    s = text.strip().rstrip(".").replace(" ", "")
    negative = s.startswith("-")
    s = s.lstrip("-").lstrip("$€£").rstrip("%")
    if not s:
        return None
    if "," in s:
        if not _THOUSANDS_RE.match(s):
            return None
        s = s.replace(",", "")
    try:
        if "/" in s:
            num, den = s.split("/", 1)
            value = Fraction(int(num), int(den))
        else:
            value = Fraction(Decimal(s))
    except (ValueError, ZeroDivisionError, InvalidOperation):
        return None
    return -value if negative else value


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
    """The label whose name (or alias, position-aligned with ``labels``) occurs last in ``text``."""
    lowered = text.lower()
    best = -1, 0, None
    names = list(zip(labels, labels)) + list(zip(aliases, labels))
    for name, label in names:
        if not name:
            continue
        for m in re.finditer(r"(?<!\w)" + re.escape(name.lower()) + r"(?!\w)", lowered):
            # latest occurrence wins; at the same place the longer name wins
            key = (m.start(), len(name))
            if key > best[:2]:
                best = m.start(), len(name), label
    return best[2]


# --- the pipeline --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Extraction:
    """What was read from one generation."""

    strict: str | None     # the SCoTD reading, verbatim (stripped), or None without a marker
    flexible: str | None   # canonical label / number text, or None if nothing answer-shaped
    marker_found: bool


def extract(text: str, answer_type: str, labels: Sequence[str] = (), *,
            markers: Sequence[str] = (ANSWER_MARKER,), choice_texts: Sequence[str] = (),
            aliases: Sequence[str] = ()) -> Extraction:
    """Read the strict and flexible answers of one generation for a task's answer type."""
    if answer_type not in ANSWER_TYPES:
        raise ValueError(f"unknown answer type {answer_type!r}; expected one of {ANSWER_TYPES}")
    strict = extract_strict(text, markers)
    region = strict if strict is not None else cut_generation(text)
    if answer_type == NUMBER:
        value = last_number(region)
        flexible = format_number(value) if value is not None else None
    elif answer_type == CHOICE:
        flexible = _find_choice(region, labels, choice_texts)
    else:
        flexible = _find_label(region, labels, aliases)
    return Extraction(strict=strict, flexible=flexible, marker_found=strict is not None)


# What lm-evaluation-harness's GSM8K strict match ignores. Numeric golds are stored canonical ("1080")
# while GSM8K's own answers write "#### 1,080": without this the gold text itself fails the strict match.
_STRICT_NUMBER_IGNORE = re.compile(r"[,$]|\.$")


def strict_match(extraction: Extraction, gold: str) -> bool:
    """SCoTD's exact match after lower-casing; for a numeric gold, commas, ``$`` and a final ``.`` aside."""
    if extraction.strict is None:
        return False
    answer, gold = extraction.strict.lower(), gold.strip().lower()
    if answer == gold:
        return True
    return parse_number(gold) is not None and _STRICT_NUMBER_IGNORE.sub("", answer) == gold


def flexible_match(extraction: Extraction, gold: str, answer_type: str) -> bool:
    if extraction.flexible is None:
        return False
    if answer_type == NUMBER:
        a, b = parse_number(extraction.flexible), parse_number(gold)
        return a is not None and b is not None and a == b
    return extraction.flexible.lower() == gold.strip().lower()
