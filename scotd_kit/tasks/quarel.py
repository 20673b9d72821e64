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



# Provenance: VERIFIED (liunian-harold-li/scotd @ 21668aa).
# SCoTD quarel.py, verbatim
EXEMPLARS = (
    ("Mike was snowboarding on the snow and hit a piece of ice. He went much faster on the ice because _____ is "
     "smoother. (A) snow (B) ice",
     "When something is smoother, it is easier to slide on. Thus, he could go faster on the ice because ice is "
     "smoother.", "(B)"),
    ("I could hear then boy that say close to me clear as day, however I could not hear the young lady sitting in "
     "the back of the room.  WHo am I able to hear louder (A) Boy (B) Lady",
     "When someone is close, it is easier to hear them. I also could not hear the young lady well. Thus, I am able "
     "to hear the boy louder.", "(A)"),
    ("I watched the snowflakes go from tiny specks in the sky to a nice size once they fell on my face.  When did "
     "the snowflakes seem bigger (A) in the sky (B) on my face",
     "When something is closer, it seems bigger. The snowflakes is closer when they are on my face. Thus, they seem "
     "bigger when they are on my face.", "(B)"),
    ("When Tammy tried to slide the glass mixing bowl down the marble counter top to her mom, it came to a dead "
     "stop when it reached the wooden cutting board. The bowl came to a stop because the wooden cutting board has "
     "(A) more resistance or (B) less resistance",
     "When something has more resistance, it is harder to slide. Thus, the bowl came to a stop because the wooden "
     "cutting board has more resistance.", "(A)"),
    ("Sarah walked through the city and saw a tourist attraction she wanted to visit. She had several blocks to go "
     "to get to it, and the attraction looked very small. As she got close it though, it towered over her. This is "
     "because when she was close to it the attraction looked (A) much bigger (B) much smaller.",
     "When something is closer, it looks bigger. Thus, the attraction looked much bigger when she was close to it.",
     "(A)"),
)

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
    exemplars=EXEMPLARS,
)
