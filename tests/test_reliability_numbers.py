"""Reliability (docs/reliability.md), defect 11: numbers as people and models write them; never an exception, ambiguity is "no answer"."""
from fractions import Fraction

import pytest

from scotd_kit import answers as A


@pytest.mark.parametrize("text", ["INF", "inf", "-Infinity", "NaN", "1E4300", "1e-5000", "#### inf",
                                  "9" * 5000, "1" + "0" * 1001, "1e101"])
def test_overflowing_or_non_finite_numbers_are_no_answer_not_an_exception(text):
    assert A.parse_number(text) is None


def test_large_but_sane_numbers_round_trip():
    assert A.format_number(A.parse_number("1e100")) == "1" + "0" * 100
    assert A.format_number(A.parse_number("9" * 1000)) == "9" * 1000
    assert A.parse_number("2.5e3") == 2500


@pytest.mark.parametrize("text,value", [
    ("\u22125", -5), ("\u2013 5", -5), ("\uff0d5", -5), ("\ufe635", -5), ("+5", 5), ("\uff0b5", 5),
    ("\u2212$1,200", -1200),
    ("2 1/2", Fraction(5, 2)), ("-2 1/2", Fraction(-5, 2)), ("2 3/2", None),    # improper mixed: ambiguous
    ("1,234,567", 1234567), ("1\u202f234", 1234), ("1\u00a0234\u00a0567.5", Fraction(2469135, 2)),
    ("12 345", None),                                                             # plain space: two numbers?
    ("1,23", None), ("1\u202f23", None), ("--5", None), ("5-", None), ("1/0", None),
])
def test_signs_mixed_fractions_and_thousands_groups(text, value):
    assert A.parse_number(text) == value


def test_last_number_reads_unicode_minus_and_mixed_fractions():
    assert A.last_number("It fell to \u22123 degrees") == -3
    assert A.last_number("She ate 2 1/2 pies") == Fraction(5, 2)
    assert A.last_number("about 1\u202f200 people") == 1200
    assert A.extract("So the answer is: \u221212", A.NUMBER).flexible == "-12"
    assert A.extract("So the answer is: INF", A.NUMBER).flexible is None
