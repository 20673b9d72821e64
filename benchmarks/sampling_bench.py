"""Teacher sampling throughput: the kit's sampler vs plain ``model.generate`` (SCoTD's workload shape).

Workload: SCoTD's 7-shot CSQA teacher prompt (~680 SmolLM2 tokens), N=30 samples per instance,
48 new tokens at most, T=1.0, stop at the blank line; SmolLM2-135M-Instruct on the CPU.

* baseline: per instance, ``model.generate(**prompt, do_sample=True, num_return_sequences=30,
  max_new_tokens=48)`` -- what a user writes first;
* kit: ``sample_corpus`` with a ``LocalTeacher`` (the whole pipeline: prompts, keys, scoring,
  the corpus written to disk), decoding through ``scotd_kit.generation.generate``.

Fairness: both count only REAL new tokens -- each sample's text up to its first blank line (or
EOS), re-tokenised with the same tokenizer -- so the tokens the baseline decodes after the stop do
not count for it.  Where the kit stands against the arithmetic floor: FLOPs per new token
~ 2 x params + attention over the context; the CPU's matmul peak is measured in the same run.

    python benchmarks/sampling_bench.py [--quick] [--out FILE.json] [--scaling]

``--scaling`` adds two tables (the kit's shared-prefix engine against its dense fallback, same
model and sampler): new tokens/s as the samples per prompt grow (1, 5, 10, 30, 100 at the 7-shot
prefix) and as the prefix grows (3, 7 and 14 shots: ~300, ~700, ~1500 tokens, N=30). With the
prefix's keys/values held once, the cost per new token should stay nearly flat in both.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from common import Timer, parse_args, report  # noqa: E402  (common puts the repo on sys.path)

import torch  # noqa: E402

from scotd_kit.exemplars import get_exemplars  # noqa: E402
from scotd_kit.generation import GenerationConfig, generate  # noqa: E402
from scotd_kit.models import SMOLLM2, load_model  # noqa: E402
from scotd_kit.prompts import few_shot_block, few_shot_prompt, student_input  # noqa: E402
from scotd_kit.sampling import sample_corpus  # noqa: E402
from scotd_kit.tasks import load_split  # noqa: E402
from scotd_kit.tasks.base import Example  # noqa: E402
from scotd_kit.teachers import LocalTeacher  # noqa: E402

N, MAX_NEW = 30, 48


def real_tokens(tok, text: str) -> int:
    """Tokens of a sample up to its first blank line (the teacher's stop)."""
    return len(tok(text.split("\n\n", 1)[0], add_special_tokens=False)["input_ids"])


def instances(k: int) -> tuple[str, list[Example]]:
    try:
        return "commonsense_qa", load_split("commonsense_qa", "validation", limit=k)
    except FileNotFoundError:   # no CSQA files here: same shape, demo questions in CSQA's format
        return "demo_compare", load_split("demo_compare", "validation", limit=k)


def baseline(model, tok, examples, demos) -> dict:
    new_tokens, seconds, generated = 0, 0.0, 0
    for i, ex in enumerate(examples):
        ids = tok(few_shot_prompt(demos, ex.question), return_tensors="pt")
        torch.manual_seed(i)
        with Timer() as t, torch.inference_mode():
            out = model.generate(**ids, do_sample=True, num_return_sequences=N, max_new_tokens=MAX_NEW)
        seconds += t.seconds
        gen = out[:, ids["input_ids"].shape[1]:]
        generated += gen.numel()
        new_tokens += sum(real_tokens(tok, tok.decode(g, skip_special_tokens=True)) for g in gen)
    return {"instances": len(examples), "new_tokens": new_tokens, "seconds": seconds,
            "decoded_tokens": generated, "prompt_tokens": len(ids["input_ids"][0])}


def kit(model, tok, task: str, examples, demos, seq_batch: int | None) -> dict:
    teacher = LocalTeacher(model, tok, name=SMOLLM2, batch_size=seq_batch)
    with tempfile.TemporaryDirectory() as d, Timer() as t:
        corpus = sample_corpus(task, examples, teacher, n=N, max_new_tokens=MAX_NEW, temperature=1.0, demos=demos,
                               corpus_path=Path(d) / "corpus.jsonl", batch_size=len(examples), progress=False)
        recs = corpus.records()
    assert len(recs) == N * len(examples)
    return {"instances": len(examples), "new_tokens": sum(real_tokens(tok, r["text"]) for r in recs),
            "seconds": t.seconds, "decoded_tokens": sum(r["completion_tokens"] + (r["finish_reason"] != "length")
                                                          for r in recs),
            "stopped_at_blank_line": sum(r["finish_reason"] == "stop" for r in recs) / len(recs)}


def matmul_peak(size: int = 2048, reps: int = 10) -> float:
    """FLOP/s of a large fp32 matmul on this CPU with the threads torch uses."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)
    with Timer() as t:
        for _ in range(reps):
            torch.matmul(a, b)
    return 2 * size ** 3 * reps / t.seconds


def flops_per_token(model, context: int) -> float:
    """2 x params (the tied head counts once, as it is used once per token) + attention scores and
    values over ``context`` positions in every layer."""
    c = model.config
    params = sum(p.numel() for p in model.parameters())
    head_dim = c.hidden_size // c.num_attention_heads
    attention = 2 * 2 * c.num_hidden_layers * context * c.num_attention_heads * head_dim
    return 2 * params + attention


def scaling(model, tok, examples, demos, peak: float) -> dict:
    """tok/s of the shared-prefix engine and the dense fallback as samples per prompt and prefix grow."""
    max_new = 24

    def run(prompts, prefix, n, engine):
        cfg = GenerationConfig(max_new_tokens=max_new, do_sample=True, temperature=1.0, top_k=0, n=n)
        with Timer() as t:
            out = generate(model, tok, prompts, cfg, prefix=prefix, engine=engine)
        decoded = sum(len(g.token_ids) for row in out for g in row)
        ctx = len(tok(prefix)["input_ids"]) + max_new
        return {"decoded_tokens": decoded, "seconds": round(t.seconds, 2), "tok_s": decoded / t.seconds,
                "fraction_of_matmul_peak": decoded / t.seconds * flops_per_token(model, ctx) / peak}

    questions = [student_input(e.question) for e in examples]
    rows_n, rows_p = [], []
    prefix7 = few_shot_block(demos)
    for n in (1, 5, 10, 30, 100):
        prompts = (questions * 60)[:max(1, 60 // n)]
        for engine in ("shared", "dense"):
            rows_n.append({"samples_per_prompt": n, "prompts": len(prompts), "engine": engine,
                           **run(prompts, prefix7, n, engine)})
            print(rows_n[-1], flush=True)
    for shots in (3, 7, 14):
        prefix = few_shot_block((list(demos) * 2)[:shots])
        for engine in ("shared", "dense"):
            rows_p.append({"shots": shots, "prefix_tokens": len(tok(prefix)["input_ids"]), "engine": engine,
                           **run(questions[:2], prefix, 30, engine)})
            print(rows_p[-1], flush=True)
    return {"by_samples_per_prompt": rows_n, "by_prefix_length": rows_p, "max_new_tokens": max_new}


def main() -> None:
    import argparse

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--scaling", action="store_true")
    known, rest = extra.parse_known_args()
    sys.argv = [sys.argv[0], *rest]
    args = parse_args(__doc__.splitlines()[0])
    # the kit decodes with its default (decode slots chosen from free memory); the baseline is one
    # instance per generate call, as a user writes it
    k_base, k_kit, seq_batch = (1, 4, None) if args.quick else (3, 16, None)
    model, tok = load_model(SMOLLM2)
    model.eval()
    demos = get_exemplars("commonsense_qa")
    task, examples = instances(k_kit)
    peak = matmul_peak()
    k = kit(model, tok, task, examples, demos, seq_batch)
    b = baseline(model, tok, examples[:k_base], demos)
    prompt_tokens = b["prompt_tokens"]
    fpt = flops_per_token(model, prompt_tokens + MAX_NEW // 2)
    rows = []
    for name, r in (("baseline: model.generate", b), ("kit: sample_corpus", k)):
        tps = r["new_tokens"] / r["seconds"]
        rows.append({"method": name, "instances": r["instances"], "samples": r["instances"] * N,
                     "real_new_tokens": r["new_tokens"], "decoded_tokens": r["decoded_tokens"],
                     "seconds": round(r["seconds"], 1), "new_tokens_per_s": tps,
                     "achieved_gflops": tps * fpt / 1e9, "fraction_of_matmul_peak": tps * fpt / peak})
    ratio = rows[1]["new_tokens_per_s"] / rows[0]["new_tokens_per_s"]
    result = {"ratio": ratio, "target_ratio": 8.0, "meets_target": ratio >= 8.0,
              "kit_new_tokens_per_s": rows[1]["new_tokens_per_s"], "baseline_new_tokens_per_s": rows[0]["new_tokens_per_s"],
              "matmul_peak_gflops": peak / 1e9, "flops_per_new_token": fpt, "prompt_tokens": prompt_tokens,
              "kit_fraction_of_peak": rows[1]["fraction_of_matmul_peak"],
              "floor_seconds_for_kit_tokens": k["new_tokens"] * fpt / peak,
              "kit_stopped_at_blank_line": k["stopped_at_blank_line"],
              "workload": {"n": N, "max_new_tokens": MAX_NEW, "shots": len(demos), "quick": args.quick,
                           "decode_batch_sequences": seq_batch or "auto", "task": task}}
    if known.scaling:
        result["scaling"] = scaling(model, tok, examples, demos, peak)
    report("sampling_bench", rows, result, args.out)
    print(f"matmul peak {peak / 1e9:.1f} GFLOP/s; kit at {result['kit_fraction_of_peak']:.1%} of it "
          f"({fpt / 1e6:.0f} MFLOP per new token at ~{prompt_tokens} context)")


if __name__ == "__main__":
    sys.exit(main())
