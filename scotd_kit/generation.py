"""The kit's batched decode loop over HF causal LMs (teachers sample with it, evaluation decodes with it).

Why not ``model.generate``: SCoTD samples 30 rationales per instance behind a long few-shot block that
every instance shares. ``generate`` re-encodes that block for every prompt and every sample, holds a
copy of its KV cache per sample row, lets the batch shrink as rows finish, and one global RNG makes a
sample depend on the rest of the batch. Here:

* **shared-prefix attention** (:mod:`scotd_kit.shared_prefix`): the prefix is prefilled once and its
  keys/values kept once; every row attends to it in one matrix product, and to its own suffix apart;
* **continuous batching**: a fixed set of decode slots; a slot whose sample stops is refilled at once
  with the next waiting (prompt, sample) pair, so the batch stays full; each prompt is prefilled once
  and its keys/values copied into the slots of its samples;
* **a lean step**: EOS and length checks are tensor ops; a row's text is decoded to look for a stop
  string only when its new token can end one (a token table built once per tokenizer);
* **samples that share their tokens share a row** (on the CPU): a prompt's samples that have drawn the same
  tokens so far decode as one row until one draws another token (each draws its own from the row's logits,
  so no sample changes; the one that parts takes a copy of the keys/values so far);
* **per-row randomness without per-row calls**: sample ``j`` of prompt ``i`` draws its uniform for
  step ``t`` from a counter-based hash of (its seed, t), all rows in one vectorised call, and picks
  its token by inverse CDF; so a sample depends on its seed alone, never on its batch;
* the number of slots is chosen from free memory unless ``batch_size`` is given.

Models that do not route attention through transformers' attention interface (or have sliding
window layers) decode with the dense fallback engine (``engine="dense"``): the prefix's cache is
copied per row and finished rows leave the batch. Both engines use the same sampler and the same
stop rules, so for the same seeds they give the same samples (up to floating-point ties); the
tests hold the shared-prefix engine to the dense one and both to ``model.generate``.

Tokenisation boundary: prefix and prompt are tokenised separately and concatenated. That equals
tokenising ``prefix + prompt`` when the prefix ends at a token boundary -- SCoTD's few-shot block ends
with ``"\\n\\n"`` and prompts start with ``"Q:"``, which BPE tokenisers never merge across. Special
tokens (a BOS) go on the first segment only.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import inspect
import os
from collections import OrderedDict, deque
from dataclasses import dataclass

import torch

from . import shared_prefix as sp
from .hardware import warn_if_gpu_unused

FINISH_REASONS = ("stop", "eos", "length")
ENGINES = ("auto", "shared", "dense")
# Tokens decoded at the tail of a row to look for a stop string: a stop string spans at most as many
# tokens as it has characters, plus a few for byte-level pieces that decode to nothing on their own.
_STOP_WINDOW_EXTRA = 8
# Prompt prefill batches (see prefill_groups): at most this share of padding once a batch holds
# PREFILL_MIN_TOKENS tokens (CPU matmuls reach ~90 % of their peak from a few hundred rows).
PREFILL_WASTE, PREFILL_MIN_TOKENS = 0.1, 256
# ... and at most this many tokens (padding included) in one prefill batch: its activations, not the decode
# slots, set the peak memory of a call with many long prompts
PREFILL_MAX_TOKENS = 16_384
GREEDY = None   # a row seed that asks for the greedy token instead of a sampled one (generate(greedy_row=True))


@dataclass
class GenerationConfig:
    max_new_tokens: int = 256
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 50          # 0 = off (HF's implicit default is 50; SCoTD's SC ran with it)
    top_p: float = 1.0
    n: int = 1               # samples per prompt
    stop: tuple[str, ...] = ("\n\n",)
    seed: int = 0
    # per-token log p under the raw softmax (Generation.logprobs; the teacher-likelihood filter reads
    # it). False skips a full-vocabulary log-sum-exp per row and step (up to ~4% of a CPU self-
    # consistency evaluation by profile; evaluation discards them) and leaves Generation.logprobs empty.
    logprobs: bool = True

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, not {self.max_new_tokens}")
        if self.n < 1:
            raise ValueError(f"n must be >= 1, not {self.n}")
        if self.do_sample and not self.temperature > 0:
            raise ValueError(f"temperature must be > 0 when sampling, not {self.temperature} (use do_sample=False)")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = off), not {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], not {self.top_p}")
        if isinstance(self.stop, str):  # a bare string would be read as a tuple of characters
            self.stop = (self.stop,)
        self.stop = tuple(s for s in self.stop if s)


@dataclass
class Generation:
    text: str                 # decoded completion, cut at (and excluding) the stop string
    token_ids: list[int]      # every generated token, including the EOS / the token completing the stop
    logprobs: list[float]     # log p(token) under the model's raw softmax (temperature 1), per generated token;
    #                           empty when GenerationConfig.logprobs is False
    finish_reason: str        # "stop" | "eos" | "length"
    prompt_tokens: int        # prefix + prompt tokens the model saw


def row_seed(seed: int, i: int | None, j: int) -> int:
    """The seed of sample ``j`` of prompt ``i``: a hash, so nearby seeds give unrelated streams."""
    key = f"scotd-kit/{seed}/{'' if i is None else i}/{j}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") & ((1 << 63) - 1)


def generate(model, tokenizer, prompts: list[str], config: GenerationConfig, *, prefix: str = "",
             seeds: list[int] | None = None, batch_size: int | None = None, progress: bool = False,
             engine: str = "auto", prompt_cache: "PromptCache | None" = None,
             space_boundary: bool = False, greedy_row: bool = False) -> list[list[Generation]]:
    """result[i][j] = sample j of prompt i; the model sees prefix + prompts[i].

    ``seeds``: one per prompt. When given, sample j of prompt i is seeded by ``(seeds[i], j)`` alone, so
    it does not move when the prompt list changes (a resumed run asking only for missing prompts gets
    the same samples); otherwise by ``(config.seed, i, j)``. ``seeds[i]`` may also be a list of one
    seed per sample (then sample j is seeded by ``seeds[i][j]`` alone: a teacher asking for samples
    5..29 of an instance gets the same texts as a run that asked for 0..29).

    ``batch_size``: sequences decoded together (decode slots); ``None`` chooses it from free memory.
    Greedy decoding with ``n > 1`` decodes one row per prompt and repeats it (the samples would be
    identical). ``engine``: ``"auto"`` (shared-prefix where the model supports it), ``"shared"``,
    ``"dense"`` (the fallback; also the reference in tests).

    ``prompt_cache``: a :class:`PromptCache` of this model; a prompt that begins with the tokens of
    one prefilled before (under the same prefix) reuses their keys/values and prefills only the rest
    (multi-turn loops such as Socratic QG/QA). Used by the shared-prefix engine; the dense one
    ignores it.

    ``greedy_row`` (sampling only): each prompt's greedy completion too, as ``result[i][n]`` after its ``n``
    samples, decoded in the same call: on the CPU the greedy row shares its prompt's rows while its tokens are
    a sample's (at a low temperature it mostly is one), so it costs little more than the samples alone.

    ``space_boundary``: a prompt that ends in a space (SCoTD's ``"A: "``) is fed without it and its
    completions' texts lose one leading space: the space belongs to the completion's first token, as it
    does in a few-shot block (BPE tokenisers merge a space into the next word; a lone trailing space token
    is one the model never saw there). Measured on SmolLM2-135M-Instruct, few-shot demo_arith: greedy
    accuracy 5.0% with the trailing space, 36.7% without (docs/demo_design.md). Prompting a pretrained
    model (teachers, few-shot baselines) wants it; a student trained on the kit's own split does not.
    """
    prompts = list(prompts)
    moved = [space_boundary and p.endswith(" ") for p in prompts]
    prompts = [p[:-1] if m else p for p, m in zip(prompts, moved)]
    if seeds is not None and len(seeds) != len(prompts):
        raise ValueError(f"seeds has {len(seeds)} entries for {len(prompts)} prompts")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size}")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    if greedy_row and not config.do_sample:
        raise ValueError("greedy_row adds a greedy completion to sampled ones: it needs do_sample=True")
    if not prompts:
        return []
    warn_if_gpu_unused(model)
    shared = sp.supports_shared_prefix(model) if engine == "auto" else engine == "shared"
    if shared and not sp.supports_shared_prefix(model):
        raise ValueError(f"{type(model).__name__} does not route attention through transformers' attention "
                         f"interface with full-attention layers only; use engine='dense'")
    rows_per_prompt = config.n if config.do_sample else 1
    row_seeds = [_sample_seeds(seeds[i] if seeds is not None else None, config, i, rows_per_prompt)
                 for i in range(len(prompts))]
    if greedy_row:
        rows_per_prompt += 1
        if shared:
            row_seeds = [r + [GREEDY] for r in row_seeds]

    from tqdm.auto import tqdm

    bar = tqdm(total=len(prompts) * rows_per_prompt, desc="generate", unit="seq", disable=not progress)
    try:
        if shared:
            slot_engine = _SlotEngine(model, tokenizer, config, prefix, prompt_cache)
            results = slot_engine.run(prompts, row_seeds, batch_size, bar)
        else:
            results = _dense(model, tokenizer, config, prefix, prompts, row_seeds, batch_size or 64, bar)
            if greedy_row:   # the fallback engine decodes them apart
                greedy = _dense(model, tokenizer, dataclasses.replace(config, do_sample=False, n=1), prefix, prompts,
                                [[0] for _ in prompts], batch_size or 64, bar)
                results = [r + g for r, g in zip(results, greedy)]
    finally:
        bar.close()
    if not config.do_sample and config.n > 1:
        results = [[copy.deepcopy(g[0]) for _ in range(config.n)] for g in results]
    for m, samples in zip(moved, results):
        for g in samples if m else ():
            if g.text.startswith(" "):
                g.text = g.text[1:]
    return results


def _sample_seeds(seed, config: GenerationConfig, i: int, rows: int) -> list[int]:
    if seed is None:
        return [row_seed(config.seed, i, j) for j in range(rows)]
    if isinstance(seed, (list, tuple)):
        if len(seed) < rows:
            raise ValueError(f"prompt {i} has {len(seed)} sample seeds for n={rows}")
        return [row_seed(int(s), None, 0) for s in seed[:rows]]
    return [row_seed(int(seed), None, j) for j in range(rows)]


# ---------------------------------------------------------------------------------------------------
# what both engines share: tokenisation, the sampler, stop rules, results

def _forward_parameters(model) -> set[str]:
    """The argument names of the model's own forward (a peft wrapper's takes **kwargs: ask the model inside)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return set(inspect.signature(base.forward).parameters)


