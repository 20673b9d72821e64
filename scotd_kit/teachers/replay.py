"""Replay of SCoTD's released teacher corpora (``csqa_30x.json``, ``quarel_30x.json``,
``openbook_30x.json``), read as is, so users can train on the retired code-davinci-002's samples.

The released format (liunian-harold-li/scotd, ``SimpleDataPoolV3.dump_to_file``): one JSON list of
``{prompt, response, score, index, rationale[, token_probs, tokens]}``; ``index`` is the row of the
HF train split, ``score`` is 1 iff the extracted answer equals gold (lower-cased), ``rationale``
is the text before the last `` So the answer is: ``.

What SCoTD's training code makes of a record (``dataset/hf_datasets.py``, ``CoTDataset``), which
:func:`scotd_training_view` reproduces:

* records are grouped by ``index`` (``rationales_by_index``), indices visited in sorted order;
* a record is kept when ``score >= 0.5`` (``POOL_THRESHOLD``); an index with none is dropped;
* the target is ``rationale.strip("\\n") + " So the answer is: " + prediction[:10] + "\\n\\n"``
  where ``prediction`` = the response without leading newlines, cut at the first blank line,
  after the last answer marker, ``strip("\\n")``, one leading space removed.
"""
from __future__ import annotations

import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from ..answers import ANSWER_MARKER
from ..corpus import text_hash
from ..io import DataError, read_json_list
from .base import Completion, RequestResult, SampleRequest, SamplingSettings, TeacherError, approx_tokens, mean

REQUIRED = ("prompt", "response", "score", "index", "rationale")
# the release's file for each task (liunian-harold-li/scotd README): one teacher per task, never one for all
RELEASED_FILES = {"commonsense_qa": "csqa_30x.json", "openbookqa": "openbook_30x.json", "quarel": "quarel_30x.json"}
POOL_THRESHOLD = 0.5       # SCoTD configs/train.yaml
EXAMPLE_SUFFIX = "\n\n"


def load_released(path: str | os.PathLike) -> list[dict]:
    """The records of a released corpus, validated (a bad record names the file and its position)."""
    path = Path(path)
    out = []
    for i, rec in read_json_list(path):
        missing = [k for k in REQUIRED if k not in rec]
        if missing:
            raise DataError(f"{path}: record {i}: missing field(s) {', '.join(missing)} "
                            f"(expected SCoTD's released format: {', '.join(REQUIRED)}, token_probs, tokens)")
        problem = _type_problem(rec)
        if problem:
            raise DataError(f"{path}: record {i}: {problem}")
        out.append(rec)
    return out


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)     # JSON's true is not row 1


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# field -> (does a value fit, what it must be); token_probs and tokens may also be absent or null
_FIELD_TYPES = {
    "prompt": (lambda v: isinstance(v, str), "a string"),
    "response": (lambda v: isinstance(v, str), "a string"),
    "rationale": (lambda v: isinstance(v, str), "a string"),
    "index": (lambda v: _is_int(v) and v >= 0, "a whole number >= 0 (a row of the train split)"),
    "score": (_is_number, "a finite number (SCoTD's score: 1 when the answer matched gold)"),
    "token_probs": (lambda v: v is None or isinstance(v, list) and all(x is None or _is_number(x) for x in v),
                    "a list of numbers (token log-probs)"),
    "tokens": (lambda v: v is None or isinstance(v, list), "a list (the response's tokens)"),
}


def _type_problem(rec: dict) -> str | None:
    """Why a field of ``rec`` cannot be read as SCoTD wrote it; None when every field can."""
    for name, (fits, what) in _FIELD_TYPES.items():
        if name in rec and not fits(rec[name]):
            shown = repr(rec[name])
            return f"'{name}' must be {what}, not {shown if len(shown) <= 40 else shown[:37] + '...'}"
    return None


def released_file(path: str | os.PathLike, task: str) -> Path:
    """The released corpus of ``task``: ``path`` itself if it is a file, else the task's file in the
    directory ``path`` (``csqa_30x.json``, ``openbook_30x.json``, ``quarel_30x.json``)."""
    path = Path(path)
    if path.is_file():
        return path
    if task not in RELEASED_FILES:
        raise FileNotFoundError(f"SCoTD's released corpora cover {', '.join(RELEASED_FILES)}, not {task!r}; "
                                f"name a teacher for it (-p teachers='{{{task}: MODEL}}')")
    file = path / RELEASED_FILES[task]
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist: put SCoTD's released {RELEASED_FILES[task]} in {path} "
                                f"(-p teacher=replay:DIR names the directory)")
    return file


