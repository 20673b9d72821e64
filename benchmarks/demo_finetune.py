"""A short real run: SmolLM2-135M-Instruct + LoRA on a demo task, accuracy before and after (CPU, minutes).

    python benchmarks/demo_finetune.py [--task demo_compare] [--steps 60] [--train-n 480] [--test-n 60]
                                       [--out FILE.json] [--work DIR]

The stand-in teacher CoTs are the demo examples' gold rationales (``meta["rationale"]``), one per
instance.  Accuracy is greedy decoding on the task's test split with ``scotd_kit.evaluation.evaluate``
(strict and flexible matches).  Numbers are the ``demo`` profile's, not the papers'.
The fine-tune resumes from ``--work`` if interrupted.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="demo_compare")
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--train-n", type=int, default=480)
    p.add_argument("--test-n", type=int, default=60)
    p.add_argument("--max-new-tokens", type=int, default=80)
    p.add_argument("--work", type=Path, default=None, help="fine-tune output dir (default: under the cache dir)")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()

    from scotd_kit import curation, evaluation
    from scotd_kit.models import load_model
    from scotd_kit.paths import cache_dir
    from scotd_kit.tasks import load_split
    from scotd_kit.training import TrainConfig, fine_tune, load_student

    train = load_split(a.task, "train")[:a.train_n]
    test = load_split(a.task, "test")[:a.test_n]
    instances = curation.gold_cot_instances(train)
    work = a.work or cache_dir() / "runs" / f"demo_finetune-{a.task}-{a.model}-{a.steps}-{a.train_n}-{a.lr}"

    def score(model, tok) -> dict:
        r = evaluation.evaluate(model, tok, a.task, test, decoding="greedy", max_new_tokens=a.max_new_tokens,
                                batch_size=32)
        return {"accuracy": r.accuracy, "accuracy_flexible": r.accuracy_flexible}

    t0 = time.perf_counter()
    base, tok = load_model(a.model)
    before = score(base, tok)
    del base
    print(f"before: strict {before['accuracy']:.3f}  flexible {before['accuracy_flexible']:.3f}", flush=True)

    cfg = TrainConfig.small(max_steps=a.steps, per_device_train_batch_size=a.batch, learning_rate=a.lr,
                            warmup_steps=max(1, a.steps // 10), save_steps=20, logging_steps=10)
    t1 = time.perf_counter()
    result = fine_tune(a.model, instances, output_dir=work, method="lora", config=cfg, seed=0)
    train_wall = time.perf_counter() - t1
    student, stok = load_student(result.model_dir, merge=True)
    after = score(student, stok)
    print(f"after:  strict {after['accuracy']:.3f}  flexible {after['accuracy_flexible']:.3f}")
    losses = [r["loss"] for r in result.losses]
    payload = {"task": a.task, "model": a.model, "method": "lora", "profile": "demo (not the papers' numbers)",
               "train_instances": len(instances), "test_examples": len(test), "steps": result.steps,
               "batch": a.batch, "learning_rate": a.lr, "before": before, "after": after,
               "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
               "train_tokens_per_s": result.tokens_per_second, "train_wall_s": train_wall,
               "total_wall_s": time.perf_counter() - t0, "resumed_from_step": result.resumed_from_step,
               "model_dir": str(result.model_dir), "environment": evaluation.versions()}
    print(json.dumps({k: payload[k] for k in ("before", "after", "loss_first", "loss_last", "train_tokens_per_s",
                                               "total_wall_s")}, indent=1))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
