"""Any OpenAI-compatible HTTP endpoint as a teacher (OpenAI, a vLLM / TGI / llama.cpp / Ollama server, ...).

* Completions API by default (``/completions``: the raw few-shot prompt, as SCoTD used GPT-3);
  ``chat=True`` sends the prompt as one user message to ``/chat/completions``.
* ``n`` samples per call where the server honours ``n``; the first call of the teacher's life
  probes it, and a server that returns fewer choices (llama.cpp) or refuses ``n`` with HTTP 400
  is asked one sample per call from then on.  Calls run concurrently on a thread pool, in the
  order of the requests (one instance's calls together), so a server's prefix cache serves them.
* Seeds: every sample has its own seed (``SampleRequest.sample_seeds``), sent with the call that
  asks for it first; one sample per call (a server without ``n``, or ``one_sample_per_call=True``)
  therefore gives the same text for the same sample after any crash and resume on a server that
  honours ``seed``.  With ``n`` honoured, choices after the first come from the server's own
  stream: a partly re-asked block differs in text (never in keys).
* Sampling settings are sent explicitly (``top_k``, ``min_p``, repetition penalties, "off"
  values included) so a server's own defaults (llama.cpp: top_k 40, min_p 0.05, repeat
  penalty 1.1) never apply silently; what was sent is recorded with every sample (``sent``).
  OpenAI's own API (and Azure's) rejects unknown fields: there only its fields are sent
  (``send_sampler_params`` overrides the choice).
* Log-probs are off by default (they cost some servers several times the time); pass
  ``logprobs=True`` for the teacher-likelihood filter.  Token counts come from the server's
  ``usage`` when it gives them, else from a 4-characters-a-token guess; a record's
  ``prompt_tokens`` is the count the ledger took for its call.
* ``timeout`` is a deadline on the whole call: connecting, waiting for the first byte and reading
  the body (a server that drips bytes is cut off when it passes; each network wait before the
  first byte is bounded by ``timeout`` as well).  The answer is read up to a size cap derived
  from ``max_tokens`` and ``n`` (``max_response_bytes`` overrides it); a longer answer is refused
  with :class:`TeacherError` and not asked again (a server that ignores ``max_tokens`` would do
  it again).
* A paid answer is never dropped for an optional field: ``logprobs``, ``index`` or ``usage``
  that is malformed is dropped with a :class:`MalformedFieldWarning` and the sample kept.  Every
  call the server answered is counted (``RequestResult.calls``), whatever happens after.
* Retries with exponential backoff and full jitter on 429, 5xx, timeouts, connection errors and
  malformed bodies; ``Retry-After`` is honoured; at most ``max_retries`` per call, and
  ``retry_budget`` over the teacher's life, then :class:`TeacherError`.  A server that cannot be
  reached at all (restarting, reloading a model) is waited for ``patience`` seconds in total.
  A failing batch hands back what it completed (``TeacherError.partial``), so nothing paid for
  is dropped.
* Secrets: the API key is read from the environment variable named by ``api_key_env``, checked
  when the teacher is built (a trailing newline or a non-ASCII character is an error that names
  the variable, not the key), and never kept on the object, so it cannot reach a corpus, a
  ledger, a repr or a pickle.  Credentials in ``base_url`` (``user:pass@``, ``?key=``) are
  redacted from every repr, error and log line; httpx/httpcore debug logs are scrubbed too.
  Redirects are not followed (an HTTP 3xx is an error), so the key never reaches another host.
"""
from __future__ import annotations

