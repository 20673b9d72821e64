"""SVAMP (Patel et al. 2021): ``Body + " " + Question``, a numeric answer (Socratic CoT).

Offline, the 1,000-problem challenge set ``SVAMP.json`` is the split ``all``; the hub copy
``ChilleD/SVAMP`` splits it 700 / 300 into train / test.
"""
from ..io import DataError, read_json_list
from .. import answers
from .base import Example, FileSplit, HubSplit, TaskSpec, require
from .gsm8k import EXEMPLARS   # Wei et al. 2022's math set, as SCoTD's svamp_local.py uses


def convert(record, where):
    body, question = require(record, "Body", where), require(record, "Question", where)
    value = answers.parse_number(str(require(record, "Answer", where)))
    if value is None:
        raise DataError(f"{where}: Answer {record['Answer']!r} is not a number")
    return Example(id=str(require(record, "ID", where)), question=f"{body.strip()} {question.strip()}",
                   label=answers.format_number(value),
                   meta={"equation": record.get("Equation", ""), "type": record.get("Type", "")})


TASK = TaskSpec(
    name="svamp",
    description="SVAMP arithmetic word problems (Socratic CoT)",
    answer_type=answers.NUMBER,
    from_file=convert, from_hub=convert, data_subdir="svamp",
    files={"all": FileSplit("SVAMP.json", read_json_list)},
    hub={"train": HubSplit("ChilleD/SVAMP", "train"), "test": HubSplit("ChilleD/SVAMP", "test")},
    exemplars=EXEMPLARS, eval_split="test",
)