class _Decoder:
    """One model + tokenizer + config + prefix: tokenisation, token choice, stop rules, results."""

    def __init__(self, model, tokenizer, config: GenerationConfig, prefix: str):
        self.model, self.tok, self.cfg = model, tokenizer, config
        self.device = next(model.parameters()).device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.eos_ids = _eos_ids(model, tokenizer)
        self.eos_t = torch.tensor(sorted(self.eos_ids), dtype=torch.long, device=self.device)
        params = _forward_parameters(model)
        self.keep_logits = "logits_to_keep" in params
        # transformers 5.25 renamed the forward's `past_key_values=` to `cache=` (the old name warns and goes in
        # 5.40); a name the forward does not list would land in **kwargs and decode with no cache at all
        self.cache_arg = "cache" if "cache" in params else "past_key_values"
        self.stop_window = max((len(s) for s in config.stop), default=0) + _STOP_WINDOW_EXTRA
        self.prefix_ids = tokenizer(prefix, add_special_tokens=True)["input_ids"] if prefix else []
        self._candidates = None

    def forward(self, input_ids, attention_mask, position_ids, cache, **kw):
        kwargs = dict(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                      use_cache=True, **kw)
        kwargs[self.cache_arg] = cache
        if self.keep_logits:
            kwargs["logits_to_keep"] = 1  # prompt positions' logits are never used: skip the vocab matmul
        return model_logits(self.model(**kwargs))[:, -1]

    @torch.inference_mode()
    def prefill_prefix(self, cache):
        """Run the shared prefix through the model into ``cache`` (batch 1) and return the cache."""
        ids = torch.tensor([self.prefix_ids], device=self.device)
        self.forward(ids, torch.ones_like(ids), torch.arange(ids.shape[1], device=self.device)[None], cache)
        return cache

    def tokenize(self, prompts: list[str], idx: list[int]) -> list[list[int]]:
        out = []
        for p, i in zip(prompts, idx):
            ids = self.tok(p, add_special_tokens=not self.prefix_ids)["input_ids"]
            if not ids:
                raise ValueError(f"prompt {i} tokenises to no tokens: {p!r}")
            out.append(ids)
        return out

    def choose(self, logits: torch.Tensor, seeds: torch.Tensor, steps: torch.Tensor,
               greedy: torch.Tensor | None = None, source: torch.Tensor | None = None):
        """(tokens, log p under the raw softmax or None when not asked for) for every row;
        ``seeds``/``steps`` drive the sampler; rows where ``greedy`` is set take the argmax. ``source[r]``: the
        row of ``logits`` row r draws from (rows with one distribution share its softmax); None: row r."""
        logits = logits.float()
        per_draw = (lambda t: t) if source is None else (lambda t: t[source])   # a row's value for each draw
        if self.cfg.do_sample:
            chosen = sample_rows(logits, self.cfg.temperature, self.cfg.top_k, self.cfg.top_p,
                                 uniforms(seeds, steps), source)
            if greedy is not None:
                chosen = torch.where(greedy, per_draw(logits.argmax(dim=-1)), chosen)
        else:
            chosen = per_draw(logits.argmax(dim=-1))
        if not self.cfg.logprobs:
            return chosen, None
        picked = logits.gather(1, chosen[:, None])[:, 0] if source is None else logits[source, chosen]
        return chosen, picked - per_draw(torch.logsumexp(logits, dim=-1))

    def stop_candidates(self, vocab: int) -> torch.Tensor:
        """Bool per token id: can this token complete a stop string? (It must contain a stop
        string's last character, or be a byte fragment that decodes to a replacement character.)"""
        if self._candidates is None or self._candidates.shape[0] != vocab:
            self._candidates = _stop_table(self.tok, self.cfg.stop, vocab).to(self.device)
        return self._candidates

    def finished(self, toks: list[int]) -> str | None:
        """The finish reason of a row whose last token is ``toks[-1]``, or None (same order of rules as
        before: EOS, then a stop string in the decoded tail, then the length limit)."""
        if toks[-1] in self.eos_ids:
            return "eos"
        if self.cfg.stop:
            tail = self.tok.decode(toks[-self.stop_window:], skip_special_tokens=True,
                                   clean_up_tokenization_spaces=False)
            if any(s in tail for s in self.cfg.stop):
                return "stop"
        if len(toks) >= self.cfg.max_new_tokens:
            return "length"
        return None

    def result(self, toks: list[int], logps: list[float], finish: str, prompt_tokens: int) -> Generation:
        text_ids = toks[:-1] if finish == "eos" else toks
        text = cut_at_stop(self.tok.decode(text_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False),
                           self.cfg.stop)
        return Generation(text=text, token_ids=list(toks), logprobs=list(logps) if self.cfg.logprobs else [],
                          finish_reason=finish, prompt_tokens=prompt_tokens)


