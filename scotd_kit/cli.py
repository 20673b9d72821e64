"""``scotd-kit``: the command line."""
from __future__ import annotations

import argparse
import sys


def _tasks(args) -> int:
    from .tasks import get_task, list_tasks

    for name in list_tasks():
        spec = get_task(name)
        print(f"{name:16s} {spec.answer_type:7s} splits: {', '.join(spec.splits):40s} {spec.description}")
    return 0


def _demo(args) -> int:
    """A short end-to-end run of what is built: a demo task, the offline teacher, extraction, scoring."""
    import time

    import torch

    from .models import SMOLLM2, load_model
    from .prompts import few_shot_prompt
    from .tasks import get_task, load_split

    task = get_task(args.task)
    train, test = load_split(task, "train"), load_split(task, "test", limit=args.n)
    demos = [(e.question, e.meta["rationale"], e.label) for e in train[:4]]
    t0 = time.time()
    model, tok = load_model(SMOLLM2)
    print(f"loaded {SMOLLM2} in {time.time() - t0:.1f}s")
    correct = {"strict": 0, "flexible": 0}
    for ex in test:
        enc = tok(few_shot_prompt(demos, ex.question), return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=64, do_sample=False, stop_strings=["\n\n"], tokenizer=tok)
        text = tok.decode(out[0, enc.input_ids.shape[1]:], skip_special_tokens=True)
        s = task.score(text, ex)
        correct["strict"] += s["strict_correct"]
        correct["flexible"] += s["flexible_correct"]
        print(f"- gold {ex.label:5s} strict {s['strict']!s:6s} flexible {s['flexible']!s:6s} | {text.strip()[:90]!r}")
    n = len(test)
    print(f"{task.name} (demo task, {SMOLLM2} few-shot greedy CoT, {n} examples): "
          f"strict {correct['strict']}/{n}, flexible {correct['flexible']}/{n}")
    return 0


def _reproduce(args) -> int:
    from .reproduce import reproduce

    summary = reproduce(args.profile, args.notebooks or None, output_dir=args.output_dir,
                        executed_dir=args.executed_dir)
    print(f"summary: {summary.output_dir / 'summary.md'}")
    for run in summary.failed:
        print(f"FAILED {run.name}: {run.error} (executed copy: {run.executed})")
    return 1 if summary.failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scotd-kit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("tasks", help="list the task specs").set_defaults(func=_tasks)
    demo = sub.add_parser("demo", help="short offline end-to-end demo on the CPU")
    demo.add_argument("--task", default="demo_compare")
    demo.add_argument("-n", type=int, default=8)
    demo.set_defaults(func=_demo)
    rep = sub.add_parser("reproduce", help="run the notebooks through papermill under a profile")
    rep.add_argument("--profile", default="demo", choices=["smoke", "demo", "colab", "paper"])
    rep.add_argument("notebooks", nargs="*", help="notebook names or globs (default: all)")
    rep.add_argument("--output-dir", default="figures", help="tables and figures go to OUTPUT_DIR/PROFILE")
    rep.add_argument("--executed-dir", default=None, help="executed notebooks (default runs/executed/PROFILE)")
    rep.set_defaults(func=_reproduce)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
