"""One command that checks the kit's GPU paths and measures them (about 2.5 minutes on one H200).

    python benchmarks/gpu_check.py --out F.json        # on a CUDA machine
    python benchmarks/gpu_check.py --smoke --out F.json  # the CPU-possible parts, tiny models (the test suite)

Each check runs on its own, records what it measured and its peak device memory, and a failure is kept
in the JSON (``ok: false`` with the error) without stopping the rest; the exit status is 1 if any failed.

* ``rule``            -- what the hardware rule picks for each role on this machine, and why
* ``fused_attention`` -- the shared-prefix attention's fused kernel (with its log-sum-exp) against plain math
* ``fp16_t4_path``    -- full fine-tuning in fp16 with loss scaling, the path a T4 takes (forced here)
* ``bf16``            -- the same in bf16 autocast (sm80+)
* ``qlora_4bit``      -- QLoRA on a 4-bit NF4 base (bitsandbytes; CUDA only)
* ``lora_resume``     -- a LoRA run cut after its checkpoint resumes to the uninterrupted run's losses
* ``engine_greedy``   -- the kit's decode engine's greedy tokens against ``model.generate``, and the greedy row a
                        sampling call decodes beside its samples against the greedy call's
* ``sampling``        -- sampled tokens/s: the kit's engine against ``model.generate`` (and vLLM if importable)
* ``sc_eval``         -- self-consistency evaluation, examples/s
* ``full_ft_mfu``     -- full fine-tuning tokens/s and model FLOPs utilisation against a measured matmul peak

Models are random-initialised at the papers' sizes (``random:opt-350m``) or the offline SmolLM2-135M: no hub.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

from common import environment  # noqa: E402  (common puts the repo on sys.path)

import argparse  # noqa: E402


CHECKS = ("rule", "fused_attention", "fp16_t4_path", "bf16", "qlora_4bit", "lora_resume", "engine_greedy", "sampling",
          "sc_eval", "full_ft_mfu")


def _args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny models, CPU-possible parts only (seconds)")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    parser.add_argument("--only", default=None, help="comma-separated names of the checks to run (default: all)")
    parser.add_argument("--teacher", default=None,
                        help="the decoding checks' model (default: the offline SmolLM2-135M-Instruct; "
                             "random:smollm2-135m is its shape with random weights, where the GGUF is not installed)")
    args = parser.parse_args()
    unknown = set(args.only.split(",")) - set(CHECKS) if args.only else set()
    if unknown:
        parser.error(f"--only: no check named {', '.join(sorted(unknown))}; the checks: {', '.join(CHECKS)}")
    return args


class Check:
    """Runs one check, timing it and reading the device's peak memory."""

    def __init__(self, device: str, only: set[str] | None = None):
        self.device, self.only, self.results = device, only, []

    def __call__(self, name: str, fn, *, needs_cuda: bool = False):
        import torch

        if self.only is not None and name not in self.only:
            return
        if needs_cuda and self.device != "cuda":
            self.results.append({"check": name, "ok": None, "skipped": "needs a CUDA device"})
            print(f"{name:16s} skipped (needs CUDA)")
            return
        if self.device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        try:
            figures, ok = fn(), True
        except Exception as e:    # a failed check is a finding, not the end of the run
            figures, ok = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]}, False
        row = {"check": name, "ok": ok, "seconds": round(time.perf_counter() - start, 2), **figures}
        if self.device == "cuda":
            row["peak_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)
        self.results.append(row)
        shown = {k: v for k, v in row.items() if k not in ("check", "traceback")}
        print(f"{name:16s} {json.dumps(shown)[:300]}")


def _instances(n: int, seed: int = 0) -> list[dict]:
    """CoT training pairs of CSQA-like shape from the offline demo task."""
    from scotd_kit import prompts
    from scotd_kit.tasks import load_split

    return [{"id": str(e.id), "input": prompts.student_input(e.question),
             "targets": [prompts.target(e.meta.get("rationale") or "", e.label)]}
            for e in load_split("demo_arith", "train", limit=n, seed=seed)]


def _train(model: str, method: str, precision: str, steps: int, batch: int, out: Path, **kw):
    from scotd_kit import training

    seen = {}

    class Args:
        def __getattr__(self, name):
            return (lambda *a, **k: None) if name.startswith("on_") else super().__getattribute__(name)

        def on_train_begin(self, args, state, control, **k):
            seen.update(fp16=args.fp16, bf16=args.bf16)

    cfg = training.TrainConfig.small(max_steps=steps, per_device_train_batch_size=batch, precision=precision,
                                     save_steps=kw.pop("save_steps", 10 * steps), warmup_steps=0,
                                     learning_rate=1e-4)
    result = training.fine_tune(model, _instances(max(64, batch * 4)), output_dir=out, method=method, config=cfg,
                                callbacks=[Args(), *kw.pop("callbacks", ())], **kw)
    losses = [x["loss"] for x in result.losses]
    return result, losses, seen


def rule_check():
    from scotd_kit.hardware import describe

    return {"facts": describe({"teacher": None, "student": None, "evaluation": None, "t4_request": "fp16"})}


def fused_attention_check(device: str):
    import torch

    from scotd_kit import shared_prefix as sp

    g = torch.Generator().manual_seed(0)
    out = {}
    dtypes = (torch.float32, torch.float16, torch.bfloat16) if device == "cuda" else (torch.float32,)
    for dtype in dtypes:
        q = torch.randn(8, 3, 5, 64, generator=g).to(device, dtype)
        k, v = (torch.randn(8, 3, 37, 64, generator=g).to(device, dtype) for _ in range(2))
        bias = sp.suffix_bias(torch.rand(8, 5, 37, generator=g).to(device) > 0.2, 1, dtype)
        fo, fl = sp._attend(q, k, v, bias, 0.125, fused=True)
        mo, ml = sp._attend_math(q, k, v, bias, 0.125)
        out[str(dtype).removeprefix("torch.")] = {"max_abs_out": float((fo - mo).abs().max()),
                                                  "max_abs_lse": float((fl - ml).abs().max())}
        tol = 1e-4 if dtype == torch.float32 else 3e-2
        assert out[str(dtype).removeprefix("torch.")]["max_abs_out"] < tol, out
    return out


def precision_check(model: str, precision: str, steps: int, batch: int):
    import math

    def run():
        with tempfile.TemporaryDirectory() as d:
            result, losses, seen = _train(model, "full", precision, steps, batch, Path(d))
        assert all(math.isfinite(x) for x in losses), losses
        return {"precision": precision, "trainer_flags": seen, "first_loss": losses[0], "last_loss": losses[-1],
                "tokens_per_second": round(result.tokens_per_second, 1)}
    return run


def qlora_check(model: str, steps: int):
    import math

    def run():
        with tempfile.TemporaryDirectory() as d:
            result, losses, _ = _train(model, "qlora", "auto", steps, 8, Path(d))
        assert all(math.isfinite(x) for x in losses), f"non-finite QLoRA losses: {losses}"
        return {"first_loss": losses[0], "last_loss": losses[-1], "tokens_per_second": round(result.tokens_per_second, 1)}
    return run


def lora_resume_check(model: str):
    class Cut(Exception):
        pass

    class CutAt:
        def __getattr__(self, name):
            return (lambda *a, **k: None) if name.startswith("on_") else super().__getattribute__(name)

        def on_step_begin(self, args, state, control, **k):
            if state.global_step + 1 == 6:
                raise Cut()

    def run():
        with tempfile.TemporaryDirectory() as d:
            _, ref, _ = _train(model, "lora", "auto", 8, 4, Path(d) / "ref", save_steps=4, seed=1)
            try:
                _train(model, "lora", "auto", 8, 4, Path(d) / "cut", save_steps=4, seed=1, callbacks=[CutAt()])
            except Cut:
                pass
            res, resumed, _ = _train(model, "lora", "auto", 8, 4, Path(d) / "cut", save_steps=4, seed=1)
        diff = max(abs(a - b) for a, b in zip(ref, resumed))
        assert res.resumed_from_step == 4 and len(resumed) == 8 and diff < 1e-3, (res.resumed_from_step, diff)
        return {"resumed_from_step": res.resumed_from_step, "max_loss_difference": diff}
    return run


def _teacher(name: str, dtype=None):
    from scotd_kit.models import load_model

    model, tok = load_model(name, dtype=dtype)
    return model.eval(), tok


def _prompts(n: int):
    from scotd_kit.exemplars import get_exemplars
    from scotd_kit.prompts import few_shot_block, student_input
    from scotd_kit.tasks import load_split

    prefix = few_shot_block(list(get_exemplars("demo_arith"))[:4])
    return prefix, [student_input(e.question) for e in load_split("demo_arith", "validation", limit=n)]


def engine_greedy_check(name: str, n: int, new_tokens: int):
    """The engine's batched greedy tokens against ``model.generate`` one prompt at a time: all equal in fp32 (bar
    one near-tie); in the rule's precision (bf16 on a GPU) rounding follows the batch's shape, so they are counted."""
    import torch

    from scotd_kit.generation import GenerationConfig, generate

    def equal(dtype) -> tuple[int, str, int]:
        model, tok = _teacher(name, dtype)
        prefix, prompts = _prompts(n)
        ours = generate(model, tok, prompts, GenerationConfig(max_new_tokens=new_tokens, stop=()), prefix=prefix)
        # the greedy row a sampling call decodes beside its samples (Table 2(b)'s greedy corpus): the same tokens
        sampled = generate(model, tok, prompts, GenerationConfig(max_new_tokens=new_tokens, stop=(), do_sample=True,
                                                                temperature=0.3, top_k=0, n=4), prefix=prefix,
                           greedy_row=True)
        beside = sum(r[-1].token_ids == g.token_ids for r, (g,) in zip(sampled, ours))
        same = 0
        for p, (g,) in zip(prompts, ours):
            ids = tok(prefix)["input_ids"] + tok(p, add_special_tokens=False)["input_ids"]
            x = torch.tensor([ids], device=model.device)
            with torch.inference_mode():
                ref = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=new_tokens,
                                     do_sample=False, pad_token_id=tok.pad_token_id)[0, x.shape[1]:].tolist()
            eos = model.generation_config.eos_token_id
            eos = eos if isinstance(eos, list) else [eos]
            cut = next((i + 1 for i, t in enumerate(ref) if t in eos), len(ref))
            same += g.token_ids == ref[:cut]
        return same, str(model.dtype).removeprefix("torch."), beside

    def run():
        fp32, _, beside32 = equal("fp32")
        rule, precision, beside = equal(None)
        assert fp32 >= n - 1, f"fp32: {fp32} of {n} greedy generations equal model.generate's"
        assert beside32 >= n - 1, f"fp32: {beside32} of {n} greedy rows decoded beside samples equal the greedy call's"
        return {"equal_fp32": fp32, "equal_rule": rule, "rule_precision": precision, "of": n,
                "greedy_row_beside_samples_equal_fp32": beside32, "greedy_row_beside_samples_equal_rule": beside}
    return run


