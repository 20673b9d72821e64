"""GSM8K (Cobbe et al. 2021), main and socratic formats (Socratic CoT).

``label`` is the number after ``#### `` in canonical form.  ``meta["solution"]`` is the worked
solution with the ``<<calc=result>>`` annotations removed (a gold rationale); the socratic format
also carries ``meta["steps"]``: ``[(sub_question, sub_answer), ...]`` -- the ground-truth
decomposition that the decomposer (QG) and solver (QA) students can be trained on.
"""
import re

from ..io import DataError, read_jsonl
from .. import answers
from .base import Example, FileSplit, HubSplit, TaskSpec, text_field

_CALC = re.compile(r"<<[^<>]*>>")


def split_solution(answer: str, where: str) -> tuple[str, str]:
    """``(worked solution without calculator annotations, final answer text)``."""
    if "####" not in answer:
        raise DataError(f"{where}: answer has no '#### <final answer>' line")
    body, final = answer.rsplit("####", 1)
    value = answers.parse_number(final)
    if value is None:
        raise DataError(f"{where}: final answer {final.strip()!r} is not a number")
    # a few solutions hold a blank line; as a training target it would teach the student to stop
    # there (SCoTD cuts generations at the first blank line), so blank lines are collapsed
    solution = re.sub(r"\n\s*\n", "\n", _CALC.sub("", body).strip())
    return solution, answers.format_number(value)


def socratic_steps(solution: str, where: str) -> list[tuple[str, str]]:
    steps = []
    for line in solution.split("\n"):
        if not line.strip():
            continue
        if " ** " not in line:
            raise DataError(f"{where}: socratic step without ' ** ': {line[:80]!r}")
        q, a = line.split(" ** ", 1)
        steps.append((q.strip(), a.strip()))
    return steps


def _make(socratic: bool):
    def convert(record, where):
        question = text_field(record, "question", where)
        solution, label = split_solution(text_field(record, "answer", where), where)
        meta = {"solution": solution}
        if socratic:
            meta["steps"] = socratic_steps(solution, where)
            meta["solution"] = " ".join(a for _, a in meta["steps"])
        # GSM8K ships no ids; the row number within the split is the stable key
        return Example(id=where.rsplit(":", 1)[-1].rsplit(" ", 1)[-1], question=question, label=label, meta=meta)
    return convert


def _spec(socratic: bool) -> TaskSpec:
    suffix = "_socratic" if socratic else ""
    convert = _make(socratic)
    return TaskSpec(
        name="gsm8k" + suffix,
        description="GSM8K grade-school maths" + (" with socratic sub-questions (Socratic CoT)" if socratic else ""),
        answer_type=answers.NUMBER,
        markers=(answers.ANSWER_MARKER, "####"),
        from_file=convert, from_hub=convert, data_subdir="gsm8k", eval_split="test",
        files={"train": FileSplit(f"train{suffix}.jsonl", read_jsonl),
               "test": FileSplit(f"test{suffix}.jsonl", read_jsonl)},
        hub={s: HubSplit("openai/gsm8k", s, "socratic" if socratic else "main") for s in ("train", "test")},
    )


TASKS = (_spec(False), _spec(True))
