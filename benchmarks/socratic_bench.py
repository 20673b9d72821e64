"""Socratic iterative inference: the kit's batched loop vs one problem at a time.

``[SOCRATIC_BENCH_STUDENTS=RUNS_DIR] python benchmarks/socratic_bench.py [--quick] [--out F.json]``

Both loops run the same QG / QA models on the same problems with greedy decoding and must give
the same traces (checked); the measure is problems per second, ``ratio`` = batched / one-at-a-time.
Models: the ``demo`` profile's trained SmolLM2-135M QG / QA students when a runs dir is given in
``SOCRATIC_BENCH_STUDENTS`` (e.g. ``~/.cache/scotd_kit/runs``; they are trained there if missing),
else untrained SmolLM2-135M-Instruct for both roles -- then QG rarely writes a sub-question, so most problems end after one QG call and
the benchmark measures mostly batched QG decoding (the JSON says which models ran and the mean
number of steps per problem).
"""
from __future__ import annotations

import os
from pathlib import Path

from common import Timer, parse_args, report


def models(students: Path | None):
    from scotd_kit.training import load_any
    from scotd_kit.models import load_model

    if students:
        from scotd_kit.socratic import pipeline
        from scotd_kit.socratic.settings import socratic_settings

        os.environ["SCOTD_RUNS_DIR"] = str(students)
        done = pipeline.students(socratic_settings("demo"), "demo_socratic", "iterative")   # trained if missing
        return load_any(str(done["qg"])), load_any(str(done["qa"])), f"demo LoRA students QG {done['qg'].parent.name} / QA {done['qa'].parent.name}"
    m = load_model("smollm2-135m-instruct")
    return m, m, "untrained smollm2-135m-instruct (QG and QA)"


def main():
    args = parse_args(__doc__.splitlines()[0])
    import torch

    from scotd_kit.socratic.loop import LoopConfig, solve_iterative, solve_one
    from scotd_kit.tasks import load_split

    students = Path(os.environ["SOCRATIC_BENCH_STUDENTS"]) if os.environ.get("SOCRATIC_BENCH_STUDENTS") else None
    torch.manual_seed(0)
    qg, qa, which = models(students)
    n = 32 if args.quick else 96
    questions = [ex.question for ex in load_split("demo_socratic", "test", limit=n)]
    config = LoopConfig(max_steps=4, qg_max_new_tokens=24, qa_max_new_tokens=32)
    solve_iterative(qg, qa, questions[:2], config, batch_size=2)   # warm-up: first-call allocations

    with Timer() as one:
        serial = [solve_one(qg, qa, q, config) for q in questions]
    with Timer() as batched:
        traces = solve_iterative(qg, qa, questions, config, batch_size=n)
    identical = sum(a.as_dict() == b.as_dict() for a, b in zip(traces, serial))
    # fp32 greedy decoding is exact whatever the batch; bf16 (the hardware rule's pick where it is native) rounds
    # with the batch's shape, so a greedy text may part from the one-at-a-time one: exactness is required in fp32
    # (and held by the tests, which run fp32), counted otherwise
    dtype = next(qg[0].parameters()).dtype
    same = identical == len(traces)
    steps = sum(len(t.steps) for t in traces) / len(traces)
    rows = [{"loop": "one problem at a time", "problems": n, "seconds": one.seconds, "problems_per_s": n / one.seconds},
            {"loop": "batched (kit)", "problems": n, "seconds": batched.seconds,
             "problems_per_s": n / batched.seconds}]
    result = {"ratio": one.seconds / batched.seconds, "identical_traces": same, "identical_trace_count": identical,
              "dtype": str(dtype).removeprefix("torch."), "models": which,
              "mean_model_calls_per_problem": steps, "batch_size": n, "quick": args.quick}
    report("socratic_bench", rows, result, args.out)
    if not same and dtype == torch.float32:
        raise SystemExit("the batched and one-at-a-time loops gave different traces in fp32")
    if not same:
        print(f"{identical} of {len(traces)} traces identical to the one-at-a-time loop's ({dtype}: rounding "
              f"depends on the batch's shape; exact in fp32)")


if __name__ == "__main__":
    main()
