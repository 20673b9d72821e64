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



# Provenance: VERIFIED text of Wei et al. 2022's eight math exemplars (as in SCoTD's svamp_local.py), split into
# rationale and answer for the kit's " So the answer is: " format; SVAMP uses the same set.
# Wei et al. 2022's math exemplars (text verified; "The answer is N." became the label)
EXEMPLARS = (
    ("There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, "
     "there will be 21 trees. How many trees did the grove workers plant today?",
     "We start with 15 trees. Later we have 21 trees. The difference must be the number of trees they planted. "
     "So, they must have planted 21 - 15 = 6 trees.", "6"),
    ("If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
     "There are 3 cars in the parking lot already. 2 more arrive. Now there are 3 + 2 = 5 cars.", "5"),
    ("Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
     "Leah had 32 chocolates and Leah's sister had 42. That means there were originally 32 + 42 = 74 chocolates. "
     "35 have been eaten. So in total they still have 74 - 35 = 39 chocolates.", "39"),
    ("Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did "
     "Jason give to Denny?",
     "Jason had 20 lollipops. Since he only has 12 now, he must have given the rest to Denny. The number of "
     "lollipops he has given to Denny must have been 20 - 12 = 8 lollipops.", "8"),
    ("Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?",
     "He has 5 toys. He got 2 from mom, so after that he has 5 + 2 = 7 toys. Then he got 2 more from dad, so in "
     "total he has 7 + 2 = 9 toys.", "9"),
    ("There were nine computers in the server room. Five more computers were installed each day, from monday to "
     "thursday. How many computers are now in the server room?",
     "There are 4 days from monday to thursday. 5 computers were added each day. That means in total 4 * 5 = 20 "
     "computers were added. There were 9 computers in the beginning, so now there are 9 + 20 = 29 computers.", "29"),
    ("Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf "
     "balls did he have at the end of wednesday?",
     "Michael initially had 58 balls. He lost 23 on Tuesday, so after that he has 58 - 23 = 35 balls. On Wednesday "
     "he lost 2 more so now he has 35 - 2 = 33 balls.", "33"),
    ("Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
     "She bought 5 bagels for $3 each. This means she spent 5 * $3 = $15 on the bagels. She had $23 in beginning, "
     "so now she has $23 - $15 = $8.", "8"),
)

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
        exemplars=EXEMPLARS,
    )


TASKS = (_spec(False), _spec(True))
