"""OpenBookQA (Mihaylov et al. 2018), main configuration, as SCoTD formats it."""
from ..io import read_jsonl
from .. import answers
from .base import (Example, FileSplit, HubSplit, TaskSpec, choice_list, hub_choices, id_field, letter_label,
                   mapping_field, record_choices, require, text_field)

N_CHOICES = 4


def format_question(stem: str, texts: list[str]) -> str:
    """SCoTD: one line, ``"{stem} (a) {c0} (b) {c1} (c) {c2} (d) {c3}"``."""
    return stem + "".join(f" ({chr(ord('a') + i)}) {t}" for i, t in enumerate(texts))


def _example(id_, stem, labels, texts, key, where) -> Example:
    labels, texts, key = choice_list(labels, texts, key, where, N_CHOICES)
    return Example(id=str(id_), question=format_question(stem, texts), label=letter_label(key, where),
                   meta={"labels": [letter_label(l, where) for l in labels], "choice_texts": list(texts)})


def from_file(record, where):
    q = mapping_field(record, "question", where)
    return _example(id_field(record, "id", where), text_field(q, "stem", where), *record_choices(q, where),
                    require(record, "answerKey", where), where)


def from_hub(record, where):
    return _example(id_field(record, "id", where), text_field(record, "question_stem", where),
                    *hub_choices(record, where), require(record, "answerKey", where), where)



# Provenance: VERIFIED (liunian-harold-li/scotd @ 21668aa).
# SCoTD openbook.py, verbatim (its typos included: they are what the teacher saw)
_EXEMPLAR_PARTS = [
    ("Poison causes harm to which of the following?", ["a Tree", "a robot", "a house", "a car"],
     "Poison will harm living things, only a tree is a living thing.", "(a)"),
    ("As you look deeper into a Marbel you can see", ["the future", "minut defects", "colors", "the other side"],
     "Marbel is not transparent, so you can not see the other side. Marbel does not necessarily have multiple "
     "colors. You will see minut defects.", "(b)"),
    ("When food is reduced in the stomach",
     ["the mind needs time to digest", "take a second to digest what I said", "nutrients are being deconstructed",
      "reader's digest is a body of works"],
     "The food is being deconstructed in the stomach during digestion.", "(c)"),
    ("The sun is responsible for",
     ["puppies learning new tricks", "children growing up and getting old", "flowers wilting in a vase",
      "plants sprouting, blooming and wilting"],
     "The sun can affect the growing of living things, like plants.", "(d)"),
]
EXEMPLARS = tuple((format_question(s, c), r, y) for s, c, r, y in _EXEMPLAR_PARTS)

TASK = TaskSpec(
    name="openbookqa",
    description="OpenBookQA main, 4-way multiple choice (SCoTD Tables 2-3, Fig. 2, 7)",
    answer_type=answers.CHOICE,
    labels=("(a)", "(b)", "(c)", "(d)"),
    from_file=from_file, from_hub=from_hub, data_subdir="openbookqa/Main",
    files={"train": FileSplit("train.jsonl", read_jsonl),
           "validation": FileSplit("dev.jsonl", read_jsonl),
           "test": FileSplit("test.jsonl", read_jsonl)},
    hub={s: HubSplit("allenai/openbookqa", s, "main") for s in ("train", "validation", "test")},
    exemplars=EXEMPLARS,
)
