"""The demo teacher's own workload: samples/s, new tokens/s and its share of the measured matmul peak.

    python benchmarks/demo_shape_bench.py [--quick] [--out FILE.json] [--profile-steps]

What runs: exactly the teacher corpus ``make demo`` samples, on a slice of it --
``stages.corpus(stages.settings("demo", train_limit=K), "commonsense_qa")`` in a fresh runs directory (the demo maps the
task to ``demo_arith``: its 4-shot prompt, N=4, T=0.3, 64 new tokens at most, stop at the blank line,
128 instances per teacher call, SmolLM2-135M-Instruct) in the precision the hardware rule picks.
Quick: K=128 (512 samples); full: K=384 (1,536 samples). The teacher is loaded first (timed apart) and
handed to the corpus stage, and a one-instance, 4-token corpus warms it up (stop table, kernels), so ``samples_per_s`` is
the steady-state sampling of the whole pipeline (prompts, decoding, scoring, the corpus on disk).

Why a share of the peak: the engine's speed on this shape is judged against what the same CPU does on
plain matmuls in the same run, not against a number from another machine (the target: >= 0.40
of the fp32 peak on an AVX2-only host, or its stand-in ``ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2`` on an AVX-512 host).

FLOPs counted (the model work the samples need, not what the engine happens to compute; padding,
idle decode slots and recomputation count for nothing):

* every prefilled token -- the shared few-shot prefix once per teacher call, each instance's question
  once (its N samples share it): 2 x non-embedding parameters + attention;
* every decode forward: a sample that decoded ``d`` tokens (its stop or EOS token included) needed
  ``d - 1`` forwards (its first token comes from the prompt's prefill): 2 x non-embedding parameters
  + the LM head (2 x hidden x vocab) + attention;
* the LM head once per prefill's last position (the prefix's, and each question's);
* attention: 4 x layers x heads x head_dim x (positions attended) per token (QK^T and AV); the
  projections are in the parameters.

The corpus stage also decodes each instance's greedy CoT (Table 2(b)'s greedy corpus) in the calls that sample it,
as ``make demo`` does: those CoTs count as work too (``greedy_cots_alongside``), though not as samples in
``samples_per_s``.

Samples of one instance that drew the same tokens so far decode as one row (generation._SlotEngine), so the
engine computes fewer decode forwards than the samples need: ``kit_fraction_of_peak`` (the target's measure) is
the samples' work per second, and ``computed_fraction_of_peak`` the engine's own FLOPs per second (its decode rows
``engine_decode_rows`` against the samples' ``decode_forwards``; attention scaled with them).

The peak: fp32 matmul GFLOP/s measured here with torch's threads, at a large square size (2048^3)
and at the workload's own GEMM shapes (decode slots x hidden x MLP width, and x vocabulary for the
head). The square one, the better of a measurement before and one after the sampling, is "the
measured fp32 peak" ``kit_fraction_of_peak`` is taken against, whatever precision the teacher runs in
(a bf16 teacher's peak is reported beside it).

``ratio`` (common.report's kit / baseline): kit samples/s over ``model.generate``'s, one instance per
call with ``num_return_sequences=4``, the same prompt, sampling settings and stop string, on the first
4 instances (16 in full mode) -- what a user writes first.

``--profile-steps``: where the sampling's time goes (shared-prefix prefill, prompt prefill, decode
forwards, the sampler, stop checks and result decoding, the rest of the step loop, and the pipeline
around ``generate``), timed in the measured run itself (a perf_counter around each call).
"""
from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from common import Timer, parse_args, report  # noqa: E402  (common puts the repo on sys.path)

import torch  # noqa: E402

PAPER_TASK = "commonsense_qa"          # what make demo asks for; the demo profile runs demo_arith for it
TARGET = 0.40                          # share of the measured fp32 matmul peak
SQUARE = 2048
STAND_IN_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


# --- the host ----------------------------------------------------------------------------------------

