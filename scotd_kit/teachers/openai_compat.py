"""Any OpenAI-compatible HTTP endpoint as a teacher (OpenAI, a vLLM / TGI / Ollama server, ...).

* Completions API by default (``/completions``: the raw few-shot prompt, as SCoTD used GPT-3);
  ``chat=True`` sends the prompt as one user message to ``/chat/completions``.
* Requests run concurrently on a thread pool; ``n`` samples per request where the server honours
  ``n`` (a server that returns fewer choices, or refuses ``n`` with HTTP 400, is remembered and
  asked one sample per request from then on).
* Retries with exponential backoff and full jitter on 429, 5xx, timeouts, connection errors and
  malformed bodies; ``Retry-After`` is honoured; at most ``max_retries`` per request and
  ``retry_budget`` over the teacher's life, then :class:`TeacherError`.
* The API key is read from the environment variable named by ``api_key_env`` at each request and
  never kept on the object, so it cannot reach a corpus, a ledger, a repr or a pickle; any server
  text quoted in an error or log is scrubbed of it.
"""
from __future__ import annotations

import email.utils
import ipaddress
import json
import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence
from urllib.parse import urlsplit

import httpx

from .base import (Completion, RequestResult, SampleRequest, SamplingSettings, TeacherError, approx_tokens,
                   derive_seed, mean)

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


class _NotSupported(Exception):
    """HTTP 400 on a request with n > 1: the server does not take ``n``."""


