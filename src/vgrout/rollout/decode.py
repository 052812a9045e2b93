"""A lean one-token decode step for Qwen3 with a preallocated KV cache.

Why: on a small model the per-token cost of `model(...)` is mostly not matrix multiplies.
transformers rebuilds the attention mask, walks its kwargs plumbing and concatenates a
growing `DynamicCache` (a fresh copy of every layer's keys and values per token, O(T^2)
bytes over a completion). `benchmarks/bench_decode.py` times both paths (docs/results/performance-history.md, "Prompt-shared generation").

`LeanDecoder` runs the same modules of the same model (so a folded or live adapter, norms
and rotary embedding are the model's own) in the order `Qwen3DecoderLayer.forward` runs
them, keeps each prompt's keys/values once (as the prefill left them) and each row's new
keys/values in preallocated (N, H_kv, T, d) buffers. Attention (`attend`) is
softmax(q k^T * scale + padding bias) v over the filled prefix: the same math as
transformers' attention for one query token, up to float rounding. Anything the step does
not reproduce (other architectures, sliding-window layers, training mode) is refused by
`lean_unsupported`, and callers use the plain transformers forward instead.
"""

from __future__ import annotations

import importlib

import torch
from torch import Tensor


def cache_kwarg(model) -> str:
    """The forward's KV-cache argument name: `cache` (transformers >= 5.2x) or `past_key_values`.

    Passing the old name to a new transformers emits a FutureWarning on every call."""
    import inspect

    params = inspect.signature(model.forward).parameters
    if "cache" in params:
        return "cache"
    if "past_key_values" in params:
        return "past_key_values"
    raise TypeError(f"{type(model).__name__}.forward takes neither `cache` nor `past_key_values`; it cannot decode "
                    "with a KV cache")


def lean_unsupported(model) -> str | None:
    """Why `LeanDecoder` cannot run this model (None when it can)."""
    cfg = getattr(model, "config", None)
    if getattr(cfg, "model_type", None) != "qwen3":
        return f"the lean decoder implements Qwen3 only, got model_type {getattr(cfg, 'model_type', None)!r}"
    if any(t != "full_attention" for t in (getattr(cfg, "layer_types", None) or [])):
        return "the lean decoder supports full-attention layers only (this model has sliding-window layers)"
    if model.training:
        return "the lean decoder runs eval-mode models only (attention dropout)"
    return None


def attend(q: Tensor, pk: Tensor, pv: Tensor, pbias: Tensor, ck: Tensor, cv: Tensor, scale: float) -> Tensor:
    """One query token per row against its unit's shared prompt keys plus its own completion keys.

    q (N, H, 1, d); pk, pv (U, H_kv, Lp, d): the prompt of unit u serves rows u*G .. u*G+G-1
    (G = N / U); pbias (U, 1, 1, Lp) 0 or -inf on left padding; ck, cv (N, H_kv, t, d) -> (N, H, 1, d).

    softmax([q pk^T, q ck^T] * scale + bias) [pv; cv]: one softmax over both parts, so the math
    is plain attention over prompt + completion, up to float rounding. The prompt part runs as
    one (G * H/H_kv) x Lp product per unit and key head, reading each prompt key once instead
    of G times (decode attention is bound by reading keys and values); the H / H_kv query
    heads of a key head are stacked too, so grouped-query keys are never repeated.
    """
    n, h, _, d = q.shape
    u, h_kv, lp, _ = pk.shape
    g, r = n // u, h // h_kv

    def to_units(x: Tensor) -> Tensor:  # (N, H_kv, r, k) -> (U, H_kv, G * r, k)
        return x.reshape(u, g, h_kv, r, -1).transpose(1, 2).reshape(u, h_kv, g * r, -1)

    def to_rows(x: Tensor) -> Tensor:  # (U, H_kv, G * r, k) -> (N, H_kv, r, k)
        return x.reshape(u, h_kv, g, r, -1).transpose(1, 2).reshape(n, h_kv, r, -1)

    qr = q.reshape(n, h_kv, r, d)  # query head j reads key head j // r
    sp = to_rows(torch.matmul(to_units(qr), pk.transpose(-1, -2)) * scale + pbias)  # (N, H_kv, r, Lp)
    sc = torch.matmul(qr, ck.transpose(-1, -2)) * scale  # (N, H_kv, r, t)
    probs = torch.softmax(torch.cat([sp, sc], -1), -1, dtype=torch.float32).to(pv.dtype)  # (N, H_kv, r, Lp + t)
    out = to_rows(torch.matmul(to_units(probs[..., :lp]), pv)) + torch.matmul(probs[..., lp:], cv)  # (N, H_kv, r, d)
    return out.reshape(n, h, 1, d)


