"""Token and cost ledger of teacher runs: what was asked, what came from the cache, what it cost.

Prices are a user-settable table in US dollars per 1M prompt / completion tokens, keyed by the
teacher's ``model_name``; the kit ships no vendor prices (they change), so set yours::

    from scotd_kit import ledger
    ledger.set_price("gpt-4o-mini", prompt_per_1m=0.15, completion_per_1m=0.60)

Local teachers cost 0.  A dollar budget on a model without a price is refused before anything
is spent.  The ledger is a JSON file next to the corpus (``<corpus stem>.ledger.json``) that adds
up every run on that corpus.
"""
from __future__ import annotations

import json
import math
import time
import logging
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .io import write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Price:
    prompt_per_1m: float
    completion_per_1m: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt_per_1m + completion_tokens * self.completion_per_1m) / 1e6


PRICES: dict[str, Price] = {}
FREE = Price(0.0, 0.0)


def set_price(model: str, prompt_per_1m: float, completion_per_1m: float) -> None:
    PRICES[model] = Price(float(prompt_per_1m), float(completion_per_1m))


def price_for(teacher, prices: dict | None = None) -> Price | None:
    """The teacher's price: ``prices`` (argument) first, then :data:`PRICES`; local teachers are free."""
    table = {**PRICES, **(prices or {})}
    p = table.get(teacher.model_name)
    if isinstance(p, (tuple, list)):
        p = Price(*p)
    if p is None and getattr(teacher, "local", False):
        return FREE
    return p


@dataclass(frozen=True)
class Budget:
    """Stop cleanly once this much is spent (either limit; ``None`` = no limit)."""

    dollars: float | None = None
    tokens: int | None = None   # billed prompt + completion tokens

    def __post_init__(self):
        for name in ("dollars", "tokens"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                                  or v < 0):
                raise ValueError(f"Budget.{name} must be a finite number >= 0 or None, not {v!r}")

    @classmethod
    def coerce(cls, budget) -> "Budget | None":
        if budget is None or isinstance(budget, Budget):
            return budget
        if isinstance(budget, dict):
            return cls(**budget)
        raise TypeError(f"budget must be a Budget, a dict(dollars=..., tokens=...) or None, not {budget!r}")


@dataclass
class Estimate:
    """A dry-run estimate of what sampling the missing samples would cost."""

    teacher: str
    instances: int
    samples_needed: int
    cache_hits: int
    requests: int
    prompt_tokens: int
    completion_tokens: int         # upper bound unless observed_completion_mean is set
    cost_usd: float | None         # None: no price known for this model
    tokens_approximate: bool       # True when the teacher has no tokenizer at hand
    observed_completion_mean: float | None = None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __str__(self) -> str:
        cost = "unknown (no price set for this model)" if self.cost_usd is None else f"${self.cost_usd:,.4f}"
        approx = " (approximate token counts)" if self.tokens_approximate else ""
        comp = ("max_new_tokens per sample (upper bound)" if self.observed_completion_mean is None
                else f"observed mean {self.observed_completion_mean:.1f} per sample")
        return (f"dry run for teacher {self.teacher}: {self.samples_needed} samples to ask for "
                f"({self.cache_hits} already on disk) over {self.instances} instances, {self.requests} requests; "
                f"~{self.prompt_tokens:,} prompt + ~{self.completion_tokens:,} completion tokens "
                f"[{comp}]{approx}; estimated cost {cost}")


