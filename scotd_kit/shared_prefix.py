"""Shared-prefix attention (Hydragen, Juravsky et al. 2024; vLLM / FlashInfer's cascade attention).

SCoTD samples 30 rationales per instance behind one few-shot block that every instance shares. A
plain KV cache holds a copy of that block per sample row and every decode step reads all copies:
with SmolLM2 at a 680-token prefix and 60 rows that is ~1.9 GB per step. Here the prefix's keys and
values are kept **once**, and attention is split in two exact halves:

* every row's queries attend to the shared prefix as ONE matrix-matrix product (all rows stacked),
* each row attends to its own suffix (its prompt and what it generated so far) under a mask,

and the two partial softmaxes are merged with their log-sum-exps, which gives exactly softmax
attention over ``prefix + suffix`` (up to floating-point rounding).

A second level (Hydragen's hierarchy) serves self-consistency: the k samples of one prompt share
that prompt, so its keys and values are held once per prompt (a :class:`PromptGroups` block), and
the queries of its samples attend to it as one matrix product; a row's own suffix is then only
what it generated. Three partial softmaxes are merged.

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
    groups: "GroupView | None" = None   # per-prompt blocks (decode steps of sampled prompts)

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

    A fused PyTorch kernel that returns the log-sum-exp the merge needs: the CPU's flash-attention kernel,
    CUDA's memory-efficient one (:func:`_efficient_attention`; CUDA's flash kernel takes no mask); the same
    in plain tensor math elsewhere, or if a kernel refuses the inputs.
    """
    if fused:
        kernel = FUSED.get(q.device.type)
        if kernel is not None and q.dtype in kernel[1]:
            try:
                return kernel[0](q, k, v, bias, scaling)
            except RuntimeError:
                pass
    return _attend_math(q, k, v, bias, scaling)


def _attend_math(q, k, v, bias, scaling):
    s = torch.matmul(q, k.transpose(-1, -2)).float() * scaling
    if bias is not None:
        s = s + bias.float()
    m = s.amax(dim=-1, keepdim=True)
    e = torch.exp(s - m)
    total = e.sum(dim=-1, keepdim=True)
    out = torch.matmul(e.to(v.dtype), v).float() / total
    return out, (m + torch.log(total))[..., 0]


def _cpu_flash(q, k, v, bias, scaling):
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        q, k, v, 0.0, False, attn_mask=bias, scale=scaling)[:2]
    return out.float(), lse.float()


def _efficient_attention(q, k, v, bias, scaling, op=None):
    """CUDA's memory-efficient SDPA kernel with its log-sum-exp. Its contract (PyTorch's own SDPA wrapper
    meets it the same way): the bias in the query's dtype, its last dimension's stride a multiple of 16
    (padded, then viewed back to the keys' length); the log-sum-exp comes padded to a multiple of 32
    queries and is cut back."""
    op = op or torch.ops.aten._scaled_dot_product_efficient_attention
    n, m = q.shape[-2], k.shape[-2]
    if bias is not None:
        bias = bias.to(q.dtype)
        pad = (-m) % 16
        if pad:
            bias = torch.nn.functional.pad(bias, (0, pad))[..., :m]
        bias = bias.expand(q.shape[0], q.shape[1], n, m)
    out, lse = op(q, k, v, bias, True, 0.0, False, scale=scaling)[:2]
    return out.float(), lse[..., :n].float()


# device type -> (kernel, the dtypes it takes)
FUSED = {"cpu": (_cpu_flash, (torch.float32, torch.bfloat16)),
         "cuda": (_efficient_attention, (torch.float32, torch.float16, torch.bfloat16))}


