"""The papers' reference numbers: only those verified in PAPERS.md (tag [P]), nothing else.

Keys use the kit's task names.  Numbers are accuracies in percent on validation splits.
"""
from __future__ import annotations

TASKS = ("commonsense_qa", "quarel", "openbookqa")


def _row(csqa, quarel, obqa):
    return dict(zip(TASKS, (csqa, quarel, obqa)))


# Table 2(a): prompting before distillation.
TABLE_2A = {
    ("GPT3-175B", "none"): _row(82.1, 86.9, 83.4),
    ("GPT3-175B", "greedy"): _row(77.6, 83.3, 71.8),
    ("GPT3-175B", "self-consistency"): _row(81.3, 86.0, 86.4),
    ("OPT-1.3B", "none"): _row(20.5, 9.7, 2.8),
    ("OPT-1.3B", "greedy"): _row(17.9, 39.6, 12.6),
    ("OPT-1.3B", "self-consistency"): _row(21.1, 48.2, 22.2),
    ("random", ""): _row(20.0, 50.0, 25.0),
}

# Table 2(b): OPT-1.3B after distillation; rows (labels, training).
TABLE_2B = {
    ("few-shot", "label-only"): _row(62.7, 65.6, 59.8),
    ("few-shot", "greedy-CoT"): _row(64.6, 64.7, 48.8),
    ("few-shot", "SCoTD"): _row(64.7, 73.0, 57.8),
    ("full", "label-only"): _row(63.0, 59.0, 60.2),
    ("full", "greedy-CoT"): _row(68.2, 71.2, 50.0),
    ("full", "SCoTD"): _row(67.0, 83.8, 67.0),
}

# Table 3(a): student with / without self-consistency; rows (labels, SC).
# The paper prints 65.8 here and 67.0 in Table 2(b) for the same full-SCoTD OBQA cell.
TABLE_3A = {
    ("few-shot", "no"): _row(60.2, 73.4, 44.4),
    ("few-shot", "yes"): _row(64.7, 73.0, 57.8),
    ("full", "no"): _row(67.0, 83.8, 65.8),
    ("full", "yes"): _row(66.8, 83.8, 63.6),
}

# Table 3(b) / Fig. 2: few-shot SCoTD vs CoTs per instance.
COTS_PER_INSTANCE = (1, 5, 10, 20, 30)
TABLE_3B = {
    ("commonsense_qa", "no-SC"): (53.0, 58.3, 59.1, 60.0, 60.2),
    ("commonsense_qa", "SC"): (53.4, 63.0, 62.4, 64.1, 64.7),
    ("quarel", "no-SC"): (62.2, 68.7, 69.8, 70.9, 73.4),
    ("quarel", "SC"): (62.6, 66.2, 70.1, 71.2, 73.0),
    ("openbookqa", "no-SC"): (39.0, 40.2, 40.6, 43.2, 44.4),
    ("openbookqa", "SC"): (38.0, 37.6, 51.8, 59.8, 57.8),
}

# Fig. 5: IMDB original vs contrast set (values stated in the text).
FIG5 = {("label-only", "original"): 96.1, ("label-only", "contrast"): 81.6,
        ("SCoTD", "original"): 95.5, ("SCoTD", "contrast"): 92.0}

# Fig. 6: unseen SST-2 after ANLI + CSQA + OBQA multitask training (the no-CoT baseline is ~0%, an
# approximate value, so it is not a reference cell).
FIG6 = {"SCoTD": 79.6}

# Human evaluation: (preferred, total) pairs.
HUMAN_EVAL = {
    ("SCoTD vs undistilled", "all"): (0.59, 900),
    ("SCoTD vs undistilled", "both correct"): (0.61, 654),
    ("SCoTD vs text-davinci-002", "all"): (0.47, 900),
    ("SCoTD vs text-davinci-002", "both correct"): (0.51, 659),
}

# §3.1: share of the teacher's CoTs the supervised filter drops (wrong answers), in percent.
FILTER_DROPPED = _row(40.4, 34.2, 45.0)
