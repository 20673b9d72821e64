"""Student pilot: label-only vs 1-CoT vs N-CoT students on a candidate stand-in task, paired bootstrap.

    python benchmarks/student_pilot.py --task mc_change3 --train-n 300 --n-cots 4 --eval-n 200 --steps 300
                                       --student small-llama --out FILE.json

Teacher: SmolLM2-135M-Instruct, balanced shuffled 4-shot prompt ending "A:" (boundary fix), T=0.7, N samples per
training instance; the full setting keeps the correct CoTs.  Students: trained with ``training.fine_tune``
(full fine-tuning) on label-only / first correct CoT / all correct CoTs of the same instances, the same number
of steps; greedy evaluation with ``evaluation.evaluate`` on a separate pool.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--task", default="mc_change3")
    p.add_argument("--train-n", type=int, default=300)
    p.add_argument("--n-cots", type=int, default=4)
    p.add_argument("--eval-n", type=int, default=200)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--student", default="small-llama")
    p.add_argument("--method", default="full")
    p.add_argument("--settings", default="label_only,cot1,cotN")
    p.add_argument("--work", type=Path, default=Path("/tmp/pilot"))
    p.add_argument("--time-steps", type=int, default=0, help="only time this many steps per student kind")
    p.add_argument("--no-teacher", action="store_true", help="gold rationales only (label_only vs gold)")
    p.add_argument("--out", type=Path)
    a = p.parse_args()

    import teacher_calibration as tc
    from scotd_kit import evaluation
    from scotd_kit.generation import GenerationConfig, generate
    from scotd_kit.models import load_model
    from scotd_kit.prompts import student_input, target
    from scotd_kit.stats import paired_bootstrap
    from scotd_kit.tasks import get_task
    from scotd_kit.training import TrainConfig, fine_tune, load_student

    kit_task, make = tc.CANDIDATES[a.task]
    spec = get_task(kit_task)
    train = tc.examples(make, "train", a.train_n)
    evals = tc.examples(make, "eval", a.eval_n)
    demos = tc.balanced(tc.examples(make, "exemplars", 64), 4)
    prefix = "".join(f"Q: {d.question}\nA: {d.meta['rationale']} So the answer is: {d.label}\n\n" for d in demos)
    a.work.mkdir(parents=True, exist_ok=True)
    report = {"args": {k: str(v) for k, v in vars(a).items()}}

    corpus_path = a.work / f"corpus-{a.task}-{a.train_n}-{a.n_cots}.json"
    t0 = time.perf_counter()
    if a.no_teacher:
        corpus = []
    elif corpus_path.exists():
        corpus = json.loads(corpus_path.read_text())
    else:
        model, tok = load_model("smollm2-135m-instruct")
        cfg = GenerationConfig(max_new_tokens=80, do_sample=True, temperature=0.7, n=a.n_cots, stop=("\n\n",), seed=0)
        gens = generate(model, tok, [f"Q: {e.question}\nA:" for e in train], cfg, prefix=prefix)
        corpus = []
        for e, gs in zip(train, gens):
            for g in gs:
                text = g.text[1:] if g.text.startswith(" ") else g.text
                s = spec.score(text, e)
                rationale = text.split(" So the answer is:")[0].strip() if s["marker_found"] else None
                corpus.append({"id": e.id, "text": text, "correct": bool(s["strict_correct"]), "rationale": rationale})
        corpus_path.write_text(json.dumps(corpus))
        del model
    report["sampling_s"] = time.perf_counter() - t0
    kept = [r for r in corpus if r["correct"] and r["rationale"]]
    report["corpus"] = {"samples": len(corpus), "correct": len(kept),
                        "instances_with_correct": len({r["id"] for r in kept}), "instances": len(train)}
    print(json.dumps(report["corpus"]), f"sampling {report['sampling_s']:.0f}s", flush=True)

    by_id: dict[str, list[str]] = {}
    for r in kept:
        by_id.setdefault(r["id"], []).append(target(r["rationale"], next(e.label for e in train if e.id == r["id"])))
    covered = train if a.no_teacher else [e for e in train if e.id in by_id]
    data = {
        "label_only": [{"id": e.id, "input": student_input(e.question), "targets": [target("", e.label)]} for e in covered],
        "cot1": [{"id": e.id, "input": student_input(e.question), "targets": by_id[e.id][:1]} for e in covered
                 if e.id in by_id],
        "cotN": [{"id": e.id, "input": student_input(e.question), "targets": by_id[e.id]} for e in covered
                 if e.id in by_id],
        "gold": [{"id": e.id, "input": student_input(e.question), "targets": [target(e.meta["rationale"], e.label)]}
                 for e in covered],
    }
    results, correct = {}, {}
    for setting in a.settings.split(","):
        steps = a.time_steps or a.steps
        cfg = TrainConfig.small(max_steps=steps, per_device_train_batch_size=a.batch, learning_rate=a.lr,
                                warmup_steps=max(1, steps // 20), save_steps=10_000, logging_steps=10, max_length=256)
        t1 = time.perf_counter()
        res = fine_tune(a.student, data[setting], output_dir=a.work / f"{a.task}-{setting}-{a.student}-{steps}-{a.lr}",
                        method=a.method, config=cfg, seed=0, resume=True)
        train_s = time.perf_counter() - t1
        row = {"train_s": train_s, "s_per_step": train_s / steps, "steps": res.steps,
               "instances": len(data[setting]), "loss_first": res.losses[0]["loss"] if res.losses else None,
               "loss_last": res.losses[-1]["loss"] if res.losses else None}
        if not a.time_steps:
            model, tok = load_student(res.model_dir)
            t2 = time.perf_counter()
            r = evaluation.evaluate(model, tok, spec, evals, decoding="greedy", max_new_tokens=80, progress=False)
            row.update(eval_s=time.perf_counter() - t2, accuracy=r.accuracy, ci95=r.ci95, malformed=r.malformed)
            correct[setting] = [rec["correct_strict"] for rec in r.records]
            row["sample"] = r.records[0]["texts"][0][:200]
        results[setting] = row
        print(setting, json.dumps(row), flush=True)
    report["students"] = results
    pairs = [("cotN", "label_only"), ("cotN", "cot1"), ("cot1", "label_only"), ("gold", "label_only")]
    report["paired"] = {f"{x}-{y}": paired_bootstrap(correct[x], correct[y]).as_dict()
                        for x, y in pairs if x in correct and y in correct}
    print(json.dumps(report["paired"], indent=1))
    if a.out:
        a.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
