import json

import pytest

from scotd_kit import answers
from scotd_kit.io import DataError
from scotd_kit.prompts import target
from scotd_kit.tasks import UnknownSplitError, UnknownTaskError, get_task, list_tasks, load_split

from .conftest import shared_file
from .fixture_records import FIXTURE_FILES

PUBLISHED_SIZES = [  # (task, split, file under ../shared/data, published size)
    ("commonsense_qa", "train", "commonsenseqa/train_rand_split.jsonl", 9741),
    ("commonsense_qa", "validation", "commonsenseqa/dev_rand_split.jsonl", 1221),
    ("openbookqa", "train", "openbookqa/Main/train.jsonl", 4957),
    ("openbookqa", "validation", "openbookqa/Main/dev.jsonl", 500),
    ("openbookqa", "test", "openbookqa/Main/test.jsonl", 500),
    ("gsm8k", "train", "gsm8k/train.jsonl", 7473),
    ("gsm8k", "test", "gsm8k/test.jsonl", 1319),
    ("gsm8k_socratic", "train", "gsm8k/train_socratic.jsonl", 7473),
    ("gsm8k_socratic", "test", "gsm8k/test_socratic.jsonl", 1319),
    ("svamp", "all", "svamp/SVAMP.json", 1000),
    ("strategyqa", "train", "strategyqa/train.json", 2061),
    ("strategyqa", "validation", "strategyqa/dev.json", 229),
    ("anli_r3", "validation", "anli/R3/dev.jsonl", 1200),
    ("anli_r3", "test", "anli/R3/test.jsonl", 1200),
    ("sst2", "validation", "sst2/dev.tsv", 872),
    ("imdb", "test_original", "imdb_contrast/test_original.tsv", 488),
    ("imdb", "test_contrast", "imdb_contrast/test_contrast.tsv", 488),
]


@pytest.mark.parametrize("task,split,rel,size", PUBLISHED_SIZES, ids=[f"{t}-{s}" for t, s, *_ in PUBLISHED_SIZES])
def test_real_files_load_with_published_sizes(task, split, rel, size):
    shared_file(rel)
    examples = load_split(task, split, source="files")
    assert len(examples) == size
    assert len({e.id for e in examples}) == size or task in ("sst2", "imdb")  # SST-2/IMDB ids are line numbers
    labels = get_task(task).labels
    for e in examples:
        assert e.question.strip() and e.label
        if labels and "labels" not in e.meta:
            assert e.label in labels


@pytest.mark.parametrize("task,split,rel", [("gsm8k", "train", "gsm8k/train.jsonl"), ("gsm8k", "test", "gsm8k/test.jsonl"),
                                            ("gsm8k_socratic", "train", "gsm8k/train_socratic.jsonl"),
                                            ("svamp", "all", "svamp/SVAMP.json")])
def test_every_numeric_gold_answer_parses(task, split, rel):
    shared_file(rel)
    for e in load_split(task, split, source="files"):
        value = answers.parse_number(e.label)
        assert value is not None, e
        assert answers.format_number(value) == e.label


def test_socratic_steps_are_pairs():
    shared_file("gsm8k/train_socratic.jsonl")
    ex = load_split("gsm8k_socratic", "train", source="files")
    steps = [step for e in ex for step in e.meta["steps"]]
    assert all(e.meta["steps"] for e in ex) and all(q for q, _ in steps)
    assert sum(bool(a) for _, a in steps) / len(steps) > 0.99
    # most sub-questions are questions; the original also has prompts such as "Define a variable"
    assert sum(q.endswith("?") for q, _ in steps) / len(steps) > 0.95
    assert all("<<" not in a for _, a in steps)


