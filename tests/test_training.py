"""Fine-tuning: target-only labels with EOS, balanced sampling, LoRA/QLoRA on CPU, exact resume."""
import json
import math

import pytest

torch = pytest.importorskip("torch")

from scotd_kit import prompts, training  # noqa: E402
from scotd_kit.io import DataError  # noqa: E402
from scotd_kit.models import gpt2_tokenizer, load_model  # noqa: E402


def _instances(n=24, targets=2):
    out = []
    for i in range(n):
        q = f"What is {i} plus {i % 5}?" + " Think." * (i % 7)
        out.append({"id": f"q{i}", "input": prompts.student_input(q),
                    "targets": [prompts.target(f"{i} plus {i % 5} is {i + i % 5}." + " Yes." * t, str(i + i % 5))
                                for t in range(targets)]})
    return out


def _cfg(**kw):
    base = dict(max_steps=8, learning_rate=1e-3, per_device_train_batch_size=4, warmup_steps=0,
                save_steps=4, logging_steps=4, max_length=128)
    return training.TrainConfig.small(**{**base, **kw})


class _Crash(Exception):
    pass


class CrashAt:
    """A callback that kills training when step ``n`` begins (after checkpoint n-1 was written)."""

    def __init__(self, n):
        self.n = n

    def __getattr__(self, name):  # every other TrainerCallback hook is a no-op
        if name.startswith("on_"):
            return lambda *a, **k: None
        raise AttributeError(name)

    def on_step_begin(self, args, state, control, **kw):
        if state.global_step + 1 == self.n:
            raise _Crash(f"simulated crash before step {self.n}")


# ---------------------------------------------------------------- labels and loss

@pytest.mark.parametrize("left", [True, False])
def test_labels_cover_target_and_eos_with_pad_equal_to_eos(left):
    tok = gpt2_tokenizer()
    tok.pad_token = tok.eos_token          # the peers' trap: pad id == EOS id
    insts = [{"id": "a", "input": "Q: a long question here?\nA: ", "targets": ["yes So the answer is: (a)\n\n"]},
             {"id": "b", "input": "Q: b?\nA: ", "targets": ["no So the answer is: (b)\n\n"]}]
    t = training.Tokenized(insts, tok, max_length=64)
    feats = [dict(zip(("input_ids", "n_prompt"), t.sequence(i, 0))) for i in range(2)]
    batch = training.Collator(tok.pad_token_id, left=left)(feats)
    for r, f in enumerate(feats):
        n, p = len(f["input_ids"]), f["n_prompt"]
        start = batch["input_ids"].shape[1] - n if left else 0
        labels = batch["labels"][r].tolist()
        assert labels[start + n - 1] == tok.eos_token_id            # EOS is learned
        assert labels[start + p:start + n] == f["input_ids"][p:].tolist()
        assert all(x == -100 for x in labels[start:start + p])       # prompt masked
        pads = [j for j in range(len(labels)) if not start <= j < start + n]
        assert all(labels[j] == -100 for j in pads)                  # padding masked by position
        assert all(batch["input_ids"][r, j] == tok.eos_token_id for j in pads)
    assert len(pads) > 0
    target = tok("yes So the answer is: (a)\n\n", add_special_tokens=False)["input_ids"]
    assert feats[0]["input_ids"][feats[0]["n_prompt"]:].tolist() == target + [tok.eos_token_id]


def test_kept_logits_loss_equals_full_logits_loss():
    model, tok = load_model("tiny-llama", dtype=torch.float32)
    model.eval()
    insts = _instances(6)
    t = training.Tokenized(insts, tok, max_length=128)
    feats = [dict(zip(("input_ids", "n_prompt"), t.sequence(i, i % 2))) for i in range(6)]
    left = training.Collator(tok.pad_token_id, left=True)(feats)
    right = training.Collator(tok.pad_token_id, left=False)(feats)
    assert left["logits_to_keep"] < left["input_ids"].shape[1]      # fewer logits than positions
    with torch.no_grad():
        labels = left.pop("labels")
        kept = training.target_loss(model(**left), labels)
        rl = right.pop("labels")
        full = training.target_loss(model(**right), rl)
        # reference: each example alone, loss summed over its target tokens
        tot, count = 0.0, 0
        for f in feats:
            ids = torch.as_tensor(f["input_ids"], dtype=torch.long)[None]
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
            gold = ids[0, 1:]
            rows = torch.arange(f["n_prompt"] - 1, ids.shape[1] - 1)
            tot += -logp[rows, gold[rows]].sum().item()
            count += len(rows)
    assert kept.item() == pytest.approx(tot / count, rel=1e-4)
    assert full.item() == pytest.approx(tot / count, rel=1e-4)