def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def host() -> dict:
    from scotd_kit.hardware import cpu_capability, cpu_model

    return {"cpu_model": cpu_model(), "cpu_capability": cpu_capability(), "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(), "isa_env": {k: os.environ[k] for k in STAND_IN_ENV if k in os.environ}}


# --- the peak ------------------------------------------------------------------------------------------

def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def matmul_gflops(m: int, k: int, n: int, dtype=torch.float32, device="cpu", seconds: float = 0.5,
                  trials: int = 3) -> float:
    """GFLOP/s of an (m x k) @ (k x n) matmul, the best of ``trials`` runs of ~``seconds`` each (the best:
    on a shared CPU a slower trial measures the neighbours, not the matmul)."""
    a = torch.randn(m, k, device=device).to(dtype)
    b = torch.randn(k, n, device=device).to(dtype)
    torch.matmul(a, b)
    _sync(device)
    with Timer() as t:
        torch.matmul(a, b)
        _sync(device)
    reps = max(1, int(seconds / max(t.seconds, 1e-6)))
    best = 0.0
    for _ in range(trials):
        with Timer() as t:
            for _ in range(reps):
                torch.matmul(a, b)
            _sync(device)
        best = max(best, 2 * m * k * n * reps / t.seconds)
    return best / 1e9


def peaks(model, slots: int, dtypes, device) -> dict:
    """Matmul GFLOP/s per precision: the large square and the workload's own GEMM shapes."""
    c = model.config
    hidden, inter, vocab = c.hidden_size, c.intermediate_size, c.vocab_size
    rows = sorted({min(128, slots), slots})
    shapes = {f"square_{SQUARE}": (SQUARE, SQUARE, SQUARE)}
    for r in rows:
        shapes[f"mlp_up_{r}x{hidden}x{inter}"] = (r, hidden, inter)
        shapes[f"mlp_down_{r}x{inter}x{hidden}"] = (r, inter, hidden)
    shapes[f"lm_head_{slots}x{hidden}x{vocab}"] = (slots, hidden, vocab)
    out = {}
    for dt in dtypes:
        name = str(dt).removeprefix("torch.")
        out[name] = {label: round(matmul_gflops(*mkn, dtype=dt, device=device), 2) for label, mkn in shapes.items()}
    return out


# --- the FLOP count ------------------------------------------------------------------------------------

def model_dims(model) -> dict:
    c = model.config
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    tied = head is not None and head.weight is emb
    params = sum(p.numel() for p in model.parameters())
    non_embedding = params - emb.numel() - (0 if tied or head is None else head.weight.numel())
    heads = c.num_attention_heads
    return {"params": params, "non_embedding_params": non_embedding, "tied_head": tied, "layers": c.num_hidden_layers,
            "hidden": c.hidden_size, "heads": heads, "head_dim": getattr(c, "head_dim", None) or c.hidden_size // heads,
            "vocab": c.vocab_size}


def _attended(first: int, count: int) -> int:
    """Positions attended, summed over ``count`` tokens whose contexts are first, first+1, ..."""
    return count * first + count * (count - 1) // 2


def work_flops(dims: dict, prefix_tokens: int, calls: int, questions: list[int], samples: list[tuple[int, int]]) -> dict:
    """FLOPs of the work (see the module docstring). ``questions``: each instance's prompt tokens behind the
    prefix; ``samples``: (its question's tokens, tokens decoded) per sample."""
    dense = 2 * dims["non_embedding_params"]
    head = 2 * dims["hidden"] * dims["vocab"]
    attn = 4 * dims["layers"] * dims["heads"] * dims["head_dim"]     # per position attended
    P = prefix_tokens
    prefill_tokens = calls * P + sum(questions)
    prefill = (dense * prefill_tokens + head * (calls + len(questions))
               + attn * (calls * _attended(1, P) + sum(_attended(P + 1, q) for q in questions)))
    forwards = sum(max(d - 1, 0) for _, d in samples)
    # forward t (t = 1..d-1) feeds generated token t and attends to prefix + question + t positions
    decode = (dense + head) * forwards + attn * sum(_attended(P + q + 1, d - 1) for q, d in samples if d > 1)
    return {"prefill_tokens": prefill_tokens, "decode_forwards": forwards, "prefill_flops": prefill,
            "decode_flops": decode, "total_flops": prefill + decode}


# --- where the time goes (--profile-steps) --------------------------------------------------------------

class StepTimes:
    """Wall time inside the decode engine's parts, by wrapping them for the duration of a run."""

    PARTS = (("_SlotEngine", "_prefill_prefix", "prefill: shared prefix"),
             ("_SlotEngine", "_prefill", "prefill: prompts"),
             ("_Decoder", "forward", "forward"),
             ("_Decoder", "choose", "sampler (choose)"),
             ("_SlotEngine", "_inspect", "host: stop checks"),
             ("_Decoder", "result", "host: decode results"))

    def __init__(self, device):
        self.device = device
        self.seconds: dict = defaultdict(float)
        self.calls: dict = defaultdict(int)
        self.decode_rows = 0
        self._in_prefill = 0
        self._saved: list = []

    def __enter__(self):
        from scotd_kit import generation

        for cls_name, attr, label in self.PARTS:
            cls = getattr(generation, cls_name)
            orig = cls.__dict__[attr]
            self._saved.append((cls, attr, orig))
            setattr(cls, attr, self._timed(orig, label))
        self._saved.append((generation, "generate", generation.generate))
        generation.generate = self._timed(generation.generate, "generate")
        return self

    def __exit__(self, *exc):
        for owner, attr, orig in reversed(self._saved):
            setattr(owner, attr, orig)

    def _timed(self, fn, label):
        prefill = label.startswith("prefill")

        def timed(*args, **kwargs):
            if label == "forward" and not self._in_prefill:
                self.decode_rows += kwargs.get("input_ids", args[1] if len(args) > 1 else None).shape[0]
            key = "forward: prefill" if label == "forward" and self._in_prefill else \
                "forward: decode step" if label == "forward" else label
            self._in_prefill += prefill
            _sync(self.device)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                _sync(self.device)
                self.seconds[key] += time.perf_counter() - t0
                self.calls[key] += 1
                self._in_prefill -= prefill
        return timed

    def table(self, total: float, decode_forwards: int) -> list[dict]:
        """Rows of exclusive times: prefill parts hold their forwards; "other" is the step loop's own
        bookkeeping (cache writes, masks, slot refills), "pipeline" what sample_corpus does around generate."""
        s = self.seconds
        gen = s["generate"]
        parts = {"prefill: shared prefix": s["prefill: shared prefix"],
                 "prefill: prompts": s["prefill: prompts"],
                 "forward: decode step": s["forward: decode step"],
                 "sampler (choose)": s["sampler (choose)"],
                 "host: stop checks": s["host: stop checks"],
                 "host: decode results": s["host: decode results"]}
        parts["generate: other step-loop work"] = gen - sum(parts.values())
        parts["pipeline around generate"] = total - gen
        rows = [{"part": k, "seconds": round(v, 2), "share": round(v / total, 3),
                 "calls": self.calls.get(k, "")} for k, v in parts.items()]
        steps = self.calls["forward: decode step"]
        self.summary = {"decode_steps": steps, "mean_rows_per_decode_step": self.decode_rows / max(steps, 1),
                        # sample forwards per row computed: below 1, rows that advance no sample (idle or finished
                        # slots); above 1, rows that stand for several samples sharing their tokens
                        "useful_row_share": decode_forwards / max(self.decode_rows, 1),
                        "ms_per_decode_step": 1e3 * s["forward: decode step"] / max(steps, 1)}
        return rows


# --- the two runs ----------------------------------------------------------------------------------------

def demo_corpus(runs_dir: Path, instances: int, teacher, greedy: bool = False, **overrides):
    """The demo's corpus stage on a slice, under ``runs_dir``, sampling with ``teacher`` (already loaded, so the
    timed call only samples): ``(settings, records)``; ``greedy``: the greedy corpus instead."""
    from scotd_kit import stages

    p = stages.settings("demo", train_limit=instances, **overrides)
    spec = stages.teacher_spec(p, PAPER_TASK)
    build, runs_before = stages._teacher, os.environ.get("SCOTD_RUNS_DIR")
    # the stage builds a fresh teacher (and loads its weights) per call; hand it the loaded one instead
    stages._teacher = lambda settings, s: teacher if s == spec else build(settings, s)
    os.environ["SCOTD_RUNS_DIR"] = str(runs_dir)
    try:
        return p, stages.corpus(p, PAPER_TASK, greedy=greedy)
    finally:
        stages._teacher = build
        if runs_before is None:
            os.environ.pop("SCOTD_RUNS_DIR")
        else:
            os.environ["SCOTD_RUNS_DIR"] = runs_before


def load_teacher():
    """The demo's teacher as the corpus stage builds it, its weights loaded; (teacher, seconds)."""
    from scotd_kit import stages
    from scotd_kit.teachers import teacher_from_spec

    p = stages.settings("demo")
    teacher = teacher_from_spec(stages.teacher_spec(p, PAPER_TASK), dtype=p.teacher_dtype)
    with Timer() as t:
        teacher.model
    return teacher, t.seconds


class EngineRows:
    """The decode rows the shared-prefix engines of a run computed (``_SlotEngine.rows_run``, summed)."""

    def __enter__(self):
        from scotd_kit import generation

        self.engines, self._init = [], generation._SlotEngine.__init__

        def recorded(engine, *args, **kwargs):
            self._init(engine, *args, **kwargs)
            self.engines.append(engine)

        generation._SlotEngine.__init__ = recorded
        return self

    def __exit__(self, *exc):
        from scotd_kit import generation

        generation._SlotEngine.__init__ = self._init

    def total(self) -> int:
        return sum(e.rows_run for e in self.engines)


def kit_run(teacher, instances: int, root: Path, profile: bool) -> dict:
    from scotd_kit import stages
    from scotd_kit.prompts import few_shot_block

    # first-call costs (the stop-token table, kernel set-up) out of the timed run: one instance, 4 new tokens
    with Timer() as warm:
        demo_corpus(root / "warmup", 1, teacher, teacher_max_new_tokens=4)
    device = next(teacher.model.parameters()).device
    steps = StepTimes(device) if profile else None
    load_before = loadavg()
    with EngineRows() as rows, Timer() as t:
        if steps:
            with steps:
                p, records = demo_corpus(root / "runs", instances, teacher)
        else:
            p, records = demo_corpus(root / "runs", instances, teacher)
    assert len(records) == instances * p.n_cots, (len(records), instances, p.n_cots)
    _, greedy = demo_corpus(root / "runs", instances, teacher, greedy=True)   # decoded with the samples: read only
    greedy = list(greedy)
    prefix = teacher.tokenizer(few_shot_block(stages.exemplars(p, PAPER_TASK)), add_special_tokens=True)["input_ids"]
    P = len(prefix)
    questions = {r["instance_id"]: r["prompt_tokens"] - P for r in records}
    decoded = [r["completion_tokens"] + (r["finish_reason"] != "length") for r in records + greedy]
    return {"records": records, "greedy": greedy, "seconds": t.seconds, "warmup_seconds": warm.seconds, "steps": steps,
            "loadavg_at_start": load_before, "prefix_tokens": P, "calls": math.ceil(instances / p.teacher_batch_size),
            "questions": list(questions.values()),
            "samples": [(questions[r["instance_id"]], d) for r, d in zip(records + greedy, decoded)],
            "new_tokens": sum(r["completion_tokens"] for r in records + greedy), "decoded_tokens": sum(decoded),
            "engine_decode_rows": rows.total(),
            "stopped": sum(r["finish_reason"] == "stop" for r in records) / len(records),
            "correct": sum(bool(r["correct"]) for r in records) / len(records), "profile": p}


def baseline_run(teacher, examples, demos, profile) -> dict:
    """``model.generate`` per instance, N samples each, the kit's prompt and sampling settings."""
    from scotd_kit.prompts import few_shot_prompt

    model, tok = teacher.model, teacher.tokenizer
    n, new_tokens, seconds = profile.n_cots, 0, 0.0
    for i, ex in enumerate(examples):
        # the kit feeds the prompt without its trailing space (generate(space_boundary=True)); so does this
        ids = tok(few_shot_prompt(demos, ex.question).removesuffix(" "), return_tensors="pt").to(model.device)
        torch.manual_seed(i)
        with Timer() as t, torch.inference_mode():
            out = model.generate(**ids, do_sample=True, temperature=profile.teacher_temperature, top_k=0, top_p=1.0,
                                 num_return_sequences=n, max_new_tokens=profile.teacher_max_new_tokens,
                                 stop_strings=["\n\n"], tokenizer=tok, pad_token_id=tok.pad_token_id)
        seconds += t.seconds
        for g in out[:, ids["input_ids"].shape[1]:]:
            text = tok.decode(g, skip_special_tokens=True).split("\n\n", 1)[0]
            new_tokens += len(tok(text, add_special_tokens=False)["input_ids"])
    return {"instances": len(examples), "samples": n * len(examples), "new_tokens": new_tokens, "seconds": seconds}


# --- main ---------------------------------------------------------------------------------------------

def main() -> None:
    import argparse

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--profile-steps", action="store_true")
    known, rest = extra.parse_known_args()
    sys.argv = [sys.argv[0], *rest]
    args = parse_args(__doc__.splitlines()[0])
    k_kit, k_base = (128, 4) if args.quick else (384, 16)
    started, load_start = time.perf_counter(), loadavg()

    from scotd_kit import stages

    root = Path(tempfile.mkdtemp(prefix="demo_shape_bench."))
    teacher, load_seconds = load_teacher()
    model = teacher.model
    choice = teacher.placement()
    device = next(model.parameters()).device
    from scotd_kit.generation import auto_batch_size

    # the decode slots the engine will choose for this workload (the rows of its decode GEMMs)
    slots = min(k_kit * 4, auto_batch_size(model, 64 + 64))
    dtypes = [torch.float32] + ([model.dtype] if model.dtype != torch.float32 else [])
    peak_before = peaks(model, slots, dtypes, device)

    k = kit_run(teacher, k_kit, root, known.profile_steps)
    square_after = matmul_gflops(SQUARE, SQUARE, SQUARE, device=device)
    p = k["profile"]
    plan = stages.settings("demo", train_limit=k_base)
    b = baseline_run(teacher, stages.examples(plan, PAPER_TASK, plan.train_split), stages.exemplars(plan, PAPER_TASK), p)

    dims = model_dims(model)
    flops = work_flops(dims, k["prefix_tokens"], k["calls"], k["questions"], k["samples"])
    fp32_square = max(peak_before["float32"][f"square_{SQUARE}"], square_after)
    achieved = flops["total_flops"] / k["seconds"] / 1e9
    fraction = achieved / fp32_square
    computed = (flops["prefill_flops"] + flops["decode_flops"] * k["engine_decode_rows"] / max(flops["decode_forwards"], 1))
    computed_fraction = computed / k["seconds"] / 1e9 / fp32_square
    samples = len(k["records"])
    kit_sps, base_sps = samples / k["seconds"], b["samples"] / b["seconds"]
    rows = [{"method": "baseline: model.generate", "instances": b["instances"], "samples": b["samples"],
             "new_tokens": b["new_tokens"], "seconds": round(b["seconds"], 1), "samples_per_s": base_sps,
             "new_tokens_per_s": b["new_tokens"] / b["seconds"]},
            {"method": "kit: stages.corpus (demo)", "instances": k_kit, "samples": samples, "new_tokens": k["new_tokens"],
             "seconds": round(k["seconds"], 1), "samples_per_s": kit_sps, "new_tokens_per_s": k["new_tokens"] / k["seconds"],
             "achieved_gflops": achieved, "fraction_of_fp32_peak": fraction}]
    result = {
        "ratio": kit_sps / base_sps, "ratio_is": "kit samples/s / model.generate samples/s",
        "kit_fraction_of_peak": fraction, "target_fraction_of_peak": TARGET, "meets_target": fraction >= TARGET,
        "computed_fraction_of_peak": computed_fraction, "engine_decode_rows": k["engine_decode_rows"],
        "greedy_cots_alongside": len(k["greedy"]),
        "peak_is": f"fp32 {SQUARE}^3 matmul, torch threads, better of before/after the sampling",
        "samples_per_s": kit_sps, "new_tokens_per_s": k["new_tokens"] / k["seconds"],
        "decoded_tokens_per_s": k["decoded_tokens"] / k["seconds"], "achieved_gflops": achieved,
        "fp32_peak_gflops": fp32_square, "matmul_gflops": peak_before, "fp32_square_gflops_after": round(square_after, 2),
        "sampling_seconds": k["seconds"], "load_seconds": load_seconds, "warmup_seconds": k["warmup_seconds"],
        "precision": choice.precision, "precision_reason": choice.reason, "device": str(device),
        **host(), "loadavg_before": load_start, "loadavg_at_sampling": k["loadavg_at_start"],
        "loadavg_after": loadavg(), "flops": flops, "model": dims,
        "workload": {"instances": k_kit, "n": p.n_cots, "samples": samples, "task": p.task(PAPER_TASK),
                     "temperature": p.teacher_temperature, "max_new_tokens": p.teacher_max_new_tokens,
                     "instances_per_teacher_call": p.teacher_batch_size, "teacher_calls": k["calls"],
                     "decode_slots_expected": slots, "prefix_tokens": k["prefix_tokens"],
                     "mean_question_tokens": sum(k["questions"]) / len(k["questions"]),
                     "new_tokens": k["new_tokens"], "decoded_tokens": k["decoded_tokens"],
                     "mean_new_tokens": k["new_tokens"] / (samples + len(k["greedy"])), "stopped_at_blank_line": k["stopped"],
                     "correct_share": k["correct"], "quick": args.quick},
        "baseline": b,
    }
    steps = k["steps"]
    if steps is not None:
        table = steps.table(k["seconds"], flops["decode_forwards"])
        result["profile_steps"] = {"parts": table, **steps.summary}
    result["wall_seconds"] = time.perf_counter() - started
    report("demo_shape_bench", rows, result, args.out)
    print(f"host: {result['cpu_model']} | torch CPU capability {result['cpu_capability']} | {result['torch_threads']} "
          f"threads | teacher {choice.precision} on {device} | load before {load_start}")
    for dt, shapes in peak_before.items():
        print(f"matmul GFLOP/s ({dt}): " + ", ".join(f"{s} {g:.1f}" for s, g in shapes.items()))
    print(f"teacher load {load_seconds:.1f} s, warm-up {k['warmup_seconds']:.1f} s, sampling {k['seconds']:.1f} s: "
          f"{kit_sps:.2f} samples/s, {result['new_tokens_per_s']:.0f} new tok/s, {achieved:.1f} GFLOP/s = "
          f"{fraction:.1%} of the fp32 peak {fp32_square:.1f} GFLOP/s (target >= {TARGET:.0%}); the engine computed "
          f"{k['engine_decode_rows']} decode rows for {flops['decode_forwards']} sample forwards: "
          f"{computed_fraction:.1%} of the peak in its own FLOPs")
    if steps is not None:
        print("where the sampling's time goes:")
        for r in table:
            print(f"  {r['part']:<32} {r['seconds']:>8.2f} s  {r['share']:>6.1%}  {r['calls']}")
        s = steps.summary
        print(f"  {s['decode_steps']} decode steps, {s['mean_rows_per_decode_step']:.0f} rows each on average, "
              f"{s['useful_row_share']:.0%} sample forwards per row computed, {s['ms_per_decode_step']:.1f} ms per step")
    print(f"wall {result['wall_seconds']:.0f} s; load after {result['loadavg_after']}")


if __name__ == "__main__":
    sys.exit(main())