@dataclass
class GroupView:
    """Per-prompt key/value blocks as one decode step sees them.

    ``keys[l]`` / ``values[l]``: layer ``l``'s blocks ``(G, Hkv, L, d)``; ``bias`` ``(G, 1, 1, L)``:
    0 on a block's real columns, the most negative float past its prompt. ``gather`` ``(G, r)``: the
    rows attending to each block (padding repeats a row; its output is dropped); ``inverse`` ``(R,)``:
    row ``i``'s place ``group * r + rank`` in that layout.
    """

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    bias: torch.Tensor
    gather: torch.Tensor
    inverse: torch.Tensor

    @classmethod
    def of_rows(cls, keys, values, bias, row_group: torch.Tensor) -> "GroupView":
        """The layout for rows whose blocks are ``row_group`` (a block index per row)."""
        G, R = bias.shape[0], row_group.shape[0]
        counts = torch.bincount(row_group, minlength=G)
        r = max(1, int(counts.max()))
        order = torch.argsort(row_group, stable=True)
        starts = counts.cumsum(0) - counts
        rank = torch.empty_like(row_group)
        rank[order] = torch.arange(R, device=row_group.device) - starts[row_group[order]]
        gather = torch.zeros((G, r), dtype=torch.long, device=row_group.device)
        gather[row_group, rank] = torch.arange(R, device=row_group.device)
        return cls(keys, values, bias, gather, row_group * r + rank)


def _attend_groups(qs: torch.Tensor, gk: torch.Tensor, gv: torch.Tensor, view: GroupView, scaling: float,
                   fused: bool):
    """Rows' folded queries ``(R, Hkv, n, d)`` against their prompt blocks: one ``(G, Hkv, r*n, L)``
    problem (every row of a block stacked), back in row order as (out, log-sum-exp)."""
    R, Hkv, n, d = qs.shape
    G, r = view.gather.shape
    qg = qs[view.gather.reshape(-1)].view(G, r, Hkv, n, d).transpose(1, 2).reshape(G, Hkv, r * n, d)
    out, lse = _attend(qg, gk, gv, view.bias, scaling, fused)
    out = out.view(G, Hkv, r, n, d).transpose(1, 2).reshape(G * r, Hkv, n, d)[view.inverse]
    lse = lse.view(G, Hkv, r, n).transpose(1, 2).reshape(G * r, Hkv, n)[view.inverse]
    return out, lse


def merged_attention(query: torch.Tensor, prefix_k: torch.Tensor | None, prefix_v: torch.Tensor | None,
                     key: torch.Tensor, value: torch.Tensor, suffix_mask: torch.Tensor | None,
                     scaling: float, *, bias: torch.Tensor | None = None, fused: bool = True,
                     groups: tuple[torch.Tensor, torch.Tensor, GroupView] | None = None) -> torch.Tensor:
    """Softmax attention of ``query`` over ``prefix + [prompt block +] suffix``, computed in parts.

    ``query`` ``(R, H, q, d)``; ``prefix_k/v`` ``(Hkv, P, d)`` shared by every row (or None);
    ``key/value`` ``(R, Hkv, S, d)`` per row; ``suffix_mask`` bool ``(R, q, S)`` (or ``bias``, the
    same as :func:`suffix_bias` made it). ``groups``: ``(keys, values, view)``, this layer's
    per-prompt blocks ``(G, Hkv, L, d)`` and the :class:`GroupView` that says which rows attend to
    which (they sit between the prefix and a row's suffix). ``H`` is a multiple of ``Hkv``
    (grouped-query attention; MHA is ``H == Hkv``). Returns ``(R, H, q, d)``. A query with no
    visible suffix position (a padding query) gets weight 0 there, never NaN. ``fused=False``
    skips the fused CPU kernel.
    """
    R, H, q, d = query.shape
    Hkv = key.shape[1]
    g = H // Hkv
    out_dtype = query.dtype
    if bias is None:
        bias = suffix_bias(suffix_mask, g, query.dtype)
    # a group's g query heads share one key head: fold them into the query length
    qs = query.reshape(R, Hkv, g * q, d)
    # a decode step's suffix half is R*Hkv tiny problems: on the CPU plain batched matmuls beat the fused
    # kernel there (384 rows, SmolLM2's heads, 40-100 suffix tokens, bf16: 1.4-2.2 ms against 2.4-5.0 ms per
    # layer); on a GPU the fused kernel saves the dozens of small launches of the plain math
    fused_suffix = fused and (q > 1 or query.device.type != "cpu")
    out, lse = _attend(qs, key, value, bias, scaling, fused_suffix)                  # (R, Hkv, g*q, d), (R, Hkv, g*q)
    parts = []
    if prefix_k is not None:
        # every row's queries against the one shared prefix: a single (Hkv, R*g*q, P) problem
        qp = qs.transpose(0, 1).reshape(1, Hkv, R * g * q, d)
        out_p, lse_p = _attend(qp, prefix_k[None], prefix_v[None], None, scaling, fused)
        parts.append((out_p[0].view(Hkv, R, g * q, d).transpose(0, 1), lse_p[0].view(Hkv, R, g * q).transpose(0, 1)))
    if groups is not None:
        parts.append(_attend_groups(qs, groups[0], groups[1], groups[2], scaling, fused))
    if not parts:
        return out.reshape(R, H, q, d).to(out_dtype)
    parts.append((out, lse))

    # merge the partial softmaxes with their log-sum-exps
    m = parts[0][1]
    for _, lse_i in parts[1:]:
        m = torch.maximum(m, lse_i)
    weights = [torch.exp(lse_i - m)[..., None] for _, lse_i in parts]
    num, den = parts[0][0] * weights[0], weights[0]
    for (out_i, _), w in zip(parts[1:], weights[1:]):
        num, den = num + out_i * w, den + w
    return (num / den).reshape(R, H, q, d).to(out_dtype)


