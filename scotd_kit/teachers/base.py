"""The ``Teacher`` protocol: what every backend (local model, HTTP endpoint, vLLM, replay) offers.

A teacher receives a batch of :class:`SampleRequest` (one per instance: the full prompt, the
shared few-shot prefix, a seed, how many samples) and returns one :class:`RequestResult` per
request, in order.  Everything else -- keys, the corpus on disk, resume, the ledger, answer
extraction -- is shared code in :mod:`scotd_kit.sampling`, so a new backend is one class here.
"""
from __future__ import annotations

import hashlib
import numbers
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

FINISH_REASONS = ("stop", "eos", "length")


class TeacherError(RuntimeError):
    """A teacher could not deliver (bad configuration, retries exhausted, server refusal)."""


class TeacherUnavailableError(TeacherError, ImportError):
    """An optional backend whose library is not installed."""


@dataclass(frozen=True)
class SamplingSettings:
    """Decoding settings; part of every corpus key, so changing one never reuses old samples."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None          # None: the backend's "off" (HF's default 50 is NOT implied)
    max_new_tokens: int = 128
    stop: tuple[str, ...] = ("\n\n",)
    seed: int = 0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


@dataclass(frozen=True)
class SampleRequest:
    """``n`` samples of one instance; they are sample indices ``start .. start + n - 1``."""

    prompt: str                # the full prompt (prefix + the instance's own part)
    n: int
    seed: int                  # the seed of sample ``start``: sample_seed(run seed, instance, start)
    start: int = 0             # first sample index asked for (top-up asks from the first missing one)
    prefix: str = ""           # the shared few-shot block: prompt.startswith(prefix)
    instance_id: str = ""
    index: int | None = None   # row in the split (replay looks samples up by it)
    seeds: tuple[int, ...] = ()   # one per sample: sample_seed(run seed, instance, start + j)
    # also the prompt's greedy completion (RequestResult.greedy), decoded with the samples; asked only of a
    # teacher whose ``greedy_alongside`` is true (the others decode it in a greedy run of its own)
    greedy: bool = False

    def __post_init__(self):
        if not self.prompt.startswith(self.prefix):
            raise ValueError("SampleRequest.prefix must be a prefix of prompt")
        if isinstance(self.n, bool) or not isinstance(self.n, numbers.Integral) or self.n < 1:
            raise ValueError(f"SampleRequest.n must be an integer >= 1, got {self.n!r}")
        if self.seeds and len(self.seeds) != self.n:
            raise ValueError(f"SampleRequest.seeds has {len(self.seeds)} entries for n={self.n}")

    @property
    def sample_seeds(self) -> tuple[int, ...]:
        """The seed of each sample.  A teacher that seeds sample ``j`` with ``sample_seeds[j]`` gives
        the same text for the same sample index however a run was cut and resumed."""
        return self.seeds or (self.seed,) + tuple(derive_seed(self.seed, j) for j in range(1, self.n))


@dataclass
class Completion:
    """One sampled continuation, cut before the stop string."""

    text: str
    finish_reason: str                      # "stop" | "eos" | "length"
    completion_tokens: int | None = None    # tokens before the stop
    prompt_tokens: int | None = None
    mean_logprob: float | None = None       # mean token log-prob where the backend gives it
    fields: dict[str, Any] = field(default_factory=dict)   # record fields a backend fixes (replay)
    index: int | None = None                # offset in its request when a backend fills it out of order


@dataclass
class RequestResult:
    """The completions of one request and what they cost (billed tokens, HTTP calls, retries)."""

    completions: list[Completion]
    prompt_tokens: int = 0
    completion_tokens: int = 0     # of the sampled completions
    calls: int = 1
    retries: int = 0
    greedy: Completion | None = None   # the greedy completion a request with ``greedy`` asked for


@runtime_checkable
class Teacher(Protocol):
    """Any object with these members is a teacher.

    ``id`` names the model and everything that changes its samples (it is part of each corpus
    key); ``model_name`` is the price-table key of :mod:`scotd_kit.ledger`; ``local`` says tokens
    are free.  ``count_tokens`` may be approximate (the dry-run estimate says so).
    """

    id: str
    model_name: str
    local: bool

    def sample(self, requests: Sequence[SampleRequest], settings: SamplingSettings) -> list[RequestResult]: ...

    def count_tokens(self, text: str) -> int: ...


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from any parts; stable across processes and platforms (unlike ``hash``)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def sample_seed(run_seed: int, instance_id: str, sample_index: int) -> int:
    """The seed of one sample: (run seed, instance, sample index) alone, never the batch layout."""
    return derive_seed(run_seed, instance_id, sample_index)


def mean(values: Sequence[float | None]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def approx_tokens(text: str) -> int:
    """~4 characters per token: the dry-run's estimate when no tokenizer is at hand."""
    return max(1, (len(text) + 3) // 4)
