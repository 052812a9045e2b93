"""Per-token log-probabilities of completion tokens, without a full-sequence log_softmax."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


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
