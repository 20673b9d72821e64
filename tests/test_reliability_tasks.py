"""Reliability (docs/reliability.md), defect 7: bad task files give a DataError naming file and line (or load correctly)."""
import copy
import json

import pytest

from scotd_kit.io import DataError
from scotd_kit.tasks import load_split

from . import fixture_records as F


def write(root, rel, content):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif rel.endswith(".jsonl"):
        path.write_text("".join(json.dumps(r) + "\n" for r in content))
    elif rel.endswith(".json"):
        path.write_text(json.dumps(content, indent=1))
    else:
        path.write_text(content)
    return path


def load(root, task, split):
    return load_split(task, split, source="files", data_dir=root)


def edited(records, i, edit):
    records = copy.deepcopy(records)
    edit(records[i])
    return records


CSQA = "commonsenseqa/dev_rand_split.jsonl"
CASES = [   # (task, split, file, records edited, the line the error must name, what it must say)
    ("commonsense_qa", "validation", CSQA, edited(F.CSQA, 1, lambda r: r["question"].update(choices={"A": "x"})), 2,
     "choices"),
    ("commonsense_qa", "validation", CSQA, edited(F.CSQA, 1, lambda r: r["question"].update(stem=None)), 2, "stem"),
    ("commonsense_qa", "validation", CSQA, edited(F.CSQA, 0, lambda r: r.update(id=None)), 1, "'id'"),
    ("commonsense_qa", "validation", CSQA, edited(F.CSQA, 1, lambda r: r["question"]["choices"].pop()), 2,
     "4 choices"),
    ("commonsense_qa", "validation", CSQA,
     edited(F.CSQA, 1, lambda r: r["question"]["choices"][1].update(label="A")), 2, "duplicate"),
    ("commonsense_qa", "validation", CSQA, [F.CSQA[0], F.CSQA[1], F.CSQA[0]], 3, "already used on line 1"),
    ("commonsense_qa", "validation", CSQA, edited(F.CSQA, 0, lambda r: r.update(answerKey=["B"])), 1, "answerKey"),
    ("gsm8k", "test", "gsm8k/test.jsonl", edited(F.GSM8K, 1, lambda r: r.update(answer=900)), 2, "answer"),
    ("gsm8k", "test", "gsm8k/test.jsonl", edited(F.GSM8K, 1, lambda r: r.update(answer="x\n#### inf")), 2, "inf"),
    ("gsm8k", "test", "gsm8k/test.jsonl", edited(F.GSM8K, 0, lambda r: r.update(question=["a", "b"])), 1,
     "question"),
    ("gsm8k", "test", "gsm8k/test.jsonl", [], None, "empty"),
    ("anli_r3", "validation", "anli/R3/dev.jsonl", edited(F.ANLI, 1, lambda r: r.update(label=["e"])), 2, "label"),
    ("svamp", "all", "svamp/SVAMP.json", edited(F.SVAMP, 1, lambda r: r.update(Answer=float("inf"))), 10, "Answer"),
    ("svamp", "all", "svamp/SVAMP.json", [], None, "empty"),
    ("strategyqa", "validation", "strategyqa/dev.json", edited(F.STRATEGYQA, 0, lambda r: r.update(facts="abc")), 2,
     "facts"),
    ("quarel", "validation", "quarel/quarel-v1-dev.jsonl", edited(F.QUAREL, 0, lambda r: r.update(answer_index=True)),
     1, "answer_index"),
    ("openbookqa", "validation", "openbookqa/Main/dev.jsonl",
     edited(F.OBQA, 0, lambda r: r["question"]["choices"].append({"text": "e", "label": "E"})), 1, "5 choices"),
]


@pytest.mark.parametrize("task,split,rel,records,line,says", CASES, ids=[f"{c[0]}-{c[5]}" for c in CASES])
def test_a_bad_record_is_a_data_error_naming_file_and_line(tmp_path, task, split, rel, records, line, says):
    path = write(tmp_path, rel, records)
    with pytest.raises(DataError, match=says) as err:
        load(tmp_path, task, split)
    assert str(path) + (f":{line}:" if line else ":") in str(err.value)


@pytest.mark.parametrize("task,split,rel,data,line", [
    ("commonsense_qa", "validation", CSQA,
     (json.dumps(F.CSQA[0]) + "\n" + json.dumps(F.CSQA[1]) + "\n").encode() + b'{"id": "\xff\xfe"}\n', 3),
    ("sst2", "validation", "sst2/dev.tsv", b"sentence\tlabel\ngood .\t1\nbad \xc3\x28 .\t0\n", 3),
    ("svamp", "all", "svamp/SVAMP.json", json.dumps(F.SVAMP, indent=1).encode().replace(b"Jack", b"J\xe9ck"), 12),
])
def test_invalid_utf8_names_file_and_line(tmp_path, task, split, rel, data, line):
    path = write(tmp_path, rel, data)
    with pytest.raises(DataError, match=rf"{path}:{line}: not valid UTF-8"):
        load(tmp_path, task, split)


def test_stray_quotes_in_sst2_are_text_and_merge_no_rows(tmp_path):
    rows = ['"a quoted start . \t1', "plain row . \t0", 'an end quote" . \t1', "last . \t0"]
    write(tmp_path, "sst2/dev.tsv", "sentence\tlabel\n" + "\n".join(rows) + "\n")
    examples = load(tmp_path, "sst2", "validation")
    assert len(examples) == 4 and examples[0].question.endswith('\n""a quoted start . "')   # SCoTD quotes the sentence


def test_a_quote_that_swallows_imdb_lines_is_an_error_naming_them(tmp_path):
    path = write(tmp_path, "imdb_contrast/dev_original.tsv",
                 'Sentiment\tText\nPositive\t"An unclosed quote\nNegative\tDull.\nPositive\tFine "x"\n')
    with pytest.raises(DataError, match=rf"{path}:2: a quote opened here"):
        load(tmp_path, "imdb", "dev_original")


def test_a_review_over_128_kib_loads(tmp_path):
    long = "word " * 40_000
    write(tmp_path, "imdb_contrast/dev_original.tsv", f"Sentiment\tText\nPositive\t{long}\nNegative\tDull.\n")
    examples = load(tmp_path, "imdb", "dev_original")
    assert len(examples) == 2 and len(examples[0].question) > 128 * 1024


@pytest.mark.skipif(not __import__("pathlib").Path("/work/shared/data/sst2/dev.tsv").exists(),
                    reason="the original SST-2 dev.tsv is not in /work/shared/data")
def test_the_real_sst2_dev_file_with_two_stray_quotes_keeps_all_872_rows(tmp_path):
    lines = open("/work/shared/data/sst2/dev.tsv", encoding="utf-8").read().split("\n")
    lines[10] = '"' + lines[10]
    lines[17] = lines[17].replace(" .", ' " .', 1)
    write(tmp_path, "sst2/dev.tsv", "\n".join(lines))
    assert len(load(tmp_path, "sst2", "validation")) == 872
