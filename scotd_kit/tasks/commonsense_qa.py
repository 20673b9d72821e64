"""CommonsenseQA (Talmor et al. 2019) as SCoTD formats it."""
from ..io import read_jsonl
from .. import answers
from .base import (Example, FileSplit, HubSplit, TaskSpec, choice_list, hub_choices, id_field, letter_label,
                   mapping_field, record_choices, require, text_field)

N_CHOICES = 5


def format_question(stem: str, texts: list[str]) -> str:
    """SCoTD: ``question + "\\nAnswer Choices:\\n" + "\\n".join("(a) text", ...)``."""
    lines = [f"({chr(ord('a') + i)}) {t}" for i, t in enumerate(texts)]
    return stem + "\nAnswer Choices:\n" + "\n".join(lines)


def _example(id_, stem, labels, texts, key, where) -> Example:
    labels, texts, key = choice_list(labels, texts, key, where, N_CHOICES)
    return Example(
        id=str(id_), question=format_question(stem, texts),
        label=letter_label(key, where),
        meta={"labels": [letter_label(l, where) for l in labels], "choice_texts": list(texts)})


def from_file(record, where):
    q = mapping_field(record, "question", where)
    return _example(id_field(record, "id", where), text_field(q, "stem", where), *record_choices(q, where),
                    require(record, "answerKey", where), where)


def from_hub(record, where):
    return _example(id_field(record, "id", where), text_field(record, "question", where),
                    *hub_choices(record, where), require(record, "answerKey", where), where)



# Provenance: VERIFIED -- SCoTD's teacher prompt verbatim (Wei et al. 2022's CSQA set, liunian-harold-li/scotd
# @ 21668aa, configs_data/complete); tests/test_corpus.py checks the rebuilt questions equal SCoTD's strings.
# (stem, choices, rationale, label) -- SCoTD commonsenseqa.py FEW_SHOT_COT_PROMPT, verbatim
_EXEMPLAR_PARTS = [
    ("What do people use to absorb extra ink from a fountain pen?",
     ["shirt pocket", "calligrapher's hand", "inkwell", "desk drawer", "blotter"],
     "The answer must be an item that can absorb ink. Of the above choices, only blotters are used to absorb ink.",
     "(e)"),
    ("What home entertainment equipment requires cable?",
     ["radio shack", "substation", "cabinet", "television", "desk"],
     "The answer must require cable. Of the above choices, only television requires cable.", "(d)"),
    ("The fox walked from the city into the forest, what was it looking for?",
     ["pretty flowers.", "hen house", "natural habitat", "storybook", "dense forest"],
     "The answer must be something in the forest. Of the above choices, only natural habitat is in the forest.",
     "(c)"),
    ("Sammy wanted to go to where the people were.  Where might he go?",
     ["race track", "populated areas", "the desert", "apartment", "roadblock"],
     "The answer must be a place with a lot of people. Of the above choices, only populated areas have a lot "
     "of people.", "(b)"),
    ("Where do you put your grapes just before checking out?",
     ["mouth", "grocery cart", "super market", "fruit basket", "fruit market"],
     "The answer should be the place where grocery items are placed before checking out. Of the above choices, "
     "grocery cart makes the most sense for holding grocery items.", "(b)"),
    ("Google Maps and other highway and street GPS services have replaced what?",
     ["united states", "mexico", "countryside", "atlas", "oceans"],
     "The answer must be something that used to do what Google Maps and GPS services do, which is to give "
     "directions. Of the above choices, only atlases are used to give directions.", "(d)"),
    ("Before getting a divorce, what did the wife feel who was doing all the work?",
     ["harder", "anguish", "bitterness", "tears", "sadness"],
     "The answer should be the feeling of someone getting divorced who was doing all the work. Of the above "
     "choices, the closest feeling is bitterness.", "(c)"),
]
EXEMPLARS = tuple((format_question(s, c), r, y) for s, c, r, y in _EXEMPLAR_PARTS)

TASK = TaskSpec(
    name="commonsense_qa",
    description="CommonsenseQA, 5-way multiple choice (SCoTD Tables 2-3, Figs. 2-4, 7)",
    answer_type=answers.CHOICE,
    labels=("(a)", "(b)", "(c)", "(d)", "(e)"),
    from_file=from_file, from_hub=from_hub, data_subdir="commonsenseqa",
    files={"train": FileSplit("train_rand_split.jsonl", read_jsonl),
           "validation": FileSplit("dev_rand_split.jsonl", read_jsonl)},
    hub={"train": HubSplit("tau/commonsense_qa", "train"),
         "validation": HubSplit("tau/commonsense_qa", "validation")},
    exemplars=EXEMPLARS,
)