def sampling_check(name: str, n_prompts: int, k: int, new_tokens: int):
    import torch

    from scotd_kit.generation import GenerationConfig, generate

    def run():
        model, tok = _teacher(name)
        prefix, prompts = _prompts(n_prompts)
        cfg = GenerationConfig(max_new_tokens=new_tokens, do_sample=True, temperature=1.0, top_k=0, n=k, stop=(),
                               logprobs=False)
        start = time.perf_counter()
        out = generate(model, tok, prompts, cfg, prefix=prefix)
        kit_s = time.perf_counter() - start
        kit_tokens = sum(len(g.token_ids) for row in out for g in row)
        start, hf_tokens = time.perf_counter(), 0
        for p in prompts:
            x = tok(prefix + p, return_tensors="pt").to(model.device)
            with torch.inference_mode():
                y = model.generate(**x, do_sample=True, temperature=1.0, top_k=0, max_new_tokens=new_tokens,
                                   num_return_sequences=k, pad_token_id=tok.pad_token_id)
            hf_tokens += int((y[:, x["input_ids"].shape[1]:] != tok.pad_token_id).sum())
        hf_s = time.perf_counter() - start
        row = {"kit_tok_s": round(kit_tokens / kit_s, 1), "generate_tok_s": round(hf_tokens / hf_s, 1),
               "ratio": round((kit_tokens / kit_s) / (hf_tokens / hf_s), 2)}
        try:
            import vllm  # noqa: F401
            row["vllm"] = "importable; run docs/vllm.md's teacher in its own environment to compare"
        except ImportError:
            row["vllm"] = "not installed"
        return row
    return run