def _attention_forward(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """The function registered with transformers' ``AttentionInterface`` (same signature as its own)."""
    state: PrefixState | None = kwargs.get("scotd_state")
    if state is None:
        raise RuntimeError(f"{ATTENTION_NAME} attention needs the scotd_state keyword (use scotd_kit.generation)")
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    pk, pv = state.prefix[module.layer_idx] if state.prefix is not None else (None, None)
    bias = state.bias(query.shape[1] // key.shape[1], query.dtype)
    view = state.groups
    groups = (view.keys[module.layer_idx], view.values[module.layer_idx], view) if view is not None else None
    out = merged_attention(query, pk, pv, key, value, None, scaling, bias=bias, groups=groups)
    return out.transpose(1, 2).contiguous(), None   # (R, q, H, d), as transformers' own functions return


class PromptGroups:
    """Keys/values of the prompts whose samples are decoding: one block per prompt, not one copy per
    sample. Blocks are reused once a prompt's last sample finishes; the store doubles when full."""

    def __init__(self, n_layers: int, length: int):
        self.n_layers = n_layers
        self.length = length                  # columns per block: the longest prompt
        self.keys: list[torch.Tensor] = []    # per layer (G, Hkv, length, d)
        self.values: list[torch.Tensor] = []
        self.bias: torch.Tensor | None = None  # (G, 1, 1, length): 0 on a prompt's columns, -max past it
        self.free: list[int] = []
        self.block: dict[int, int] = {}       # prompt -> its block

    def add(self, prompt: int, kv: list[tuple[torch.Tensor, torch.Tensor]]) -> int:
        """The block of ``prompt``, loading its per-layer ``(Hkv, L, d)`` keys/values on first use."""
        if prompt in self.block:
            return self.block[prompt]
        if not self.free:
            self._grow(kv[0][0])
        b = self.free.pop()
        n = kv[0][0].shape[1]
        for layer_k, layer_v, (k, v) in zip(self.keys, self.values, kv):
            layer_k[b, :, :n] = k
            layer_v[b, :, :n] = v
        self.bias[b] = torch.finfo(self.bias.dtype).min
        self.bias[b, ..., :n] = 0
        self.block[prompt] = b
        return b

    def release(self, prompt: int) -> None:
        self.free.append(self.block.pop(prompt))

    def _grow(self, like: torch.Tensor) -> None:
        old = 0 if self.bias is None else self.bias.shape[0]
        size = max(4, 2 * old)

        def grown(t: torch.Tensor | None) -> torch.Tensor:
            new = like.new_zeros((size, like.shape[0], self.length, like.shape[-1]))
            if t is not None:
                new[:old] = t
            return new

        self.keys = [grown(t) for t in (self.keys or [None] * self.n_layers)]
        self.values = [grown(t) for t in (self.values or [None] * self.n_layers)]
        bias = like.new_full((size, 1, 1, self.length), torch.finfo(like.dtype).min)
        if self.bias is not None:
            bias[:old] = self.bias
        self.bias = bias
        self.free.extend(range(size - 1, old - 1, -1))   # pop() hands out the lowest first

    def view(self, row_block: torch.Tensor) -> GroupView:
        return GroupView.of_rows(self.keys, self.values, self.bias, row_block)


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
        has not written. ``keys`` / ``values`` stay views, as transformers expects. With
        ``cache.rows`` set, the step runs for those slots only (the engine's other slots repeat one of
        them: :class:`scotd_kit.generation._SlotEngine`), and their rows are gathered.
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
            rows = c.rows if c.rows is not None else torch.arange(key_states.shape[0], device=key_states.device)
            self.buf_k[rows, :, c.write_cols] = key_states[:, :, 0]
            self.buf_v[rows, :, c.write_cols] = value_states[:, :, 0]
            self.keys = self.buf_k[:, :, :c.read_len]
            self.values = self.buf_v[:, :, :c.read_len]
            if c.rows is not None:
                # the rows' keys/values gathered into one scratch pair every layer reuses (a layer's attention reads
                # them before the next layer's update), not a fresh pair per layer and step: 2-3% of the demo's
                # corpus stage on a 2-core CPU
                sk, sv = c.scratch(len(rows), self.keys)
                self.keys = torch.index_select(self.keys, 0, rows, out=sk)
                self.values = torch.index_select(self.values, 0, rows, out=sv)
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
            self.copy(holes, movers, cols)
            self.buf_k, self.buf_v = self.buf_k[:keep], self.buf_v[:keep]

        def copy(self, dst: torch.Tensor, src: torch.Tensor, cols: int) -> None:
            """Slots ``dst`` take the first ``cols`` columns of slots ``src``."""
            if len(dst):
                self.buf_k[dst, :, :cols] = self.buf_k[src, :, :cols]
                self.buf_v[dst, :, :cols] = self.buf_v[src, :, :cols]

        def get_seq_length(self):
            return self.cache.read_len

        def crop(self, tokens_to_remove):
            raise NotImplementedError("the kit's slot cache is never cropped")

    return SlotLayer


_SLOT_LAYER = None


class _Scratch:
    """Two buffers (keys, values) that grow to the largest gather asked for and are handed out as views."""

    def __init__(self):
        self.k = self.v = None

    def __call__(self, rows: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (rows, *like.shape[1:])
        n = rows * like[0].numel()
        if self.k is None or self.k.numel() < n or self.k.dtype != like.dtype or self.k.device != like.device:
            self.k, self.v = like.new_empty(n), like.new_empty(n)
        return self.k[:n].view(shape), self.v[:n].view(shape)


def new_slot_cache(config, slots: int, capacity: int):
    """A transformers ``DynamicCache`` of :class:`SlotLayer` layers: ``slots`` decode rows of at most
    ``capacity`` suffix tokens each. The engine sets ``write_cols`` (per row) and ``read_len`` before
    every forward pass, and ``rows`` (None: every slot) when a step runs for some slots only."""
    global _SLOT_LAYER
    from transformers import DynamicCache

    if _SLOT_LAYER is None:
        _SLOT_LAYER = _slot_layer_class()
    cache = DynamicCache(config=config)
    cache.slots, cache.capacity, cache.read_len, cache.rows = slots, capacity, 0, None
    cache.scratch = _Scratch()
    cache.write_cols = torch.zeros(slots, dtype=torch.long)
    n_layers = len(cache.layers) or config.get_text_config().num_hidden_layers
    cache.layers = [_SLOT_LAYER(cache) for _ in range(n_layers)]
    cache.layer_class_to_replicate = None
    return cache


def prefix_kv(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer ``(keys, values)`` of a batch-1 cache, as ``(Hkv, P, d)`` tensors."""
    return [(layer.keys[0], layer.values[0]) for layer in cache.layers]
