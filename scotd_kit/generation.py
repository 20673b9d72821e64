"""The kit's batched decode loop over HF causal LMs (teachers sample with it, evaluation decodes with it).

Why not ``model.generate``: SCoTD samples 30 rationales per instance behind a long few-shot block that
every instance shares. ``generate`` re-encodes that block for every prompt and every sample, and one
global RNG makes a sample depend on the rest of the batch. Here:

* the shared ``prefix`` is prefilled once and its KV cache reused by every prompt;
* each prompt's own tokens are prefilled once, then the cache is expanded to its ``n`` sample rows;
* rows leave the batch as soon as they stop (stop string on decoded text, or EOS);
* each sample row owns a ``torch.Generator`` seeded from (seed, prompt index, sample index), and draws
  exactly one noise vector per step (Gumbel-max), so what it samples does not depend on the batch.

Layout of one batch of ``B`` prompts (``P`` prefix tokens, prompts left-padded to ``L``)::

    [prefix (P, shared)] [pad ... pad][prompt i tokens]   -> then one column per generated token

The 2-D attention mask zeros the pads; ``position_ids`` run on from ``P`` over each prompt's real
tokens, so every row sees exactly the positions of its unpadded sequence ``prefix + prompt``.

Tokenisation boundary: prefix and prompt are tokenised separately and concatenated. That equals
tokenising ``prefix + prompt`` when the prefix ends at a token boundary -- SCoTD's few-shot block ends
with ``"\\n\\n"`` and prompts start with ``"Q:"``, which BPE tokenisers never merge across. Special
tokens (a BOS) go on the first segment only.
"""
from __future__ import annotations

import copy
import hashlib
import inspect
from dataclasses import dataclass

import torch

FINISH_REASONS = ("stop", "eos", "length")
# Tokens decoded at the tail of a row to look for a stop string: a stop string spans at most as many
# tokens as it has characters, plus a few for byte-level pieces that decode to nothing on their own.
_STOP_WINDOW_EXTRA = 8


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
    logprobs: list[float]     # log p(token) under the model's raw softmax (temperature 1), per generated token
    finish_reason: str        # "stop" | "eos" | "length"
    prompt_tokens: int        # prefix + prompt tokens the model saw


def row_seed(seed: int, i: int | None, j: int) -> int:
    """The seed of sample ``j`` of prompt ``i``: a hash, so nearby seeds give unrelated streams."""
    key = f"scotd-kit/{seed}/{'' if i is None else i}/{j}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") & ((1 << 63) - 1)


