"""Fine-tuning a student on training instances (full, LoRA, QLoRA) on top of transformers' Trainer.

A training instance is ``{"id", "input": "Q: {x}\\nA: ", "targets": [...]}`` (see
:mod:`scotd_kit.curation`).  What this module adds to a plain Trainer:

* **Loss on the target only, EOS kept.**  The sequence is ``input + target + EOS``; labels are
  masked by *position* (prompt and padding), never by pad id, so a tokenizer whose pad token is
  its EOS (GPT-2, OPT, SmolLM2 here) still learns to stop.
* **SCoTD's balanced sampling, reproducible.**  Each epoch draws one target per instance with an
  RNG keyed by ``(seed, epoch)``; the whole run's batch order is a pure function of the seed, so a
  resumed run sees exactly the batches an uninterrupted one would.
* **Little padding, few logits.**  Batches are grouped by length (shuffled megabatches sorted by
  length, batch order shuffled), padded on the left so every target ends the row, and the LM head
  is applied only to the last ``max target length + 1`` positions (``logits_to_keep``) -- the
  prompt's logits are never computed.  Models whose ``forward`` lacks ``position_ids`` /
  ``logits_to_keep`` fall back to right padding and full logits.
* **Precision from the hardware**: bf16 autocast where the GPU has it, fp16 on older GPUs (a T4),
  fp32 on the CPU; weights stay fp32 for full fine-tuning (Adam at lr 2e-5 needs them).
* **Resume** (full, LoRA, QLoRA): checkpoints hold weights or adapter, optimizer, scheduler, RNG and
  the trainer state; ``fine_tune(..., resume=True)`` continues from the last one, and refuses a
  directory whose run had other settings or data (instead of silently mixing two runs).
* **Best checkpoint** by ``eval_fn`` every ``eval_steps`` on a split the caller names, with a
  warning when that is the split the numbers are reported on (SCoTD selected on its reported
  validation split; that makes the number optimistic).

Scale-out (``accelerate launch``, DDP / FSDP / DeepSpeed)
--------------------------------------------------------
Nothing here assumes one process.  Run the same script under ``accelerate launch --config_file
...`` (or ``torchrun``); Trainer reads the distributed environment, and ``TrainConfig`` (a
``TrainingArguments``) takes ``fsdp=`` / ``fsdp_config=`` / ``deepspeed=`` directly.  The batch order is
computed identically in every process; accelerate hands each process every ``world_size``-th batch,
so ``per_device_train_batch_size * gradient_accumulation_steps * world_size`` is the global batch
(the paper profile's 32 assumes one device: lower ``per_device_train_batch_size`` when you add some).
The loss is averaged over target tokens across processes; per-step losses and token counts are
all-reduced before being recorded; only the main process writes files.  ``eval_fn`` runs in every
process (shard its examples with ``accelerate.PartialState`` if generation is the bottleneck);
the best-checkpoint bookkeeping is Trainer's own, hence consistent across ranks.
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import os
import random
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from transformers import TrainingArguments   # TrainConfig extends it, as TRL's configs do

from .io import DataError, atomic_write_text, write_json
from .runs import writer_lock

METHODS = ("full", "lora", "qlora")
STUDENT_FILE = "scotd_student.json"   # beside a saved model: how to load it back (base, method)


# ---------------------------------------------------------------- configuration

# TrainConfig fields that do not shape the trained model (a resumed run may change them)
_NOT_SHAPING = ("output_dir", "logging_dir", "logging_steps", "save_total_limit", "dataloader_num_workers",
                "disable_tqdm", "report_to", "run_name", "log_level", "log_level_replica", "push_to_hub",
                "hub_token", "hub_model_id", "resume_from_checkpoint", "save_steps", "local_rank")


@dataclass
class TrainConfig(TrainingArguments):
    """Training settings: ``TrainingArguments`` itself (one set of names from a profile to Trainer),
    with the kit's defaults and a few fields of its own.

    ``max_steps > 0`` wins over ``num_train_epochs``.  Every ``TrainingArguments`` field is accepted
    (``fsdp``, ``deepspeed``, ``optim``, ``torch_compile``, ...).  ``output_dir``, ``max_steps``,
    ``seed`` and the precision flags are filled in by :func:`fine_tune` (see
    :meth:`training_arguments`); ``fp16`` / ``bf16`` follow ``precision``.
    """

    output_dir: str | None = None
    learning_rate: float = 1e-4
    adam_epsilon: float = 1e-8
    weight_decay: float = 0.0
    per_device_train_batch_size: int = 8
    num_train_epochs: float = 1.0
    warmup_steps: float = 0
    lr_scheduler_type: str = "linear"
    max_grad_norm: float = 0.5
    logging_steps: float = 10
    save_steps: float = 50
    save_total_limit: int | None = 2
    report_to: Any = "none"
    # transformers' own default from torch 2.8: one fused kernel per step, not a chain of foreach ops
    optim: str = "adamw_torch_fused"
    remove_unused_columns: bool = False   # position_ids / logits_to_keep must reach the model
    # the kit's own fields
    max_length: int = 512                 # tokens of input + target + EOS ("middle"), of the input ("query")
    # how an over-long example is cut: "middle" (kit default) drops tokens from the middle of the prompt, keeping its
    # start and the final ``A: `` cue, so input + target + EOS fit max_length; "query" is SCoTD's
    # (automodel.py: the query alone is truncated on the right to max_length, the target never is)
    truncation: str = "middle"
    # a wish or a request the hardware rule resolves (resolved_precision): auto (= fast) | fp32 | fp16 | bf16,
    # a trailing "!" insists (an emulated type is then an error)
    precision: str = "auto"
    group_by_length: bool = True
    megabatch_factor: int = 50            # length grouping sorts within batch_size * this
    pad_to_multiple_of: int | None = None  # 8 suits tensor cores; None on the CPU
    metric: str = "accuracy"              # the key of eval_fn's result that selects the best checkpoint
    # steps evaluated (and saved) besides every eval_steps: SCoTD's schedule is step 1,000 and every 2,000
    eval_at: tuple = ()
    lora: dict | None = None              # peft LoraConfig fields; None = the kit's default (r=16, all-linear)
    # the attention implementation while training ("eager", "sdpa", ...); None: the model's own. On the CPU
    # PyTorch's fused SDPA backward is slower than plain eager attention for short sequences (demo students)
    attention: str | None = None

    @classmethod
    def paper(cls, **overrides) -> "TrainConfig":
        """SCoTD's recipe [C]: Adam lr 2e-5, eps 1e-5, no weight decay, batch 32, 500 warmup steps,
        linear decay to 0 at 20,000 steps, grad clip 0.5, fp16 (here: the hardware rule's precision),
        700-token truncation, batches drawn at random (no length grouping), greedy evaluation at step
        1,000 and every 2,000 steps keeping the best checkpoint (when :func:`fine_tune` gets an ``eval_fn``)."""
        base = dict(learning_rate=2e-5, adam_epsilon=1e-5, weight_decay=0.0, per_device_train_batch_size=32,
                    warmup_steps=500, max_steps=20_000, lr_scheduler_type="linear", max_grad_norm=0.5,
                    max_length=700, eval_steps=2000, save_steps=2000, eval_at=(1000,), logging_steps=50,
                    save_total_limit=2, group_by_length=False, truncation="query")
        return cls(**{**base, **overrides})

    @classmethod
    def small(cls, **overrides) -> "TrainConfig":
        """CPU-friendly defaults for the demo/smoke profiles: short runs, small batches."""
        base = dict(learning_rate=1e-4, adam_epsilon=1e-8, per_device_train_batch_size=8, warmup_steps=10,
                    max_steps=100, max_grad_norm=0.5, max_length=512, logging_steps=10, save_steps=50)
        return cls(**{**base, **overrides})

    @classmethod
    def recipe(cls, name: str, **overrides) -> "TrainConfig":
        """``"paper"`` or ``"small"`` (what a profile names), with overrides."""
        if name not in ("paper", "small"):
            raise ValueError(f"unknown training recipe {name!r}: 'paper' or 'small'")
        return getattr(cls, name)(**overrides)

    def shaping_settings(self) -> dict:
        """JSON-safe settings that shape the trained model (run keys and resume checks use them): the
        precision as the hardware resolved it, with the device it trains on."""
        from .hardware import machine

        d = json.loads(json.dumps(self.to_dict(), default=str))
        d["precision"] = self.resolved_precision()
        d["device"] = "cpu" if self.cpu_only() else machine().device
        return {k: v for k, v in sorted(d.items()) if k not in _NOT_SHAPING}

    def resolved_precision(self) -> str:
        """What :mod:`scotd_kit.hardware`'s rule makes of ``precision``: the fastest native type for
        ``auto`` / ``fast`` (bf16 on sm80+ GPUs and bf16-native CPUs, fp16 with loss scaling on older GPUs
        such as a T4, fp32 elsewhere); an explicit type the hardware would emulate warns and takes that
        fast path (``"bf16!"`` insists, and errors there). Under ``use_cpu`` the CPU is asked."""
        from .hardware import choose

        return choose(self.precision, role="training", device="cpu" if self.use_cpu else None).precision
    def cpu_only(self) -> bool:
        """True on a machine without a GPU (or when asked): processes started by ``accelerate launch`` /
        ``torchrun`` then form a gloo (MULTI_CPU) group -- without ``cpu=True`` accelerate would give each
        of them a world of its own, and every process would train alone on all the data."""
        import torch

        mps = getattr(torch.backends, "mps", None)
        return bool(self.use_cpu) or not (torch.cuda.is_available() or (mps is not None and mps.is_available()))

    def training_arguments(self, output_dir: str | Path, *, max_steps: int, seed: int, evaluate: bool):
        """This config with what :func:`fine_tune` decides: where, how long, the seed, precision, evaluation."""
        precision = self.resolved_precision()
        kw: dict[str, Any] = dict(output_dir=str(output_dir), max_steps=max_steps, seed=seed, data_seed=seed,
                                  fp16=precision == "fp16", bf16=precision == "bf16", save_strategy="steps",
                                  use_cpu=self.cpu_only())
        if evaluate:
            steps = self.eval_steps or self.save_steps
            kw.update(eval_strategy="steps", eval_steps=steps, save_steps=steps, load_best_model_at_end=True,
                      metric_for_best_model=self.metric, greater_is_better=True)
        return dataclasses.replace(self, **kw)


# ---------------------------------------------------------------- results

class TrainingDiverged(RuntimeError):
    """A training step's loss was NaN or infinite."""


@dataclass
class FineTuneResult:
    model_dir: Path                 # load with load_student(model_dir)
    method: str
    steps: int
    losses: list[dict]              # one per optimizer step: step, loss, tokens, seconds, learning_rate
    tokens: int                     # real (non-padding) tokens trained on
    train_seconds: float            # time in optimizer steps (evaluation and saving excluded)
    tokens_per_second: float
    best_metric: float | None = None
    best_checkpoint: str | None = None
    eval_history: list[dict] = field(default_factory=list)
    resumed_from_step: int | None = None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["model_dir"] = str(self.model_dir)
        return d


# ---------------------------------------------------------------- data

def _check_instances(instances: Sequence[dict]) -> None:
    if not instances:
        raise DataError("fine_tune got no training instances (did a filter empty the corpus?)")
    for i, inst in enumerate(instances):
        for key in ("id", "input", "targets"):
            if not isinstance(inst, dict) or key not in inst:
                raise DataError(f"training instance {i}: missing field {key!r}")
        if not inst["targets"] or not all(isinstance(t, str) and t for t in inst["targets"]):
            raise DataError(f"training instance {i} (id={inst['id']!r}): targets must be non-empty strings")


TRUNCATIONS = ("middle", "query")


class Tokenized:
    """Token ids of every distinct input and target, tokenized once (arrays, not Python lists).

    Input and target are tokenized separately and concatenated: the student is prompted with the
    tokens of ``Q: ...\\nA: `` alone at inference, so training must see the same split.
    """

    def __init__(self, instances: Sequence[dict], tokenizer, max_length: int, truncation: str = "middle"):
        import numpy as np

        if truncation not in TRUNCATIONS:
            raise ValueError(f"truncation={truncation!r}: one of {', '.join(TRUNCATIONS)}")
        self.truncation = truncation

        self.eos = tokenizer.eos_token_id
        if self.eos is None:
            raise ValueError("the tokenizer has no EOS token; the student could not learn to stop")
        self.max_length = max_length
        inputs = sorted({inst["input"] for inst in instances})
        targets = sorted({t for inst in instances for t in inst["targets"]})
        enc_in = tokenizer(inputs, add_special_tokens=True)["input_ids"]
        enc_tg = tokenizer(targets, add_special_tokens=False)["input_ids"]
        in_ids = {s: np.asarray(ids, dtype=np.int32) for s, ids in zip(inputs, enc_in)}
        tg_ids = {s: np.asarray(ids, dtype=np.int32) for s, ids in zip(targets, enc_tg)}
        self.inputs = [in_ids[inst["input"]] for inst in instances]
        self.targets = [[tg_ids[t] for t in inst["targets"]] for inst in instances]

    def sequence(self, i: int, j: int):
        """(ids, n_prompt): ``input + target + EOS``, cut as ``truncation`` says.

        ``"middle"``: over-long sequences lose tokens from the middle of the prompt (its start and the
        final ``A: `` cue stay), then from the end of the target, to fit ``max_length``.  ``"query"``
        (SCoTD): the prompt keeps its first ``max_length`` tokens and the target is whole.
        """
        import numpy as np

        prompt, target = self.inputs[i], np.append(self.targets[i][j], self.eos).astype(np.int32)
        if self.truncation == "query":
            prompt = prompt[: self.max_length]
            return np.concatenate([prompt, target]), len(prompt)
        budget = self.max_length - len(target)
        if len(prompt) > budget:
            keep = max(budget, 1)
            tail = min(4, keep)
            prompt = np.concatenate([prompt[:keep - tail], prompt[len(prompt) - tail:]])
        ids = np.concatenate([prompt, target])[: self.max_length]
        return ids, len(prompt)

    def length(self, i: int, j: int) -> int:
        if self.truncation == "query":
            return min(self.max_length, len(self.inputs[i])) + len(self.targets[i][j]) + 1
        return min(self.max_length, len(self.inputs[i]) + len(self.targets[i][j]) + 1)


def epoch_choices(instances: Sequence[dict], seed: int, epoch: int) -> list[int]:
    """SCoTD's balanced sampling: one target index per instance for this epoch, keyed by (seed, epoch)."""
    rng = random.Random(f"{seed}/targets/{epoch}")
    return [rng.randrange(len(inst["targets"])) for inst in instances]


def schedule(tok: Tokenized, instances: Sequence[dict], *, batch_size: int, epochs: int, seed: int,
             group_by_length: bool = True, megabatch_factor: int = 50) -> tuple[list[tuple[int, int]], list[list[int]]]:
    """The run's data order: ``items`` (instance, target) and ``batches`` of item positions.

    Per epoch: targets drawn by :func:`epoch_choices`, instances shuffled, then (with length
    grouping) megabatches of ``batch_size * megabatch_factor`` sorted by length, cut into batches,
    and the batches shuffled.  The longest batch goes first so an out-of-memory shows at once.
    """
    items: list[tuple[int, int]] = []
    batches: list[list[int]] = []
    n = len(instances)
    for epoch in range(epochs):
        rng = random.Random(f"{seed}/order/{epoch}")
        choice = epoch_choices(instances, seed, epoch)
        base = len(items)
        items.extend((i, choice[i]) for i in range(n))
        order = list(range(n))
        rng.shuffle(order)
        if group_by_length:
            mega = batch_size * megabatch_factor
            order = [i for k in range(0, n, mega)
                     for i in sorted(order[k:k + mega], key=lambda i: -tok.length(i, choice[i]))]
        epoch_batches = [[base + i for i in order[k:k + batch_size]] for k in range(0, n, batch_size)]
        if group_by_length:
            rng.shuffle(epoch_batches)
        batches.extend(epoch_batches)
    if group_by_length and batches:
        longest = max(range(len(batches)), key=lambda b: max(tok.length(*items[p]) for p in batches[b]))
        batches[0], batches[longest] = batches[longest], batches[0]
    return items, batches


class _Dataset:
    """Item ``p`` of the schedule as ``{"input_ids", "n_prompt"}``; a torch map-style dataset."""

    def __init__(self, tok: Tokenized, items: list[tuple[int, int]]):
        self.tok, self.items = tok, items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, p: int) -> dict:
        ids, n_prompt = self.tok.sequence(*self.items[p])
        return {"input_ids": ids, "n_prompt": n_prompt}


