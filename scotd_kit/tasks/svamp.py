"""SVAMP (Patel et al. 2021): ``Body + " " + Question``, a numeric answer (Socratic CoT).

Offline, the 1,000-problem challenge set ``SVAMP.json`` is the split ``all``.  SVAMP has no
official train / test split, so the kit defines one (Socratic CoT needs one; the paper's own is
not published): a problem is in ``test`` when the first byte of ``sha256("svamp/" + ID)`` is below
77 (30.1 % of the byte range), else in ``train``.  The rule depends on the ID alone, so it is
deterministic, independent of file order and stable when records are added; on SVAMP.json it puts
715 problems in ``train`` and 285 in ``test`` (``tests/test_socratic_tasks.py`` checks both counts
and that the two parts are disjoint and cover ``all``).  The hub copy ``ChilleD/SVAMP`` has its own
700 / 300 split, which is NOT this one: its splits are ``hub_train`` / ``hub_test`` here.
"""
import hashlib

from ..io import DataError, read_json_records
from .. import answers
from .base import Example, FileSplit, HubSplit, TaskSpec, id_field, require, text_field
from .gsm8k import EXEMPLARS   # Wei et al. 2022's math set, as SCoTD's svamp_local.py uses

TEST_BYTE_BELOW = 77


def split_of(problem_id: str) -> str:
    """``"train"`` or ``"test"``: the kit's deterministic split of one SVAMP ID (see the module doc)."""
    first = hashlib.sha256(f"svamp/{problem_id}".encode()).digest()[0]
    return "test" if first < TEST_BYTE_BELOW else "train"


def _reader(split: str):
    def read(path):
        for lineno, record in read_json_records(path):
            if split_of(str(require(record, "ID", f"{path}:{lineno}"))) == split:
                yield lineno, record
    return read


def convert(record, where):
    body, question = text_field(record, "Body", where), text_field(record, "Question", where)
    raw = require(record, "Answer", where)
    value = answers.parse_number(str(raw)) if isinstance(raw, (int, float, str)) and not isinstance(raw, bool) else None
    if value is None:
        raise DataError(f"{where}: Answer {raw!r} is not a number")
    return Example(id=id_field(record, "ID", where), question=f"{body.strip()} {question.strip()}",
                   label=answers.format_number(value),
                   meta={"equation": record.get("Equation", ""), "type": record.get("Type", "")})


TASK = TaskSpec(
    name="svamp",
    description="SVAMP arithmetic word problems (Socratic CoT)",
    answer_type=answers.NUMBER,
    from_file=convert, from_hub=convert, data_subdir="svamp", eval_split="test",
    files={"all": FileSplit("SVAMP.json", read_json_records),
           "train": FileSplit("SVAMP.json", _reader("train")),
           "test": FileSplit("SVAMP.json", _reader("test"))},
    hub={"hub_train": HubSplit("ChilleD/SVAMP", "train"), "hub_test": HubSplit("ChilleD/SVAMP", "test")},
    exemplars=EXEMPLARS,
)
