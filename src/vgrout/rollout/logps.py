"""Per-token log-probabilities of completion tokens, without a full-sequence log_softmax.

Two forwards give the same numbers: the plain one runs prompt + completion for every row;
the shared-prompt one runs each distinct prompt once (a "unit": rows with equal prompt and
equal `key`, e.g. a GRPO group in one zone), repeats its KV cache inside autograd and runs
only the completions against it. In a GRPO batch 3/4 of the tokens are prompt tokens,
identical across the G rows of a group, so sharing cuts the forward and backward ~2-3x.
Gradients flow into the prompt part through the repeated cache (it is an `index_select`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor

# (part, rows) -> context around one forward. part: "prompt" (U unit rows), "completion" or
# "whole" (all n rows); rows (U,) or (n,) index the caller's rows, so it can slice its own masks.
ForwardContext = Callable[[str, Tensor], AbstractContextManager]


def position_ids_from_mask(attention_mask: Tensor) -> Tensor:
    """cumsum(mask) - 1 (clamped at 0 on left padding): the rule generation uses too."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def per_token_logps(model, input_ids: Tensor, attention_mask: Tensor, completion_len: int) -> Tensor:
    """log p(token) for the last `completion_len` positions. input_ids (N, L) -> (N, T) float32.

    Only the T+1 last logits are computed (`logits_to_keep`), and the log-prob is one
    cross-entropy per token, so nothing of size (N, L, V) is ever built.
    """
    if completion_len < 1 or completion_len >= input_ids.shape[1]:
        raise ValueError(f"completion_len must be in [1, L) with L={input_ids.shape[1]}, got {completion_len}")
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids_from_mask(attention_mask),
                use_cache=False, logits_to_keep=completion_len + 1)
    logits = out.logits[:, :-1].float()  # (N, T, V): the logit at position t predicts token t+1
    targets = input_ids[:, -completion_len:]  # (N, T)
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    return -nll.view(targets.shape)


def prefix_units(prompt_ids: Tensor, prompt_mask: Tensor, key: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Rows with equal prompt (ids and mask) and equal `key` (n,) share one prompt forward.

    Returns (first (U,): one representative row per unit, ascending; unit_of_row (n,) in [0, U)).
    Units are found by content, so any row order and any mix of groups is handled exactly.
    """
    n = prompt_ids.shape[0]
    cols = [prompt_ids.long(), prompt_mask.long()] + ([] if key is None else [key.long().reshape(n, 1).to(prompt_ids.device)])
    _, inverse = torch.unique(torch.cat(cols, 1), dim=0, return_inverse=True)  # (n,) in sorted-unique order
    rows = torch.arange(n, device=inverse.device)
    first = torch.full((int(inverse.max()) + 1,), n, dtype=torch.long, device=inverse.device)
    first = first.scatter_reduce(0, inverse, rows, reduce="amin")  # (U,) lowest row of each unit
    order = torch.argsort(first)  # units numbered by first appearance
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel(), device=order.device)
    return first[order], rank[inverse]


def _expand_cache(cache, unit_of_row: Tensor) -> None:
    """Every layer's (U, h, Lp, d) keys/values -> (n, h, Lp, d) rows, in autograd."""
    layers = getattr(cache, "layers", None)
    if not layers:
        raise TypeError(f"shared-prompt log-probs need a transformers DynamicCache with .layers, got {type(cache).__name__}")
    for layer in layers:
        if not hasattr(layer, "keys") or getattr(layer, "is_sliding", False):
            raise TypeError(f"shared-prompt log-probs support full-attention DynamicLayer caches, got "
                            f"{type(layer).__name__}; pass share_prompt=False")
        layer.keys = layer.keys.index_select(0, unit_of_row)
        layer.values = layer.values.index_select(0, unit_of_row)


def completion_logps(model, prompt_ids: Tensor, prompt_mask: Tensor, completion_ids: Tensor, completion_mask: Tensor,
                     key: Tensor | None = None, share_prompt: bool = True,
                     context: ForwardContext | None = None, logps: bool = True) -> tuple[Tensor | None, int]:
    """log p(completion token) (n, T) float32, and the number of prompt rows actually run.

    prompt (n, Lp) left-padded, completion (n, T) right-padded. With `share_prompt`, each
    unit of `prefix_units(prompt, key)` runs its prompt once; otherwise (or when every row is
    its own unit) one plain forward per row. `context(part, rows)` wraps each forward (zones,
    adapter mode, bottleneck capture): it must make the prompt forward of a unit compute what
    the plain forward computes on that unit's prompt positions. Positions are the plain
    forward's: cumsum(mask) - 1 over prompt + completion.
    `logps=False` runs the same forwards for their side effects only (e.g. a bottleneck capture
    in `context`): the decoder computes exactly the same hidden states, but the lm_head sees one
    position per row and no log-softmax runs (in the toy model, vocab 2k x hidden 128, the head
    is about a fifth of the per-token matmul work); returns (None, prompt rows run).
    """
    n, T = completion_ids.shape
    ctx = context or (lambda part, rows: nullcontext())
    mask = torch.cat([prompt_mask, completion_mask], 1)  # (n, Lp + T)
    first, unit_of_row = prefix_units(prompt_ids, prompt_mask, key) if share_prompt else (None, None)
    if first is None or first.numel() == n:
        with ctx("whole", torch.arange(n, device=completion_ids.device)):
            if not logps:
                model(input_ids=torch.cat([prompt_ids, completion_ids], 1), attention_mask=mask,
                      position_ids=position_ids_from_mask(mask), use_cache=False, logits_to_keep=1)
                return None, n
            return per_token_logps(model, torch.cat([prompt_ids, completion_ids], 1), mask, T), n
    from transformers import DynamicCache

    from vgrout.rollout.decode import cache_kwarg

    Lp = prompt_ids.shape[1]
    pos = position_ids_from_mask(mask)  # (n, Lp + T)
    cache = DynamicCache()
    kw = cache_kwarg(model)
    with ctx("prompt", first):
        first_out = model(input_ids=prompt_ids[first], attention_mask=prompt_mask[first], position_ids=pos[first, :Lp],
                          use_cache=True, logits_to_keep=1, **{kw: cache})
    _expand_cache(cache, unit_of_row)  # filled in place by the forward
    with ctx("completion", torch.arange(n, device=completion_ids.device)):
        out = model(input_ids=completion_ids, attention_mask=mask, position_ids=pos[:, Lp:],
                    use_cache=True, logits_to_keep=T if logps else 1, **{kw: cache})
    if not logps:
        return None, int(first.numel())
    head = first_out.logits[:, -1].float().index_select(0, unit_of_row)  # (n, V): predicts completion token 0
    logits = torch.cat([head[:, None], out.logits[:, :-1].float()], 1)  # (n, T, V)
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), completion_ids.reshape(-1), reduction="none")
    return -nll.view(n, T), int(first.numel())