class _BatchSampler:
    """Yields the precomputed batches; accelerate shards it across processes (``BatchSamplerShard``)."""

    def __init__(self, batches: list[list[int]], batch_size: int):
        self.batches, self.batch_size, self.drop_last = batches, batch_size, False

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


@dataclass
class Collator:
    """Pads a batch; labels are the target and EOS tokens, chosen by position, -100 elsewhere.

    ``left=True``: rows are right-aligned so every target ends the row; ``position_ids`` restart
    after the padding and ``logits_to_keep`` asks the model for the last ``max target + 1``
    positions only.  ``left=False``: right padding and full logits (models without those inputs).
    """

    pad_id: int
    left: bool = True
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict]) -> dict:
        import torch

        lengths = [len(f["input_ids"]) for f in features]
        width = max(lengths)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        ids = torch.full((len(features), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        labels = torch.full((len(features), width), -100, dtype=torch.long)
        for r, (f, n) in enumerate(zip(features, lengths)):
            start = width - n if self.left else 0
            seq = torch.as_tensor(f["input_ids"], dtype=torch.long)
            ids[r, start:start + n] = seq
            mask[r, start:start + n] = 1
            labels[r, start + f["n_prompt"]:start + n] = seq[f["n_prompt"]:]
        batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
        if self.left:
            batch["position_ids"] = (mask.cumsum(1) - 1).clamp(min=0)
            target_max = max(n - f["n_prompt"] for f, n in zip(features, lengths))
            batch["logits_to_keep"] = min(width, target_max + 1)
        return batch


def target_loss(outputs, labels, num_items_in_batch=None):
    """Token-level cross-entropy of the kept logits against the labels they predict.

    With ``logits_to_keep = K`` the logits cover the last K positions; position t predicts token
    t + 1, so ``logits[:, :-1]`` is scored against ``labels[:, -(K - 1):]`` (full logits are the
    case K = sequence length).  Summed and divided by the target tokens of the whole accumulated
    batch (Trainer's ``num_items_in_batch``), so gradient accumulation matches one large batch.
    """
    import torch.nn.functional as F

    logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
    k = logits.shape[1]
    pred = logits[:, :-1].float()
    gold = labels[:, labels.shape[1] - (k - 1):].to(pred.device)
    total = F.cross_entropy(pred.reshape(-1, pred.shape[-1]), gold.reshape(-1), ignore_index=-100, reduction="sum")
    if num_items_in_batch is None:
        return total / gold.ne(-100).sum().clamp(min=1)
    return total / num_items_in_batch


class TargetHead:
    """The LM head applied to the target positions only, and the loss over exactly those.

    ``logits_to_keep`` trims the head to the last ``max target + 1`` positions of a batch, but rows
    with shorter targets still pay for prompt positions there. While :attr:`select` is set (by the
    trainer, for one training forward pass), a forward pre-hook on the output embedding hands the
    head only the hidden states of positions that predict a target token, ``(1, N, hidden)``; the
    model returns those ``N`` logits and :meth:`loss` scores them against the same tokens, gathered
    in the same order. The head's weight and the module tree are untouched (saving, tying, DDP and
    PEFT see the same model); with ``select`` unset the head runs as usual (evaluation, generation).
    """

    def __init__(self):
        self.select = None   # bool (B, K): kept positions that predict a target token

    def attach(self, model) -> "TargetHead":
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        if head is not None:
            head.register_forward_pre_hook(self._gather)
        self.attached = head is not None
        return self

    def _gather(self, module, args):
        if self.select is None:
            return None
        hidden = args[0]
        return (hidden[self.select.to(hidden.device)][None],) + tuple(args[1:])

    @staticmethod
    def positions(labels, keep: int):
        """(bool (B, K) of kept positions predicting a target token, the tokens they predict)."""
        import torch

        nxt = labels[:, labels.shape[1] - keep + 1:]                         # what positions T-K .. T-2 predict
        nxt = torch.cat([nxt, nxt.new_full((nxt.shape[0], 1), -100)], dim=1)  # position T-1 predicts nothing
        select = nxt.ne(-100)
        return select, nxt[select]

    def loss(self, outputs, labels, num_items_in_batch=None):
        import torch.nn.functional as F

        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        if self.select is None or logits.shape[1] != int(self.select.sum()) or logits.shape[0] != 1:
            return target_loss(outputs, labels, num_items_in_batch)
        _, gold = self.positions(labels, self.select.shape[1])
        total = F.cross_entropy(logits[0].float(), gold.to(logits.device), reduction="sum")
        return total / (num_items_in_batch if num_items_in_batch is not None else max(1, gold.numel()))


def _attention_kernels(model):
    """SDPA without cuDNN's kernel while a model on a GPU trains.

    Left padding leaves a pad position with nothing to attend to; cuDNN's attention backward turns such a row into
    NaN gradients (seen on an H200, torch 2.11: the 4th batch of a LoRA, QLoRA or full bf16 run, the first with a
    single pad in a row, made every weight NaN), where the memory-efficient and math kernels give zeros."""
    import contextlib

    import torch

    device = next(model.parameters()).device
    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def _accepts(model, *names: str) -> bool:
    model = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(model.forward).parameters
    return all(n in params for n in names)


# ---------------------------------------------------------------- trainer

def _trainer_class():
    import torch
    from torch.utils.data import DataLoader
    from transformers import Trainer, TrainerCallback

    class StepRecorder(TrainerCallback):
        """Per optimizer step: exact (unrounded) loss, real tokens, time; appended to losses.jsonl."""

        def __init__(self, trainer, path: Path | None):
            self.trainer, self.path, self.records, self._t0 = trainer, path, [], None

        def on_step_begin(self, args, state, control, **kw):
            self._t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            tr = self.trainer
            seconds = time.perf_counter() - (self._t0 or time.perf_counter())
            stats = torch.stack([tr._step_loss.detach().float().cpu(), tr._step_tokens.float().cpu()])
            if tr.accelerator.num_processes > 1:
                # each process holds its share of the step's mean loss times the process count
                # (token average across devices) or its own mean: either way the sum / count is the mean
                stats = tr.accelerator.reduce(stats.to(tr.args.device), reduction="sum").cpu()
                stats[0] = stats[0] / tr.accelerator.num_processes
            tr._step_loss = torch.zeros(())
            tr._step_tokens = torch.zeros((), dtype=torch.long)
            rec = {"step": state.global_step, "loss": float(stats[0]), "tokens": int(stats[1]),
                   "seconds": seconds, "learning_rate": tr.lr_scheduler.get_last_lr()[0]}
            self.records.append(rec)
            if self.path is not None and state.is_world_process_zero:
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(rec) + "\n")
            if not math.isfinite(rec["loss"]):
                # Trainer would go on (it logs a NaN loss as 0) and save a student whose weights are NaN
                where = self.path.parent if self.path is not None else "training"
                raise TrainingDiverged(
                    f"{where}: the loss at step {state.global_step} is {rec['loss']}; the weights are no longer usable, "
                    f"so training stopped (earlier steps are in losses.jsonl). Try fp32 (SCOTD_PRECISION=fp32) or a "
                    f"lower learning rate; a checkpoint saved after the fault holds the same weights")

    class KitTrainer(Trainer):
        def __init__(self, *args, batch_sampler=None, eval_fn=None, eval_tokenizer=None, target_head=None, **kwargs):
            super().__init__(*args, **kwargs)
            self._batch_sampler, self._eval_fn, self._eval_tokenizer = batch_sampler, eval_fn, eval_tokenizer
            self._target_head = target_head
            self._step_loss = torch.zeros(())
            self._step_tokens = torch.zeros((), dtype=torch.long)
            self.eval_history: list[dict] = []
            self.eval_seconds = 0.0

        def get_train_dataloader(self):
            loader = DataLoader(self.train_dataset, batch_sampler=self._batch_sampler, collate_fn=self.data_collator,
                                num_workers=self.args.dataloader_num_workers,
                                pin_memory=self.args.dataloader_pin_memory and torch.cuda.is_available())
            return self.accelerator.prepare(loader)

        def training_step(self, model, inputs, num_items_in_batch=None):
            tokens = inputs["attention_mask"].sum().detach().cpu()
            head = self._target_head
            if head is not None and head.attached:
                keep = inputs.get("logits_to_keep") or inputs["labels"].shape[1]
                head.select = head.positions(inputs["labels"], int(keep))[0]
            try:
                loss = super().training_step(model, inputs, num_items_in_batch)
            finally:
                if head is not None:
                    head.select = None
            self._step_loss = self._step_loss + loss.detach().float().cpu()
            self._step_tokens = self._step_tokens + tokens
            return loss

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            t0 = time.perf_counter()
            model = self.accelerator.unwrap_model(self.model)
            was_training = model.training
            model.eval()
            with torch.no_grad():
                value = self._eval_fn(model, self._eval_tokenizer)
            model.train(was_training)
            values = value if isinstance(value, dict) else {self.args.metric_for_best_model: value}
            metrics = {f"{metric_key_prefix}_{k}": float(v) for k, v in values.items()
                       if isinstance(v, (int, float))}
            metrics["epoch"] = self.state.epoch
            self.eval_history.append({"step": self.state.global_step, **metrics})
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            self.eval_seconds += time.perf_counter() - t0
            return metrics

    return KitTrainer, StepRecorder


# ---------------------------------------------------------------- entry points

def _fingerprint(model_name: str, method: str, config: TrainConfig, seed: int, instances: Sequence[dict]) -> dict:
    h = hashlib.sha256()
    for inst in instances:
        h.update(json.dumps([inst["id"], inst["input"], inst["targets"]], ensure_ascii=False).encode())
    cfg = config.shaping_settings()
    return {"model": str(model_name), "method": method, "seed": seed, "config": cfg,
            "instances": len(instances), "data_sha256": h.hexdigest()}


class EvaluateAt:
    """TrainerCallback: evaluate and save at these steps too (SCoTD evaluates at step 1,000 before its
    every-2,000 schedule); the saved checkpoint can then be the best one."""

    def __init__(self, steps):
        self.steps = set(int(s) for s in steps)

    def __getattr__(self, name):   # every other TrainerCallback hook is a no-op
        if name.startswith("on_"):
            return lambda *a, **k: None
        raise AttributeError(name)

    def on_step_end(self, args, state, control, **kw):
        if state.global_step in self.steps:
            control.should_evaluate = control.should_save = True
        return control


def one_gpu_per_process(args):
    """``args`` training on one GPU when one process sees several without a launcher (Kaggle's 2xT4, a
    notebook on a multi-GPU node). Trainer would wrap the model in ``nn.DataParallel``, which splits
    each batch across replicas: the kit's target-only head selects positions of the whole batch and
    fails on a replica's rows, and the kit's batch sampler already fixes one batch per step.
    ``accelerate launch --num_processes N`` (one process per GPU, DDP) uses them all."""
    if args.n_gpu > 1:
        import warnings

        warnings.warn(f"{args.n_gpu} GPUs are visible to one process: training on one (cuda:0); run under "
                      f"`accelerate launch --num_processes {args.n_gpu}` to train on all of them",
                      RuntimeWarning, stacklevel=2)
        args._n_gpu = 1     # what TrainingArguments sets per process under a launcher
    return args


def _load_for_training(model_name, method: str, config: TrainConfig, seed: int):
    import torch
    from transformers import set_seed

    from .models import load_model, preferred_dtype

    set_seed(seed)   # LoRA's initialisation draws from the global RNG
    if method == "full":
        # fp32 master weights; mixed precision comes from autocast (TrainingArguments fp16/bf16)
        return load_model(model_name, dtype=torch.float32, gradient_checkpointing=config.gradient_checkpointing)
    lora = config.lora or True
    if method == "lora":
        # the frozen base may sit in half precision on a GPU; peft keeps the adapters in fp32
        return load_model(model_name, lora=lora, dtype=preferred_dtype(),
                          gradient_checkpointing=config.gradient_checkpointing)
    return load_model(model_name, quantization="4bit", lora=lora, dtype=preferred_dtype(),
                      gradient_checkpointing=config.gradient_checkpointing)


def sparse_tied_embedding_grad(model) -> bool:
    """Make the input embedding's gradient sparse when that embedding is the LM head (OPT, GPT-2,
    SmolLM2 tie them); True if it did.

    The lookup's gradient touches only the batch's tokens, but left dense autograd zero-fills a
    (vocabulary x hidden) matrix, scatters into it and adds it to the head's dense gradient every
    step (SmolLM2-135M on the CPU: ~0.2 s of a 7 s step). Sparse, the batch's rows are added to the
    head's gradient directly: the same sums, and the parameter's gradient stays dense, so the
    optimizer and clipping see what they saw. Not for an untied embedding (its gradient would be
    sparse, which AdamW refuses) nor under several processes (DDP reduces a sparse module's
    gradient as sparse)."""
    import torch

    emb, head = model.get_input_embeddings(), model.get_output_embeddings()
    if isinstance(emb, torch.nn.Embedding) and head is not None and emb.weight is head.weight \
            and emb.weight.requires_grad:
        emb.sparse = True
        return True
    return False


def _plain_write_error(error: RuntimeError, ckpt_dir: Path) -> Exception:
    """torch reports a full disk while saving as ``PytorchStreamWriter failed writing file ...``;
    say what happened and what to do (resume skips the checkpoint it cut short)."""
    text = str(error)
    if "PytorchStreamWriter" in text or "file write failed" in text or "No space left" in text:
        import errno

        return OSError(errno.ENOSPC, f"writing a checkpoint under {ckpt_dir} failed (is the disk full?); free "
                                     f"space and rerun: training resumes from the last complete checkpoint "
                                     f"[{text.splitlines()[0][:200]}]")
    return error


def _total_steps(config: TrainConfig, n_batches_per_epoch: int, world: int) -> int:
    if config.max_steps and config.max_steps > 0:
        return config.max_steps
    per_epoch = math.ceil(math.ceil(n_batches_per_epoch / world) / config.gradient_accumulation_steps)
    return max(1, math.ceil(config.num_train_epochs * per_epoch))


def _read_losses(path: Path, up_to: int | None) -> list[dict]:
    if not path.exists():
        return []
    recs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in recs if up_to is None or r["step"] <= up_to]