def test_truncation_keeps_target_eos_and_answer_cue():
    tok = gpt2_tokenizer()
    inst = [{"id": "x", "input": "Q: " + "word " * 200 + "\nA: ", "targets": ["short So the answer is: 1\n\n"]}]
    t = training.Tokenized(inst, tok, max_length=40)
    ids, n_prompt = t.sequence(0, 0)
    assert len(ids) == 40 and ids[-1] == tok.eos_token_id
    assert tok.decode(ids[:n_prompt]).endswith("\nA: ") and tok.decode(ids[:n_prompt]).startswith("Q: word")


def test_query_truncation_is_scotds_the_query_cut_on_the_right_the_target_whole():
    tok = gpt2_tokenizer()
    target = "step one, step two. So the answer is: 1\n\n"
    inst = [{"id": "x", "input": "Q: " + "word " * 200 + "\nA: ", "targets": [target]}]
    t = training.Tokenized(inst, tok, max_length=40, truncation="query")
    ids, n_prompt = t.sequence(0, 0)
    n_target = len(tok(target, add_special_tokens=False)["input_ids"])
    assert n_prompt == 40 and len(ids) == 40 + n_target + 1 == t.length(0, 0) and ids[-1] == tok.eos_token_id
    assert tok.decode(ids[n_prompt:-1]) == target and not tok.decode(ids[:n_prompt]).endswith("\nA: ")
    # SCoTD's recipe: the query cut alone, batches drawn at random (a shuffled DataLoader), not grouped by length
    paper = training.TrainConfig.paper(output_dir="x")
    assert paper.truncation == "query" and paper.group_by_length is False and paper.max_length == 700
    assert training.TrainConfig.small(output_dir="x").truncation == "middle"
    with pytest.raises(ValueError, match="truncation='left'"):
        training.Tokenized(inst, tok, max_length=40, truncation="left")


# ---------------------------------------------------------------- data order

def test_balanced_sampling_is_seeded_and_varies_by_epoch():
    insts = _instances(40, targets=5)
    a = [training.epoch_choices(insts, seed=3, epoch=e) for e in range(3)]
    assert a == [training.epoch_choices(insts, seed=3, epoch=e) for e in range(3)]
    assert a[0] != a[1] and a[0] != training.epoch_choices(insts, seed=4, epoch=0)
    assert set(a[0]) == set(range(5))


def test_schedule_covers_each_instance_once_per_epoch_and_groups_lengths():
    tok = gpt2_tokenizer()
    insts = _instances(64)
    t = training.Tokenized(insts, tok, max_length=256)
    items, batches = training.schedule(t, insts, batch_size=8, epochs=2, seed=0, megabatch_factor=8)
    for e in range(2):
        seen = sorted(items[p][0] for b in batches[e * 8:(e + 1) * 8] for p in b)
        assert seen == list(range(64))

    def padding(batches):
        return sum(len(b) * max(t.length(*items[p]) for p in b) - sum(t.length(*items[p]) for p in b)
                   for b in batches)
    _, plain = training.schedule(t, insts, batch_size=8, epochs=2, seed=0, group_by_length=False)
    assert padding(batches) < 0.5 * padding(plain)
    longest = max(t.length(*items[p]) for b in batches for p in b)
    assert max(t.length(*items[p]) for p in batches[0]) == longest


# ---------------------------------------------------------------- training runs

def test_full_fine_tuning_lowers_the_loss(tmp_path):
    r = training.fine_tune("tiny-gpt2", _instances(), output_dir=tmp_path, config=_cfg(max_steps=16), resume=False)
    losses = [x["loss"] for x in r.losses]
    assert r.steps == 16 and len(losses) == 16
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.5
    assert r.tokens > 0 and r.tokens_per_second > 0
    assert (tmp_path / "losses.jsonl").read_text().count("\n") == 16
    model, _ = training.load_student(r.model_dir)
    assert model.config.model_type == "gpt2"


