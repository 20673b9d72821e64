"""Self-consistency evaluation: the kit's ``evaluate`` against the original code's loop.

``python benchmarks/eval_bench.py [--quick] [--out FILE.json]``

Workload: ``demo_compare`` test examples in the student format (``Q: {x}\\nA: ``), SmolLM2-135M-Instruct
on the CPU, self-consistency with k=30 samples at T=0.7, top-k 50, stop at a blank line.

* kit: ``scotd_kit.evaluation.evaluate(decoding="self_consistency")`` over the whole example list in
  one call, as a user calls it -- continuous batching over decode slots: an example's k samples share
  its prefill, a finished sample's slot is refilled with the next waiting one.
* baseline: what the original code does, one example at a time:
  ``model.generate(num_return_sequences=30, do_sample=True, temperature=0.7, top_k=50,
  max_new_tokens=..., stop_strings=["\\n\\n"])``, then the same scoring and vote.

Both use the same max_new_tokens. A second check decodes greedily with both and counts the
examples whose texts are identical. ``ratio`` = kit examples/s / baseline examples/s.
"""
from __future__ import annotations

import os

from common import Timer, parse_args, report

import torch  # noqa: E402

from scotd_kit import evaluation as E  # noqa: E402
from scotd_kit.models import load_model  # noqa: E402
from scotd_kit.prompts import student_input  # noqa: E402
from scotd_kit.tasks import get_task, load_split  # noqa: E402

TASK, K, TEMPERATURE, TOP_K = "demo_compare", 30, 0.7, 50


def baseline_sc(model, tok, spec, examples, max_new_tokens: int, seed: int) -> list[dict]:
    """The original code's loop: one example per ``generate`` call, 30 return sequences."""
    torch.manual_seed(seed)  # one global RNG, as the original code has
    records = []
    for ex in examples:
        prompt = student_input(ex.question)
        enc = tok(prompt, return_tensors="pt")
        out = model.generate(**enc, do_sample=True, num_return_sequences=K, temperature=TEMPERATURE, top_k=TOP_K,
                             max_new_tokens=max_new_tokens, stop_strings=["\n\n"], tokenizer=tok,
                             pad_token_id=tok.pad_token_id)
        texts = [t.split("\n\n")[0] for t in tok.batch_decode(out[:, enc.input_ids.shape[1]:], skip_special_tokens=True)]
        records.append(E.score_example(spec, ex, prompt, texts, ["?"] * len(texts)))
    return records


def baseline_greedy(model, tok, examples, max_new_tokens: int) -> list[str]:
    texts = []
    for ex in examples:
        enc = tok(student_input(ex.question), return_tensors="pt")
        out = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens, stop_strings=["\n\n"],
                             tokenizer=tok, pad_token_id=tok.pad_token_id)
        texts.append(tok.decode(out[0, enc.input_ids.shape[1]:], skip_special_tokens=True).split("\n\n")[0])
    return texts


def main():
    args = parse_args(__doc__.split("\n\n")[0])
    # the kit chooses its decode slots from free memory (no batch_size), as a user calling evaluate gets
    n, max_new_tokens = (8, 48) if args.quick else (24, 128)
    model, tok = load_model("smollm2-135m-instruct")
    model.eval()
    spec = get_task(TASK)
    examples = load_split(TASK, "test")[:n]
    # warm-up, untimed: first-call allocations, the kit's stop-token table, HF's stop-string tables
    E.evaluate(model, tok, spec, examples[:1], decoding="self_consistency", k=2, max_new_tokens=4, progress=False)
    baseline_greedy(model, tok, examples[:1], 4)
    load_before = os.getloadavg()

    # Each side gets the whole example list, as a user calls it: the kit's evaluate batches across
    # examples (continuous batching over its decode slots), the baseline loops over them. Run on a
    # quiet machine; the load average before and after is recorded.
    with Timer() as t:
        kit_records = E.evaluate(model, tok, spec, examples, decoding="self_consistency", k=K,
                                 temperature=TEMPERATURE, top_k=TOP_K, max_new_tokens=max_new_tokens,
                                 progress=False).records
    t_kit = t.seconds
    with Timer() as t:
        base = baseline_sc(model, tok, spec, examples, max_new_tokens, seed=0)
    t_base = t.seconds
    with Timer() as t:
        greedy_records = E.evaluate(model, tok, spec, examples, max_new_tokens=max_new_tokens,
                                    progress=False).records
    t_kit_greedy = t.seconds
    with Timer() as t:
        plain = baseline_greedy(model, tok, examples, max_new_tokens)
    t_base_greedy = t.seconds
    print(f"{n} examples: kit SC {t_kit:.0f}s, baseline SC {t_base:.0f}s; "
          f"kit greedy {t_kit_greedy:.1f}s, baseline greedy {t_base_greedy:.1f}s", flush=True)
    kit = E.summarize(TASK, kit_records, {}, 0)
    base_acc = E.summarize(TASK, base, {}, 0)
    matches = sum(r["texts"][0] == p for r, p in zip(greedy_records, plain))

    def tokens(records):  # generated characters as a sanity check that both did comparable work
        return sum(len(t) for r in records for t in r["texts"])

    rows = [
        {"run": "kit SC k=30", "examples": n, "seconds": t_kit, "examples_per_s": n / t_kit,
         "acc_strict": kit.accuracy, "acc_flexible": kit.accuracy_flexible, "chars": tokens(kit.records)},
        {"run": "baseline SC k=30 (bs=1 generate)", "examples": n, "seconds": t_base,
         "examples_per_s": n / t_base, "acc_strict": base_acc.accuracy,
         "acc_flexible": base_acc.accuracy_flexible, "chars": tokens(base)},
        {"run": "kit greedy", "examples": n, "seconds": t_kit_greedy,
         "examples_per_s": n / t_kit_greedy},
        {"run": "baseline greedy (bs=1 generate)", "examples": n, "seconds": t_base_greedy,
         "examples_per_s": n / t_base_greedy},
    ]
    result = {
        "ratio": t_base / t_kit,  # = kit examples/s / baseline examples/s
        "kit_examples_per_s": n / t_kit, "baseline_examples_per_s": n / t_base,
        "greedy_ratio": t_base_greedy / t_kit_greedy,
        "greedy_identical": matches, "greedy_examples": n,
        "settings": {"task": TASK, "split": "test", "n": n, "k": K, "temperature": TEMPERATURE, "top_k": TOP_K,
                     "max_new_tokens": max_new_tokens, "kit_batch_size": "auto", "quick": args.quick},
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
    }
    report("eval_bench", rows, result, args.out)
    print(f"greedy texts identical (kit vs generate): {matches}/{n}")


if __name__ == "__main__":
    main()