class OpenAICompatibleTeacher:
    local = False

    def __init__(self, model: str, base_url: str = "https://api.openai.com/v1", *,
                 api_key_env: str | None = "OPENAI_API_KEY", chat: bool = False, max_concurrency: int = 8,
                 max_retries: int = 6, retry_budget: int | None = 1000, timeout: float = 60.0,
                 backoff_base: float = 1.0, backoff_max: float = 60.0, max_retry_after: float = 300.0,
                 max_n_per_request: int = 128, send_seed: bool = True, logprobs: bool = True,
                 extra_body: dict | None = None, transport: httpx.BaseTransport | None = None):
        self.model_name, self.base_url, self.chat = model, base_url.rstrip("/"), chat
        self.api_key_env = api_key_env
        self.max_concurrency, self.max_retries, self.retry_budget = max_concurrency, max_retries, retry_budget
        self.backoff_base, self.backoff_max, self.max_retry_after = backoff_base, backoff_max, max_retry_after
        self.max_n_per_request, self.send_seed, self.logprobs = max_n_per_request, send_seed, logprobs
        self.extra_body = dict(extra_body or {})
        self.n_supported: bool | None = None     # learnt from the server's first answers
        self.retries_used = 0
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=timeout, transport=transport,
                                    limits=httpx.Limits(max_connections=max_concurrency))
        self._rng = random.Random()             # jitter only: never affects what is sampled
        self._url = f"{self.base_url}/{'chat/completions' if chat else 'completions'}"

    @property
    def id(self) -> str:
        # the endpoint's address is not part of the identity: the same model behind another host
        # or port gives the same samples, so a corpus stays reusable when a server moves
        extra = json.dumps(self.extra_body, sort_keys=True) if self.extra_body else ""
        return f"openai:{'chat:' if self.chat else ''}{self.model_name}{':' + extra if extra else ''}"

    def __repr__(self) -> str:
        return (f"OpenAICompatibleTeacher(model={self.model_name!r}, base_url={self.base_url!r}, "
                f"api_key_env={self.api_key_env!r}, chat={self.chat})")

    def __getstate__(self):
        raise TypeError("OpenAICompatibleTeacher holds an HTTP client; build a new one in each process")

    def close(self) -> None:
        self._client.close()

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    # -- secrets -------------------------------------------------------------------------------
    def _headers(self) -> dict:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if not key:
            if self.api_key_env and not _is_loopback(self.base_url):
                raise TeacherError(f"no API key: set the environment variable {self.api_key_env} "
                                   f"(or pass api_key_env=None for a server that needs none)")
            return {}
        return {"Authorization": f"Bearer {key}"}

    def _scrub(self, text: str) -> str:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return text.replace(key, "***") if key else text

    # -- sampling ------------------------------------------------------------------------------
    def sample(self, requests: Sequence[SampleRequest], settings: SamplingSettings) -> list[RequestResult]:
        if not requests:
            return []
        abort = threading.Event()     # a fatal error anywhere stops the other requests' retries
        pool = ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(requests)))
        first_error: list[BaseException] = []

        def one(r: SampleRequest) -> RequestResult:
            try:
                return self._sample_one(r, settings, abort)
            except BaseException as e:
                with self._lock:
                    if not abort.is_set():
                        first_error.append(e)   # the cause, not a "cancelled" that followed it
                    abort.set()                 # before the pool can start the next request
                raise

        futures = [pool.submit(one, r) for r in requests]
        try:
            return [f.result() for f in futures]
        except BaseException as e:
            abort.set()
            for f in futures:
                f.cancel()
            if first_error and first_error[0] is not e:
                raise first_error[0] from None
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _sample_one(self, req: SampleRequest, settings: SamplingSettings, abort: threading.Event) -> RequestResult:
        result = RequestResult(completions=[], calls=0)
        offset = 0
        while offset < req.n:
            want = req.n - offset
            if self.n_supported is False:
                want = 1
            want = min(want, self.max_n_per_request)
            # seed of a call: the request's seed for its first chunk, else derived from the offset
            seed = req.seed if offset == 0 else derive_seed(req.seed, offset)
            try:
                data, retries = self._call(req.prompt, settings, want, seed, abort)
            except _NotSupported:
                self.n_supported = False
                continue
            result.calls += 1
            result.retries += retries
            choices = sorted(data["choices"], key=lambda c: c.get("index", 0))[:want]
            if want > 1:
                if len(choices) < want and self.n_supported is None:
                    log.info("%s returned %d of n=%d choices: asking one sample per request from now on",
                             self.base_url, len(choices), want)
                self.n_supported = len(choices) >= want if self.n_supported is None else self.n_supported
            usage = data.get("usage") or {}
            comps = [self._completion(c, settings) for c in choices]
            result.completions.extend(comps)
            result.prompt_tokens += int(usage.get("prompt_tokens") or approx_tokens(req.prompt))
            result.completion_tokens += int(usage.get("completion_tokens") or
                                            sum(c.completion_tokens or 0 for c in comps))
            for c in comps:
                c.prompt_tokens = usage.get("prompt_tokens")
            offset += len(choices)
        return result

    def _body(self, prompt: str, settings: SamplingSettings, n: int, seed: int) -> dict:
        body: dict[str, Any] = {"model": self.model_name, "max_tokens": settings.max_new_tokens,
                                "temperature": settings.temperature, "top_p": settings.top_p, "n": n,
                                "stop": list(settings.stop)}
        if self.chat:
            body["messages"] = [{"role": "user", "content": prompt}]
            if self.logprobs:
                body["logprobs"] = True
        else:
            body["prompt"] = prompt
            if self.logprobs:
                body["logprobs"] = 1
        if self.send_seed:
            body["seed"] = seed % (2 ** 31)     # many servers take a 32-bit signed seed
        if settings.top_k:
            body["top_k"] = settings.top_k       # not OpenAI's API; vLLM / TGI servers read it
        body.update(self.extra_body)
        return body

    def _completion(self, choice: dict, settings: SamplingSettings) -> Completion:
        if self.chat:
            text = (choice.get("message") or {}).get("content") or ""
            lp = [t.get("logprob") for t in ((choice.get("logprobs") or {}).get("content") or [])]
        else:
            text = choice.get("text") or ""
            lp = list((choice.get("logprobs") or {}).get("token_logprobs") or [])
        text = _cut_at_stop(text, settings.stop)   # some servers ignore `stop`
        reason = "length" if choice.get("finish_reason") == "length" else "stop"
        return Completion(text=text, finish_reason=reason,
                          completion_tokens=len(lp) if lp else approx_tokens(text) if text else 0,
                          mean_logprob=mean(lp) if lp else None)

    # -- one HTTP call with retries ---------------------------------------------------------------
    def _call(self, prompt: str, settings: SamplingSettings, n: int, seed: int,
              abort: threading.Event) -> tuple[dict, int]:
        body = self._body(prompt, settings, n, seed)
        retries = 0
        while True:
            if abort.is_set():
                raise TeacherError("cancelled: another request of this batch failed")
            try:
                return self._post(body, n), retries
            except _Retryable as e:
                retries += 1
                if retries > self.max_retries:
                    raise TeacherError(f"{self._url}: gave up after {self.max_retries} retries; last error: "
                                       f"{e.reason}") from None
                self._spend_retry(e.reason)
                delay = self._delay(retries, e.retry_after)
                log.warning("%s: %s; retry %d/%d in %.2fs", self._url, e.reason, retries, self.max_retries, delay)
                abort.wait(delay)             # sleeps, but wakes up at once when the batch is aborted

    def _spend_retry(self, reason: str) -> None:
        with self._lock:
            self.retries_used += 1
            if self.retry_budget is not None and self.retries_used > self.retry_budget:
                raise TeacherError(f"{self._url}: retry budget of {self.retry_budget} retries spent "
                                   f"(last error: {reason}); the server looks unhealthy")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        cap = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return self._rng.uniform(0, cap)        # full jitter: clients that failed together spread out

    def _post(self, body: dict, n: int) -> dict:
        try:
            resp = self._client.post(self._url, json=body, headers=self._headers())
        except httpx.TimeoutException:
            raise _Retryable("timeout") from None
        except httpx.TransportError as e:
            raise _Retryable(f"connection error ({type(e).__name__})") from None
        if resp.status_code in RETRY_STATUS:
            raise _Retryable(f"HTTP {resp.status_code}", _retry_after(resp.headers.get("retry-after")))
        if resp.status_code == 400 and n > 1 and self.n_supported is None:
            raise _NotSupported()
        if resp.status_code != 200:
            hint = f" (check the key in ${self.api_key_env})" if resp.status_code in (401, 403) else ""
            raise TeacherError(f"{self._url}: HTTP {resp.status_code}{hint}: "
                               f"{self._scrub(resp.text[:300])}")
        try:
            data = resp.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            raise _Retryable("malformed JSON body") from None
        problem = self._malformed(data)
        if problem:
            raise _Retryable(f"malformed response ({problem})")
        return data

    def _malformed(self, data: Any) -> str | None:
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
            return "no choices"
        for c in data["choices"]:
            if not isinstance(c, dict):
                return "a choice is not an object"
            text = (c.get("message") or {}).get("content") if self.chat else c.get("text")
            if not isinstance(text, str):
                return "a choice without text"
        return None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _cut_at_stop(text: str, stop: Sequence[str]) -> str:
    cut = min((k for k in (text.find(s) for s in stop if s) if k >= 0), default=len(text))
    return text[:cut]


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
