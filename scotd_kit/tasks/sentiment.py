"""SST-2 and IMDB (with its contrast set) as SCoTD phrases them (Figs. 5 and 6).

x = ``What is the sentiment of the following sentence?`` and a newline, then the sentence verbatim in
double quotes (SST-2), or ``What is the sentiment of the following review?``, a newline and the review
verbatim, unquoted (IMDB); y = ``positive`` / ``negative``.  The student's ``Q: `` comes before x.
Each task has SCoTD's own exemplars: six SST-2 phrases, three IMDB reviews.
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


def sentence_question(sentence: str) -> str:
    # SCoTD quotes the sentence and keeps it as stored (GLUE's sentences end with a space before the quote)
    return f'{SENTENCE_PROMPT}\n"{sentence}"'


def review_question(review: str) -> str:
    return f"{REVIEW_PROMPT}\n{review}"


def _example(question, label, id_, where):
    return Example(id=str(id_), question=question, label=_label(label, where), meta={"labels": list(LABELS)})


def sst2_file(record, where):
    return _example(sentence_question(text_field(record, "sentence", where)), require(record, "label", where),
                    where.rsplit(":", 1)[-1], where)


def sst2_hub(record, where):
    return _example(sentence_question(text_field(record, "sentence", where)), require(record, "label", where),
                    record.get("idx", where), where)


def imdb_file(record, where):
    return _example(review_question(text_field(record, "Text", where)), require(record, "Sentiment", where),
                    where.rsplit(":", 1)[-1], where)


def imdb_hub(record, where):
    return _example(review_question(text_field(record, "text", where)), require(record, "label", where),
                    where.rsplit(" ", 1)[-1], where)

# Provenance: SCoTD configs_data/complete/sst2.py, FEW_SHOT_COT_PROMPT (sentences quoted by sentence_question)
_SST2_EXEMPLARS = (
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

# Provenance: SCoTD configs_data/complete/imdb.py, FEW_SHOT_COT_PROMPT (the teacher's prompt character for
# character, its typo "siad" included: the corpus key and the teacher's phrasing depend on it)
_IMDB_EXEMPLARS = (
    ("I watched Cabin by the Lake this afternoon on USA. Considering this movie was made for TV is was interesting "
     "enough to watch the sequel. So, I tune in for the airing this evening and was extremely disappointed. I knew I "
     "wouldn't like the movie, but I was not expecting to be perplexed by the use of DV (digital video). The movie "
     "would have been tolerable if it wasn't for these juxtaposed digital shots that seemed to come from nowhere. I "
     "expected the plot line to be tied in with these shots, but there seemed to be no logical explanation. (WARNING: "
     "THE FOLLOWING MAYBE A SPOILER!!!!) The open ending in Cabin by the Lake was acceptable, but the open ending on "
     "the sequel is ridiculous. I can only foresee Return of Return to The Cabin by the Lake being watch able is if "
     "the movie was shown up against nothing, but infomercials at 4 o'clock in the morning.",
     "The author at first was assuming that the movie was interesting enough. But then they were extremely "
     "disappointed. They said that the movie would have been tolerable if it wasn't for these juxtaposed digital "
     "shots, which means that the movie is just untolerable.", "negative"),
    ('Ghost of Dragstrip Hollow is a typical 1950\'s teens in turmoil movie. It is not a horror or science fiction '
     'movie. Plot concerns a group of teens who are about to get kicked out of their "hot rod" club because they '
     'cannot meet the rent. Once kicked out, they decide to try an old Haunted House. The only saving grace for the '
     'film is that the "ghost" (Paul Blaisdell in the She Creature suit) turns out to be an out of work movie monster '
     'played by Blaisdell.',
     "The author siad that 'the only saving grace for the film', implying that the movie is terrible and there is "
     "only one good thing about it.", "negative"),
    ('Reading the various external reviews of Roger Ebert and other well-known film critics makes me hesitate to '
     'admit how much I love this movie, even though I only have a dubbed-into-Japanese video version of it.<br /><br />'
     'Apparently, many critics seem to take it as a minus that the story premise has been used before, most famously '
     'in the very great "It\'s a Wonderful Life." To me, a great premise is a great premise no matter how many times '
     'it\'s used, and I\'d be happy to see more movies using this particular premise--the discontented man who gets a '
     'chance to gain a fresh perspective on his own life through a bit of "divine magic."<br /><br />I suppose folks '
     'and critics of a more intellectual bent are not as pulled into the story, but I don\'t go to movies to critique '
     'them with notebook in hand--I go to movies to throw myself into them and let them take me where they will.',
     'The author said they love this movie. They mention many critics but their point is to say that they are happy '
     'to see more movies like this.', "positive"),
)

_tsv = partial(read_table, delimiter="\t")                     # IMDB contrast: CSV-style quoting ("" inside "...")
_glue_tsv = partial(read_table, delimiter="\t", quoting=csv.QUOTE_NONE)   # GLUE never quotes: '"' is text

TASKS = (
    TaskSpec(name="sst2", description="SST-2 sentiment (SCoTD Fig. 6, unseen task)",
             answer_type=answers.LABEL, labels=LABELS,
             from_file=sst2_file, from_hub=sst2_hub, data_subdir="sst2",
             files={"validation": FileSplit("dev.tsv", _glue_tsv)},
             hub={s: HubSplit("stanfordnlp/sst2", s) for s in ("train", "validation")},
             exemplars=tuple((sentence_question(t), r, y) for t, r, y in _SST2_EXEMPLARS)),
    TaskSpec(name="imdb", description="IMDB reviews with the contrast set of Gardner et al. (SCoTD Fig. 5)",
             answer_type=answers.LABEL, labels=LABELS,
             from_file=imdb_file, from_hub=imdb_hub, data_subdir="imdb_contrast",
             files={"dev_original": FileSplit("dev_original.tsv", _tsv),
                    "dev_contrast": FileSplit("dev_contrast.tsv", _tsv),
                    "test_original": FileSplit("test_original.tsv", _tsv),
                    "test_contrast": FileSplit("test_contrast.tsv", _tsv)},
             hub={s: HubSplit("stanfordnlp/imdb", s) for s in ("train", "test")},
             exemplars=tuple((review_question(t), r, y) for t, r, y in _IMDB_EXEMPLARS)),
)