def test_attention_choice_changes_speed_not_the_training(tmp_path):
    """``attention="eager"`` (the demo's, faster on the CPU for short sequences) trains the same model as
    the default SDPA path: the same seed gives the same losses up to float rounding (fp32)."""
    insts = _instances(8)
    runs = {att: training.fine_tune("tiny-llama", insts, output_dir=tmp_path / str(att), seed=3,
                                    config=_cfg(max_steps=3, attention=att, precision="fp32"))
            for att in (None, "eager")}
    ref, eager = ([x["loss"] for x in runs[k].losses] for k in (None, "eager"))
    assert len(ref) == len(eager) == 3 and eager == pytest.approx(ref, rel=1e-4)
    with pytest.raises(ValueError):
        training.fine_tune("tiny-llama", insts, output_dir=tmp_path / "bad", config=_cfg(max_steps=1, attention="nope"))


@pytest.mark.parametrize("method", ["full", "lora"])
def test_resume_reproduces_the_uninterrupted_run(tmp_path, method):
    insts, cfg = _instances(), _cfg(max_steps=8, save_steps=4)
    ref = training.fine_tune("tiny-gpt2", insts, output_dir=tmp_path / "ref", method=method, config=cfg, seed=1)
    with pytest.raises(_Crash):
        training.fine_tune("tiny-gpt2", insts, output_dir=tmp_path / "cut", method=method, config=cfg, seed=1,
                           callbacks=[CrashAt(6)])
    res = training.fine_tune("tiny-gpt2", insts, output_dir=tmp_path / "cut", method=method, config=cfg, seed=1)
    assert res.resumed_from_step == 4
    assert [x["step"] for x in res.losses] == list(range(1, 9))   # the crashed step 5 was redone, once
    for a, b in zip(ref.losses, res.losses):
        assert a["step"] == b["step"] and abs(a["loss"] - b["loss"]) < 1e-5, (a, b)
    # and the resumed run did not silently restart: its last losses are the trained ones
    assert res.losses[-1]["loss"] < res.losses[0]["loss"]
    if method == "lora":
        assert (res.model_dir / "adapter_config.json").exists()
    m1, _ = training.load_student(ref.model_dir)
    m2, _ = training.load_student(res.model_dir)
    p1, p2 = dict(m1.named_parameters()), dict(m2.named_parameters())
    assert max((p1[k] - p2[k]).abs().max().item() for k in p1) < 1e-5


class PoisonAt(CrashAt):
    """A callback that turns one weight NaN when step ``n`` begins, as a diverging run does."""

    def on_step_begin(self, args, state, control, model=None, **kw):
        if state.global_step + 1 == self.n:
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))