import base64
import email.utils
import ipaddress
import json
import logging
import math
import os
import random
import re
import socket
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from .base import (Completion, RequestResult, SampleRequest, SamplingSettings, TeacherError, approx_tokens,
                   mean)

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
# What the "off" value of each sampler setting is, as llama.cpp, vLLM and TGI read them.
OPENAI_HOSTS = ("openai.com", "openai.azure.com")    # APIs that refuse fields they do not know
NEUTRAL_SAMPLER = {"min_p": 0.0, "repeat_penalty": 1.0, "repetition_penalty": 1.0, "typical_p": 1.0}
# The size cap of an answer: a token is a few dozen bytes of JSON at most (a long token, every character
# \u-escaped), a few hundred with its log-prob entry; ids, usage and the like fit in the overhead, and a
# server that echoes the prompt gets room for it, escaped.
BYTES_PER_TOKEN = 64
BYTES_PER_TOKEN_LOGPROBS = 1024
RESPONSE_OVERHEAD = 64 * 1024
ERROR_BODY_BYTES = 4096          # what an error answer is read for: the start of its message
UNBOUNDED_TOKENS = 32768         # the cap's token count when extra_body lifted max_tokens


class MalformedFieldWarning(UserWarning):
    """An optional field of a server's answer was malformed and dropped; the sample was kept."""


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None, unreachable: bool = False):
        super().__init__(reason)
        self.reason, self.retry_after, self.unreachable = reason, retry_after, unreachable


class _NotSupported(Exception):
    """HTTP 400 on a request with n > 1: the server does not take ``n``."""


class _TooLarge(Exception):
    """An answer passed its size cap."""

    def __init__(self, size: int, cap: int):
        super().__init__(f"{size:,} bytes")
        self.size, self.cap = size, cap


