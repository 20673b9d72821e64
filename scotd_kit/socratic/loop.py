"""Iterative Socratic inference: QG asks, QA answers, until QG says ``<end>`` or the step limit.

:func:`solve_iterative` runs many problems at once: every round, one batched QG call for all
problems in flight, then one batched QA call for those that got a sub-question; problems that end
leave the batch and waiting ones join (continuous batching at step granularity), so the batch stays
full. Each turn re-sends a problem's growing context; a :class:`~scotd_kit.generation.PromptCache`
per model keeps the keys/values of the previous turn's prompt, so only the new lines are prefilled.
QG and QA are separate ``(model, tokenizer)`` pairs and may differ in size.  Decoding is
greedy; a problem's trace depends only on its own text, so it does not depend on the batch size
and equals :func:`solve_one` (the plain one-problem loop, kept as the reference and the
benchmark's baseline).

Every step is kept (:class:`Trace`).  Outcomes (``Trace.status``): ``ended`` (QG emitted
``<end>``), ``step_limit`` (QG asked for more than ``max_steps`` sub-questions), ``no_steps`` (QG
ended before asking anything), ``qg_malformed`` (QG wrote neither a sub-question nor ``<end>``).
Only ``ended`` traces have a final answer (the last sub-answer); the others are scored wrong.
"""
from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

from ..generation import GenerationConfig, PromptCache, generate
from . import formats

STATUSES = ("ended", "step_limit", "no_steps", "qg_malformed")


@dataclass
class Trace:
    question: str
    pairs: list[tuple[str, str]] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)   # every QG / QA call: role, text, finish_reason
    status: str | None = None

    @property
    def final(self) -> str | None:
        """The last sub-answer, the iterative student's final answer (``None`` unless QG ended)."""
        return self.pairs[-1][1] if self.status == "ended" and self.pairs else None

    def as_dict(self) -> dict:
        return {**asdict(self), "final": self.final}


@dataclass(frozen=True)
class LoopConfig:
    max_steps: int = 8               # sub-questions per problem
    qg_max_new_tokens: int = 48
    qa_max_new_tokens: int = 64

    def __post_init__(self):
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, not {self.max_steps}")

    def qg(self) -> GenerationConfig:
        return GenerationConfig(max_new_tokens=self.qg_max_new_tokens, do_sample=False, stop=formats.QG_STOP)

    def qa(self) -> GenerationConfig:
        return GenerationConfig(max_new_tokens=self.qa_max_new_tokens, do_sample=False, stop=formats.QA_STOP)


def _after_qg(trace: Trace, gen, config: LoopConfig) -> str | None:
    """Record one QG generation; the sub-question to answer next, or ``None`` when the trace is done."""
    trace.steps.append({"role": "qg", "text": gen.text, "finish_reason": gen.finish_reason})
    kind, sub_question = formats.parse_qg(gen.text)
    if kind == "end":
        trace.status = "ended" if trace.pairs else "no_steps"
    elif kind == "malformed":
        trace.status = "qg_malformed"
    elif len(trace.pairs) >= config.max_steps:
        trace.status = "step_limit"
    else:
        return sub_question
    return None


def _after_qa(trace: Trace, sub_question: str, gen) -> None:
    trace.steps.append({"role": "qa", "text": gen.text, "finish_reason": gen.finish_reason})
    trace.pairs.append((sub_question, formats.parse_qa(gen.text)))


def solve_iterative(qg, qa, questions: Sequence[str], config: LoopConfig = LoopConfig(), *, batch_size: int = 16,
                    progress: bool = False, finished: Callable[[list[tuple[int, Trace]]], None] | None = None
                    ) -> list[Trace]:
    """Traces of ``questions``, in order; ``qg`` / ``qa`` are ``(model, tokenizer)`` pairs.

    ``finished([(i, trace), ...])`` is called with the problems each round ends (to write them as they go);
    decoding is greedy and a row does not depend on its batch mates, so a problem's trace is the same
    whichever problems share its rounds (a resumed run solves only the rest)."""
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size}")
    traces = [Trace(q) for q in questions]
    waiting, active = deque(range(len(traces))), []
    qg_cfg, qa_cfg = config.qg(), config.qa()
    qg_cache = PromptCache(qg[0])
    qa_cache = qg_cache if qa[0] is qg[0] else PromptCache(qa[0])
    bar = tqdm(total=len(traces), desc="socratic", unit="problem", disable=not progress)
    try:
        while waiting or active:
            while waiting and len(active) < batch_size:     # finished problems made room: new ones join
                active.append(waiting.popleft())
            gens = generate(*qg, [formats.qg_input(traces[i].question, traces[i].pairs) for i in active], qg_cfg,
                            batch_size=len(active), prompt_cache=qg_cache)
            asked = [(i, q) for i, g in zip(active, gens) if (q := _after_qg(traces[i], g[0], config)) is not None]
            if asked:
                gens = generate(*qa, [formats.qa_input(traces[i].question, traces[i].pairs, q) for i, q in asked],
                                qa_cfg, batch_size=len(asked), prompt_cache=qa_cache)
                for (i, q), g in zip(asked, gens):
                    _after_qa(traces[i], q, g[0])
            still = {i for i, _ in asked}
            if finished is not None:
                finished([(i, traces[i]) for i in active if i not in still])
            bar.update(len(active) - len(asked))
            active = [i for i, _ in asked]
    finally:
        bar.close()
    return traces


def solve_one(qg, qa, question: str, config: LoopConfig = LoopConfig()) -> Trace:
    """The same loop for one problem, one call at a time (the reference; the benchmark's baseline)."""
    trace = Trace(question)
    while True:
        gen = generate(*qg, [formats.qg_input(question, trace.pairs)], config.qg(), batch_size=1)[0][0]
        sub_question = _after_qg(trace, gen, config)
        if sub_question is None:
            return trace
        gen = generate(*qa, [formats.qa_input(question, trace.pairs, sub_question)], config.qa(), batch_size=1)[0][0]
        _after_qa(trace, sub_question, gen)
