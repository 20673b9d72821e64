"""A real OpenAI-compatible server on loopback for the tests, with fault injection.

It behaves like the llama.cpp server the issue-13 trials ran against, unless told otherwise:

* it ignores ``n`` (one choice per call) -- ``supports_n=True`` makes it honour it, like vLLM;
* sampler settings a request leaves out get the server's own defaults (``DEFAULTS``: top_k 40,
  min_p 0.05, repeat_penalty 1.1), and the text depends on the settings in effect, so a client
  that does not send them gets other samples than one that sends the "off" values;
* chat mode (``/chat/completions``) returns no log-probs; completions mode returns them only
  when asked (``logprobs``);
* ``usage`` is exact and counts about one token per 3 characters (the client's 4-characters
  guess is low, as against a real tokenizer).

Samples are a deterministic function of (prompt, seed, choice index, settings in effect), so two
runs that ask for the same things get the same text.  ``faults`` is a queue consumed one per
request: ``("429", retry_after)``, ``"500"``, ``"503"``, ``"timeout"``, ``"reset"`` (the
connection closed with no answer), ``"truncated"`` (a body cut short), ``"malformed_json"``,
``"malformed_shape"``, ``"surrogate"`` (a valid answer whose text holds a lone surrogate),
``("slow", seconds)``, ``("echo_key", status)`` (an error body quoting the Authorization header),
``("drip", gap)`` (a valid answer sent a byte every ``gap`` seconds, for 8 s at most), ``("endless", seconds)``
(a chunked body that never closes its JSON, sent for ``seconds``), ``("huge", chars)`` (a valid answer
whose text is ``chars`` characters long, as from a server that ignores ``max_tokens``),
``("patch", {"choice": {...}, "answer": {...}})`` (a valid answer with fields of each choice and of the
answer replaced), ``("redirect", url)`` (HTTP 307 to ``url``).  Every fault's loop is bounded in time.
"""
from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULTS = {"top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1}
CHARS_PER_TOKEN = 3


def fake_text(prompt: str, seed, index: int, sampler: dict | None = None) -> str:
    settings = "" if sampler is None or sampler == {"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0} \
        else json.dumps(sampler, sort_keys=True)
    h = hashlib.sha256(f"{prompt}|{seed}|{index}{settings}".encode()).hexdigest()
    kind = int(h[0], 16) % 8
    letter = "abc"[int(h[1], 16) % 3]
    if kind == 0:
        return f"I am not sure about {h[2:8]}."          # no answer marker
    return f"Counting {h[2:8]} gives the result. So the answer is: ({letter})"


def tokens(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN)


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True        # a "restarted" server takes its old port back

    def handle_error(self, request, client_address):
        pass                          # a connection the "reset" fault closed, or a client that left


class FakeOpenAIServer:
    def __init__(self, *, api_key: str | None = None, supports_n: bool = False, delay: float = 0.0,
                 faults=(), always_fail: str | None = None, timeout_sleep: float = 1.0, port: int = 0,
                 fail_when=None):
        self.api_key, self.supports_n, self.delay = api_key, supports_n, delay
        self.faults = deque(faults)
        self.always_fail, self.timeout_sleep, self.port = always_fail, timeout_sleep, port
        self.fail_when = fail_when               # optional: body -> fault for that request, or None
        self.lock = threading.Lock()
        self.delivered: Counter = Counter()      # (prompt, seed, index) of samples in 200 answers
        self.log: list[dict] = []                # every request: time, fingerprint, fault, body
        self.billed = Counter()                  # prompt / completion tokens of 200 answers
        self._httpd = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):   # keep test output clean
                pass

            def do_POST(self):
                server._handle(self)

        self._httpd = _Server(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()

    def prompt_switches(self) -> int:
        """Answered calls whose prompt differs from the call before: a one-slot prefix cache's misses."""
        prompts = [e["fp"][0] for e in self.log if e["fault"] is None]
        return sum(1 for a, b in zip([None] + prompts, prompts) if a != b)

    # -- one request -------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        body = json.loads(h.rfile.read(int(h.headers.get("Content-Length", 0))))
        chat = h.path.endswith("/chat/completions")
        prompt = body["messages"][-1]["content"] if chat else body.get("prompt")
        fingerprint = (prompt, body.get("seed"), body.get("n"))
        with self.lock:
            fault = self.faults.popleft() if self.faults else self.always_fail
            if fault is None and self.fail_when is not None:
                fault = self.fail_when(body)
            self.log.append({"t": time.monotonic(), "fp": fingerprint, "fault": fault, "body": body})
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
        if kind == "reset":
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            h.close_connection = True
            return h.connection.close()
        if kind == "truncated":
            return self._send_raw(h, 200, b'{"choices": [{"text": "cut', content_length=400)
        if kind == "malformed_json":
            return self._send_raw(h, 200, b'{"choices": [{"text": "trunc')
        if kind == "malformed_shape":
            return self._send(h, 200, {"object": "text_completion", "choices": "nope"})
        if kind == "echo_key":
            return self._send(h, arg or 400, {"error": {"message": f"bad request; you sent {h.headers.get('Authorization')}"}})
        if kind == "redirect":
            return self._send(h, 307, {"error": {"message": "moved"}}, headers={"Location": arg})
        if kind == "endless":
            return self._send_endless(h, arg)
        if kind == "slow":
            time.sleep(arg or 0.2)
        answer = self._answer(body, prompt, chat, surrogate=kind == "surrogate",
                              huge=arg if kind == "huge" else 0)
        if kind == "patch":
            for choice in answer["choices"]:
                choice.update(arg.get("choice", {}))
            answer.update(arg.get("answer", {}))
        if kind == "drip":
            return self._send_drip(h, json.dumps(answer).encode(), arg)
        return self._send(h, 200, answer)

    def _answer(self, body, prompt: str, chat: bool, surrogate: bool = False, huge: int = 0) -> dict:
        n = int(body.get("n", 1)) if self.supports_n else 1
        seed = body.get("seed")
        sampler = {k: body.get(k, v) for k, v in DEFAULTS.items()}
        choices, completion_tokens = [], 0
        for i in range(n):
            text = fake_text(prompt, seed, i, sampler) + ("\ud83d" if surrogate else "") + "x" * huge
            completion_tokens += tokens(text)
            choice = {"index": i, "finish_reason": "stop"}
            if chat:
                choice["message"] = {"role": "assistant", "content": text}
            else:
                choice["text"] = text
                if body.get("logprobs"):
                    choice["logprobs"] = {"tokens": ["t"] * tokens(text), "token_logprobs": [-0.25] * tokens(text)}
            choices.append(choice)
        usage = {"prompt_tokens": tokens(prompt), "completion_tokens": completion_tokens}
        with self.lock:
            for i in range(n):
                self.delivered[(prompt, seed, i)] += 1
            self.billed["prompt"] += usage["prompt_tokens"]
            self.billed["completion"] += completion_tokens
        return {"object": "chat.completion" if chat else "text_completion", "model": body.get("model"),
                "choices": choices, "usage": usage}

    @staticmethod
    def _send_drip(h, data: bytes, gap: float, longest: float = 8.0) -> None:
        """The answer one byte every ``gap`` seconds: each read gets a byte within a per-read timeout
        longer than ``gap``, so only a deadline on the whole call ends it early.  Gives up after ``longest``."""
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.flush()
            stop = time.monotonic() + longest
            for k in range(len(data)):
                if time.monotonic() > stop:
                    break
                h.wfile.write(data[k:k + 1])
                h.wfile.flush()
                time.sleep(gap)
        except (BrokenPipeError, ConnectionResetError):
            pass    # the client's deadline passed and it left

    @staticmethod
    def _send_endless(h, seconds: float) -> None:
        """A chunked body that opens a text and never closes it, for ``seconds`` (about 1 MB a second)."""
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            chunk = b'{"choices": [{"index": 0, "text": "' + b"a" * 1000
            stop = time.monotonic() + seconds
            while time.monotonic() < stop:
                h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                h.wfile.flush()
                chunk = b"a" * 1024
                time.sleep(0.001)
            h.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass    # the client stopped reading at its cap

    @staticmethod
    def _send(h, status: int, payload: dict, headers: dict | None = None) -> None:
        # json.dumps escapes a lone surrogate as \ud83d: valid JSON, as real servers send it
        FakeOpenAIServer._send_raw(h, status, json.dumps(payload).encode(), headers)

    @staticmethod
    def _send_raw(h, status: int, data: bytes, headers: dict | None = None, content_length: int | None = None) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(content_length or len(data)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
            if content_length:
                h.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            pass    # the client timed out and left