class OpenAICompatibleTeacher:
    local = False

    def __init__(self, model: str, base_url: str = "https://api.openai.com/v1", *,
                 api_key_env: str | None = "OPENAI_API_KEY", chat: bool = False, max_concurrency: int = 8,
                 max_retries: int = 8, retry_budget: int | None = 1000, timeout: float = 120.0,
                 backoff_base: float = 1.0, backoff_max: float = 30.0, max_retry_after: float = 300.0,
                 patience: float = 300.0, max_n_per_request: int = 128, send_seed: bool = True,
                 logprobs: bool = False, one_sample_per_call: bool = False,
                 send_sampler_params: bool | None = None, extra_body: dict | None = None,
                 max_response_bytes: int | None = None, transport: httpx.BaseTransport | None = None):
        _check_numbers(max_concurrency=(max_concurrency, 1), max_retries=(max_retries, 0),
                       max_n_per_request=(max_n_per_request, 1), timeout=(timeout, 0.001),
                       backoff_base=(backoff_base, 0), backoff_max=(backoff_max, 0),
                       max_retry_after=(max_retry_after, 0), patience=(patience, 0))
        if retry_budget is not None:
            _check_numbers(retry_budget=(retry_budget, 0))
        if max_response_bytes is not None:
            _check_numbers(max_response_bytes=(max_response_bytes, 1))
        self.model_name, self.chat = model, chat
        self._base = _check_url(base_url.rstrip("/"))
        self.base_url = redact_url(self._base)     # what reprs, errors and logs show
        self.api_key_env = api_key_env
        _api_key(api_key_env)                      # a malformed key is an error now, not six retries later
        self.max_concurrency, self.max_retries, self.retry_budget = max_concurrency, max_retries, retry_budget
        self.backoff_base, self.backoff_max, self.max_retry_after = backoff_base, backoff_max, max_retry_after
        self.patience, self.timeout, self.max_response_bytes = patience, timeout, max_response_bytes
        self.max_n_per_request, self.send_seed, self.logprobs = max_n_per_request, send_seed, logprobs
        self.one_sample_per_call = one_sample_per_call
        host = urlsplit(self._base).hostname or ""
        # OpenAI's API refuses fields it does not know; every other server gets every setting
        self.send_sampler_params = (not host.endswith(OPENAI_HOSTS)) if send_sampler_params is None \
            else send_sampler_params
        self.extra_body = dict(extra_body or {})
        self.n_supported: bool | None = False if one_sample_per_call else None   # learnt from the server
        self.retries_used = 0
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False,
                                    limits=httpx.Limits(max_connections=max_concurrency))
        self._rng = random.Random()             # jitter only: never affects what is sampled
        path = "chat/completions" if chat else "completions"
        self._url, self.url = _endpoint(self._base, path), _endpoint(self.base_url, path)

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
        key = _api_key(self.api_key_env)
        if not key:
            if self.api_key_env and not _is_loopback(self._base):
                raise TeacherError(f"no API key: set the environment variable {self.api_key_env} "
                                   f"(or pass api_key_env=None for a server that needs none)")
            return {}
        return {"Authorization": f"Bearer {key}"}

    def _scrub(self, text: str) -> str:
        """Server text quoted in an error, without the key or the URL's credentials (a server may echo
        the Authorization header: Bearer key, or Basic base64 of the URL's user:password)."""
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        secrets = [key.strip()] if key and key.strip() else []
        secrets += _url_secrets(self._base)
        for secret in sorted(secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return redact_text(text.replace(self._base, self.base_url))

    # -- sampling ------------------------------------------------------------------------------
    def sample(self, requests: Sequence[SampleRequest], settings: SamplingSettings) -> list[RequestResult]:
        """One result per request; on a fatal error, :class:`TeacherError` with ``partial`` (what
        completed, per request) so the caller keeps every sample it paid for."""
        results = [RequestResult(completions=[], calls=0) for _ in requests]
        try:
            units = self._probe(requests, settings, results)
            self._run_units(units, requests, settings, results)
        except TeacherError as e:
            e.partial = [_sorted(r) for r in results]
            raise
        return [_sorted(r) for r in results]

    def _probe(self, requests, settings, results) -> list[tuple[int, int, int]]:
        """The calls still to make, ``(request, offset, n)``, in request order; the teacher's first
        request with ``n`` > 1 is sent alone first, to learn whether the server honours ``n``."""
        done = [0] * len(requests)
        if self.n_supported is None:
            first = next((i for i, r in enumerate(requests) if r.n > 1), None)
            if first is not None:
                want = min(requests[first].n, self.max_n_per_request)
                got = self._unit(requests[first], 0, want, settings, results[first], threading.Event())
                self.n_supported = got >= want
                if not self.n_supported:
                    log.info("%s returned %d of n=%d choices: asking one sample per call from now on",
                             self.base_url, got, want)
                done[first] = want             # _unit asked what the server left out
        step = self.max_n_per_request if self.n_supported else 1
        return [(i, off, min(step, r.n - off)) for i, r in enumerate(requests) for off in range(done[i], r.n, step)]

    def _run_units(self, units, requests, settings, results) -> None:
        if not units:
            return
        abort = threading.Event()     # a fatal error anywhere stops the other calls' retries
        first_error: list[BaseException] = []

        def one(unit):
            i, off, want = unit
            try:
                self._unit(requests[i], off, want, settings, results[i], abort)
            except BaseException as e:
                with self._lock:
                    if not abort.is_set():
                        first_error.append(e)   # the cause, not a "cancelled" that followed it
                    abort.set()                 # before the pool can start the next call
                raise

        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(units))) as pool:
            futures = [pool.submit(one, u) for u in units]
            for f in futures:
                f.exception()                   # wait for all: completed calls are kept
        if first_error:
            raise first_error[0] if isinstance(first_error[0], TeacherError) else \
                TeacherError(f"{self.url}: {type(first_error[0]).__name__}: {self._scrub(str(first_error[0]))}")

    def _unit(self, req: SampleRequest, offset: int, want: int, settings: SamplingSettings,
              result: RequestResult, abort: threading.Event) -> int:
        """Ask samples ``offset .. offset+want-1`` of ``req``; what a server leaves out (it ignored
        ``n``) is asked one sample per call, each with its own seed.  Returns what the first call gave."""
        first = got = self._ask_once(req, offset, want, settings, result, abort)
        while got and want - got > 0:
            offset, want = offset + got, want - got
            got = self._ask_once(req, offset, 1, settings, result, abort)
        return first

    def _ask_once(self, req: SampleRequest, offset: int, want: int, settings: SamplingSettings,
                  result: RequestResult, abort: threading.Event) -> int:
        seed = req.sample_seeds[offset]
        try:
            data, sent = self._call(req.prompt, settings, want, seed, abort, result)
        except _NotSupported:
            self.n_supported = False
            want = 1
            data, sent = self._call(req.prompt, settings, want, seed, abort, result)
        comps: list[Completion] = []
        try:
            comps = self._completions(data, want, settings, sent)
            for k, c in enumerate(comps):
                c.index = offset + k              # where the sample goes, whatever order calls finish in
        finally:
            self._book(result, data, req.prompt, comps)    # the server answered: a paid call, whatever failed
        return len(comps)

    def _completions(self, data: dict, want: int, settings: SamplingSettings, sent: dict) -> list[Completion]:
        comps = [self._completion(c, settings) for c in self._choices(data["choices"])[:want]]
        for c in comps:
            c.fields = {"sent": sent}
        return comps

    def _book(self, result: RequestResult, data: dict, prompt: str, comps: list[Completion]) -> None:
        """Count one answered call, its tokens and its samples.  Records carry the prompt count the
        ledger takes, so the two agree whether it is the server's or a guess."""
        prompt_tokens, completion_tokens = self._usage(data.get("usage"), comps)
        prompt_tokens = prompt_tokens or approx_tokens(prompt)
        for c in comps:
            c.prompt_tokens = prompt_tokens
        if completion_tokens is not None and len(comps) == 1:
            comps[0].completion_tokens = completion_tokens       # the server's count, not a guess
        with self._lock:
            result.calls += 1
            result.completions.extend(comps)
            result.prompt_tokens += prompt_tokens
            result.completion_tokens += completion_tokens if completion_tokens is not None else \
                sum(c.completion_tokens or 0 for c in comps)

    def _book_refused(self, result: RequestResult, prompt: str, completion_tokens: int) -> None:
        """An answer refused after the server sent it is a paid call all the same; what it billed is
        unknown, so it counts the tokens asked for."""
        with self._lock:
            result.calls += 1
            result.prompt_tokens += approx_tokens(prompt)
            result.completion_tokens += completion_tokens

    # -- optional fields: a malformed one is dropped, never the answer ----------------------------------
    def _dropped(self, field: str, value: Any, why: str) -> None:
        shown = self._scrub(repr(value))
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        warnings.warn(f"{self.url}: the answer's {field} ({shown}) is {why}; dropped it and kept the sample",
                      MalformedFieldWarning, stacklevel=3)

    def _usage(self, usage: Any, comps: list[Completion]) -> tuple[int | None, int | None]:
        """The server's prompt and completion token counts; None where it gave none or nonsense (not a
        whole number, or 0 for a prompt, which is never empty, or for text that is not empty)."""
        if usage is None:
            return None, None
        if not isinstance(usage, dict):
            self._dropped("usage", usage, "not an object")
            return None, None
        texts = any(c.text for c in comps)
        return self._count(usage, "prompt_tokens", 1), self._count(usage, "completion_tokens", 1 if texts else 0)

    def _count(self, usage: dict, name: str, low: int) -> int | None:
        value = usage.get(name)
        if value is None:
            return None
        if _whole(value) and value >= low:
            return value
        self._dropped(f"usage.{name}", value, f"not a whole number >= {low}")
        return None

    def _choices(self, choices: list) -> list:
        """The choices in the server's ``index`` order; in the order sent when an index is not a whole number."""
        bad = [c["index"] for c in choices if "index" in c and not _whole(c["index"])]
        if bad:
            self._dropped("choices[].index", bad[0], "not a whole number")
            return list(choices)
        return sorted(choices, key=lambda c: c.get("index", 0))

    def _logprobs(self, logprobs: Any) -> list | None:
        """A choice's token log-probs (``None`` entries kept: mean() skips them); None when it has none."""
        field = "choices[].logprobs"
        if logprobs is None:
            return None
        if not isinstance(logprobs, dict):
            return self._dropped(field, logprobs, "not an object")
        values = logprobs.get("content" if self.chat else "token_logprobs")
        if values is None:
            return None
        if self.chat:           # [{"token": ..., "logprob": ...}, ...]
            if not isinstance(values, list) or not all(isinstance(t, dict) for t in values):
                return self._dropped(field + ".content", values, "not a list of objects")
            values = [t.get("logprob") for t in values]
        if not isinstance(values, list) or not all(v is None or _finite(v) for v in values):
            return self._dropped(field, values, "not a list of numbers")
        return values

    def _body(self, prompt: str, settings: SamplingSettings, n: int, seed: int) -> dict:
        body: dict[str, Any] = {"model": self.model_name, "max_tokens": settings.max_new_tokens,
                                "temperature": settings.temperature, "top_p": settings.top_p, "n": n,
                                "stop": list(settings.stop), "presence_penalty": 0.0, "frequency_penalty": 0.0}
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
        if self.send_sampler_params:
            body["top_k"] = settings.top_k or 0  # 0: off, for llama.cpp, vLLM (>= 0.8) and TGI alike
            body.update(NEUTRAL_SAMPLER)
        body.update(self.extra_body)
        return body

    def _completion(self, choice: dict, settings: SamplingSettings) -> Completion:
        text = choice["message"]["content"] if self.chat else choice["text"]     # _malformed checked both
        lp = self._logprobs(choice.get("logprobs"))
        text = _cut_at_stop(text, settings.stop)   # some servers ignore `stop`
        reason = "length" if choice.get("finish_reason") == "length" else "stop"
        return Completion(text=text, finish_reason=reason,
                          completion_tokens=len(lp) if lp else approx_tokens(text) if text else 0,
                          mean_logprob=mean(lp) if lp else None)

    # -- one HTTP call with retries ---------------------------------------------------------------
    def _call(self, prompt: str, settings: SamplingSettings, n: int, seed: int, abort: threading.Event,
              result: RequestResult) -> tuple[dict, dict]:
        """``(response, the settings sent)``; retries are counted on ``result`` as they happen.

        The settings recorded with a sample leave out the prompt, ``n`` and the call's seed: they
        depend on how a run was batched, and a resumed corpus must equal an uninterrupted one."""
        body = self._body(prompt, settings, n, seed)
        sent = {k: v for k, v in body.items() if k not in ("prompt", "messages", "model", "n", "seed")}
        retries, unreachable_since = 0, None
        while True:
            if abort.is_set():
                raise TeacherError("cancelled: another request of this batch failed")
            try:
                return self._post(body, n), sent
            except _TooLarge as e:
                # not retried: a server that ignored max_tokens once would be paid to do it again
                self._book_refused(result, prompt, n * _max_tokens(body))
                raise TeacherError(f"{self.url}: the answer passed {e.cap:,} bytes, the size cap for "
                                   f"max_tokens={_max_tokens(body)} and n={n}; refused (does the server ignore "
                                   f"max_tokens? max_response_bytes sets another cap)") from None
            except _Retryable as e:
                retries += 1
                with self._lock:
                    result.retries += 1
                if e.unreachable:
                    unreachable_since = unreachable_since or time.monotonic()
                waited = time.monotonic() - unreachable_since if unreachable_since else 0.0
                if retries > self.max_retries and not (e.unreachable and waited < self.patience):
                    raise TeacherError(f"{self.url}: gave up after {retries - 1} retries; last error: "
                                       f"{e.reason}") from None
                self._spend_retry(e.reason)
                delay = self._delay(retries, e.retry_after)
                log.warning("%s: %s; retry %d/%d in %.2fs", self.url, e.reason, retries, self.max_retries, delay)
                abort.wait(delay)             # sleeps, but wakes up at once when the batch is aborted

    def _spend_retry(self, reason: str) -> None:
        with self._lock:
            self.retries_used += 1
            if self.retry_budget is not None and self.retries_used > self.retry_budget:
                raise TeacherError(f"{self.url}: retry budget of {self.retry_budget} retries spent "
                                   f"(last error: {reason}); the server looks unhealthy")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        cap = min(self.backoff_max, self.backoff_base * 2 ** (min(attempt, 60) - 1))
        return self._rng.uniform(0, cap)        # full jitter: clients that failed together spread out

    def _post(self, body: dict, n: int) -> dict:
        deadline = time.monotonic() + self.timeout
        try:
            with self._client.stream("POST", self._url, json=body, headers=self._headers()) as resp:
                status = resp.status_code
                if status in RETRY_STATUS:
                    raise _Retryable(f"HTTP {status}", _retry_after(resp.headers.get("retry-after")))
                if status == 400 and n > 1 and self.n_supported is None:
                    raise _NotSupported()
                ok = status == 200
                raw = self._read(resp, deadline, self._response_cap(body, n) if ok else ERROR_BODY_BYTES, ok)
        except httpx.TimeoutException:
            raise _Retryable("timeout", unreachable=True) from None
        except httpx.LocalProtocolError as e:   # our own request is malformed: retrying cannot help
            raise TeacherError(f"{self.url}: the request could not be sent ({type(e).__name__})") from None
        except httpx.TransportError as e:
            raise _Retryable(f"connection error ({type(e).__name__})", unreachable=True) from None
        if status != 200:
            hint = f" (check the key in ${self.api_key_env})" if status in (401, 403) else ""
            raise TeacherError(f"{self.url}: HTTP {status}{hint}: "
                               f"{self._scrub(raw.decode('utf-8', 'replace')[:300])}")
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError, RecursionError):
            raise _Retryable("malformed JSON body") from None
        problem = self._malformed(data)
        if problem:
            raise _Retryable(f"malformed response ({problem})")
        return data

    def _read(self, resp: httpx.Response, deadline: float, cap: int, strict: bool) -> bytes:
        """The body, read by ``deadline`` and up to ``cap`` bytes: past the cap an answer is refused
        (``strict``, :class:`_TooLarge`) or cut (an error's message)."""
        declared = resp.headers.get("content-length", "")
        if strict and declared.isdigit() and int(declared) > cap:
            raise _TooLarge(int(declared), cap)      # refused before a byte of it is read
        chunks, size = [], 0
        with _Watchdog(resp, deadline) as dog:
            try:
                for chunk in resp.iter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > cap:
                        if strict:
                            raise _TooLarge(size, cap)
                        break
                    if dog.fired:
                        break
            except (httpx.TransportError, OSError):
                if not dog.fired:
                    raise
            if dog.fired:
                raise _Retryable(f"deadline of {self.timeout:g}s passed before the answer was complete")
        return b"".join(chunks)[:cap]

    def _response_cap(self, body: dict, n: int) -> int:
        """The bytes an answer to ``body`` may take: ``max_response_bytes``, else from max_tokens and n."""
        if self.max_response_bytes is not None:
            return int(self.max_response_bytes)
        per_token = BYTES_PER_TOKEN_LOGPROBS if body.get("logprobs") else BYTES_PER_TOKEN
        prompt = body.get("prompt") if "prompt" in body else json.dumps(body.get("messages"))
        return RESPONSE_OVERHEAD + 6 * len(str(prompt)) + n * _max_tokens(body) * per_token

    def _malformed(self, data: Any) -> str | None:
        """What makes an answer unusable (it is asked again); optional fields are read leniently later."""
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
            return "no choices"
        for c in data["choices"]:
            if not isinstance(c, dict):
                return "a choice is not an object"
            holder = c.get("message") if self.chat else c
            if not isinstance(holder, dict) or not isinstance(holder.get("content" if self.chat else "text"), str):
                return "a choice without text"
        return None


