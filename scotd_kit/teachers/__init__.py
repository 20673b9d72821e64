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


def teacher_from_spec(spec: str, *, dtype: str | None = None) -> Teacher:
    """``"replay:<file>"`` (one of SCoTD's released ``*_30x.json``), ``"openai:<model>"`` (an
    OpenAI-compatible endpoint at ``$OPENAI_BASE_URL``, key from ``$OPENAI_API_KEY``; with
    ``SCOTD_ONE_SAMPLE_PER_CALL=1`` one call per sample seed, as a ``vllm serve`` teacher wants:
    docs/vllm.md), ``"vllm:<model>"`` (in-process vLLM, its engine built on first use), or a model
    name / path (local, loaded on first use, on the GPU when there is one). ``dtype``: the precision of
    a local or vLLM model, e.g. ``"bfloat16"``, None for the device's (or vLLM's) preferred one."""
    import os

    kind, _, rest = spec.partition(":")
    if kind == "replay":
        return make_teacher("replay", rest)
    if kind == "openai":
        return make_teacher("openai", rest, base_url=os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1"),
                            one_sample_per_call=os.environ.get("SCOTD_ONE_SAMPLE_PER_CALL", "") == "1")
    if kind == "vllm":
        return make_teacher("vllm", rest, dtype=dtype)
    return LocalTeacher(spec, dtype=dtype)     # placed by scotd_kit.models.load_model (the GPU when there is one)


__all__ = ["BACKENDS", "Completion", "LocalTeacher", "OpenAICompatibleTeacher", "ReplayTeacher", "RequestResult",
           "SampleRequest", "SamplingSettings", "Teacher", "TeacherError", "TeacherUnavailableError", "VLLMTeacher",
           "derive_seed", "load_released", "make_teacher", "scotd_training_view", "teacher_from_spec"]
