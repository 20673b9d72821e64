"""A real OpenAI-compatible ``/v1/completions`` server on loopback for the tests, with fault injection.

Samples are a deterministic function of (prompt, seed, choice index), so two runs that ask for the
same things get the same text.  ``faults`` is a queue consumed one per request:
``("429", retry_after)``, ``"500"``, ``"503"``, ``"timeout"``, ``"malformed_json"``,
``"malformed_shape"``, ``("echo_key", status)`` (an error body quoting the Authorization header).
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def fake_text(prompt: str, seed, index: int) -> str:
    h = hashlib.sha256(f"{prompt}|{seed}|{index}".encode()).hexdigest()
    kind = int(h[0], 16) % 8
    letter = "abc"[int(h[1], 16) % 3]
    if kind == 0:
        return f"I am not sure about {h[2:8]}."          # no answer marker
    return f"Counting {h[2:8]} gives the result. So the answer is: ({letter})"


class FakeOpenAIServer:
    def __init__(self, *, api_key: str | None = None, supports_n: bool = True, delay: float = 0.0,
                 faults=(), always_fail: str | None = None, timeout_sleep: float = 1.0):
        self.api_key, self.supports_n, self.delay = api_key, supports_n, delay
        self.faults = deque(faults)
        self.always_fail, self.timeout_sleep = always_fail, timeout_sleep
        self.lock = threading.Lock()
        self.delivered: Counter = Counter()      # (prompt, seed, index) of samples in 200 answers
        self.log: list[dict] = []                # every request: time, fingerprint, fault
        self._httpd = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):   # keep test output clean
                pass

            def do_POST(self):
                server._handle(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- one request -------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        body = json.loads(h.rfile.read(int(h.headers.get("Content-Length", 0))))
        fingerprint = (body.get("prompt"), body.get("seed"), body.get("n"))
        with self.lock:
            fault = self.faults.popleft() if self.faults else self.always_fail
            self.log.append({"t": time.monotonic(), "fp": fingerprint, "fault": fault})
        if self.delay:
            time.sleep(self.delay)
        if self.api_key is not None and h.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._send(h, 401, {"error": {"message": "invalid key"}})
        kind, arg = (fault if isinstance(fault, tuple) else (fault, None))
        if kind == "429":
            return self._send(h, 429, {"error": {"message": "rate limited"}},
                              headers={"Retry-After": str(arg)} if arg is not None else {})
        if kind in ("500", "503"):
            return self._send(h, int(kind), {"error": {"message": "server error"}})
        if kind == "timeout":
            time.sleep(self.timeout_sleep)      # the client has given up by now
            return self._send(h, 500, {"error": {"message": "too late"}})
        if kind == "malformed_json":
            return self._send_raw(h, 200, b'{"choices": [{"text": "trunc')
        if kind == "malformed_shape":
            return self._send(h, 200, {"object": "text_completion", "choices": "nope"})
        if kind == "echo_key":
            return self._send(h, arg or 400, {"error": {"message": f"bad request; you sent {h.headers.get('Authorization')}"}})
        return self._complete(h, body)

    def _complete(self, h, body) -> None:
        n = int(body.get("n", 1)) if self.supports_n else 1
        prompt, seed = body["prompt"], body.get("seed")
        choices = []
        for i in range(n):
            text = fake_text(prompt, seed, i)
            toks = max(1, len(text) // 4)
            choices.append({"index": i, "text": text, "finish_reason": "stop",
                            "logprobs": {"tokens": ["t"] * toks, "token_logprobs": [-0.25] * toks}})
        usage = {"prompt_tokens": len(prompt) // 4, "completion_tokens": sum(len(c["logprobs"]["tokens"]) for c in choices)}
        with self.lock:
            for i in range(n):
                self.delivered[(prompt, seed, i)] += 1
        self._send(h, 200, {"object": "text_completion", "model": body.get("model"), "choices": choices, "usage": usage})

    @staticmethod
    def _send(h, status: int, payload: dict, headers: dict | None = None) -> None:
        FakeOpenAIServer._send_raw(h, status, json.dumps(payload).encode(), headers)

    @staticmethod
    def _send_raw(h, status: int, data: bytes, headers: dict | None = None) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass    # the client timed out and left