def generate(model, tokenizer, prompts: list[str], config: GenerationConfig, *, prefix: str = "",
             seeds: list[int] | None = None, batch_size: int = 64, progress: bool = False) -> list[list[Generation]]:
    """result[i][j] = sample j of prompt i; the model sees prefix + prompts[i].

    ``seeds``: one per prompt. When given, sample j of prompt i is seeded by ``(seeds[i], j)`` alone, so
    it does not move when the prompt list changes (a resumed run asking only for missing prompts gets
    the same samples); otherwise by ``(config.seed, i, j)``.

    ``batch_size`` counts sequences decoded together (prompts x samples): a batch holds
    ``max(1, batch_size // n)`` prompts, so the KV cache stays bounded whatever ``n`` is. Greedy
    decoding with ``n > 1`` decodes one row per prompt and repeats it (the samples would be identical).
    """
    prompts = list(prompts)
    if seeds is not None and len(seeds) != len(prompts):
        raise ValueError(f"seeds has {len(seeds)} entries for {len(prompts)} prompts")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size}")
    if not prompts:
        return []
    rows_per_prompt = config.n if config.do_sample else 1
    prompts_per_batch = max(1, batch_size // rows_per_prompt)
    engine = _Engine(model, tokenizer, config, prefix)

    from tqdm.auto import tqdm

    bar = tqdm(total=len(prompts) * config.n, desc="generate", unit="seq", disable=not progress)
    results: list[list[Generation]] = []
    try:
        for start in range(0, len(prompts), prompts_per_batch):
            idx = list(range(start, min(start + prompts_per_batch, len(prompts))))
            row_seeds = [[row_seed(seeds[i], None, j) if seeds is not None else row_seed(config.seed, i, j)
                          for j in range(rows_per_prompt)] for i in idx]
            batch = engine.run([prompts[i] for i in idx], idx, row_seeds, bar)
            if not config.do_sample:
                batch = [[copy.deepcopy(g[0]) for _ in range(config.n)] for g in batch]
                bar.update(len(idx) * (config.n - 1))
            results.extend(batch)
    finally:
        bar.close()
    return results


class _Engine:
    """One model + tokenizer + config + prefilled prefix; ``run`` decodes one batch of prompts."""

    def __init__(self, model, tokenizer, config: GenerationConfig, prefix: str):
        self.model, self.tok, self.cfg = model, tokenizer, config
        self.device = next(model.parameters()).device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.eos_ids = _eos_ids(model, tokenizer)
        self.keep_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
        self.stop_window = max((len(s) for s in config.stop), default=0) + _STOP_WINDOW_EXTRA
        self.prefix_ids = tokenizer(prefix, add_special_tokens=True)["input_ids"] if prefix else []
        self.prefix_cache = self._prefill_prefix() if self.prefix_ids else None

    # -- prefill -------------------------------------------------------------------------------
    def _forward(self, input_ids, attention_mask, position_ids, cache, last_only=True):
        kwargs = dict(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                      past_key_values=cache, use_cache=True)
        if last_only and self.keep_logits:
            kwargs["logits_to_keep"] = 1  # prompt positions' logits are never used: skip the vocab matmul
        return model_logits(self.model(**kwargs))

    @torch.inference_mode()
    def _prefill_prefix(self):
        ids = torch.tensor([self.prefix_ids], device=self.device)
        cache = new_cache(self.model.config)
        self._forward(ids, torch.ones_like(ids), torch.arange(ids.shape[1], device=self.device)[None], cache)
        return cache

    def _new_cache(self, rows: int):
        if self.prefix_cache is None:
            return new_cache(self.model.config)
        cache = copy.deepcopy(self.prefix_cache)
        cache.batch_repeat_interleave(rows)
        return cache

    def _tokenize(self, prompts: list[str], idx: list[int]) -> list[list[int]]:
        out = []
        for p, i in zip(prompts, idx):
            ids = self.tok(p, add_special_tokens=not self.prefix_ids)["input_ids"]
            if not ids:
                raise ValueError(f"prompt {i} tokenises to no tokens: {p!r}")
            out.append(ids)
        return out

    # -- decode --------------------------------------------------------------------------------
    @torch.inference_mode()
    def run(self, prompts: list[str], idx: list[int], row_seeds: list[list[int]], bar) -> list[list[Generation]]:
        cfg, dev, P = self.cfg, self.device, len(self.prefix_ids)
        ids = self._tokenize(prompts, idx)
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
        logits = self._forward(input_ids, mask, pos, cache)[:, -1]

        n = len(row_seeds[0])
        if n > 1:  # expand the prompt rows to their samples: no second prefill
            logits = logits.repeat_interleave(n, dim=0)
            mask = mask.repeat_interleave(n, dim=0)
            cache.batch_repeat_interleave(n)
        next_pos = torch.tensor([P + len(x) for x in ids for _ in range(n)], device=dev)
        gens = [_generator(s, dev) for seeds in row_seeds for s in seeds] if cfg.do_sample else None

        R = B * n
        live = list(range(R))  # batch row -> global row
        tokens: list[list[int]] = [[] for _ in range(R)]
        logps: list[list[float]] = [[] for _ in range(R)]
        finish: list[str | None] = [None] * R
        while True:
            logits = logits.float()
            chosen = self._choose(logits, [gens[r] for r in live] if gens else None)
            lp = torch.log_softmax(logits, dim=-1).gather(1, chosen[:, None])[:, 0]
            keep = []
            for b, (r, t, l) in enumerate(zip(live, chosen.tolist(), lp.tolist())):
                tokens[r].append(t)
                logps[r].append(l)
                finish[r] = self._finished(tokens[r])
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
            logits = self._forward(chosen[:, None], mask, next_pos[:, None], cache)[:, -1]
            next_pos = next_pos + 1

        prompt_tokens = [P + len(x) for x in ids]
        return [[self._result(tokens[b * n + j], logps[b * n + j], finish[b * n + j], prompt_tokens[b])
                 for j in range(n)] for b in range(B)]

    def _choose(self, logits: torch.Tensor, gens) -> torch.Tensor:
        if gens is None:
            return logits.argmax(dim=-1)
        return sample_rows(logits, self.cfg.temperature, self.cfg.top_k, self.cfg.top_p, gens)

    def _finished(self, toks: list[int]) -> str | None:
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

    def _result(self, toks: list[int], logps: list[float], finish: str, prompt_tokens: int) -> Generation:
        text_ids = toks[:-1] if finish == "eos" else toks
        text = cut_at_stop(self.tok.decode(text_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False),
                           self.cfg.stop)
        return Generation(text=text, token_ids=list(toks), logprobs=list(logps), finish_reason=finish,
                          prompt_tokens=prompt_tokens)


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


def sample_rows(logits: torch.Tensor, temperature: float, top_k: int, top_p: float, gens) -> torch.Tensor:
    """One token per row: temperature, then top-k, then top-p (HF's order), then Gumbel-max.

    Row ``r`` draws its noise from ``gens[r]`` only, a fixed amount per step (``top_k`` values, or the
    vocabulary size when top-k is off), so its stream never depends on the other rows.
    """
    scores = logits / temperature
    V = scores.shape[-1]
    if 0 < top_k < V:
        vals, idx = scores.topk(top_k, dim=-1)            # sorted, largest first
    elif top_p < 1:
        vals, idx = scores.sort(dim=-1, descending=True)
    else:
        vals, idx = scores, None
    if top_p < 1:
        probs = vals.softmax(dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs
        # keep a token while the mass of the tokens above it is < top_p (HF's rule); the top one always
        vals = vals.masked_fill(mass_before >= top_p, float("-inf"))
    noise = torch.empty_like(vals)
    for r, g in enumerate(gens):
        noise[r].exponential_(generator=g)
    # Gumbel-max: argmax(log p - log E), E ~ Exp(1), picks token t with probability softmax(vals)[t]
    pick = (vals - noise.log()).argmax(dim=-1)
    return pick if idx is None else idx.gather(1, pick[:, None])[:, 0]


def model_logits(output) -> torch.Tensor:
    return output.logits if hasattr(output, "logits") else output[0]


def _generator(seed: int, device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def _eos_ids(model, tokenizer) -> set[int]:
    """EOS ids from the generation config (what ``model.generate`` stops on), else the tokenizer's."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    if eos is None:
        return set()
    return {int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])}