def _is_complete(checkpoint: Path) -> bool:
    """Trainer writes ``trainer_state.json`` last: a checkpoint without a readable one was cut
    short (a kill or a full disk during the save) and cannot be resumed from."""
    try:
        json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def _complete_checkpoint(ckpt_dir: Path, remove_incomplete: bool) -> str | None:
    """The newest complete ``checkpoint-N`` under ``ckpt_dir``; newer incomplete ones are named in
    a warning and removed (Trainer would otherwise save into them again, or count them)."""
    found = sorted((int(p.name.split("-")[-1]), p) for p in ckpt_dir.glob("checkpoint-*")
                   if p.is_dir() and p.name.split("-")[-1].isdigit())
    for step, path in reversed(found):
        if _is_complete(path):
            return str(path)
        warnings.warn(f"{path} is incomplete (no readable trainer_state.json: the save was cut short); "
                      f"skipped{' and removed' if remove_incomplete else ''}, resuming from an earlier one",
                      UserWarning, stacklevel=3)
        if remove_incomplete:
            shutil.rmtree(path, ignore_errors=True)
    return None


def fine_tune(model_name_or_path, instances: Sequence[dict], *, output_dir: str | Path, method: str = "full",
              config: TrainConfig | None = None, eval_fn: Callable[[Any, Any], float | dict] | None = None,
              eval_split: str | None = None, reported_split: str | None = None, resume: bool = True,
              seed: int = 0, callbacks: Sequence[Any] = ()) -> FineTuneResult:
    """Fine-tune ``model_name_or_path`` on training instances; returns where the model is and how it went.

    ``method``: ``"full"`` (all weights), ``"lora"`` (adapters on every linear layer but the head),
    ``"qlora"`` (adapters on a 4-bit NF4 base).  ``output_dir`` receives ``checkpoints/``,
    ``losses.jsonl`` (written every step), ``run.json`` (the settings, checked on resume),
    ``result.json`` and ``final/`` (the final model, or the best one with ``eval_fn``; LoRA saves
    the adapter -- load either kind with :func:`load_student`).

    ``eval_fn(model, tokenizer) -> float | dict`` is called every ``config.eval_steps``; its
    ``config.metric`` (higher is better) picks the best checkpoint.  ``eval_split`` names the split
    it scores (required with ``eval_fn``); a warning says so when it is ``reported_split``.

    ``resume=True`` continues from the last checkpoint in ``output_dir`` (or returns the finished
    result); ``resume=False`` deletes earlier checkpoints and starts over.
    """
    from accelerate import PartialState
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    _check_instances(instances)
    config = config or TrainConfig.small()
    if eval_fn is not None and not eval_split:
        raise ValueError("eval_fn needs eval_split: name the split it scores (best-checkpoint selection uses it)")
    if eval_fn is not None and reported_split is not None and eval_split == reported_split:
        warnings.warn(f"the best checkpoint is selected on {eval_split!r}, the split the results are reported on "
                      f"(SCoTD did the same); the reported number is then optimistic -- select on another split "
                      f"to avoid it", UserWarning, stacklevel=2)
    out = Path(output_dir)
    state = PartialState(cpu=config.cpu_only())   # the same process group Trainer will use
    # one writer per output dir: a second fine_tune there waits, then finds the first one's result; one process of
    # a launched run takes the lock
    with writer_lock(out, enabled=state.is_main_process and launched(state)[0] == 0):
        return _fine_tune(model_name_or_path, instances, out, state, method, config, eval_fn, resume, seed, callbacks)