@dataclass
class RunStats:
    started: float = field(default_factory=time.time)
    finished: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    samples: int = 0
    cache_hits: int = 0
    calls: int = 0
    retries: int = 0
    wall_seconds: float = 0.0      # time spent waiting on the teacher
    cost_usd: float | None = 0.0
    stopped: str | None = None     # "budget" when a budget ended the run
    counted_prompt_tokens: int = 0  # what teacher.count_tokens said for the calls made (calibrates estimates)
    unrecorded_samples: int = 0    # samples on disk from an earlier run that died before saving its ledger

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Ledger:
    """Accumulates one run and saves run + totals to ``path`` after every batch."""

    def __init__(self, path: str | Path, teacher, price: Price | None):
        self.path = Path(path)
        self.teacher_id, self.model, self.price = teacher.id, teacher.model_name, price
        self.previous = self._load()
        self.run = RunStats()
        self.records_on_disk = int(self.previous.get("records_on_disk", 0))

    def _load(self) -> dict:
        if self.path.exists():
            try:
                return json.loads(self.path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                warnings.warn(f"{self.path}: ledger is not valid JSON ({e.msg}); starting a new one "
                              f"(the corpus itself is unaffected)")
                return {}
        return {}

    def add(self, prompt_tokens: int, completion_tokens: int, samples: int, calls: int, retries: int,
            seconds: float, counted_prompt_tokens: int = 0) -> None:
        r = self.run
        r.counted_prompt_tokens += counted_prompt_tokens
        r.prompt_tokens += prompt_tokens
        r.completion_tokens += completion_tokens
        r.samples += samples
        self.records_on_disk += samples
        r.calls += calls
        r.retries += retries
        r.wall_seconds += seconds
        r.cost_usd = self.price.cost(r.prompt_tokens, r.completion_tokens) if self.price else None

    def remaining(self, budget: Budget | None) -> tuple[float | None, int | None]:
        if budget is None:
            return None, None
        dollars = None if budget.dollars is None else budget.dollars - (self.run.cost_usd or 0.0)
        tokens = None if budget.tokens is None else budget.tokens - self.run.tokens
        return dollars, tokens

    def over(self, budget: Budget) -> bool:
        """Has this run spent more than the budget?"""
        dollars, tokens = self.remaining(budget)
        return (tokens is not None and tokens < 0) or (dollars is not None and dollars < -1e-12)

    def reconcile(self, records_on_disk: int) -> None:
        """Count samples an earlier run wrote but died before recording (the ledger is saved after
        the corpus), so the ledger's sample total matches the corpus."""
        recorded = int(self.previous.get("records_on_disk", records_on_disk))
        if records_on_disk > recorded:
            self.run.unrecorded_samples = records_on_disk - recorded
            warnings.warn(f"{self.path}: {records_on_disk - recorded} samples on disk were written by a run that "
                          f"ended before it saved this ledger; counted now (their tokens are not known)")
        self.records_on_disk = records_on_disk

    def save_quietly(self) -> None:
        """Save, or log why not: used while another error is on its way to the user."""
        try:
            self.save()
        except OSError as e:
            log.warning("%s: could not save the ledger (%s)", self.path, e)

    def would_exceed(self, budget: Budget | None, prompt_tokens: int, completion_tokens: int) -> bool:
        """Would spending this much more pass the budget?"""
        dollars, tokens = self.remaining(budget)
        if tokens is not None and prompt_tokens + completion_tokens > tokens:
            return True
        if dollars is not None and self.price is not None and \
                self.price.cost(prompt_tokens, completion_tokens) > dollars + 1e-12:
            return True
        return False

    def save(self) -> Path:
        self.run.finished = time.time()
        runs = list(self.previous.get("runs", []))
        this = {**asdict(self.run), "teacher": self.teacher_id}
        all_runs = runs + [this]
        totals = {k: sum((r.get(k) or 0) for r in all_runs)
                  for k in ("prompt_tokens", "completion_tokens", "samples", "cache_hits", "calls", "retries",
                            "wall_seconds", "counted_prompt_tokens", "unrecorded_samples")}
        totals["samples"] += totals["unrecorded_samples"]
        costs = [r.get("cost_usd") for r in all_runs]
        totals["cost_usd"] = None if any(c is None for c in costs) else sum(costs)
        payload = {"model": self.model, "price": asdict(self.price) if self.price else None,
                   "totals": totals, "records_on_disk": self.records_on_disk, "runs": all_runs}
        return write_json(self.path, payload)


def read_ledger(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