def test_real_formats_match_scotd_character_for_character():
    shared_file("commonsenseqa/dev_rand_split.jsonl")
    first = load_split("commonsense_qa", "validation", source="files", limit=1)[0]
    assert first.question == (
        "A revolving door is convenient for two direction travel, but it also serves as a security measure at a what?"
        "\nAnswer Choices:\n(a) bank\n(b) library\n(c) department store\n(d) mall\n(e) new york")
    assert first.label == "(a)"
    shared_file("openbookqa/Main/dev.jsonl")
    ob = load_split("openbookqa", "validation", source="files", limit=1)[0]
    assert ob.question == ("Frilled sharks and angler fish live far beneath the surface of the ocean, which is why they "
                           "are known as (a) Deep sea animals (b) fish (c) Long Sea Fish (d) Far Sea Animals")
    assert ob.label == "(a)"
    shared_file("sst2/dev.tsv")
    s = load_split("sst2", "validation", source="files", limit=1)[0]
    assert s.question == 'What is the sentiment of the following sentence?\n"it \'s a charming and often affecting journey . "'
    assert s.label == "positive"


def test_fixture_formats(fixture_data_dir):
    csqa = load_split("commonsense_qa", "validation", data_dir=fixture_data_dir)
    assert csqa[0].question == ("Where would you borrow a book?\nAnswer Choices:\n(a) bank\n(b) library\n(c) mall"
                                "\n(d) house\n(e) car")
    assert [e.label for e in csqa] == ["(b)", "(e)"]
    ob = load_split("openbookqa", "test", data_dir=fixture_data_dir)[0]
    assert ob.question == "Plants need (a) sunlight (b) darkness (c) noise (d) plastic" and ob.label == "(a)"
    qr = load_split("quarel", "validation", data_dir=fixture_data_dir)
    assert qr[0].question == FIXTURE_FILES["quarel/quarel-v1-dev.jsonl"][0]["question"]  # verbatim
    assert [e.label for e in qr] == ["(B)", "(A)"]
    gsm = load_split("gsm8k", "test", data_dir=fixture_data_dir)
    assert [e.label for e in gsm] == ["7", "900"]
    assert gsm[0].meta["solution"] == "Tom has 3 * 4 = 12 pens.\nHe has 12 - 5 = 7 pens left."
    soc = load_split("gsm8k_socratic", "test", data_dir=fixture_data_dir)[0]
    assert soc.meta["steps"] == [("How many pens does Tom have?", "Tom has 3 * 4 = 12 pens."),
                                 ("How many pens are left?", "He has 12 - 5 = 7 pens left.")]
    sv = load_split("svamp", "all", data_dir=fixture_data_dir)
    assert sv[0].question == ("Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on each pack "
                              "How much do you have to pay to buy each pack?")
    assert [e.label for e in sv] == ["51", "0.5"]
    sq = load_split("strategyqa", "train", data_dir=fixture_data_dir)[0]
    assert sq.label == "yes" and sq.meta["decomposition"][0] == "What is the density of ice?"
    im = load_split("imdb", "test_contrast", data_dir=fixture_data_dir)
    assert im[0].question == 'What is the sentiment of the following review?\nA fine film.<br /><br />Great acting, "superb" cast.'
    assert [e.label for e in im] == ["positive", "negative"]
    an = load_split("anli_r3", "validation", data_dir=fixture_data_dir)
    assert [e.label for e in an] == ["yes.", "it is not possible to tell."]
    assert an[0].question.endswith("is true?\nOPTIONS:\n- yes\n- no\n- it is not possible to tell")


@pytest.mark.parametrize("task", list_tasks())
def test_gold_target_scores_correct_under_both_matches(task, fixture_data_dir):
    """A generation in the student's target format with the gold label is right, strictly and flexibly."""
    spec = get_task(task)
    split = next(s for s in spec.splits if s in spec.files or s in spec.generated_splits)
    for ex in load_split(spec, split, data_dir=fixture_data_dir, limit=5):
        s = spec.score(target("Some reasoning here.", ex.label), ex)
        assert s["strict_correct"] and s["flexible_correct"] and s["in_label_set"], (task, ex, s)
        wrong = spec.score("I do not know.\n\nSo the answer is: " + ex.label, ex)
        assert not wrong["strict_correct"]  # the answer after the blank line does not count


