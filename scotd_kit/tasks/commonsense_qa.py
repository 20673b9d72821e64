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
)