def sc_eval_check(name: str, n: int, k: int):
    from scotd_kit.evaluation import evaluate
    from scotd_kit.tasks import load_split

    def run():
        model, tok = _teacher(name)
        examples = load_split("demo_arith", "validation", limit=n)
        start = time.perf_counter()
        r = evaluate(model, tok, "demo_arith", examples, decoding="self_consistency", k=k, temperature=0.7,
                     max_new_tokens=64, progress=False)
        s = time.perf_counter() - start
        return {"examples_per_second": round(n / s, 2), "k": k, "accuracy": r.summary()["accuracy"]}
    return run


def _matmul_peak(device: str, dtype) -> float:
    """FLOP/s of a large square matmul in ``dtype`` on ``device`` (the MFU's denominator, measured here)."""
    import torch

    size = 8192 if device == "cuda" else 1024
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    reps, start = 10, time.perf_counter()
    for _ in range(reps):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * size ** 3 * reps / (time.perf_counter() - start)


def mfu_check(model: str, steps: int, batch: int, device: str):
    def run():
        from scotd_kit.hardware import choose
        from scotd_kit.models import load_model

        precision = choose(None, role="training").precision
        with tempfile.TemporaryDirectory() as d:
            result, losses, _ = _train(model, "full", "auto", steps, batch, Path(d))
        m, _ = load_model(model, dtype="fp32", device="cpu")
        params = sum(p.numel() for p in m.parameters())
        peak = _matmul_peak(device, choose(None).dtype)
        achieved = 6 * params * result.tokens_per_second
        return {"precision": precision, "params": params, "tokens_per_second": round(result.tokens_per_second, 1),
                "matmul_peak_tflops": round(peak / 1e12, 2), "mfu": round(achieved / peak, 3)}
    return run