class _Watchdog:
    """Shuts a response's socket down when its call's deadline passes.  httpx bounds each read, not the
    body: a server that sends a byte now and then would hold a call for ever, and a shutdown wakes the
    read blocked on it at once (between reads, ``fired`` is checked)."""

    def __init__(self, resp: httpx.Response, deadline: float):
        stream = resp.extensions.get("network_stream")
        self._sock = stream.get_extra_info("socket") if stream is not None else None
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._lock = threading.Lock()
        self.fired = self._done = False

    def __enter__(self) -> "_Watchdog":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._done = True          # a connection handed back to the pool is never shut down
        self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            if isinstance(self._sock, socket.socket):
                try:    # the plain socket's shutdown, under TLS too: the TLS layer is left to the reader
                    socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
                except OSError:
                    pass


def _sorted(result: RequestResult) -> RequestResult:
    result.completions.sort(key=lambda c: c.index)
    return result


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _max_tokens(body: dict) -> int:
    """The completion tokens a call may take (``extra_body`` may have set either name)."""
    limits = [body.get(k) for k in ("max_tokens", "max_completion_tokens")]
    return max((v for v in limits if _whole(v) and v > 0), default=UNBOUNDED_TOKENS)


_KEY_OK = re.compile(r"[\x21-\x7e]+")     # printable ASCII, no spaces: what an HTTP header can carry


