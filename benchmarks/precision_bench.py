"""The demo's teacher and student in the precision the hardware rule picks vs bf16 forced.

    python benchmarks/precision_bench.py [--quick] [--out FILE.json]

The demo profile once forced a bf16 teacher and bf16 student autocast, measured fast on CPUs with bf16
instructions; on an AVX2-only CPU torch emulates bf16. This measures both roles on this host:

* teacher: SmolLM2-135M-Instruct sampling the demo's own corpus workload (``demo_arith``, its 4-shot
  prompt, N=4, T=0.3, 64 new tokens) through ``stages.corpus``, model load included -- samples/s;
* student: the demo's ``small-llama`` trained with the demo's recipe (batches of 32, eager attention) on
  gold ``demo_arith`` rationales -- optimizer steps/s, first step left out.

``kit``: the precision :mod:`scotd_kit.hardware` picks here; ``baseline``: bf16 forced past the rule (what
the profile did). ``ratio`` = teacher samples/s, kit / baseline; ``student_ratio`` the same for steps/s.
On an AVX-512 host, the AVX2-only stand-in is
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 python benchmarks/precision_bench.py``.
"""
from __future__ import annotations

import tempfile
import time

from common import Timer, parse_args, report  # noqa: E402  (common puts the repo on sys.path)


def teacher_rate(precision: str | None, instances: int) -> float:
    """Samples/s of the demo teacher's corpus workload; ``precision`` None: the rule's, else forced."""
    import os

    from scotd_kit import models, stages
    from scotd_kit.hardware import Choice

    os.environ["SCOTD_RUNS_DIR"] = tempfile.mkdtemp(prefix="precision_bench.")     # a cold corpus every call
    p = stages.settings("demo", train_limit=instances)
    rule = models.placement
    if precision is not None:                       # past the rule: that dtype, whatever it costs here
        models.placement = lambda dtype=None, **kw: Choice(rule(None, **kw).device, precision, "forced")
    try:
        with Timer() as t:
            records = stages.corpus(p, "commonsense_qa")
    finally:
        models.placement = rule
    return len(records) / t.seconds


def student_rate(precision: str | None, steps: int) -> tuple[float, str]:
    """(Optimizer steps/s, precision) of the demo student; ``precision`` None: the rule's, else forced."""
    from scotd_kit import prompts, training
    from scotd_kit.profiles import get_profile
    from scotd_kit.tasks import load_split

    p = get_profile("demo")
    examples = load_split("demo_arith", "train", limit=400)
    instances = [{"id": str(e.id), "input": prompts.student_input(e.question),
                  "targets": [prompts.target(e.meta.get("rationale") or "", e.label)]} for e in examples]
    config = training.TrainConfig.recipe(p.train_recipe, **{**p.train_overrides(), "max_steps": steps,
                                                             "save_steps": 10 * steps})
    resolved = config.resolved_precision()
    saved = training.TrainConfig.resolved_precision
    if precision is not None:
        training.TrainConfig.resolved_precision = lambda self: precision   # past the rule
    times = []

    class Clock:
        def __getattr__(self, name):
            return (lambda *a, **k: None) if name.startswith("on_") else super().__getattribute__(name)

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter())

    try:
        training.fine_tune(p.student, instances, output_dir=tempfile.mkdtemp(prefix="precision_bench."),
                           method=p.method, config=config, seed=0, callbacks=[Clock()])
    finally:
        training.TrainConfig.resolved_precision = saved
    return (len(times) - 1) / (times[-1] - times[0]), precision or resolved


def main():
    args = parse_args(__doc__.splitlines()[0])
    import torch

    from scotd_kit.hardware import choose, cpu_model

    instances, steps = (16, 12) if args.quick else (32, 30)
    rule = choose(None, role="teacher").precision
    t_kit = teacher_rate(None, instances)
    t_base = teacher_rate("bf16", instances)
    s_kit, s_prec = student_rate(None, steps)
    s_base, _ = student_rate("bf16", steps)
    rows = [dict(role="teacher", kit_precision=rule, kit=t_kit, baseline_precision="bf16", baseline=t_base,
                 unit="samples/s"),
            dict(role="student", kit_precision=s_prec, kit=s_kit, baseline_precision="bf16", baseline=s_base,
                 unit="steps/s")]
    report("precision_bench", rows, dict(ratio=t_kit / t_base, student_ratio=s_kit / s_base,
                                         teacher_samples=instances * 4, student_steps=steps,
                                         cpu_capability=torch.backends.cpu.get_cpu_capability(),
                                         cpu_model=cpu_model(), rule_precision=rule), args.out)


if __name__ == "__main__":
    main()
