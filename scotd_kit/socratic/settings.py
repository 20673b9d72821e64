"""Socratic CoT settings per profile (kept here, beside ``profiles.Profile``, which they complement).

``tasks`` pairs each table column (the paper's dataset, as a kit task) with the task actually run
under the profile: offline, the generated stand-in ``demo_socratic`` runs for GSM8K (labelled as
such in every table).  The ``demo`` profile also runs the real GSM8K socratic files at a small
limit through the same code path (``real_limit``), when they are on disk.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class SocraticSettings:
    tasks: tuple                          # ((column task, task run), ...)
    sizes: tuple                          # student models of the main table
    size_grid: tuple                      # QG / QA sizes of the size analysis
    method: str = "lora"                  # full | lora | qlora
    # TrainConfig.precision: auto (the hardware rule's fastest native type) | fp32 | fp16 | bf16 (CPU: autocast)
    precision: str = "auto"
    teacher: str | None = None            # teacher decompositions: a model name, "openai:<model>"; None = gold only
    teacher_n: int = 1
    teacher_max_new_tokens: int = 256
    train_limit: int | None = None        # training problems per task
    eval_limit: int | None = None
    real_limit: int | None = None         # demo: problems of the real GSM8K files (train and test each)
    real_max_length: int | None = None    # demo: max_length for the real files (longer than the stand-in's)
    train_steps: int = -1                 # optimizer steps (-1: train_epochs)
    real_train_steps: int | None = None   # demo: optimizer steps on the real files (None: train_steps)
    train_epochs: float = 1.0
    batch_size: int = 8
    learning_rate: float = 1e-4
    max_length: int = 512
    step_limit: int = 8                   # sub-questions per problem at inference
    qg_max_new_tokens: int = 48
    qa_max_new_tokens: int = 64
    answer_max_new_tokens: int = 256      # answer-only, CoT and unified students
    decode_batch_size: int = 16
    seed: int = 0
    profile: str = ""                     # the profile these settings belong to (socratic_settings sets it)


_STAND_IN = (("gsm8k_socratic", "demo_socratic"),)
_PAPER_TASKS = (("gsm8k_socratic", "gsm8k_socratic"), ("strategyqa", "strategyqa"), ("svamp", "svamp"))
_GPT2 = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")

SETTINGS = {
    "smoke": SocraticSettings(
        tasks=_STAND_IN, sizes=("tiny-gpt2",), size_grid=("tiny-gpt2", "tiny-llama"), method="full",
        teacher_max_new_tokens=24, train_limit=6, eval_limit=4, train_steps=3, batch_size=4, learning_rate=1e-3, max_length=192,
        step_limit=3, qg_max_new_tokens=12, qa_max_new_tokens=12, answer_max_new_tokens=24, decode_batch_size=4),
    # LoRA steps of a 135M model cost ~2.5 s each on an idle 2-core CPU with native bf16 (4.2 s in fp32), so
    # 48 steps of 8 on short sequences (about 2 epochs of the question generator's 232 pairs: with 16 steps
    # of 4 it asked one sub-question and stopped, 0 %; with these, 42.5 % on 40 problems); the real GSM8K
    # files at a tiny limit, 8 steps (the same code path; a 135M model is not expected to solve them).
    # 160 answer tokens: a unified stand-in trace is ~100 tokens (with 96, 19 of 40 were cut before the answer)
    "demo": SocraticSettings(
        tasks=_STAND_IN + (("gsm8k_socratic", "gsm8k_socratic"),), sizes=("smollm2-135m-instruct",),
        size_grid=("tiny-llama", "smollm2-135m-instruct"), method="lora",
        train_limit=64, eval_limit=100, real_limit=16, real_max_length=384, train_steps=48, real_train_steps=8,
        batch_size=8, learning_rate=1e-3,
        max_length=192, step_limit=4, qg_max_new_tokens=24, qa_max_new_tokens=32, answer_max_new_tokens=160,
        decode_batch_size=64),
    "colab": SocraticSettings(
        tasks=_PAPER_TASKS, sizes=("gpt2", "gpt2-medium"), size_grid=("gpt2", "gpt2-medium"), method="lora",
        eval_limit=500, train_steps=2000, batch_size=16, learning_rate=2e-4, max_length=512, decode_batch_size=32),
    # The paper's students (GPT-2 sizes) and datasets; every other value is a kit default: no code was
    # released and PAPERS.md records none of its hyperparameters.
    "paper": SocraticSettings(
        tasks=_PAPER_TASKS, sizes=_GPT2, size_grid=_GPT2, method="full",
        train_epochs=5, batch_size=16, learning_rate=1e-4, max_length=512, decode_batch_size=64),
}


def socratic_settings(profile: str, **overrides) -> SocraticSettings:
    """The Socratic settings of a profile, with any field overridden (notebook parameters: the
    notebooks' ``socratic`` dict, ``-p socratic='{sizes: [gpt2], train_steps: 100}'``). Lists become tuples."""
    try:
        base = SETTINGS[profile]
    except KeyError:
        raise KeyError(f"no Socratic settings for profile {profile!r}; known: {', '.join(SETTINGS)}") from None
    known = {f.name for f in fields(SocraticSettings)} - {"profile"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown Socratic setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    overrides = {k: _tuples(v) for k, v in overrides.items() if v is not None}
    return replace(base, profile=profile, **overrides)


def _tuples(value):
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


# what shapes a number; the paper profile's values of these are kit defaults, not the paper's
_COMPARED = ("method", "precision", "teacher", "teacher_n", "train_limit", "eval_limit", "real_limit",
             "real_max_length", "train_steps", "real_train_steps", "train_epochs", "batch_size", "learning_rate", "max_length", "step_limit",
             "qg_max_new_tokens", "qa_max_new_tokens", "answer_max_new_tokens")

# why no Socratic cell is compared with a number of the paper, whatever its settings
UNVERIFIED = "Socratic settings are kit defaults (the paper's hyperparameters are not verified)"


def differences_from_paper(profile: str, settings: SocraticSettings, *students: str) -> list[str]:
    """Why a Socratic cell made with ``settings`` (and these ``students``) is not comparable with the
    paper's numbers: never empty, since the paper's settings are not known (:data:`UNVERIFIED`); then
    each setting that differs from the paper profile's kit default, and each student that is not
    one of the paper's GPT-2 sizes."""
    out = [] if profile in ("colab", "paper") else [f"{profile} profile"]
    out.append(UNVERIFIED)
    defaults = SETTINGS["paper"]
    for name in _COMPARED:
        have, want = getattr(settings, name), getattr(defaults, name)
        if have != want:
            out.append(f"{name}={have!r} (kit default: {want!r})")
    out += [f"student {s!r} (paper: GPT-2 {', '.join(defaults.sizes)})" for s in dict.fromkeys(students)
            if s not in defaults.sizes]
    return out
