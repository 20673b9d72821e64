"""Shared-prefix attention (Hydragen, Juravsky et al. 2024; vLLM / FlashInfer's cascade attention).

SCoTD samples 30 rationales per instance behind one few-shot block that every instance shares. A
plain KV cache holds a copy of that block per sample row and every decode step reads all copies:
with SmolLM2 at a 680-token prefix and 60 rows that is ~1.9 GB per step. Here the prefix's keys and
values are kept **once**, and attention is split in two exact halves:

* every row's queries attend to the shared prefix as ONE matrix-matrix product (all rows stacked),
* each row attends to its own suffix (its prompt and what it generated so far) under a mask,

and the two partial softmaxes are merged with their log-sum-exps, which gives exactly softmax
attention over ``prefix + suffix`` (up to floating-point rounding).

It plugs into transformers through its public interfaces: :data:`ATTENTION_NAME` is registered
with ``AttentionInterface``; the engine switches a model's ``config._attn_implementation`` to it
for the duration of a call (:func:`shared_prefix_attention_on`) and passes a :class:`PrefixState`
as the ``scotd_state`` keyword, which transformers forwards to every attention call. No mask
function is registered for it, so transformers builds no mask of its own (the state carries the
suffix mask). :func:`new_slot_cache` makes the cache the model writes the suffix into: one row per
decode slot, each row at its own length, so finished rows can be refilled with new work.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

ATTENTION_NAME = "scotd_shared_prefix"


@dataclass
class PrefixState:
    """What one forward pass needs beyond the model's own inputs.

    ``prefix[l]``: layer ``l``'s prefix keys and values, each ``(kv_heads, P, head_dim)``, or
    ``None`` without a prefix.  ``suffix_mask``: bool ``(rows, q_len, kv_len)``, True = attend.
    """

    prefix: list[tuple[torch.Tensor, torch.Tensor]] | None
    suffix_mask: torch.Tensor

    def __post_init__(self):
        self._bias: dict = {}

    def bias(self, group: int, dtype: torch.dtype) -> torch.Tensor:
        """The suffix mask as an additive bias ``(rows, 1, group * q, kv)``, built once per forward
        pass (every layer reuses it): query row ``gi * q + qi`` of a group sees ``suffix_mask[qi]``."""
        key = (group, dtype)
        if key not in self._bias:
            self._bias[key] = suffix_bias(self.suffix_mask, group, dtype)
        return self._bias[key]


def suffix_bias(suffix_mask: torch.Tensor, group: int, dtype: torch.dtype) -> torch.Tensor:
    # the most negative finite value, not -inf: a query with nothing visible (a padding query) then
    # gets a log-sum-exp of about -3e38, i.e. weight 0 in the merge, instead of NaN
    bias = torch.zeros(suffix_mask.shape, dtype=dtype, device=suffix_mask.device)
    bias.masked_fill_(~suffix_mask, torch.finfo(dtype).min)
    bias = bias[:, None]                                                       # (R, 1, q, S)
    return bias if bias.shape[2] == 1 else bias.repeat(1, 1, group, 1)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None, scaling: float,
            fused: bool = True):
    """(softmax attention output, its log-sum-exp) for ``q`` ``(B, h, n, d)`` over ``k``/``v`` ``(B, h, m, d)``.

    On the CPU this is PyTorch's fused flash-attention kernel, which returns the log-sum-exp the
    merge needs; elsewhere (and if that kernel refuses the inputs) the same in plain tensor math.
    """
    if fused and q.device.type == "cpu" and q.dtype in (torch.float32, torch.bfloat16):
        try:
            out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
                q, k, v, 0.0, False, attn_mask=bias, scale=scaling)[:2]
            return out.float(), lse.float()
        except RuntimeError:
            pass
    s = torch.matmul(q, k.transpose(-1, -2)).float() * scaling
    if bias is not None:
        s = s + bias.float()
    m = s.amax(dim=-1, keepdim=True)
    e = torch.exp(s - m)
    total = e.sum(dim=-1, keepdim=True)
    out = torch.matmul(e.to(v.dtype), v).float() / total
    return out, (m + torch.log(total))[..., 0]


def merged_attention(query: torch.Tensor, prefix_k: torch.Tensor | None, prefix_v: torch.Tensor | None,
                     key: torch.Tensor, value: torch.Tensor, suffix_mask: torch.Tensor | None,
                     scaling: float, *, bias: torch.Tensor | None = None, fused: bool = True) -> torch.Tensor:
    """Softmax attention of ``query`` over ``prefix + suffix``, computed in two halves.

    ``query`` ``(R, H, q, d)``; ``prefix_k/v`` ``(Hkv, P, d)`` shared by every row (or None);
    ``key/value`` ``(R, Hkv, S, d)`` per row; ``suffix_mask`` bool ``(R, q, S)`` (or ``bias``, the
    same as :func:`suffix_bias` made it). ``H`` is a multiple of ``Hkv`` (grouped-query attention;
    MHA is ``H == Hkv``). Returns ``(R, H, q, d)``. A query with no visible suffix position (a
    padding query) gets weight 0 there, never NaN. ``fused=False`` skips the fused CPU kernel.
    """
    R, H, q, d = query.shape
    Hkv = key.shape[1]
    g = H // Hkv
    out_dtype = query.dtype
    if bias is None:
        bias = suffix_bias(suffix_mask, g, query.dtype)
    # a group's g query heads share one key head: fold them into the query length
    qs = query.reshape(R, Hkv, g * q, d)
    # a decode step's suffix half is R*Hkv tiny problems: plain batched matmuls beat the fused kernel there
    # (384 rows, SmolLM2's heads, 40-100 suffix tokens, bf16: 1.4-2.2 ms against 2.4-5.0 ms per layer)
    out, lse = _attend(qs, key, value, bias, scaling, fused and q > 1)               # (R, Hkv, g*q, d), (R, Hkv, g*q)
    if prefix_k is None:
        return out.reshape(R, H, q, d).to(out_dtype)

    # every row's queries against the one shared prefix: a single (Hkv, R*g*q, P) problem
    qp = qs.transpose(0, 1).reshape(1, Hkv, R * g * q, d)
    out_p, lse_p = _attend(qp, prefix_k[None], prefix_v[None], None, scaling, fused)
    out_p = out_p[0].view(Hkv, R, g * q, d).transpose(0, 1)
    lse_p = lse_p[0].view(Hkv, R, g * q).transpose(0, 1)

    # merge the two partial softmaxes with their log-sum-exps
    m = torch.maximum(lse_p, lse)
    wp, ws = torch.exp(lse_p - m)[..., None], torch.exp(lse - m)[..., None]
    merged = (out_p * wp + out * ws) / (wp + ws)
    return merged.reshape(R, H, q, d).to(out_dtype)


def _attention_forward(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """The function registered with transformers' ``AttentionInterface`` (same signature as its own)."""
    state: PrefixState | None = kwargs.get("scotd_state")
    if state is None:
        raise RuntimeError(f"{ATTENTION_NAME} attention needs the scotd_state keyword (use scotd_kit.generation)")
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    pk, pv = state.prefix[module.layer_idx] if state.prefix is not None else (None, None)
    bias = state.bias(query.shape[1] // key.shape[1], query.dtype)
    out = merged_attention(query, pk, pv, key, value, None, scaling, bias=bias)
    return out.transpose(1, 2).contiguous(), None   # (R, q, H, d), as transformers' own functions return


_REGISTERED = False


def _register() -> None:
    global _REGISTERED
    if not _REGISTERED:
        from transformers import AttentionInterface

        AttentionInterface.register(ATTENTION_NAME, _attention_forward)
        _REGISTERED = True


def supports_shared_prefix(model) -> bool:
    """Whether ``model`` routes attention through transformers' attention interface with only
    full-attention layers (no sliding window), so the shared-prefix path applies."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not getattr(base, "_supports_attention_backend", False):
        return False
    config = base.config
    types = getattr(config, "layer_types", None) or ["full_attention"]
    return all(t == "full_attention" for t in types) and not getattr(config, "sliding_window", None) and \
        not getattr(config, "add_cross_attention", False)


@contextlib.contextmanager
def shared_prefix_attention_on(model):
    """Route ``model``'s attention through :data:`ATTENTION_NAME` inside the block, then restore."""
    _register()
    config = model.config
    before = config._attn_implementation
    config._attn_implementation = ATTENTION_NAME
    try:
        yield
    finally:
        config._attn_implementation = before


def _slot_layer_class():
    from transformers.cache_utils import DynamicLayer

    class SlotLayer(DynamicLayer):
        """Suffix keys/values of every decode slot in one buffer ``(slots, Hkv, capacity, d)``.

        A decode step writes one column per slot, at that slot's own length (``cache.write_cols``),
        and returns the filled part ``[:, :, :cache.read_len]``; the state's mask hides what a slot
        has not written. ``keys`` / ``values`` stay views, as transformers expects.
        """

        def __init__(self, cache):
            super().__init__()
            self.cache = cache

        def _ensure(self, key_states, value_states):
            """Allocate the buffers on first use, shaped and typed like the model's keys/values."""
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
                c = self.cache
                shape = (c.slots, key_states.shape[-3], c.capacity, key_states.shape[-1])
                self.buf_k, self.buf_v = key_states.new_zeros(shape), value_states.new_zeros(shape)

        def update(self, key_states, value_states, *args, **kwargs):
            c = self.cache
            self._ensure(key_states, value_states)
            rows = torch.arange(key_states.shape[0], device=key_states.device)
            self.buf_k[rows, :, c.write_cols] = key_states[:, :, 0]
            self.buf_v[rows, :, c.write_cols] = value_states[:, :, 0]
            self.keys = self.buf_k[:, :, :c.read_len]
            self.values = self.buf_v[:, :, :c.read_len]
            return self.keys, self.values

        def load(self, slots: torch.Tensor, keys: list[torch.Tensor], values: list[torch.Tensor]) -> None:
            """Copy prompts' keys/values ``(Hkv, L_i, d)`` into the first ``L_i`` columns of their slots."""
            self._ensure(keys[0][None], values[0][None])
            for s, k, v in zip(slots.tolist(), keys, values):
                self.buf_k[s, :, :k.shape[1]] = k
                self.buf_v[s, :, :v.shape[1]] = v

        def compact(self, holes: torch.Tensor, movers: torch.Tensor, keep: int, cols: int) -> None:
            """Keep the first ``keep`` slots, after moving slots ``movers`` (beyond them) into ``holes``
            (finished slots among them): copies only the moved rows' first ``cols`` columns, not every kept row."""
            if len(holes):
                self.buf_k[holes, :, :cols] = self.buf_k[movers, :, :cols]
                self.buf_v[holes, :, :cols] = self.buf_v[movers, :, :cols]
            self.buf_k, self.buf_v = self.buf_k[:keep], self.buf_v[:keep]

        def get_seq_length(self):
            return self.cache.read_len

        def crop(self, tokens_to_remove):
            raise NotImplementedError("the kit's slot cache is never cropped")

    return SlotLayer


_SLOT_LAYER = None


def new_slot_cache(config, slots: int, capacity: int):
    """A transformers ``DynamicCache`` of :class:`SlotLayer` layers: ``slots`` decode rows of at most
    ``capacity`` suffix tokens each. The engine sets ``write_cols`` (per row) and ``read_len`` before
    every forward pass."""
    global _SLOT_LAYER
    from transformers import DynamicCache

    if _SLOT_LAYER is None:
        _SLOT_LAYER = _slot_layer_class()
    cache = DynamicCache(config=config)
    cache.slots, cache.capacity, cache.read_len = slots, capacity, 0
    cache.write_cols = torch.zeros(slots, dtype=torch.long)
    n_layers = len(cache.layers) or config.get_text_config().num_hidden_layers
    cache.layers = [_SLOT_LAYER(cache) for _ in range(n_layers)]
    cache.layer_class_to_replicate = None
    return cache


def prefix_kv(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer ``(keys, values)`` of a batch-1 cache, as ``(Hkv, P, d)`` tensors."""
    return [(layer.keys[0], layer.values[0]) for layer in cache.layers]
