"""Training throughput: the kit's fine_tune vs the Trainer loop a user writes first.

    python benchmarks/train_bench.py [--quick] [--out FILE.json] [--model smollm2-135m-instruct]

Workload: CoT training pairs with CSQA-like lengths (question 60-120 tokens, rationale 30-80,
uniform), full fine-tuning of a small real model (SmolLM2-135M-Instruct) on the CPU in fp32.
Same process, same hyperparameters, same batch size, same number of optimizer steps.

* kit: ``scotd_kit.training.fine_tune`` (length-grouped batches, left padding, logits only for
  the target positions).
* baseline: a plain ``Trainer`` over pre-tokenized examples (prompt masked with -100, EOS kept),
  random batches padded to the longest example by ``DataCollatorForSeq2Seq``; the model computes
  its own loss over full logits.
* pad-700: the same baseline padding every example to 700 tokens (SCoTD's truncation length).

Kit and baseline alternate for a few rounds and each keeps its best round (the CPU is shared).
Throughput counts real tokens only (padding excluded) over the optimizer steps, the first step of
each run left out as warm-up; evaluation, saving and loading are not timed.
"""
from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path

from common import Timer, parse_args, report  # noqa: E402  (common puts the repo on sys.path)


def make_instances(tokenizer, n: int, seed: int = 0) -> list[dict]:
    """Questions and rationales of sampled token lengths, made of real words (realistic BPE)."""
    from scotd_kit import prompts

    rng = random.Random(seed)
    words = ("the a of to and is in that it for on with as was at by this from or an be are which not have "
             "people place would most likely go store house water person animal food book answer because "
             "when where what they can find need use often something someone city town school work play").split()

    def text(n_tokens: int) -> str:
        ids = tokenizer(" ".join(rng.choice(words) for _ in range(n_tokens * 2)), add_special_tokens=False)["input_ids"]
        return tokenizer.decode(ids[:n_tokens]).strip()

    out = []
    for i in range(n):
        q = text(rng.randint(60, 120))
        choices = "\n".join(f"({c}) {rng.choice(words)}" for c in "abcde")
        out.append({"id": f"b{i}", "input": prompts.student_input(f"{q}\nAnswer Choices:\n{choices}"),
                    "targets": [prompts.target(text(rng.randint(30, 80)), f"({rng.choice('abcde')})")]})
    return out


class StepTimer:
    """TrainerCallback: seconds and real tokens per optimizer step (baseline side)."""

    def __init__(self):
        self.steps, self._t0, self._tokens = [], None, 0

    def __getattr__(self, name):
        if name.startswith("on_"):
            return lambda *a, **k: None
        raise AttributeError(name)

    def on_step_begin(self, args, state, control, **kw):
        self._t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        self.steps.append({"seconds": time.perf_counter() - self._t0, "tokens": self._tokens})
        self._tokens = 0


def baseline(model_name: str, instances: list[dict], *, batch: int, steps: int, pad_to: int | None) -> dict:
    import torch
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from scotd_kit.models import load_model

    model, tok = load_model(model_name, dtype=torch.float32)
    tok.padding_side = "right"
    data = []
    for inst in instances:
        p = tok(inst["input"])["input_ids"]
        t = tok(inst["targets"][0], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        data.append({"input_ids": p + t, "attention_mask": [1] * (len(p) + len(t)), "labels": [-100] * len(p) + t})
    collate = DataCollatorForSeq2Seq(tok, padding="max_length" if pad_to else "longest", max_length=pad_to,
                                     label_pad_token_id=-100)
    timer = StepTimer()

    def counting(features):
        batch_ = collate(features)
        timer._tokens += int(batch_["attention_mask"].sum())
        return batch_

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=batch, max_steps=steps,
                                 learning_rate=1e-4, max_grad_norm=0.5, save_strategy="no", report_to="none",
                                 logging_steps=steps, seed=0, dataloader_pin_memory=False)
        Trainer(model=model, args=args, train_dataset=data, data_collator=counting, callbacks=[timer]).train()
    return summarize(timer.steps)


