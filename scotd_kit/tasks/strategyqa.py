"""StrategyQA (Geva et al. 2021): yes/no questions with a gold decomposition and facts.

The shipped files are eladsegal/strategyqa's 90/10 split of the official train set
(train 2,061 / dev 229); ``meta`` keeps ``decomposition`` and ``facts`` for Socratic CoT.
"""
from ..io import DataError, read_json_records
from .. import answers
from .base import Example, FileSplit, HubSplit, TaskSpec, id_field, require, string_list, text_field


def convert(record, where):
    gold = require(record, "answer", where)
    if not isinstance(gold, bool):
        raise DataError(f"{where}: answer {gold!r} is not true/false")
    return Example(id=id_field(record, "qid", where), question=text_field(record, "question", where),
                   label="yes" if gold else "no",
                   meta={"facts": list(string_list(record, "facts", where)),
                         "decomposition": list(string_list(record, "decomposition", where))})


TASK = TaskSpec(
    name="strategyqa",
    description="StrategyQA yes/no multi-hop questions (Socratic CoT)",
    answer_type=answers.LABEL,
    labels=("yes", "no"), aliases=("true", "false"),
    from_file=convert, from_hub=convert, data_subdir="strategyqa",
    eval_split="validation",   # the shipped dev.json (no labelled official test set exists)
    files={"train": FileSplit("train.json", read_json_records),
           "validation": FileSplit("dev.json", read_json_records)},
    hub={"train": HubSplit("ChilleD/StrategyQA", "train"), "test": HubSplit("ChilleD/StrategyQA", "test")},
)