def _api_key(env: str | None) -> str | None:
    """The key in ``$env`` (None when unset); a malformed one is an error naming the variable."""
    key = os.environ.get(env) if env else None
    if not key:
        return None
    if not _KEY_OK.fullmatch(key):
        what = ("ends with a newline or space" if key != key.rstrip() else
                "starts with a space" if key != key.lstrip() else
                "holds a non-ASCII or control character or a space")
        raise TeacherError(f"the API key in ${env} {what}; fix the variable (the key is not shown)")
    return key


def _check_numbers(**specs: tuple[float, float]) -> None:
    for name, (value, low) in specs.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < low:
            raise ValueError(f"{name} must be a finite number >= {low}, not {value!r}")


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url must be an http(s) URL with a host, not {redact_url(url)!r}")
    return url


def _url_secrets(url: str) -> list[str]:
    """The credentials in ``url`` as a server may echo them: user:password, the password, its Basic
    token, and each query value."""
    parts = urlsplit(url)
    out = [v for v in re.findall(r"=([^&]+)", parts.query) if v]
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        out += [userinfo, base64.b64encode(userinfo.encode()).decode()]
        out += [unquote(userinfo.split(":", 1)[1])] if ":" in userinfo else []
    return [s for s in out if len(s) >= 4]


def _endpoint(base: str, path: str) -> str:
    """``base`` + ``/path``, before any query string (``...?api-version=...`` stays at the end)."""
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + "/" + path, parts.query, ""))


def redact_url(url: str) -> str:
    """``url`` without credentials: ``user:pass@`` and query values become ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = re.sub(r"=([^&]*)", "=***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


_REDACTIONS = ((re.compile(r"((?:Bearer|Basic)\s+)[^\s'\"\\]+", re.I), r"\1***"),
               (re.compile(r"(://)[^/\s@'\"]+@"), r"\1***@"),
               (re.compile(r"([?&][^=\s&'\"]+=)[^&\s'\"]+"), r"\1***"))


def redact_text(text: str) -> str:
    """``text`` with Authorization tokens and URL credentials (``user:pw@``, query values) masked."""
    for pattern, repl in _REDACTIONS:
        text = pattern.sub(repl, text)
    return text


class _RedactingFilter(logging.Filter):
    """Scrubs Authorization tokens and URL credentials from httpx / httpcore records (httpx logs
    every request's full URL at INFO; the kit's own messages use the redacted URL already)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = redact_text(msg)
        if clean != msg:
            record.msg, record.args = clean, ()
        return True


for _name in ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy"):
    logging.getLogger(_name).addFilter(_RedactingFilter())


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