_STOP_TABLES: dict = {}


def _stop_table(tok, stops: tuple[str, ...], vocab: int) -> torch.Tensor:
    """Built once per (tokenizer, stop strings, vocabulary size) and kept for the process."""
    key = (id(tok), getattr(tok, "name_or_path", ""), len(tok), stops, vocab)
    if key not in _STOP_TABLES:
        _STOP_TABLES[key] = _build_stop_table(tok, stops, vocab)
    return _STOP_TABLES[key]


def _build_stop_table(tok, stops: tuple[str, ...], vocab: int) -> torch.Tensor:
    if not stops:
        return torch.zeros(vocab, dtype=torch.bool)
    table = torch.ones(vocab, dtype=torch.bool)   # ids past the tokenizer's vocabulary: always check
    n = min(vocab, len(tok))
    ids = [[t] for t in range(n)]
    backend = getattr(tok, "backend_tokenizer", None)   # a fast tokenizer's Rust core: no per-id Python
    pieces = backend.decode_batch(ids, skip_special_tokens=False) if backend is not None else \
        tok.batch_decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    last = {s[-1] for s in stops}
    table[:n] = torch.tensor([("\ufffd" in p) or any(c in p for c in last) for p in pieces])
    return table


# ---------------------------------------------------------------------------------------------------
# the shared-prefix engine with continuous batching

