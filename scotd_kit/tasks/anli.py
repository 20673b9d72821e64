"""ANLI round 3 (Nie et al. 2020) as SCoTD's code phrases it (Fig. 6, multitask training).

x = ``Premise:``, the premise in double quotes, then ``Based on this premise, can we conclude the
hypothesis "{hypothesis}" is true?`` and the options one per line; y = ``yes.`` / ``no.`` /
``it is not possible to tell.`` -- with the period, as SCoTD's targets and exemplars write them (its
strict reader compares with that string).

Labels follow SCoTD's exemplars: neutral (HF 1, file ``n``) is ``it is not possible to tell.`` and
contradiction (HF 2, file ``c``) is ``no.``.  SCoTD's own loader swaps those two, which contradicts the
labels it gives its exemplars and facebook/anli's label names (0 entailment, 1 neutral, 2
contradiction); the exemplars are what the teacher was shown, so they decide.
"""
from ..io import DataError, read_jsonl
from .. import answers
from .base import Example, FileSplit, HubSplit, TaskSpec, id_field, require, text_field

YES, NO, NEUTRAL = "yes.", "no.", "it is not possible to tell."
LABELS = (YES, NO, NEUTRAL)
_FROM_LETTER = {"e": YES, "c": NO, "n": NEUTRAL}
_FROM_INDEX = {0: YES, 1: NEUTRAL, 2: NO}   # HF: entailment, neutral, contradiction


def format_question(premise: str, hypothesis: str) -> str:
    # premise and hypothesis verbatim, as SCoTD formats them
    return (f'Premise:\n"{premise}"\nBased on this premise, can we conclude the hypothesis "{hypothesis}" is true?'
            f"\nOPTIONS:\n- yes\n- no\n- it is not possible to tell")


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



# Provenance: SCoTD configs_data/complete/anli.py, FEW_SHOT_COT_PROMPT (premise, hypothesis, rationale, y);
# the first rationale's missing opening quote is SCoTD's
_EXEMPLAR_PARTS = (
    ("Conceptually cream skimming has two basic dimensions - product and geography.",
     "Product and geography are what make cream skimming work.",
     'Based on "cream skimming has two basic dimensions" we can’t infer that these two dimensions are what make '
     "cream skimming work.", NEUTRAL),
    ("One of our member will carry out your instructions minutely.",
     "A member of my team will execute your orders with immense precision.",
     'one of" means the same as "a member of", "carry out" means the same as "execute", and "minutely" means the '
     'same as "immense precision".', YES),
    ("Fun for adults and children.", "Fun for only children.", '"adults and children" contradicts "only children".', NO),
    ("He turned and smiled at Vrenna.", "He smiled at Vrenna who was walking slowly behind him with her mother.",
     'the premise does not say anything about "Vrenna was walking".', NEUTRAL),
    ("well you see that on television also", "You can see that on television, as well.",
     '"also" and "as well" mean the same thing.', YES),
    ("Vrenna and I both fought him and he nearly took us.", "Neither Vrenna nor myself have ever fought him.",
     '"Vrenna and I both" contradicts "neither Vrenna nor myself".', NO),
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
