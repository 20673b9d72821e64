"""Teacher calibration: SmolLM2-135M-Instruct's few-shot CoT accuracy on candidate stand-in tasks and prompt variants.

    python benchmarks/teacher_calibration.py [--n 200] [--tasks a,b] [--out FILE.json]

Greedy and T=0.7 (single-sample accuracy and k-sample self-consistency) with the kit's generation engine.
Prompt variants: ``old`` (first 4 training examples, prompt ends "A: "), ``boundary`` (same exemplars,
prompt ends "A:", the completion carries the leading space), ``balanced`` (boundary + balanced, shuffled
exemplars from a separate pool), ``balanced8`` (8 of them).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scotd_kit.tasks.base import Example  # noqa: E402
from scotd_kit.tasks.demo import NAMES, THINGS, _change  # noqa: E402


# ---- candidate generators (rng, i) -> Example ---------------------------------------------------------

def mc_change(rng, i, k=3):
    """Who has the most/fewest after a change each: the answer needs every person's new count
    (the generator of the kit's ``demo_change`` task)."""
    return _change(rng, i, "calib", k)


def mc_change2(rng, i):
    return mc_change(rng, i, k=2)


def arith3(rng, i):
    """Three small steps: start, gets, gives, gets."""
    name, other = rng.sample(NAMES, 2)
    thing = rng.choice(THINGS)
    while True:
        a, b, c, d = rng.randint(2, 9), rng.randint(1, 9), rng.randint(1, 9), rng.randint(1, 9)
        if a + b - c >= 1:
            break
    m1, m2, end = a + b, a + b - c, a + b - c + d
    q = (f"{name} has {a} {thing}. {name} gets {b} more, gives {c} to {other}, and then finds {d} more. "
         f"How many {thing} does {name} have now?")
    r = f"{name} has {a} + {b} = {m1}. Then {m1} - {c} = {m2}. Then {m2} + {d} = {end}."
    return Example(id=f"arith3-{i}", question=q, label=str(end), meta={"rationale": r})


def arith2_small(rng, i):
    name, other = rng.sample(NAMES, 2)
    thing = rng.choice(THINGS)
    a, b = rng.randint(2, 9), rng.randint(1, 9)
    c = rng.randint(1, a + b - 1)
    q = (f"{name} has {a} {thing}. {name} gets {b} more {thing} and then gives {c} to {other}. "
         f"How many {thing} does {name} have now?")
    r = f"{name} has {a} + {b} = {a + b}. After giving away {c}, {name} has {a + b} - {c} = {a + b - c}."
    return Example(id=f"arith2s-{i}", question=q, label=str(a + b - c), meta={"rationale": r})


def _kit(task):
    from scotd_kit.tasks.demo import _arith, _compare
    make = {"demo_compare": _compare, "demo_arith": _arith}[task]
    return lambda rng, i: make(rng, i, "x")


CANDIDATES = {"demo_compare": ("demo_compare", _kit("demo_compare")), "demo_arith": ("demo_arith", _kit("demo_arith")),
              "mc_change3": ("demo_compare", mc_change), "mc_change2": ("demo_compare", mc_change2),
              "arith3": ("demo_arith", arith3), "arith2_small": ("demo_arith", arith2_small)}


def examples(make, pool, n):
    rng = random.Random(f"calib/{pool}")
    return [make(rng, i) for i in range(n)]


def balanced(exs, k, seed=0):
    """k exemplars, labels as even as possible (choice tasks), order shuffled."""
    rng = random.Random(seed)
    by = collections.defaultdict(list)
    for e in exs:
        by[e.label if e.label.startswith("(") else "num"].append(e)
    keys = sorted(by)
    out, j = [], 0
    while len(out) < k:
        bucket = by[keys[j % len(keys)]]
        out.append(bucket.pop(0))
        j += 1
    rng.shuffle(out)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--tasks", default=",".join(CANDIDATES))
    p.add_argument("--variants", default="old,boundary,balanced,balanced8")
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    from scotd_kit.evaluation import majority_vote
    from scotd_kit.generation import GenerationConfig, generate
    from scotd_kit.models import load_model
    from scotd_kit.tasks import get_task

    model, tok = load_model("smollm2-135m-instruct")
    model.eval()
    results = []
    for name in a.tasks.split(","):
        kit_task, make = CANDIDATES[name]
        spec = get_task(kit_task)
        evals = examples(make, "eval", a.n)
        train_first = examples(make, "train", 4)
        pool = examples(make, "exemplars", 64)
        for variant in a.variants.split(","):
            if variant == "old":
                demos, sep = train_first, " "
            elif variant == "boundary":
                demos, sep = train_first, ""
            elif variant.startswith("balanced"):
                demos, sep = balanced(pool, int(variant[8:] or 4)), ""
            prefix = "".join(f"Q: {d.question}\nA: {d.meta['rationale']} So the answer is: {d.label}\n\n" for d in demos)
            prompts = [f"Q: {e.question}\nA:{sep}" for e in evals]
            row = {"task": name, "variant": variant, "n": a.n, "demo_labels": [d.label for d in demos]}
            for mode in ("greedy", "t0.7"):
                t0 = time.perf_counter()
                cfg = GenerationConfig(max_new_tokens=a.max_new_tokens, do_sample=mode != "greedy", temperature=a.temperature,
                                       n=1 if mode == "greedy" else a.k, stop=("\n\n",), seed=0)
                gens = generate(model, tok, prompts, cfg, prefix=prefix, progress=True, batch_size=a.batch_size)
                single, vote, answered = [], [], []
                labels = collections.Counter()
                for e, gs in zip(evals, gens):
                    sc = [spec.score(g.text, e) for g in gs]
                    single.append(sum(s["strict_correct"] for s in sc) / len(sc))
                    answered.append(sum(s["strict"] is not None for s in sc) / len(sc))
                    v = majority_vote([s["strict"] for s in sc], drop_none=True)
                    labels[v] += 1
                    vote.append(v is not None and v.lower() == e.label.lower())
                row[mode] = {"acc_per_sample": sum(single) / a.n, "acc_vote": sum(vote) / a.n,
                             "answered": sum(answered) / a.n, "wall_s": round(time.perf_counter() - t0, 1),
                             "top_answers": labels.most_common(4)}
                if name == a.tasks.split(",")[0] and variant == "balanced" and mode == "greedy":
                    row["sample_text"] = gens[0][0].text
            print(json.dumps(row), flush=True)
            results.append(row)
    if a.out:
        a.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