def test_demo_tasks_are_deterministic_and_sized():
    a = load_split("demo_compare", "train", seed=3)
    b = load_split("demo_compare", "train", seed=3)
    c = load_split("demo_compare", "train", seed=4)
    assert a == b and a != c and len(a) == 1000
    assert len(load_split("demo_arith", "test")) == 200
    for e in load_split("demo_arith", "train", limit=50):
        assert answers.last_number(e.meta["rationale"]) == answers.parse_number(e.label)
    ex = load_split("demo_compare", "validation", limit=1)[0]
    assert ex.question.split("\n")[1] == "Answer Choices:" and ex.label in ("(a)", "(b)", "(c)")


def test_unknown_task_lists_known():
    with pytest.raises(UnknownTaskError, match="known tasks: .*commonsense_qa"):
        get_task("csqa2")


def test_missing_split_names_available():
    with pytest.raises(UnknownSplitError, match="available: train, validation"):
        load_split("commonsense_qa", "dev")


def test_missing_file_says_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="quarel-v1-dev.jsonl does not exist"):
        load_split("quarel", "validation", source="files", data_dir=tmp_path)


def test_hub_offline_fails_with_instructions(tmp_path):
    with pytest.raises(FileNotFoundError, match="SCOTD_DATA_DIR"):
        load_split("quarel", "validation", source="hub", data_dir=tmp_path)


def test_malformed_record_names_file_and_line(fixture_data_dir):
    path = fixture_data_dir / "commonsenseqa/dev_rand_split.jsonl"
    lines = path.read_text().splitlines()
    bad = json.loads(lines[1])
    del bad["answerKey"]
    path.write_text(lines[0] + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError, match=r"dev_rand_split.jsonl:2: missing field 'answerKey'"):
        load_split("commonsense_qa", "validation", data_dir=fixture_data_dir)
    path.write_text(lines[0] + "\n{not json\n")
    with pytest.raises(DataError, match=r"dev_rand_split.jsonl:2: not valid JSON"):
        load_split("commonsense_qa", "validation", data_dir=fixture_data_dir)
    gsm = fixture_data_dir / "gsm8k/test.jsonl"
    gsm.write_text(json.dumps({"question": "q", "answer": "no final line"}) + "\n")
    with pytest.raises(DataError, match=r"test.jsonl:1: answer has no '#### <final answer>' line"):
        load_split("gsm8k", "test", data_dir=fixture_data_dir)
    tsv = fixture_data_dir / "sst2/dev.tsv"
    tsv.write_text("sentence\tlabel\ngood film\t7\n")
    with pytest.raises(DataError, match=r"dev.tsv:2: sentiment label '7'"):
        load_split("sst2", "validation", data_dir=fixture_data_dir)


# ---------------------------------------------------------------- formats of the Fig. 5 / 6 tasks, as SCoTD's code
# writes them (github.com/liunian-harold-li/scotd @ 21668aa, read there; the package keeps only the prompts' data)

def test_sst2_sentence_is_quoted_as_in_scotd(fixture_data_dir):
    """configs_data/complete/sst2.py:14 INPUT_PREFIX "Q: What is the sentiment of the following sentence?\\n",
    sst2.py:81 ``question = '"{}"'.format(example["sentence"])`` (the sentence verbatim, GLUE's trailing space
    kept), and the exemplars of sst2.py:21-43 are quoted the same way ('"the greatest musicians"')."""
    sst = load_split("sst2", "validation", data_dir=fixture_data_dir)
    assert sst[0].question == ('What is the sentiment of the following sentence?\n'
                               '"it \'s a charming and often affecting journey . "')
    assert [e.label for e in sst] == ["positive", "negative"]
    hub = get_task("sst2").from_hub({"idx": 3, "sentence": "the greatest musicians ", "label": 1}, "hub:3")
    assert hub.question == 'What is the sentiment of the following sentence?\n"the greatest musicians "'
    demos = get_task("sst2").few_shot_exemplars()
    assert len(demos) == 6 and demos[2] == (
        'What is the sentiment of the following sentence?\n"the greatest musicians"',
        'By saying someone being the "greatest", it means positive sentiment.', "positive")
    assert all(x.split("\n", 1)[1].startswith('"') and x.endswith('"') for x, _, _ in demos)


