"""Subprocess workers of the crash-anywhere campaign (tests/test_reliability_campaign.py).

``python -m tests.campaign_workers KIND ARGS...``: prints ``ready`` once imports are done (the
campaign kills at a seeded random moment after it), then does one resumable piece of work.
"""
from __future__ import annotations

import json
import resource
import signal
import sys

ENV = "SCOTD_TEST_API_KEY"
N_INSTANCES, N_SAMPLES = 8, 4


def _ready() -> None:
    print("ready", flush=True)


def sample(url: str, path: str) -> None:
    from scotd_kit.sampling import sample_corpus
    from scotd_kit.tasks import load_split
    from scotd_kit.teachers import OpenAICompatibleTeacher

    teacher = OpenAICompatibleTeacher("fake-model", base_url=url, api_key_env=ENV, timeout=5, backoff_base=0.01)
    examples = load_split("demo_compare", "validation")[:N_INSTANCES]
    _ready()
    sample_corpus("demo_compare", examples, teacher, n=N_SAMPLES, corpus_path=path, batch_size=2, progress=False)


def sample_size_limited(url: str, path: str, limit: str) -> None:
    """Sampling under a file-size limit (RLIMIT_FSIZE): writes past it fail with EFBIG, like a full disk."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), resource.RLIM_INFINITY))
    try:
        sample(url, path)
    except OSError as e:
        print(json.dumps({"errno": e.errno, "message": str(e), "chained": e.__cause__ is not None}), flush=True)
        sys.exit(3)


def instances() -> list[dict]:
    from scotd_kit import prompts

    return [{"id": f"q{i}", "input": prompts.student_input(f"What is {i} plus {i % 5}?"),
             "targets": [prompts.target(f"{i} plus {i % 5} is {i + i % 5}.", str(i + i % 5))]} for i in range(12)]


def train_config():
    from scotd_kit import training

    return training.TrainConfig.small(max_steps=8, learning_rate=1e-3, per_device_train_batch_size=4, warmup_steps=0,
                                      save_steps=2, logging_steps=2, max_length=64, save_total_limit=2)


def train(out: str) -> None:
    from scotd_kit import training

    insts, cfg = instances(), train_config()
    _ready()
    training.fine_tune("tiny-gpt2", insts, output_dir=out, config=cfg, seed=5)


def train_held(out: str, gate: str) -> None:
    """``train``, holding still at its second step until ``gate/go`` exists (``gate/training`` says it got
    there); prints the result's steps and tokens."""
    import time
    from pathlib import Path

    from scotd_kit import training

    class Hold:
        def __getattr__(self, name):
            return (lambda *a, **k: None) if name.startswith("on_") else super().__getattribute__(name)

        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == 1:
                (Path(gate) / "training").touch()
                deadline = time.monotonic() + 120
                while not (Path(gate) / "go").exists() and time.monotonic() < deadline:
                    time.sleep(0.05)

    insts, cfg = instances(), train_config()
    _ready()
    res = training.fine_tune("tiny-gpt2", insts, output_dir=out, config=cfg, seed=5, callbacks=[Hold()])
    print(json.dumps({"steps": res.steps, "tokens": res.tokens}), flush=True)


def train_and_report(out: str) -> None:
    from scotd_kit import training

    insts, cfg = instances(), train_config()
    _ready()
    res = training.fine_tune("tiny-gpt2", insts, output_dir=out, config=cfg, seed=5)
    print(json.dumps({"steps": res.steps, "tokens": res.tokens}), flush=True)


def reproduce(notebooks_dir: str, out: str, executed: str) -> None:
    from pathlib import Path

    from scotd_kit.reproduce import reproduce as run

    _ready()
    run("smoke", output_dir=out, executed_dir=executed, notebooks_dir=Path(notebooks_dir), progress=False)


if __name__ == "__main__":
    {"sample": sample, "sample_size_limited": sample_size_limited, "train": train, "train_held": train_held,
     "train_and_report": train_and_report, "reproduce": reproduce}[sys.argv[1]](*sys.argv[2:])
