"""Reference numbers for Socratic CoT: only what PAPERS.md section 2 verifies, with its attribution.

No cell of the paper's own tables has been read from the paper yet; the two below are quoted by a
third party, and the GPT-3 points are computed from OpenAI's released GSM8K solutions.
"""
from __future__ import annotations

QUOTED_BY = "as quoted by Wang, Li & Lu (ACL 2024, arXiv 2407.18248), Table 3"

# (kit task, student, kind) -> (accuracy %, attribution); kinds as in socratic.instances.KINDS
QUOTED = {
    ("gsm8k_socratic", "gpt2-large", "cot"): (14.1, f"CoT on human (GSM8K gold) rationales, {QUOTED_BY}"),
    # which Socratic variant (unified / iterative) is not stated by the quoting paper
    ("gsm8k_socratic", "gpt2-large", "socratic"): (21.1, f"Socratic CoT, GPT-3 175B teacher, variant not stated, "
                                                         f"{QUOTED_BY}"),
}

GPT3_FINETUNED_GSM8K = {
    "GPT-3 6B fine-tuned": (21.7, "286/1319 GSM8K test, computed from OpenAI's example_model_solutions.jsonl "
                                  "(not the Socratic paper's table)"),
    "GPT-3 175B fine-tuned": (34.7, "458/1319 GSM8K test, computed from OpenAI's example_model_solutions.jsonl "
                                    "(not the Socratic paper's table)"),
}


def quoted(task: str, student: str, kind: str) -> tuple[float, str] | None:
    """The quoted number of a main-table cell, if there is one (both Socratic variants share one)."""
    key = (task, student, "socratic" if kind in ("unified", "iterative") else kind)
    return QUOTED.get(key)