class _SlotEngine(_Decoder):
    share_tokens = True   # samples of a prompt that drew the same tokens decode as one row (run(); tests turn it off)

    def __init__(self, model, tokenizer, config: GenerationConfig, prefix: str, prompt_cache=None):
        super().__init__(model, tokenizer, config, prefix)
        self.prefix_kv = self._prefill_prefix() if self.prefix_ids else None
        if prompt_cache is not None and prompt_cache.model is not model:
            raise ValueError("prompt_cache belongs to another model: keep one PromptCache per model")
        self.prompt_cache = prompt_cache
        self.rows_run = 0    # slot rows the decode steps ran (samples sharing their tokens run as one)

    def _prefill_prefix(self):
        from transformers import DynamicCache

        return sp.prefix_kv(self.prefill_prefix(DynamicCache(config=self.model.config)))

    @torch.inference_mode()
    def _prefill_prompts(self, ids: list[list[int]], reused: list[tuple[int, list] | None] | None = None):
        """Prompts behind the shared prefix, left-padded: (per-prompt per-layer (K, V) of the real
        tokens, last-position logits).

        ``reused[b] = (m, kv)``: prompt b's first ``m`` tokens already have keys/values ``kv`` (per
        layer ``(Hkv, m, d)``, from a :class:`PromptCache`); only tokens ``m..`` run, attending to
        those (right-aligned in front of the new tokens, the padding between hidden by the mask).
        """
        from transformers import DynamicCache

        reused = reused or [None] * len(ids)
        P, dev = len(self.prefix_ids), self.device
        ms = [r[0] if r else 0 for r in reused]
        new = [x[m:] for x, m in zip(ids, ms)]
        B, L, M = len(ids), max(len(x) for x in new), max(ms)
        input_ids = torch.full((B, L), self.pad_id, dtype=torch.long, device=dev)
        pos = torch.full((B, L), P, dtype=torch.long, device=dev)
        real = torch.zeros((B, M + L), dtype=torch.bool, device=dev)
        for b, (x, m) in enumerate(zip(new, ms)):
            input_ids[b, L - len(x):] = torch.tensor(x, device=dev)
            pos[b, L - len(x):] = torch.arange(P + m, P + m + len(x), device=dev)
            real[b, M - m:M] = True
            real[b, M + L - len(x):] = True
        causal = torch.ones((L, M + L), dtype=torch.bool, device=dev).tril(diagonal=M)
        state = sp.PrefixState(self.prefix_kv, causal[None] & real[:, None, :])
        cache = DynamicCache(config=self.model.config)
        if M:
            like = next(r[1] for r in reused if r)
            for layer_i, (k0, v0) in enumerate(like):
                k = k0.new_zeros((B, k0.shape[0], M, k0.shape[-1]))
                v = v0.new_zeros((B, v0.shape[0], M, v0.shape[-1]))
                for b, r in enumerate(reused):
                    if r:
                        k[b, :, M - r[0]:] = r[1][layer_i][0]
                        v[b, :, M - r[0]:] = r[1][layer_i][1]
                cache.update(k, v, layer_i)
        with sp.shared_prefix_attention_on(self.model):
            logits = self.forward(input_ids, None, pos, cache, scotd_state=state)
        kv = [[(torch.cat([layer.keys[b, :, M - m:M], layer.keys[b, :, M + L - len(x):]], dim=1),
                torch.cat([layer.values[b, :, M - m:M], layer.values[b, :, M + L - len(x):]], dim=1))
               for layer in cache.layers] for b, (x, m) in enumerate(zip(new, ms))]
        return kv, logits

    def _prefill(self, new: list[int], ids: list[list[int]], prefilled: dict) -> None:
        """Prefill prompts ``new`` (indices into ``ids``) into ``prefilled[i] = (KV, logits)``, in
        length groups, reusing and then filling the prompt cache when there is one."""
        cache, key = self.prompt_cache, tuple(self.prefix_ids)
        reused = {i: cache.longest(key, ids[i]) for i in new} if cache is not None else {}
        to_run = {i: len(ids[i]) - (reused[i][0] if reused.get(i) else 0) for i in new}   # tokens still to prefill
        todo = sorted(new, key=lambda i: -to_run[i])
        for group in prefill_groups([to_run[i] for i in todo]):
            part = [todo[g] for g in group]
            kv, first = self._prefill_prompts([ids[i] for i in part], [reused.get(i) for i in part])
            for i, k, lg in zip(part, kv, first):
                prefilled[i] = (k, lg)
                if cache is not None:
                    cache.put(key, ids[i], k)

    def _inspect(self, item, alive, ended, flagged, steps, tokens, logps, checked, vocab):
        """``(slot, (prompt, sample), tokens, log-probs, finish reason)`` of every sample that finished since
        the last inspection (one host sync for all slots). A sample's tokens since then are read in order:
        the first that completes a stop string ends it; else EOS or the length limit does where it hit."""
        need = torch.nonzero(alive & ((ended >= 0) | flagged)).flatten()
        if need.numel() == 0:
            return []
        flagged[need] = False
        rows = need.tolist()
        ends, stepped = ended[need].tolist(), steps[need].tolist()
        toks_all = tokens[need].tolist()
        cand_all = self.stop_candidates(vocab)[tokens[need]].tolist()
        lps_all = logps[need].tolist() if self.cfg.logprobs else None
        done = []
        for r, s in enumerate(rows):
            end = ends[r] if ends[r] >= 0 else min(stepped[r], self.cfg.max_new_tokens)
            toks, cand = toks_all[r], cand_all[r]
            reason, at = None, end
            for p in range(checked[s], end - 1 if ends[r] >= 0 else end):   # tokens before the end
                if cand[p] and (reason := self.finished(toks[:p + 1])) is not None:
                    at = p + 1
                    break
            if reason is None and ends[r] >= 0:
                reason = self.finished(toks[:end])
            checked[s] = end
            if reason is not None:
                done.append((s, item[s], toks[:at], lps_all[r][:at] if lps_all is not None else [], reason))
        return done

    @staticmethod
    def _regroup(cache, leader: torch.Tensor, chosen: torch.Tensor, going: torch.Tensor, length: torch.Tensor,
                 rows: torch.Tensor) -> torch.Tensor:
        """Leaders after this step's tokens: the slots that followed one leader and drew the same token
        follow one slot (the old leader when it is among them, else the first); a slot that leads from
        now on takes its old leader's keys/values (their shared tokens) into its own row."""
        S = len(rows)
        key = torch.where(going, leader * (int(chosen.max()) + 1) + chosen, -1 - rows)  # finished: on their own
        _, group = torch.unique(key, return_inverse=True)
        # the old leader wins its group; else the lowest slot
        rank = rows + S * (leader != rows)
        best = torch.full((int(group.max()) + 1,), 2 * S, dtype=torch.long, device=rows.device)
        best = best.scatter_reduce(0, group, rank, reduce="amin")
        new = torch.where(going, best[group] % S, leader)   # a finished sample no longer moves
        split = torch.nonzero((new == rows) & (leader != rows)).flatten()
        cols = int(length[split].max()) if len(split) else 0
        if cols:
            for layer in cache.layers:
                layer.copy(split, leader[split], cols)
        return new

    def _slots(self, batch_size: int | None, rows: int, capacity: int, per_row: int = 1) -> int:
        if batch_size is not None:
            return min(batch_size, rows)
        return min(rows, auto_batch_size(self.model, capacity, per_row=per_row))

    @torch.inference_mode()
    def run(self, prompts: list[str], row_seeds: list[list[int]], batch_size: int | None, bar) -> list[list[Generation]]:
        cfg, dev, P = self.cfg, self.device, len(self.prefix_ids)
        ids = self.tokenize(prompts, list(range(len(prompts))))
        n = len(row_seeds[0])
        longest = max(len(x) for x in ids)
        # on the CPU a decode step costs in proportion to its rows; a GPU's costs little more for more rows, and
        # choosing the rows to run would wait for the device every step
        follow = n > 1 and cfg.do_sample and self.share_tokens and dev.type == "cpu"
        # several samples per prompt: the prompt's keys/values are held once, in a block its samples share (a
        # slot's own cache then holds only what it generated). Otherwise in the slot: one sample, or a few samples
        # that share rows -- a prompt then has ~1 row per step, and a block would cost a tiny attention problem
        # per prompt and layer for that row (the demo's N=4 and greedy row at T=0.3: 6-7% of its sampling; at
        # k=30, T=0.7 the block is worth it: SC evaluation 12% slower without; demo_design.md, "Samples that
        # share their tokens")
        grouped = n > 1 and (not follow or n > FEW_SAMPLES)
        capacity = cfg.max_new_tokens + (0 if grouped else longest)
        # a follower's slot (its prompt in it) holds memory but runs no decode step: up to n slots per row
        per_row = n if follow and not grouped else 1
        S = self._slots(batch_size, len(prompts) * n, capacity + (longest // n if grouped else 0), per_row=per_row)
        # work items: longest prompts first (prefill batches of like lengths); results go back by index
        order = sorted(range(len(prompts)), key=lambda i: -len(ids[i]))
        pending = deque((i, j) for i in order for j in range(n))
        left = {i: n for i in order}          # samples of prompt i not yet given a slot
        running = {i: 0 for i in order}       # samples of prompt i in a slot now
        prefilled: dict[int, tuple] = {}      # prompt i -> (per-layer KV, logits) while samples wait
        results: list[list[Generation | None]] = [[None] * n for _ in prompts]

        cache = sp.new_slot_cache(self.model.config, S, capacity)
        groups = sp.PromptGroups(len(cache.layers), longest) if grouped else None
        item: list[tuple[int, int] | None] = [None] * S
        seeds = torch.zeros(S, dtype=torch.long, device=dev)
        greedy = torch.zeros(S, dtype=torch.bool, device=dev)      # the slot decodes its prompt's greedy row
        any_greedy = any(GREEDY in r for r in row_seeds)
        steps = torch.zeros(S, dtype=torch.long, device=dev)       # tokens generated by the slot's sample
        length = torch.zeros(S, dtype=torch.long, device=dev)      # suffix tokens in the slot's cache
        start = torch.zeros(S, dtype=torch.long, device=dev)       # position of the slot cache's first token
        block = torch.zeros(S, dtype=torch.long, device=dev)       # the slot's prompt block (with groups)
        tokens = torch.zeros((S, cfg.max_new_tokens), dtype=torch.long, device=dev)
        logps = torch.zeros((S, cfg.max_new_tokens), dtype=torch.float32, device=dev)
        # samples of one prompt that have drawn the same tokens so far have the same next-token distribution:
        # such slots follow one ``leader`` slot, whose decode step alone runs; each still draws its own token
        # (its seed, its step) from the leader's logits, so no sample changes. A follower that draws another
        # token than its leader leads from then on, with a copy of the leader's keys/values: at a low
        # temperature most of a prompt's samples share most of their tokens (demo_design.md, "Samples that
        # share their tokens")
        leader = torch.arange(S, device=dev)
        logits = None
        vocab = None
        refill_at = max(1, S // 8)   # refill when this many slots are free: prefill in batches, not one by one
        # finish bookkeeping stays on the device between inspections (a GPU would otherwise wait for the
        # host every step): ``ended`` holds the token count at which a sample hit EOS or the length limit,
        # ``flagged`` marks a token since the last inspection that can complete a stop string; the host
        # looks every ``every`` steps and finds the exact finishing token of each (see _inspect)
        every = sync_every(dev)
        alive = torch.zeros(S, dtype=torch.bool, device=dev)
        ended = torch.full((S,), -1, dtype=torch.long, device=dev)
        flagged = torch.zeros(S, dtype=torch.bool, device=dev)
        checked = [0] * S             # host: tokens of the slot's sample already looked at for a stop string
        since = 0                     # decode steps since the last inspection
        read_base, read_steps = 0, 0  # longest slot cache when last read, decode steps since

        while True:
            free = [s for s in range(len(item)) if item[s] is None]
            live = len(item) - len(free)
            if pending and free and (len(free) >= refill_at or live == 0 or len(pending) <= len(free)):
                take = [pending.popleft() for _ in range(min(len(free), len(pending)))]
                new = sorted({i for i, _ in take if i not in prefilled}, key=lambda i: -len(ids[i]))
                self._prefill(new, ids, prefilled)
                if logits is None:
                    vocab = prefilled[take[0][0]][1].shape[-1]
                    logits = torch.zeros((len(item), vocab), dtype=torch.float32, device=dev)
                if groups is None:
                    slots = torch.tensor(free[:len(take)], device=dev)
                    for layer_i, layer in enumerate(cache.layers):
                        layer.load(slots, [prefilled[i][0][layer_i][0] for i, _ in take],
                                   [prefilled[i][0][layer_i][1] for i, _ in take])
                first: dict[int, int] = {}     # prompt -> its first slot in this refill: its samples follow it
                for s, (i, j) in zip(free, take):
                    item[s] = (i, j)
                    leader[s] = first.setdefault(i, s) if follow else s
                    logits[s] = prefilled[i][1]
                    seeds[s], steps[s] = row_seeds[i][j] or 0, 0
                    greedy[s] = row_seeds[i][j] is GREEDY
                    alive[s], ended[s], flagged[s], checked[s] = True, -1, False, 0
                    if groups is None:
                        start[s], length[s] = P, len(ids[i])
                    else:
                        start[s], length[s] = P + len(ids[i]), 0
                        block[s] = groups.add(i, prefilled[i][0])
                    left[i] -= 1
                    running[i] += 1
                    if left[i] == 0:
                        del prefilled[i]
                read_base, read_steps = int(length.max()), 0
                continue   # the new slots' first token is chosen below, with everyone else's
            if live == 0:
                break
            if not pending and len(free) >= max(1, len(item) // 8):
                # drop finished slots: live slots from the tail move into the holes among the first ones
                # (a copy of the moved rows only; results go back by (prompt, sample), not by slot)
                keep = live
                holes = [s for s in free if s < keep]
                movers = [s for s in range(keep, len(item)) if item[s] is not None]
                h, m = torch.tensor(holes, dtype=torch.long, device=dev), torch.tensor(movers, dtype=torch.long,
                                                                                      device=dev)
                cols = int(length.max()) + 1      # every slot's filled columns
                for layer in cache.layers:
                    layer.compact(h, m, keep, cols)
                for t in (seeds, greedy, steps, length, start, block, tokens, logps, logits, alive, ended, flagged,
                          leader):
                    t[h] = t[m]
                moved_to = torch.arange(len(item), device=dev)
                moved_to[m] = h
                leader = moved_to[leader]      # a live slot's leader is live: it moved with it or stayed
                for a, b in zip(holes, movers):
                    item[a], checked[a] = item[b], checked[b]
                item, checked = item[:keep], checked[:keep]
                seeds, greedy, steps, length, start, block, tokens, logps, logits, alive, ended, flagged, leader = (
                    t[:keep] for t in (seeds, greedy, steps, length, start, block, tokens, logps, logits, alive,
                                       ended, flagged, leader))
                cache.slots = keep
                continue

            rows = torch.arange(len(item), device=dev)
            if follow:   # a follower draws from its leader's row (a finished slot's draw is never written)
                distinct, source = torch.unique(torch.where(alive, leader, leader[0]), return_inverse=True)
                chosen, lp = self.choose(logits[distinct], seeds, steps, greedy if any_greedy else None, source)
            else:
                chosen, lp = self.choose(logits, seeds, steps, greedy if any_greedy else None)
            going = alive & (ended < 0)                 # a sample past its end writes nothing more
            if follow:
                leader = self._regroup(cache, leader, chosen, going, length, rows)
            col = steps.clamp(max=cfg.max_new_tokens - 1)
            tokens[rows, col] = torch.where(going, chosen, tokens[rows, col])
            if lp is not None:
                logps[rows, col] = torch.where(going, lp, logps[rows, col])
            steps += 1
            hit = going & (torch.isin(chosen, self.eos_t) | (steps >= cfg.max_new_tokens))
            ended = torch.where(hit, steps, ended)
            flagged |= going & ~hit & self.stop_candidates(vocab)[chosen]
            since += 1
            if since >= every:
                since = 0
                for s, (i, j), toks, lps, reason in self._inspect(item, alive, ended, flagged, steps, tokens, logps,
                                                                  checked, vocab):
                    results[i][j] = self.result(toks, lps, reason, P + len(ids[i]))
                    item[s] = None
                    alive[s] = False
                    leader[s] = s
                    running[i] -= 1
                    if groups is not None and not left[i] and not running[i]:
                        groups.release(i)
                    bar.update(1)
                if all(it is None for it in item) and not pending:
                    break
                read_base, read_steps = int(length.max()), 0
            # one decode step for every slot (a finished slot's column is rewritten until it is refilled), or
            # with samples sharing their tokens, for every live leader
            run = torch.nonzero(alive & (leader == rows)).flatten() if follow else rows
            if not len(run):
                continue   # every sample finished: the slots are refilled first
            every_slot = len(run) == len(rows)   # then the slots' own rows, not a gathered copy of them
            cache.rows = None if every_slot else run
            cache.write_cols = length[run]
            cache.read_len = min(read_base + read_steps, capacity - 1) + 1   # >= every slot's filled columns
            read_steps += 1
            mask = torch.arange(cache.read_len, device=dev)[None, :] <= length[run][:, None]
            state = sp.PrefixState(self.prefix_kv, mask[:, None, :], groups.view(block[run]) if groups else None)
            inputs = torch.where(alive, chosen, torch.full_like(chosen, self.pad_id))[run][:, None]
            with sp.shared_prefix_attention_on(self.model):
                out = self.forward(inputs, None, (start + length)[run][:, None], cache, scotd_state=state).float()
            self.rows_run += len(run)
            if not every_slot:
                logits[run] = out     # followers read their leader's row
            else:
                logits = out
            length = torch.where(alive, (length + 1).clamp(max=capacity - 1), length)
        return results  # type: ignore[return-value]


# samples per prompt up to which samples that share rows keep their prompt in their slots, not in a block
FEW_SAMPLES = 8

# decode steps between the host's looks at finished samples: every step on the CPU (a look costs nothing
# there); on a GPU a look waits for the device, so it is taken every few steps and a finished sample's slot
# idles at most that long (its extra tokens are never written)
SYNC_EVERY = {"cpu": 1, "cuda": 4}


def sync_every(device) -> int:
    return SYNC_EVERY.get(torch.device(device).type, 1)


def prefill_groups(lengths: list[int], *, waste: float | None = None, min_tokens: int | None = None,
                   max_tokens: int | None = None) -> list[list[int]]:
    """Split prompts sorted longest first into prefill batches: each batch is left-padded to its
    longest prompt, so a new batch starts when padding would exceed ``waste`` of the batch's
    tokens -- unless the batch is still under ``min_tokens`` (a matmul over fewer rows runs well
    below the machine's peak, which costs more than the padding) -- and always before it would pass
    ``max_tokens`` padded tokens (its memory). Returns positions into ``lengths``."""
    waste = PREFILL_WASTE if waste is None else waste
    min_tokens = PREFILL_MIN_TOKENS if min_tokens is None else min_tokens
    max_tokens = PREFILL_MAX_TOKENS if max_tokens is None else max_tokens
    groups: list[list[int]] = []
    for p, n in enumerate(lengths):
        if groups:
            g = groups[-1]
            longest, real = lengths[g[0]], sum(lengths[q] for q in g)
            fits = longest * (len(g) + 1) <= max_tokens
            if fits and (longest * len(g) < min_tokens or longest * (len(g) + 1) <= (1 + waste) * (real + n)):
                g.append(p)
                continue
        groups.append([p])
    return groups


def kv_bytes_per_token(model) -> int:
    """Bytes of keys and values one token holds in every layer of ``model`` (its own dtype)."""
    c = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    layers = getattr(c, "num_hidden_layers", None) or getattr(c, "n_layer", 12)
    heads = getattr(c, "num_attention_heads", None) or getattr(c, "n_head", 12)
    kv_heads = getattr(c, "num_key_value_heads", None) or heads
    hidden = getattr(c, "hidden_size", None) or getattr(c, "n_embd", 768)
    head_dim = getattr(c, "head_dim", None) or hidden // heads
    return 2 * layers * kv_heads * head_dim * next(model.parameters()).element_size()


def slot_bytes(model, capacity: int) -> int:
    """Memory one decode slot needs: ``capacity`` tokens of keys/values, and per step a vocabulary row of
    logits in the model's dtype plus the sampler's transients over it (an fp32 copy, the tempered
    probabilities, a top-p sort's values and int64 indices, the log-sum-exp's exponentials)."""
    c = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    vocab = getattr(c, "vocab_size", 50_000)
    row = vocab * (next(model.parameters()).element_size() + 4 + 4 + 4 + 8 + 4)
    return kv_bytes_per_token(model) * capacity + row


def free_bytes(device) -> int:
    """Free memory on ``device`` (a GPU's, or the machine's RAM for the CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return _available_memory()


def auto_batch_size(model, capacity: int, *, budget_fraction: float = 0.25, per_row: int = 1) -> int:
    """Decode slots that fit a share of free memory (:func:`slot_bytes` each). Capped where more rows stop
    paying on the device (GPU: 512; CPU: 384 -- SmolLM2-135M in bf16 on 2 cores sampled 6.9 / 8.5 / 9.8
    samples/s with 64 / 128 / 384 slots). The CPU's cap counts decode rows: ``per_row`` slots may share one
    (samples that follow a leader's row), and the cap allows that many times the slots -- more prompts in
    flight keep a step's rows many while samples finish (the demo's corpus, N=4 and a greedy row, fp32 on an
    AVX2-only CPU: 960 slots sampled 18% faster than 384, the same text)."""
    param = next(model.parameters())
    cap = 512 if param.device.type == "cuda" else int(os.environ.get("SCOTD_CPU_MAX_SLOTS", "384")) * per_row
    return max(1, min(cap, int(free_bytes(param.device) * budget_fraction // slot_bytes(model, capacity))))


class PromptCache:
    """Keys/values of prompts one model has prefilled, for later prompts that start with the same
    tokens (a multi-turn loop re-sends its growing context every turn).

    Entries are token ids -> per-layer ``(Hkv, L, d)`` keys/values, kept per shared prefix, least
    recently used dropped past ``max_tokens``. A lookup compares token ids, so reuse is exact whatever
    the tokenizer does at the join: positions ``0..m-1`` of two prompts with the same first ``m``
    tokens have the same keys/values. At least one token of a prompt always runs (its logits start
    the decoding).
    """

    def __init__(self, model, max_tokens: int = 100_000, max_bytes: int | None = None):
        """Entries are dropped past ``max_tokens`` tokens or ``max_bytes`` bytes (None: a tenth of the free
        memory on the model's device when the cache is made -- 100,000 tokens of GPT-2 Medium in fp16
        are ~9.8 GB, more than a T4 can spare beside the model)."""
        self.model, self.max_tokens, self._max_bytes = model, max_tokens, max_bytes
        self._entries: "OrderedDict[tuple, list]" = OrderedDict()   # (prefix ids, prompt ids) -> per-layer KV
        self.tokens = self.bytes = 0
        self.hits = self.reused_tokens = 0

    @property
    def max_bytes(self) -> int:
        if self._max_bytes is None:
            self._max_bytes = free_bytes(next(self.model.parameters()).device) // 10
        return self._max_bytes

    def longest(self, prefix: tuple, ids: list[int]) -> tuple[int, list] | None:
        """``(m, kv)`` for the entry sharing the most leading tokens with ``ids`` (``m < len(ids)``),
        the keys/values cut to those ``m`` tokens; None when no entry shares any."""
        best, best_key = 0, None
        for key in self._entries:
            toks = key[1]
            if key[0] != prefix or not toks or toks[0] != ids[0]:
                continue
            m = _common_prefix(toks, ids, len(ids) - 1)
            if m > best:
                best, best_key = m, key
        if best_key is None:
            return None
        self._entries.move_to_end(best_key)
        self.hits, self.reused_tokens = self.hits + 1, self.reused_tokens + best
        kv = self._entries[best_key]
        return best, [(k[:, :best], v[:, :best]) for k, v in kv]

    def put(self, prefix: tuple, ids: list[int], kv: list) -> None:
        key = (prefix, tuple(ids))
        size = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in kv)
        if key in self._entries or len(ids) > self.max_tokens or size > self.max_bytes:
            return
        self._entries[key] = [(k.clone(), v.clone()) for k, v in kv]
        self.tokens += len(ids)
        self.bytes += size
        while self.tokens > self.max_tokens or self.bytes > self.max_bytes:
            (_, toks), dropped = self._entries.popitem(last=False)
            self.tokens -= len(toks)
            self.bytes -= sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in dropped)


def _common_prefix(a: list[int], b: list[int], limit: int) -> int:
    n = min(len(a), len(b), limit)
    for t in range(n):
        if a[t] != b[t]:
            return t
    return n


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


# ---------------------------------------------------------------------------------------------------
# the dense fallback: the prefix's cache is copied per row, finished rows leave the batch

def _dense(model, tokenizer, config, prefix, prompts, row_seeds, batch_size, bar) -> list[list[Generation]]:
    engine = _DenseEngine(model, tokenizer, config, prefix)
    per_batch = max(1, batch_size // len(row_seeds[0]))
    results = []
    for start in range(0, len(prompts), per_batch):
        idx = list(range(start, min(start + per_batch, len(prompts))))
        results.extend(engine.run([prompts[i] for i in idx], idx, [row_seeds[i] for i in idx], bar))
    return results


class _DenseEngine(_Decoder):
    def __init__(self, model, tokenizer, config: GenerationConfig, prefix: str):
        super().__init__(model, tokenizer, config, prefix)
        self.prefix_cache = self._prefill_prefix() if self.prefix_ids else None

    def _prefill_prefix(self):
        return self.prefill_prefix(new_cache(self.model.config))

    def _new_cache(self, rows: int):
        if self.prefix_cache is None:
            return new_cache(self.model.config)
        cache = copy.deepcopy(self.prefix_cache)
        cache.batch_repeat_interleave(rows)
        return cache

    @torch.inference_mode()
    def run(self, prompts: list[str], idx: list[int], row_seeds: list[list[int]], bar) -> list[list[Generation]]:
        dev, P = self.device, len(self.prefix_ids)
        ids = self.tokenize(prompts, idx)
        B, L = len(ids), max(len(x) for x in ids)
        input_ids = torch.full((B, L), self.pad_id, dtype=torch.long, device=dev)
        mask = torch.zeros((B, P + L), dtype=torch.long, device=dev)
        mask[:, :P] = 1
        pos = torch.ones((B, L), dtype=torch.long, device=dev)  # pads: any position, they are masked
        for b, x in enumerate(ids):
            input_ids[b, L - len(x):] = torch.tensor(x, device=dev)
            mask[b, P + L - len(x):] = 1
            pos[b, L - len(x):] = torch.arange(P, P + len(x), device=dev)
        cache = self._new_cache(B)
        logits = self.forward(input_ids, mask, pos, cache)

        n = len(row_seeds[0])
        if n > 1:  # expand the prompt rows to their samples: no second prefill
            logits = logits.repeat_interleave(n, dim=0)
            mask = mask.repeat_interleave(n, dim=0)
            cache.batch_repeat_interleave(n)
        next_pos = torch.tensor([P + len(x) for x in ids for _ in range(n)], device=dev)
        seeds = torch.tensor([s for row in row_seeds for s in row], dtype=torch.long, device=dev)

        R = B * n
        live = list(range(R))  # batch row -> global row
        tokens: list[list[int]] = [[] for _ in range(R)]
        logps: list[list[float]] = [[] for _ in range(R)]
        finish: list[str | None] = [None] * R
        step = 0
        while True:
            sel_seeds = seeds[torch.tensor(live, device=dev)]
            chosen, lp = self.choose(logits, sel_seeds, torch.full_like(sel_seeds, step))
            step += 1
            keep = []
            lps = lp.tolist() if lp is not None else [0.0] * len(live)
            for b, (r, t, l) in enumerate(zip(live, chosen.tolist(), lps)):
                tokens[r].append(t)
                logps[r].append(l)
                finish[r] = self.finished(tokens[r])
                if finish[r] is None:
                    keep.append(b)
            bar.update(len(live) - len(keep))
            if not keep:
                break
            if len(keep) < len(live):  # drop finished rows from cache, mask and positions
                sel = torch.tensor(keep, device=dev)
                cache.batch_select_indices(sel)
                mask, next_pos, chosen = mask[sel], next_pos[sel], chosen[sel]
                live = [live[b] for b in keep]
            mask = torch.cat([mask, mask.new_ones((len(live), 1))], dim=1)
            logits = self.forward(chosen[:, None], mask, next_pos[:, None], cache)
            next_pos = next_pos + 1

        prompt_tokens = [P + len(x) for x in ids]
        return [[self.result(tokens[b * n + j], logps[b * n + j], finish[b * n + j], prompt_tokens[b])
                 for j in range(n)] for b in range(B)]


def _grow_layer_class():
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        """A DynamicLayer that writes into a buffer with spare room instead of ``torch.cat``-ing.

        DynamicLayer re-allocates and copies the whole cache at every decoded token (a quarter of
        a decode step's time on a CPU, measured); here a step writes one column and the buffer
        doubles when full. ``keys`` / ``values`` stay views of the filled part, as HF expects.
        """

        def lazy_initialization(self, key_states, value_states):
            super().lazy_initialization(key_states, value_states)
            self.length = 0
            self.buf_k = self.buf_v = None

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            need = self.length + key_states.shape[-2]
            if self.buf_k is None or need > self.buf_k.shape[-2]:
                self._resize(max(need, 2 * (self.buf_k.shape[-2] if self.buf_k is not None else 0), 64),
                             key_states)
            self.buf_k[..., self.length:need, :] = key_states
            self.buf_v[..., self.length:need, :] = value_states
            self.length = need
            self._views()
            return self.keys, self.values

        def _resize(self, capacity, like):
            shape = (*like.shape[:-2], capacity, like.shape[-1])
            k, v = like.new_empty(shape), like.new_empty(shape)
            if self.length:
                k[..., :self.length, :] = self.buf_k[..., :self.length, :]
                v[..., :self.length, :] = self.buf_v[..., :self.length, :]
            self.buf_k, self.buf_v = k, v

        def _views(self):
            self.keys = self.buf_k[..., :self.length, :]
            self.values = self.buf_v[..., :self.length, :]

        def get_seq_length(self):
            return self.length if self.is_initialized else 0

        def batch_repeat_interleave(self, repeats):
            if self.get_seq_length() > 0:
                self.buf_k = self.buf_k.repeat_interleave(repeats, dim=0)
                self.buf_v = self.buf_v.repeat_interleave(repeats, dim=0)
                self._views()

        def batch_select_indices(self, indices):
            if self.get_seq_length() > 0:
                self.buf_k, self.buf_v = self.buf_k[indices], self.buf_v[indices]
                self._views()

        def crop(self, tokens_to_remove):
            raise NotImplementedError("the kit's decode cache is never cropped")

        def reorder_cache(self, beam_idx):
            self.batch_select_indices(beam_idx)

    return GrowingLayer


_GROWING_LAYER = None


def new_cache(config):
    """A DynamicCache whose plain full-attention layers grow in place (see GrowingLayer); sliding
    window and other special layers keep HF's own classes."""
    global _GROWING_LAYER
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    if _GROWING_LAYER is None:
        _GROWING_LAYER = _grow_layer_class()
    cache = DynamicCache(config=config)
    if not cache.layers and cache.layer_class_to_replicate is DynamicLayer:
        cache.layer_class_to_replicate = _GROWING_LAYER
    cache.layers = [_GROWING_LAYER() if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """``text`` up to (excluding) the earliest occurrence of any stop string."""
    cut = min((k for k in (text.find(s) for s in stop) if k >= 0), default=len(text))
    return text[:cut]


_G = 0x9E3779B97F4A7C15 - (1 << 64)     # splitmix64 constants, as signed 64-bit integers
_M1 = 0xBF58476D1CE4E5B9 - (1 << 64)
_M2 = 0x94D049BB133111EB - (1 << 64)


def _srl(x: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's ``>>`` is arithmetic on signed integers)."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def uniforms(seeds: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """One uniform in [0, 1) per row, a pure function of (row seed, step): splitmix64's finaliser
    over ``seed + (step + 1) * golden``. Counter-based, so every row has its own stream and all rows
    draw in one vectorised call, on any device."""
    z = seeds.long() + (steps.long() + 1) * _G
    z = (z ^ _srl(z, 30)) * _M1
    z = (z ^ _srl(z, 27)) * _M2
    z = z ^ _srl(z, 31)
    return _srl(z, 11).double() * (2.0 ** -53)


# On the CPU a full-vocabulary sampler works through the rows a few at a time, its temporaries (about 8 bytes a
# vocabulary entry a row) within this many bytes, so they stay in the core's cache and in memory malloc keeps.
# Measured on 300 rows of SmolLM2's 49,152-token vocabulary, 2 threads, AMD EPYC (AVX2 and AVX-512 alike): all
# rows at once 158-208 ms a step, 1 MiB slices (two rows) 31-34 ms, with the same picks.
SAMPLER_SLICE_BYTES = 1 << 20


def sample_rows(logits: torch.Tensor, temperature: float, top_k: int, top_p: float, u: torch.Tensor,
                source: torch.Tensor | None = None) -> torch.Tensor:
    """One token per draw: temperature, then top-k, then top-p (HF's order), then the inverse CDF at
    the draw's uniform ``u[r]`` (:func:`uniforms`): token t is picked with probability softmax(scores)[t].
    ``source[r]``: the row of ``logits`` draw r reads (draws from one distribution share its softmax);
    None: one draw per row. Rows are independent: how they are sliced changes no pick."""
    R, V = logits.shape
    if 0 < top_k < V:
        # select before scaling: dividing by a positive temperature keeps the order, and the full
        # vocabulary is then not copied once more every step
        vals, idx = logits.topk(top_k, dim=-1)            # sorted, largest first
        idx = idx if source is None else idx[source]
        return idx.gather(1, _pick(vals, temperature, top_p, u, source)[:, None])[:, 0]
    rows = R if logits.device.type != "cpu" else max(1, SAMPLER_SLICE_BYTES // (8 * V))
    if rows >= R:
        return _pick_full(logits, temperature, top_p, u, source)
    if source is None:
        return torch.cat([_pick_full(logits[i:i + rows], temperature, top_p, u[i:i + rows], None)
                          for i in range(0, R, rows)])
    out = torch.empty_like(source)
    for i in range(0, R, rows):
        draws = torch.nonzero((source >= i) & (source < i + rows)).flatten()
        if len(draws):
            out[draws] = _pick_full(logits[i:i + rows], temperature, top_p, u[draws], source[draws] - i)
    return out


def _pick_full(logits: torch.Tensor, temperature: float, top_p: float, u: torch.Tensor,
               source: torch.Tensor | None) -> torch.Tensor:
    if top_p < 1:
        vals, idx = logits.sort(dim=-1, descending=True)
        idx = idx if source is None else idx[source]
        return idx.gather(1, _pick(vals, temperature, top_p, u, source)[:, None])[:, 0]
    return _pick(logits, temperature, top_p, u, source)


def _pick(vals: torch.Tensor, temperature: float, top_p: float, u: torch.Tensor,
          source: torch.Tensor | None) -> torch.Tensor:
    """Positions into ``vals`` (sorted, largest first, whenever ``top_p`` < 1) drawn by the inverse CDF."""
    probs = (vals.float() / temperature).softmax(dim=-1)
    if top_p < 1:
        # keep a token while the mass of the tokens above it is < top_p (HF's rule); the top one always
        probs = probs.masked_fill(probs.cumsum(dim=-1) - probs >= top_p, 0.0)
    return inverse_cdf(probs, u.to(probs.device, torch.float64), source)


_BLOCK = 256


def inverse_cdf(probs: torch.Tensor, u: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
    """Per draw, the first index whose cumulative probability (of its row ``source[r]``, default r) exceeds
    ``u[r] * total``.

    Two levels, so a full vocabulary is not cumulated in float64 for every row: the block of 256
    tokens that holds the target (from block sums), then the token within that block. The same
    index a flat cumulative sum gives, up to rounding; never a token of probability 0.
    """
    R, V = probs.shape
    rows = torch.arange(R, device=probs.device) if source is None else source
    if V <= 4 * _BLOCK:
        cdf = probs.double().cumsum(dim=-1)[rows]
        pick = torch.searchsorted(cdf, u[:, None] * cdf[:, -1:], right=True)[:, 0]
        return _positive(probs, pick.clamp_(max=V - 1), rows)
    nb = -(-V // _BLOCK)
    padded = (probs if V == nb * _BLOCK else torch.nn.functional.pad(probs, (0, nb * _BLOCK - V))).view(R, nb, _BLOCK)
    block = padded.sum(dim=-1, dtype=torch.float64)                          # (R, nb)
    cdf_b = block.cumsum(dim=-1)
    target = u * cdf_b[rows, -1]
    b = torch.searchsorted(cdf_b[rows], target[:, None], right=True)[:, 0].clamp_(max=nb - 1)
    residual = target - (cdf_b[rows, b] - block[rows, b])
    within = padded[rows, b].double().cumsum(dim=-1)                         # (draws, 256)
    w = torch.searchsorted(within, residual[:, None], right=True)[:, 0].clamp_(max=_BLOCK - 1)
    return _positive(probs, (b * _BLOCK + w).clamp_(max=V - 1), rows)


def _positive(probs: torch.Tensor, pick: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Rounding can land a target past the last token of positive probability: step back to it."""
    bad = probs[rows, pick] <= 0
    if bool(bad.any()):
        last = (probs > 0).cumsum(dim=-1).argmax(dim=-1)[rows]    # the last index of positive probability
        pick = torch.where(bad, last, pick)
    return pick


def model_logits(output) -> torch.Tensor:
    return output.logits if hasattr(output, "logits") else output[0]


def _eos_ids(model, tokenizer) -> set[int]:
    """EOS ids from the generation config (what ``model.generate`` stops on), else the tokenizer's."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    if eos is None:
        return set()
    return {int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])}
