"""Chat rendering to left-padded ids, and the tokenizer's eos/pad conventions in one place."""

from __future__ import annotations

import torch
from torch import Tensor

from vgrout.chat import encode_text, render_prompt_text  # noqa: F401  (the one renderer; re-exported)


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Left-pad id lists -> ids (P, L), mask (P, L)."""
    if not rows or any(len(r) == 0 for r in rows):
        raise ValueError("cannot pad an empty prompt list or an empty prompt")
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r):] = 1
    return ids, mask


def right_pad(rows: list[list[int]], pad_id: int, width: int | None = None) -> tuple[Tensor, Tensor]:
    """Right-pad id lists -> ids (N, T), mask (N, T)."""
    width = max([len(r) for r in rows] + [1]) if width is None else width
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if len(r) > width:
            raise ValueError(f"row {i} has {len(r)} tokens, more than the width {width}")
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask


def render_prompts(tokenizer, prompts: list[list[dict]]) -> tuple[Tensor, Tensor]:
    """Chat prompts -> left-padded ids (P, Lp) and mask (P, Lp)."""
    if not prompts:
        raise ValueError("no prompts given")
    rows = [encode_text(tokenizer, render_prompt_text(tokenizer, m)) for m in prompts]
    return left_pad(rows, pad_token_id(tokenizer))


def eos_token_ids(tokenizer, model=None) -> list[int]:
    """Every id that ends a completion: the tokenizer's eos plus the model's generation-config eos ids."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    gc = getattr(model, "generation_config", None) if model is not None else None
    extra = getattr(gc, "eos_token_id", None) if gc is not None else None
    if isinstance(extra, int):
        ids.add(extra)
    elif extra:
        ids.update(int(x) for x in extra)
    if not ids:
        raise ValueError("neither the tokenizer nor the model's generation config names an eos token")
    return sorted(ids)


def pad_token_id(tokenizer) -> int:
    """The pad id (falls back to eos; masks, not the pad id, decide what counts, so this is safe)."""
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    if tokenizer.eos_token_id is None:
        raise ValueError("tokenizer has neither a pad nor an eos token")
    return int(tokenizer.eos_token_id)
