"""StrategyQA (Geva et al. 2021): yes/no questions with a gold decomposition and facts.

The shipped files are eladsegal/strategyqa's 90/10 split of the official train set
(train 2,061 / dev 229); ``meta`` keeps ``decomposition`` and ``facts`` for Socratic CoT.
"""
from ..io import DataError, read_json_records
from .. import answers
from .base import Example, FileSplit, HubSplit, TaskSpec, id_field, require, string_list, text_field


def convert(record, where):
    gold = require(record, "answer", where)
    if not isinstance(gold, bool):
        raise DataError(f"{where}: answer {gold!r} is not true/false")
    return Example(id=id_field(record, "qid", where), question=text_field(record, "question", where),
                   label="yes" if gold else "no",
                   meta={"facts": list(string_list(record, "facts", where)),
                         "decomposition": list(string_list(record, "decomposition", where))})



# Provenance: ADAPTED -- SCoTD strategyqa.py (Wei et al.'s), adapted: no "Q: " / "Yes or no: ", lower-case labels
EXEMPLARS = (
    ("Do hamsters provide food for any animals?",
     "Hamsters are prey animals. Prey are food for predators. Thus, hamsters provide food for some animals.", "yes"),
    ("Could Brooke Shields succeed at University of Pennsylvania?",
     "Brooke Shields went to Princeton University. Princeton University is about as academically rigorous as the "
     "University of Pennsylvania. Thus, Brooke Shields could also succeed at the University of Pennsylvania.", "yes"),
    ("Hydrogen's atomic number squared exceeds number of Spice Girls?",
     "Hydrogen has an atomic number of 1. 1 squared is 1. There are 5 Spice Girls. Thus, Hydrogen's atomic number "
     "squared is less than 5.", "no"),
    ("Is it common to see frost during some college commencements?",
     "College commencement ceremonies can happen in December, May, and June. December is in the winter, so there "
     "can be frost. Thus, there could be frost at some commencements.", "yes"),
    ("Could a llama birth twice during War in Vietnam (1945-46)?",
     "The War in Vietnam was 6 months. The gestation period for a llama is 11 months, which is more than 6 months. "
     "Thus, a llama could not give birth twice during the War in Vietnam.", "no"),
    ("Would a pear sink in water?",
     "The density of a pear is about 0.6 g/cm^3, which is less than water. Objects less dense than water float. "
     "Thus, a pear would float.", "no"),
)

TASK = TaskSpec(
    name="strategyqa",
    description="StrategyQA yes/no multi-hop questions (Socratic CoT)",
    answer_type=answers.LABEL,
    labels=("yes", "no"), aliases=("true", "false"),
    from_file=convert, from_hub=convert, data_subdir="strategyqa",
    eval_split="validation",   # the shipped dev.json (no labelled official test set exists)
    files={"train": FileSplit("train.json", read_json_records),
           "validation": FileSplit("dev.json", read_json_records)},
    hub={"train": HubSplit("ChilleD/StrategyQA", "train"), "test": HubSplit("ChilleD/StrategyQA", "test")},
    exemplars=EXEMPLARS,
)
