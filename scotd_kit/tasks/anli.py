"""ANLI round 3 (Nie et al. 2020) with the options yes / no / it is not possible to tell (SCoTD Fig. 6).

PAPERS.md records only the options, not SCoTD's exact template; the template below is the kit's.
"""
from ..io import DataError, read_jsonl
from .. import answers
from .base import Example, FileSplit, HubSplit, TaskSpec, id_field, require, text_field

LABELS = ("yes", "no", "it is not possible to tell")
_FROM_LETTER = {"e": "yes", "c": "no", "n": "it is not possible to tell"}
_FROM_INDEX = {0: "yes", 1: "it is not possible to tell", 2: "no"}   # HF: entailment, neutral, contradiction


def format_question(premise: str, hypothesis: str) -> str:
    return (f"{premise.strip()}\nBased on the paragraph above, can we conclude that "
            f"\"{hypothesis.strip()}\"?\nOptions: yes, no, it is not possible to tell")


def _example(id_, premise, hypothesis, label, where):
    return Example(id=str(id_), question=format_question(premise, hypothesis), label=label,
                   meta={"labels": list(LABELS)})


def from_file(record, where):
    letter = require(record, "label", where)
    if not isinstance(letter, str) or letter not in _FROM_LETTER:
        raise DataError(f"{where}: label {letter!r} is not e/n/c")
    return _example(id_field(record, "uid", where), text_field(record, "context", where),
                    text_field(record, "hypothesis", where), _FROM_LETTER[letter], where)


def from_hub(record, where):
    index = require(record, "label", where)
    if type(index) is not int or index not in _FROM_INDEX:
        raise DataError(f"{where}: label {index!r} is not 0/1/2")
    return _example(id_field(record, "uid", where), text_field(record, "premise", where),
                    text_field(record, "hypothesis", where), _FROM_INDEX[index], where)



# Provenance: ADAPTED -- SCoTD anli.py, adapted to the kit's ANLI template
_EXEMPLAR_PARTS = (
    ("Conceptually cream skimming has two basic dimensions - product and geography.",
     "Product and geography are what make cream skimming work.",
     'Based on "cream skimming has two basic dimensions" we can’t infer that these two dimensions are what make '
     "cream skimming work.", "it is not possible to tell"),
    ("One of our member will carry out your instructions minutely.",
     "A member of my team will execute your orders with immense precision.",
     'one of" means the same as "a member of", "carry out" means the same as "execute", and "minutely" means the '
     'same as "immense precision".', "yes"),
    ("Fun for adults and children.", "Fun for only children.", '"adults and children" contradicts "only children".',
     "no"),
    ("He turned and smiled at Vrenna.", "He smiled at Vrenna who was walking slowly behind him with her mother.",
     'the premise does not say anything about "Vrenna was walking".', "it is not possible to tell"),
    ("well you see that on television also", "You can see that on television, as well.",
     '"also" and "as well" mean the same thing.', "yes"),
    ("Vrenna and I both fought him and he nearly took us.", "Neither Vrenna nor myself have ever fought him.",
     '"Vrenna and I both" contradicts "neither Vrenna nor myself".', "no"),
)
EXEMPLARS = tuple((format_question(p, h), r, y) for p, h, r, y in _EXEMPLAR_PARTS)

TASK = TaskSpec(
    name="anli_r3",
    description="ANLI round 3 natural language inference (SCoTD Fig. 6, multitask training)",
    answer_type=answers.LABEL, labels=LABELS, aliases=("true", "false", "neither"),
    from_file=from_file, from_hub=from_hub, data_subdir="anli/R3",
    files={"validation": FileSplit("dev.jsonl", read_jsonl), "test": FileSplit("test.jsonl", read_jsonl)},
    hub={"train": HubSplit("facebook/anli", "train_r3"), "validation": HubSplit("facebook/anli", "dev_r3"),
         "test": HubSplit("facebook/anli", "test_r3")},
    exemplars=EXEMPLARS,
)
