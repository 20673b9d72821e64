"""Teacher backends behind one protocol (:class:`Teacher`); :func:`make_teacher` builds one by kind.

Adding a backend = one module with a class that has ``id``, ``model_name``, ``local``,
``sample(requests, settings)`` and ``count_tokens(text)``, plus one line in :data:`BACKENDS`.
"""
from __future__ import annotations

from .base import (Completion, RequestResult, SampleRequest, SamplingSettings, Teacher, TeacherError,
                   TeacherUnavailableError, derive_seed)
from .local import LocalTeacher
from .openai_compat import OpenAICompatibleTeacher
from .replay import ReplayTeacher, load_released, scotd_training_view
from .vllm_backend import VLLMTeacher

BACKENDS = {
    "local": LocalTeacher,                 # any causal LM scotd_kit.models.load_model resolves
    "openai": OpenAICompatibleTeacher,     # any OpenAI-compatible HTTP endpoint
    "vllm": VLLMTeacher,                   # in-process vLLM (optional dependency)
    "replay": ReplayTeacher,               # SCoTD's released *_30x.json corpora
}


def make_teacher(kind: str, *args, **kwargs) -> Teacher:
    """``make_teacher("local", "smollm2-135m-instruct")``, ``make_teacher("openai", "gpt-4o-mini")``, ..."""
    try:
        cls = BACKENDS[kind]
    except KeyError:
        raise ValueError(f"unknown teacher kind {kind!r}; known: {', '.join(BACKENDS)}") from None
    return cls(*args, **kwargs)


__all__ = ["BACKENDS", "Completion", "LocalTeacher", "OpenAICompatibleTeacher", "ReplayTeacher", "RequestResult",
           "SampleRequest", "SamplingSettings", "Teacher", "TeacherError", "TeacherUnavailableError", "VLLMTeacher",
           "derive_seed", "load_released", "make_teacher", "scotd_training_view"]