class LeanDecoder:
    """Decode one token for N rows: prompt keys/values shared per unit, completion ones in static buffers.

    `cache` is a prefill's `DynamicCache` of U prompts ((U, H_kv, Lp, d) per layer, kept as
    is, never copied per row); decoding row i continues prompt i // group (N = U * group), so
    a GRPO group's prompt is prefilled and stored once. `prompt_mask` (U, Lp) is the prompts'
    padding mask.
    """

    def __init__(self, model, cache, group: int, prompt_mask: Tensor, max_new_tokens: int) -> None:
        why = lean_unsupported(model)
        if why is not None:
            raise ValueError(why)
        self.model = model
        self.layers = list(model.model.layers[: model.config.num_hidden_layers])
        self.rope = importlib.import_module(type(self.layers[0].self_attn).__module__).apply_rotary_pos_emb
        u, lp = prompt_mask.shape
        n = u * group
        self.t = 0
        self.pk = [layer.keys for layer in cache.layers[: len(self.layers)]]  # per layer (U, H_kv, Lp, d)
        self.pv = [layer.values for layer in cache.layers[: len(self.layers)]]
        if len(self.pk) != len(self.layers) or any(k.shape[:1] + k.shape[2:3] != (u, lp) for k in self.pk):
            raise ValueError(f"the prefill cache does not hold {len(self.layers)} layers of ({u}, *, {lp}, *) keys")
        k0 = self.pk[0]
        self.ck = [k0.new_empty((n, k0.shape[1], max_new_tokens, k0.shape[3])) for _ in self.layers]  # (N, H_kv, T, d)
        self.cv = [k0.new_empty((n, k0.shape[1], max_new_tokens, k0.shape[3])) for _ in self.layers]
        self.pbias = torch.zeros((u, 1, 1, lp), dtype=k0.dtype, device=k0.device)  # -inf on left padding
        self.pbias.masked_fill_(prompt_mask[:, None, None, :] == 0, float("-inf"))

    @property
    def capacity(self) -> int:
        return self.ck[0].shape[2]

    def step(self, ids: Tensor, pos: Tensor) -> Tensor:
        """ids (N,) the last sampled tokens at positions pos (N,) -> next-token logits (N, V) float32."""
        t = self.t
        if t >= self.capacity:
            raise RuntimeError(f"the KV buffers hold {self.capacity} new tokens; all are used")
        inner = self.model.model
        h = inner.embed_tokens(ids[:, None])  # (N, 1, d_model)
        cos, sin = inner.rotary_emb(h, pos[:, None])  # (N, 1, head_dim)
        n = ids.shape[0]
        for i, layer in enumerate(self.layers):
            a = layer.self_attn
            x = layer.input_layernorm(h)
            q = a.q_norm(a.q_proj(x).view(n, 1, -1, a.head_dim)).transpose(1, 2)  # (N, H, 1, d)
            k = a.k_norm(a.k_proj(x).view(n, 1, -1, a.head_dim)).transpose(1, 2)  # (N, H_kv, 1, d)
            v = a.v_proj(x).view(n, 1, -1, a.head_dim).transpose(1, 2)
            q, k = self.rope(q, k, cos, sin)
            self.ck[i][:, :, t] = k[:, :, 0]
            self.cv[i][:, :, t] = v[:, :, 0]
            o = attend(q, self.pk[i], self.pv[i], self.pbias, self.ck[i][:, :, : t + 1], self.cv[i][:, :, : t + 1],
                       a.scaling)  # (N, H, 1, d)
            h = h + a.o_proj(o.transpose(1, 2).reshape(n, 1, -1))
            h = h + layer.mlp(layer.post_attention_layernorm(h))
        self.t += 1
        return self.model.lm_head(inner.norm(h))[:, -1].float()  # (N, V)