def kit(model_name: str, instances: list[dict], *, batch: int, steps: int) -> dict:
    from scotd_kit.training import TrainConfig, fine_tune

    cfg = TrainConfig.small(max_steps=steps, per_device_train_batch_size=batch, learning_rate=1e-4,
                            warmup_steps=0, save_steps=10 ** 9, logging_steps=steps, max_length=700)
    with tempfile.TemporaryDirectory() as tmp:
        result = fine_tune(model_name, instances, output_dir=Path(tmp), method="full", config=cfg, resume=False)
    return summarize(result.losses)


def summarize(steps: list[dict]) -> dict:
    timed = steps[1:] or steps          # the first step pays one-off costs (allocator, threads)
    seconds = sum(s["seconds"] for s in timed)
    tokens = sum(s["tokens"] for s in timed)
    return {"steps_timed": len(timed), "real_tokens": tokens, "seconds": seconds,
            "tokens_per_s": tokens / seconds, "median_step_s": statistics.median(s["seconds"] for s in timed)}


def _rounds(runs: list[dict]) -> str:
    return "/".join(f"{r['tokens_per_s']:.0f}" for r in runs)


def main():
    import argparse
    import sys

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--model", default="smollm2-135m-instruct")
    known, rest = extra.parse_known_args()
    sys.argv = [sys.argv[0], *rest]
    args = parse_args(__doc__.splitlines()[0])
    import torch

    from scotd_kit.models import load_tokenizer

    torch.manual_seed(0)
    # quick: < 5 min on 2 cores; the full run is a few hundred examples, several minutes per round
    n, batch, steps, steps_700, rounds = (48, 8, 3, 2, 2) if args.quick else (256, 16, 8, 3, 2)
    tok = load_tokenizer(known.model)
    instances = make_instances(tok, n)
    lengths = [len(tok(i["input"] + i["targets"][0])["input_ids"]) + 1 for i in instances]
    print(f"model {known.model}; {n} examples, tokens per example min {min(lengths)} "
          f"median {int(statistics.median(lengths))} max {max(lengths)}; batch {batch}, {steps} steps x {rounds} rounds")

    # the 2 cores are shared: alternate kit and baseline and keep each one's best round, so a
    # neighbour's burst of work does not land on one side only
    runs: dict[str, list[dict]] = {"kit": [], "base": []}
    walls = {"kit": 0.0, "base": 0.0}
    for _ in range(rounds):
        with Timer() as t:
            runs["base"].append(baseline(known.model, instances, batch=batch, steps=steps, pad_to=None))
        walls["base"] += t.seconds
        with Timer() as t:
            runs["kit"].append(kit(known.model, instances, batch=batch, steps=steps))
        walls["kit"] += t.seconds
    with Timer() as t_700:
        pad700 = baseline(known.model, instances, batch=batch, steps=steps_700, pad_to=700)
    ours = max(runs["kit"], key=lambda r: r["tokens_per_s"])
    base = max(runs["base"], key=lambda r: r["tokens_per_s"])
    t_kit, t_base = walls["kit"], walls["base"]

    rows = [{"run": "kit fine_tune", **ours, "wall_s": t_kit, "all_rounds_tok_s": _rounds(runs["kit"])},
            {"run": "Trainer, pad to longest", **base, "wall_s": t_base, "all_rounds_tok_s": _rounds(runs["base"])},
            {"run": "Trainer, pad to 700", **pad700, "wall_s": t_700.seconds}]
    result = {"model": known.model, "method": "full", "device": "cpu fp32", "examples": n, "batch": batch,
              "steps": steps, "rounds": rounds, "length_min": min(lengths), "length_median": statistics.median(lengths),
              "length_max": max(lengths),
              "kit_tokens_per_s": ours["tokens_per_s"], "baseline_tokens_per_s": base["tokens_per_s"],
              "pad700_tokens_per_s": pad700["tokens_per_s"],
              "ratio": ours["tokens_per_s"] / base["tokens_per_s"],
              "ratio_vs_pad700": ours["tokens_per_s"] / pad700["tokens_per_s"], "quick": args.quick}
    report("train_bench", rows, result, args.out)
    print(f"ratio vs pad-to-700: {result['ratio_vs_pad700']:.2f}")


if __name__ == "__main__":
    main()
