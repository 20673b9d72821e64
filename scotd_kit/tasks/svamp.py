"""SVAMP (Patel et al. 2021): ``Body + " " + Question``, a numeric answer (Socratic CoT).

Offline, the 1,000-problem challenge set ``SVAMP.json`` is the split ``all``; the hub copy
``ChilleD/SVAMP`` splits it 700 / 300 into train / test.
"""
from ..io import DataError, read_json_records
from .. import answers
from .base import Example, FileSplit, HubSplit, TaskSpec, id_field, require, text_field


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
    from_file=convert, from_hub=convert, data_subdir="svamp",
    files={"all": FileSplit("SVAMP.json", read_json_records)},
    hub={"train": HubSplit("ChilleD/SVAMP", "train"), "test": HubSplit("ChilleD/SVAMP", "test")},
)