def main():
    args = _args()
    import torch

    from scotd_kit.hardware import machine

    device = machine().device
    if device != "cuda" and not args.smoke:
        print("no CUDA device: run with --smoke for the CPU-possible parts", file=sys.stderr)
        return 2
    smoke = args.smoke
    student = "tiny-opt" if smoke else "random:opt-350m"
    teacher = args.teacher or ("tiny-llama" if smoke else "smollm2-135m-instruct")
    check = Check(device, set(args.only.split(",")) if args.only else None)
    check("rule", rule_check)
    check("fused_attention", lambda: fused_attention_check(device))
    check("fp16_t4_path", precision_check(student, "fp16", 3 if smoke else 30, 4 if smoke else 16), needs_cuda=True)
    check("bf16", precision_check(student, "bf16", 3 if smoke else 30, 4 if smoke else 16),
          needs_cuda=not smoke)
    check("qlora_4bit", qlora_check(student, 20), needs_cuda=True)
    check("lora_resume", lora_resume_check(student))
    check("engine_greedy", engine_greedy_check(teacher, 4 if smoke else 16, 8 if smoke else 48))
    check("sampling", sampling_check(teacher, 2 if smoke else 32, 2 if smoke else 16, 8 if smoke else 64))
    check("sc_eval", sc_eval_check(teacher, 2 if smoke else 64, 2 if smoke else 10))
    check("full_ft_mfu", mfu_check(student, 3 if smoke else 40, 4 if smoke else 16, device))
    payload = {"benchmark": "gpu_check", "smoke": smoke, "device": device,
               "ok": all(r["ok"] is not False for r in check.results), "checks": check.results,
               "teacher": teacher,
               "environment": environment(), "cuda": torch.version.cuda}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print("all checks passed" if payload["ok"] else "FAILED: " + ", ".join(
        r["check"] for r in check.results if r["ok"] is False))
    return 0 if payload["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