def test_imdb_exemplars_are_scotds_three_reviews():
    """configs_data/complete/imdb.py:21-35 (the same in imdb_original.py / imdb_contrast.py): three reviews of
    their own -- "I watched Cabin by the Lake ...", "Ghost of Dragstrip Hollow ...", "Reading the various
    external reviews of Roger Ebert ..." -> negative, negative, positive -- not SST-2's phrases; the review
    follows INPUT_PREFIX "Q: What is the sentiment of the following review?\\n" (imdb.py:14) unquoted."""
    demos = get_task("imdb").few_shot_exemplars()
    assert [y for _, _, y in demos] == ["negative", "negative", "positive"]
    starts = ("I watched Cabin by the Lake this afternoon on USA.", "Ghost of Dragstrip Hollow is a typical 1950's",
              "Reading the various external reviews of Roger Ebert")
    for (x, _, _), start in zip(demos, starts):
        assert x.startswith("What is the sentiment of the following review?\n" + start)
    assert demos[0][0].endswith("infomercials at 4 o'clock in the morning.")
    # imdb.py:28 keeps its typo: the exemplar is the teacher's prompt, character for character
    assert demos[1][1] == ("The author siad that 'the only saving grace for the film', implying that the movie is "
                           "terrible and there is only one good thing about it.")
    assert demos[2][1].startswith("The author said they love this movie.")
    sst2_phrases = {x.split("\n", 1)[1].strip('"') for x, _, _ in get_task("sst2").few_shot_exemplars()}
    assert not any(p in x for p in sst2_phrases for x, _, _ in demos)


def test_anli_template_and_labels_follow_scotds_exemplars(fixture_data_dir):
    """configs_data/complete/anli.py:131 builds
    'Premise:\\n"{}"\\nBased on this premise, can we conclude the hypothesis "{}" is true?\\nOPTIONS:\\n- yes\\n- no\\n- it is
    not possible to tell' and its targets are "yes." / "no." / "it is not possible to tell." (anli.py:132-137,
    the exemplars' y at anli.py:27-50).  Its label map contradicts its own exemplars: convert_example
    (anli.py:134-137) writes HF label 1 as "no." and 2 as "it is not possible to tell.", but
    FEW_SHOT_PROMPT_ORIGINAL gives the cream-skimming pair label 1 (anli.py:56-59) whose CoT answers "it is not
    possible to tell." (anli.py:25-27), and "Fun for only children" label 2 (anli.py:67-70) answered "no."
    (anli.py:35-37).  facebook/anli's labels are 0 entailment, 1 neutral, 2 contradiction, so the exemplars are
    right: the kit maps 1 -> "it is not possible to tell." and 2 -> "no."."""
    spec = get_task("anli_r3")
    assert tuple(spec.labels) == ("yes.", "no.", "it is not possible to tell.")
    an = load_split("anli_r3", "validation", data_dir=fixture_data_dir)
    assert an[0].question == ('Premise:\n"The cat sat on the mat."\nBased on this premise, can we conclude the '
                              'hypothesis "A cat is on a mat." is true?\nOPTIONS:\n- yes\n- no\n- it is not possible to tell')
    assert [e.label for e in an] == ["yes.", "it is not possible to tell."]       # file letters e, n
    hub = {i: spec.from_hub({"uid": "u", "premise": "P.", "hypothesis": "H.", "label": i}, "hub:0").label
           for i in (0, 1, 2)}
    assert hub == {0: "yes.", 1: "it is not possible to tell.", 2: "no."}         # the exemplars' map, not anli.py:134-137
    demos = spec.few_shot_exemplars()
    assert [y for _, _, y in demos] == ["it is not possible to tell.", "yes.", "no.", "it is not possible to tell.",
                                        "yes.", "no."]
    assert demos[2][0] == ('Premise:\n"Fun for adults and children."\nBased on this premise, can we conclude the '
                           'hypothesis "Fun for only children." is true?\nOPTIONS:\n- yes\n- no\n- it is not possible to tell')
    # SCoTD's strict reader compares with "no." itself; the flexible reading forgives the missing period
    s = spec.score("It contradicts. So the answer is: no.", an[0])
    assert not s["strict_correct"] and s["in_label_set"]
    assert spec.score("x So the answer is: no", [e for e in an if e.label == "yes."][0])["flexible"] == "no."