def launched(state) -> tuple[int, int]:
    """(rank, world size) of this process: PartialState's, or the launcher's ``RANK`` / ``WORLD_SIZE`` where they
    say more -- on the CPU PartialState may see one process under a launcher and call every rank the main one."""
    return (max(state.process_index, int(os.environ.get("RANK", "0"))),
            max(state.num_processes, int(os.environ.get("WORLD_SIZE", "1"))))


def _fine_tune(model_name_or_path, instances, out: Path, state, method: str, config: TrainConfig, eval_fn,
               resume: bool, seed: int, callbacks) -> FineTuneResult:
    ckpt_dir, final_dir = out / "checkpoints", out / "final"
    manifest = _fingerprint(model_name_or_path, method, config, seed, instances)
    manifest_path, result_path, losses_path = out / "run.json", out / "result.json", out / "losses.jsonl"

    if manifest_path.exists():
        previous = json.loads(manifest_path.read_text(encoding="utf-8"))
        if resume and previous != manifest:
            diff = sorted(k for k in set(previous) | set(manifest) if previous.get(k) != manifest.get(k))
            raise ValueError(f"{out} holds a run with other settings ({', '.join(diff)} differ); resume it with the "
                             f"same settings, pick another output_dir, or pass resume=False to start over")
        if resume and result_path.exists() and (final_dir / STUDENT_FILE).exists():
            saved = json.loads(result_path.read_text(encoding="utf-8"))
            # the model is always this run's final/: a result.json copied or moved with the run names an old place
            saved["model_dir"] = final_dir
            return FineTuneResult(**saved)
    last = _complete_checkpoint(ckpt_dir, state.is_main_process) if resume and ckpt_dir.is_dir() else None
    if state.is_main_process:
        if not resume:
            for p in (ckpt_dir, final_dir):
                shutil.rmtree(p, ignore_errors=True)
            for p in (losses_path, result_path):
                p.unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
        write_json(manifest_path, manifest)
    resumed_step = int(Path(last).name.split("-")[-1]) if last else None
    if state.is_main_process:
        # a crash after the last checkpoint leaves later steps in the log; they will be redone
        atomic_write_text(losses_path, "".join(json.dumps(r) + "\n" for r in _read_losses(losses_path, resumed_step or 0)))
    state.wait_for_everyone()

    model, tokenizer = _load_for_training(model_name_or_path, method, config, seed)
    world = launched(state)[1]
    if method == "full" and world == 1 and not (config.deepspeed or config.fsdp):
        sparse_tied_embedding_grad(model)
    if config.attention:
        model.set_attn_implementation(config.attention)
    left = _accepts(model, "position_ids", "logits_to_keep")
    tok = Tokenized(instances, tokenizer, config.max_length, config.truncation)
    batch = config.per_device_train_batch_size
    per_epoch_batches = math.ceil(len(instances) / batch)
    total_steps = _total_steps(config, per_epoch_batches, world)
    batches_needed = total_steps * config.gradient_accumulation_steps * world
    epochs = max(1, math.ceil(batches_needed / per_epoch_batches))
    items, batches = schedule(tok, instances, batch_size=batch, epochs=epochs, seed=seed,
                              group_by_length=config.group_by_length, megabatch_factor=config.megabatch_factor)
    # exactly the run's batches (the rest of the last epoch is never trained on): with batches to spare,
    # Trainer resumed from the final checkpoint takes one more step, past max_steps
    batches = batches[:batches_needed]
    args = one_gpu_per_process(config.training_arguments(ckpt_dir, max_steps=total_steps, seed=seed,
                                                         evaluate=eval_fn is not None))

    KitTrainer, StepRecorder = _trainer_class()
    if eval_fn is not None and config.eval_at:
        callbacks = [*callbacks, EvaluateAt(config.eval_at)]
    head = TargetHead().attach(model)
    trainer = KitTrainer(model=model, args=args, train_dataset=_Dataset(tok, items),
                         eval_dataset=[0] if eval_fn is not None else None,  # evaluate() is eval_fn's
                         data_collator=Collator(tokenizer.pad_token_id, left=left,
                                                pad_to_multiple_of=config.pad_to_multiple_of),
                         compute_loss_func=head.loss, batch_sampler=_BatchSampler(batches, batch),
                         eval_fn=eval_fn, eval_tokenizer=tokenizer, callbacks=list(callbacks), target_head=head)
    recorder = StepRecorder(trainer, losses_path)
    trainer.add_callback(recorder)
    try:
        with _attention_kernels(model):
            trainer.train(resume_from_checkpoint=last)
    except RuntimeError as e:
        raise _plain_write_error(e, ckpt_dir) from e

    if state.is_main_process:
        shutil.rmtree(final_dir, ignore_errors=True)
    trainer.save_model(str(final_dir))
    if state.is_main_process:
        tokenizer.save_pretrained(str(final_dir))
        write_json(final_dir / STUDENT_FILE, {"base_model": str(model_name_or_path), "method": method,
                                              "quantization": "4bit" if method == "qlora" else None})
    losses = _read_losses(losses_path, None) if state.is_main_process else recorder.records
    tokens = sum(r["tokens"] for r in losses)
    seconds = sum(r["seconds"] for r in losses)
    result = FineTuneResult(
        model_dir=final_dir, method=method, steps=trainer.state.global_step, losses=losses, tokens=tokens,
        train_seconds=seconds, tokens_per_second=tokens / seconds if seconds else 0.0,
        best_metric=trainer.state.best_metric, best_checkpoint=trainer.state.best_model_checkpoint,
        eval_history=[h for h in trainer.state.log_history if any(k.startswith("eval_") for k in h)],
        resumed_from_step=resumed_step)
    if state.is_main_process:
        write_json(result_path, result.to_dict())
    state.wait_for_everyone()
    return result