def test_a_non_finite_loss_stops_training_with_its_step_named(tmp_path):
    """Trainer would train on NaN weights and save them as the student; the kit stops at the first NaN loss."""
    with pytest.raises(training.TrainingDiverged, match="the loss at step 3 is nan"):
        training.fine_tune("tiny-gpt2", _instances(), output_dir=tmp_path, config=_cfg(max_steps=8), resume=False,
                           callbacks=[PoisonAt(3)])
    steps = [json.loads(line) for line in (tmp_path / "losses.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2, 3] and all(math.isfinite(s["loss"]) for s in steps[:2])
    assert not (tmp_path / "final").exists()


def test_lora_student_loads_back_with_its_adapter(tmp_path):
    r = training.fine_tune("tiny-llama", _instances(), output_dir=tmp_path, method="lora",
                           config=_cfg(max_steps=6), resume=False)
    student, tok = training.load_student(r.model_dir)
    base, _ = load_model("tiny-llama", dtype=torch.float32)
    ids = tok("Q: What is 3 plus 3?\nA: ", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert not torch.allclose(student(input_ids=ids).logits, base(input_ids=ids).logits)
    merged, _ = training.load_student(r.model_dir, merge=True)
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, student(input_ids=ids).logits, atol=1e-4)


def test_qlora_runs_on_cpu(tmp_path):
    pytest.importorskip("bitsandbytes")
    r = training.fine_tune("tiny-llama", _instances(), output_dir=tmp_path, method="qlora",
                           config=_cfg(max_steps=3), resume=False)
    assert r.steps == 3 and all(math.isfinite(x["loss"]) for x in r.losses)
    assert json.loads((r.model_dir / training.STUDENT_FILE).read_text())["quantization"] == "4bit"
    student, tok = training.load_student(r.model_dir)
    assert any("Linear4bit" in type(m).__name__ for m in student.modules())


def test_eval_fn_picks_the_best_checkpoint_and_warns_on_the_reported_split(tmp_path):
    scores = iter([0.2, 0.9, 0.4])
    calls = []

    def eval_fn(model, tokenizer):
        calls.append(model.training)
        return {"accuracy": next(scores)}

    with pytest.warns(UserWarning, match="reported on"):
        r = training.fine_tune("tiny-gpt2", _instances(), output_dir=tmp_path, config=_cfg(max_steps=6, eval_steps=2),
                               eval_fn=eval_fn, eval_split="validation", reported_split="validation", resume=False)
    assert calls == [False, False, False]         # evaluated in eval mode, three times
    assert r.best_metric == pytest.approx(0.9) and r.best_checkpoint.endswith("checkpoint-4")
    with pytest.raises(ValueError, match="eval_split"):
        training.fine_tune("tiny-gpt2", _instances(), output_dir=tmp_path / "x", eval_fn=eval_fn)


def test_finished_run_is_returned_and_other_settings_are_refused(tmp_path):
    insts = _instances()
    r1 = training.fine_tune("tiny-gpt2", insts, output_dir=tmp_path, config=_cfg(max_steps=2))
    r2 = training.fine_tune("tiny-gpt2", insts, output_dir=tmp_path, config=_cfg(max_steps=2))
    assert r2.losses == r1.losses
    with pytest.raises(ValueError, match="other settings.*config"):
        training.fine_tune("tiny-gpt2", insts, output_dir=tmp_path, config=_cfg(max_steps=3))


def test_bad_instances_are_named():
    with pytest.raises(DataError, match="no training instances"):
        training.fine_tune("tiny-gpt2", [], output_dir="unused")
    with pytest.raises(DataError, match="instance 1: missing field 'targets'"):
        training.fine_tune("tiny-gpt2", [_instances(1)[0], {"id": "b", "input": "Q: x\nA: "}], output_dir="unused")
    with pytest.raises(ValueError, match="method"):
        training.fine_tune("tiny-gpt2", _instances(1), output_dir="unused", method="prefix")


def test_precision_follows_the_hardware(monkeypatch):
    """The paper recipe's precision is the hardware rule's (tests/test_hardware.py: each stand-in machine)."""
    from .machines import stand_in

    cfg = p = training.TrainConfig.paper()
    stand_in(monkeypatch, "avx2_cpu")
    assert cfg.resolved_precision() == "fp32"
    stand_in(monkeypatch, "t4")              # torch.cuda.is_bf16_supported() answers True there
    assert cfg.resolved_precision() == "fp16"
    stand_in(monkeypatch, "a100")
    assert cfg.resolved_precision() == "bf16"
    assert (p.learning_rate, p.adam_epsilon, p.weight_decay, p.per_device_train_batch_size, p.warmup_steps,
            p.max_steps, p.max_grad_norm, p.max_length) == (2e-5, 1e-5, 0.0, 32, 500, 20_000, 0.5, 700)


def test_a_lora_student_is_evaluated_with_its_adapter_merged(tmp_path):
    """Decoding a LoRA student unmerged costs two extra matmuls per adapted layer and step; the evaluation's
    loader (``training.load_any``) folds the adapter in (same logits), unless the base is quantised."""
    from scotd_kit.training import load_any

    r = training.fine_tune("tiny-llama", _instances(8), output_dir=tmp_path, method="lora",
                           config=training.TrainConfig.small(max_steps=2, per_device_train_batch_size=4))
    merged, tok = load_any(r.model_dir)
    adapter, _ = training.load_student(r.model_dir)
    assert not hasattr(merged, "peft_config") and hasattr(adapter, "peft_config")
    x = tok(["Q: What is 3 plus 3?\nA: "], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(merged(**x).logits, adapter(**x).logits, atol=1e-4)
