"""QuaRel (Tafjord et al. 2019): the question verbatim (it holds "(A) ... (B) ..."), y "(A)"/"(B)".

The original ``quarel-v1-*.jsonl`` files are not in shared/data (see SOURCES.md); users who have
them put them under ``$SCOTD_DATA_DIR/quarel/``.  The hub copy is ``community-datasets/quarel``
(the old ``quarel`` loading script no longer runs in datasets >= 4).
"""
from ..io import DataError, read_jsonl
from .. import answers
from .base import Example, FileSplit, HubSplit, TaskSpec, id_field, require, text_field

LABELS = ("(A)", "(B)")


def _example(id_, question, answer_index, where) -> Example:
    if type(answer_index) is not int or answer_index not in (0, 1):
        raise DataError(f"{where}: answer_index {answer_index!r} is not 0 or 1")
    label = LABELS[answer_index]
    return Example(id=str(id_), question=question, label=label, meta={"labels": list(LABELS)})


def from_file(record, where):
    return _example(id_field(record, "id", where), text_field(record, "question", where),
                    require(record, "answer_index", where), where)


def from_hub(record, where):
    return _example(record.get("id") or where.rsplit(" ", 1)[-1], text_field(record, "question", where),
                    require(record, "answer_index", where), where)


TASK = TaskSpec(
    name="quarel",
    description="QuaRel, 2-way qualitative relations (SCoTD Tables 2-3, Fig. 2, 7)",
    answer_type=answers.CHOICE,
    labels=LABELS,
    from_file=from_file, from_hub=from_hub, data_subdir="quarel",
    files={"train": FileSplit("quarel-v1-train.jsonl", read_jsonl),
           "validation": FileSplit("quarel-v1-dev.jsonl", read_jsonl),
           "test": FileSplit("quarel-v1-test.jsonl", read_jsonl)},
    hub={s: HubSplit("community-datasets/quarel", s) for s in ("train", "validation", "test")},
)