def load_student(model_dir: str | Path, *, quantization: str | None | bool = True, merge: bool = False, dtype=None):
    """``(model, tokenizer)`` of a model saved by :func:`fine_tune` (full weights or a LoRA adapter).

    For an adapter, the base named in ``scotd_student.json`` is loaded (4-bit again for QLoRA unless
    ``quantization=None``) and the adapter put on it; ``merge=True`` folds it into the weights
    (faster generation; not possible on a quantized base).
    """
    from .models import load_model, load_tokenizer

    model_dir = Path(model_dir)
    meta_path = model_dir / STUDENT_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    if not (model_dir / "adapter_config.json").exists():
        return load_model(model_dir, dtype=dtype)
    from peft import PeftModel

    if "base_model" not in meta:
        raise DataError(f"{model_dir}: an adapter without {STUDENT_FILE}; cannot tell which base model it belongs to")
    quant = meta.get("quantization") if quantization is True else (quantization or None)
    base, _ = load_model(meta["base_model"], quantization=quant, dtype=dtype)
    model = PeftModel.from_pretrained(base, str(model_dir))
    if merge and not quant:
        model = model.merge_and_unload()
    model.eval()
    return model, load_tokenizer(model_dir)


def _student_meta(model: str | Path) -> dict | None:
    """What :func:`fine_tune` wrote beside a student's weights (``STUDENT_FILE``); None for a model name."""
    meta = Path(model) / STUDENT_FILE
    return json.loads(meta.read_text(encoding="utf-8")) if meta.is_file() else None


def load_any(model: str | Path, *, dtype: str | None = None):
    """A model name or a fine-tuned student directory (full model or LoRA adapter); ``dtype`` (a name)
    for a model loaded by name, None for the device's preferred one."""
    if _student_meta(model) is not None:
        # a LoRA adapter is folded into its base for decoding (one matmul per layer instead of three);
        # a quantised base cannot take it and keeps the adapter
        return load_student(model, merge=True, dtype=dtype)
    from .models import load_model

    return load_model(str(model), dtype=dtype)


def placement_of(model: str | Path, dtype: str | None = None):
    """Where and in which precision ``model`` (a name or a student directory) will be evaluated."""
    from .models import placement

    meta = _student_meta(model) or {}
    return placement(dtype, role="evaluation", quantization=meta.get("quantization"))
