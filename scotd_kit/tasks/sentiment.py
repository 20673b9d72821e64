"""SST-2 and IMDB (with its contrast set) as SCoTD phrases them (Figs. 5 and 6).

x = ``What is the sentiment of the following sentence?`` (SST-2) or ``...review?`` (IMDB),
a newline, then the text verbatim; y = ``positive`` / ``negative``.
"""
import csv
from functools import partial

from ..io import DataError, read_table
from .. import answers
from .base import Example, FileSplit, HubSplit, TaskSpec, require, text_field

LABELS = ("positive", "negative")
SENTENCE_PROMPT = "What is the sentiment of the following sentence?"
REVIEW_PROMPT = "What is the sentiment of the following review?"


def _label(value, where) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"{where}: sentiment label {value!r} is not 0/1/positive/negative")
    v = str(value).strip().lower()
    mapping = {"1": "positive", "0": "negative", "positive": "positive", "negative": "negative"}
    if v not in mapping:
        raise DataError(f"{where}: sentiment label {value!r} is not 0/1/positive/negative")
    return mapping[v]


def _example(prompt, text, label, id_, where):
    return Example(id=str(id_), question=f"{prompt}\n{text.strip()}", label=_label(label, where),
                   meta={"labels": list(LABELS)})


def sst2_file(record, where):
    return _example(SENTENCE_PROMPT, text_field(record, "sentence", where), require(record, "label", where),
                    where.rsplit(":", 1)[-1], where)


def sst2_hub(record, where):
    return _example(SENTENCE_PROMPT, text_field(record, "sentence", where), require(record, "label", where),
                    record.get("idx", where), where)


def imdb_file(record, where):
    return _example(REVIEW_PROMPT, text_field(record, "Text", where), require(record, "Sentiment", where),
                    where.rsplit(":", 1)[-1], where)


def imdb_hub(record, where):
    return _example(REVIEW_PROMPT, text_field(record, "text", where), require(record, "label", where),
                    where.rsplit(" ", 1)[-1], where)

# Provenance: ADAPTED -- SCoTD sst2.py, adapted to the kit's sentiment format (sentence not quoted)
_EXEMPLAR_PARTS = (
    ("that loves its characters and communicates something rather beautiful about human nature",
     '"loves its characters" indicates positive sentiment.', "positive"),
    ("hide new secretions from the parental units",
     "If people are hiding something, it means the sentiment is on the negative side.", "negative"),
    ("the greatest musicians", 'By saying someone being the "greatest", it means positive sentiment.', "positive"),
    ("contains no wit , only labored gags", '"contains no wit" is clearly a negative sentiment.', "negative"),
    ("demonstrates that the director of such hollywood blockbusters as patriot games can still turn out a small , "
     "personal film with an emotional wallop .",
     '"can still turn out a small , personal film with an emotional wallop ." indicates sentiment on the positive '
     "side.", "positive"),
    ("that 's far too tragic to merit such superficial treatment",
     '"far too tragic" and "to merit such superficial treatment" both mean negative sentiments.', "negative"),
)

_tsv = partial(read_table, delimiter="\t")                     # IMDB contrast: CSV-style quoting ("" inside "...")
_glue_tsv = partial(read_table, delimiter="\t", quoting=csv.QUOTE_NONE)   # GLUE never quotes: '"' is text

TASKS = (
    TaskSpec(name="sst2", description="SST-2 sentiment (SCoTD Fig. 6, unseen task)",
             answer_type=answers.LABEL, labels=LABELS,
             from_file=sst2_file, from_hub=sst2_hub, data_subdir="sst2",
             files={"validation": FileSplit("dev.tsv", _glue_tsv)},
             hub={s: HubSplit("stanfordnlp/sst2", s) for s in ("train", "validation")},
             exemplars=tuple((f"{SENTENCE_PROMPT}\n{t}", r, y) for t, r, y in _EXEMPLAR_PARTS)),
    TaskSpec(name="imdb", description="IMDB reviews with the contrast set of Gardner et al. (SCoTD Fig. 5)",
             answer_type=answers.LABEL, labels=LABELS,
             from_file=imdb_file, from_hub=imdb_hub, data_subdir="imdb_contrast",
             files={"dev_original": FileSplit("dev_original.tsv", _tsv),
                    "dev_contrast": FileSplit("dev_contrast.tsv", _tsv),
                    "test_original": FileSplit("test_original.tsv", _tsv),
                    "test_contrast": FileSplit("test_contrast.tsv", _tsv)},
             hub={s: HubSplit("stanfordnlp/imdb", s) for s in ("train", "test")},
             exemplars=tuple((f"{REVIEW_PROMPT}\n{t}", r, y) for t, r, y in _EXEMPLAR_PARTS)),
)