def group_by_index(records: Sequence[dict]) -> dict[int, list[dict]]:
    """SCoTD's ``rationales_by_index``: ``index -> records`` in file order."""
    groups: dict[int, list[dict]] = defaultdict(list)
    for r in records:
        groups[r["index"]].append(r)
    return dict(groups)


def scotd_prediction(response: str) -> str:
    """SCoTD's ``__getprediction__``: the answer text of a teacher response."""
    while response.startswith("\n"):
        response = response[1:]
    pred = response.split(EXAMPLE_SUFFIX)[0].split(ANSWER_MARKER)[-1].strip("\n")
    return pred[1:] if pred.startswith(" ") else pred


def scotd_training_view(records: Sequence[dict], threshold: float = POOL_THRESHOLD) -> dict[int, list[dict]]:
    """What SCoTD's ``all_correct_paths_balanced`` training draws from: ``index -> kept records``,
    each with ``rationale`` (newline-stripped), ``prediction`` and the student ``target``."""
    out: dict[int, list[dict]] = {}
    groups = group_by_index(records)
    for index in sorted(groups):
        kept = [r for r in groups[index] if r["score"] >= threshold]
        if not kept:
            continue
        out[index] = [{"index": index, "score": r["score"], "rationale": r["rationale"].strip("\n"),
                       "prediction": scotd_prediction(r["response"]),
                       "target": f"{r['rationale'].strip(chr(10))}{ANSWER_MARKER}"
                                 f"{scotd_prediction(r['response'])[:10]}{EXAMPLE_SUFFIX}"} for r in kept]
    return out


class ReplayTeacher:
    """A teacher that answers from a released corpus: sample ``j`` of the instance at split row
    ``index`` is the ``j``-th record with that index, in file order.  Use it with
    :func:`scotd_kit.sampling.sample_corpus` over the full train split (so an example's position,
    or its ``meta["index"]``, is SCoTD's ``index``); records keep SCoTD's own ``score`` (as
    ``correct``) and ``rationale``, and carry ``scotd_score`` and the token log-probs' mean."""

    local = True

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.records = load_released(self.path)
        self.groups = group_by_index(self.records)
        self._file_hash = text_hash(self.path.read_text(encoding="utf-8"))
        self.model_name = f"replay:{self.path.name}"

    @property
    def id(self) -> str:
        return f"replay:{self.path.name}@{self._file_hash}"

    def __repr__(self) -> str:
        return f"ReplayTeacher({str(self.path)!r}, {len(self.records)} records, {len(self.groups)} instances)"

    def available(self, index: int) -> int:
        return len(self.groups.get(index, []))

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    def sample(self, requests: Sequence[SampleRequest], settings: SamplingSettings) -> list[RequestResult]:
        results = []
        for req in requests:
            if req.index is None:
                raise TeacherError("ReplayTeacher needs SampleRequest.index (the split row)")
            group = self.groups.get(req.index, [])
            if req.start + req.n > len(group):
                raise TeacherError(f"{self.path}: index {req.index} has {len(group)} samples; "
                                   f"asked for samples {req.start}..{req.start + req.n - 1} (lower n)")
            comps = [self._completion(r) for r in group[req.start:req.start + req.n]]
            results.append(RequestResult(completions=comps, prompt_tokens=0, completion_tokens=0, calls=0))
        return results

    @staticmethod
    def _completion(r: dict) -> Completion:
        probs = r.get("token_probs")
        return Completion(
            text=r["response"], finish_reason="stop",
            completion_tokens=len(r["tokens"]) if isinstance(r.get("tokens"), list) else None,
            mean_logprob=mean(probs) if isinstance(probs, list) and probs else None,
            # SCoTD's own reading wins over the kit's re-extraction: these are the records it trained on
            fields={"rationale": r["rationale"].strip("\n"), "correct": r["score"] >= POOL_THRESHOLD, "scotd_score": r["score"]})
