"""Row-level plumbing for a step's batch: select rows, trim padding, join sampling calls, chunk."""

from __future__ import annotations

import torch
from torch import Tensor

from vgrout.rollout import Rollouts


def select_rows(r: Rollouts, rows: Tensor) -> Rollouts:
    """The rows `rows` (K,) of a batch, completion width trimmed to the longest kept completion."""
    idx = rows.tolist()
    mask = r.completion_mask[rows]  # (K, T)
    width = max(int(mask.sum(1).max()), 1) if len(idx) else 1
    return Rollouts(
        prompt_ids=r.prompt_ids[rows], prompt_mask=r.prompt_mask[rows],
        completion_ids=r.completion_ids[rows, :width], completion_mask=mask[:, :width],
        texts=[r.texts[i] for i in idx], prompt_index=r.prompt_index[rows], deployed=r.deployed[rows],
        behaviour_logps=None if r.behaviour_logps is None else r.behaviour_logps[rows, :width],
    )


def _pad_cols(x: Tensor, width: int, value: float) -> Tensor:
    if x.shape[1] >= width:
        return x
    return torch.cat([x, torch.full((x.shape[0], width - x.shape[1]), value, dtype=x.dtype, device=x.device)], 1)


def join_groups(parts: list[tuple[Rollouts, int]], n_prompts: int, pad_id: int) -> Rollouts:
    """Interleave several sampling calls over the same prompts into contiguous groups.

    parts: (rollouts with n_prompts * k rows, k). Row order in the result: for each prompt,
    the k rows of the first part, then of the second, ...
    """
    parts = [(r, k) for r, k in parts if k > 0]
    width = max(r.completion_ids.shape[1] for r, _ in parts)
    plen = max(r.prompt_ids.shape[1] for r, _ in parts)
    order_ids, order_mask, order_pids, order_pmask, texts, pidx, dep = [], [], [], [], [], [], []
    for p in range(n_prompts):
        for r, k in parts:
            sl = slice(p * k, (p + 1) * k)
            order_ids.append(_pad_cols(r.completion_ids[sl], width, pad_id))
            order_mask.append(_pad_cols(r.completion_mask[sl], width, 0))
            pp = r.prompt_ids[sl]
            pm = r.prompt_mask[sl]
            if pp.shape[1] < plen:  # left-pad prompts to a common width
                extra = plen - pp.shape[1]
                pp = torch.cat([torch.full((k, extra), pad_id, dtype=pp.dtype, device=pp.device), pp], 1)
                pm = torch.cat([torch.zeros((k, extra), dtype=pm.dtype, device=pm.device), pm], 1)
            order_pids.append(pp)
            order_pmask.append(pm)
            texts.extend(r.texts[sl])
            pidx.append(r.prompt_index[sl])
            dep.append(r.deployed[sl])
    return Rollouts(
        prompt_ids=torch.cat(order_pids), prompt_mask=torch.cat(order_pmask), completion_ids=torch.cat(order_ids),
        completion_mask=torch.cat(order_mask), texts=texts, prompt_index=torch.cat(pidx), deployed=torch.cat(dep),
    )


def _left_pad_cols(x: Tensor, width: int, value: int) -> Tensor:
    if x.shape[1] >= width:
        return x
    return torch.cat([torch.full((x.shape[0], width - x.shape[1]), value, dtype=x.dtype, device=x.device), x], 1)


def concat_rollouts(parts: list[Rollouts], pad_id: int) -> Rollouts:
    """Stack batches row-wise: prompts left-padded and completions right-padded to common widths.

    prompt_index is kept as each part has it (callers give every part global prompt indices);
    behaviour_logps is NaN for rows of parts without it.
    """
    parts = [r for r in parts if len(r)]
    if not parts:
        raise ValueError("concat_rollouts needs at least one non-empty batch")
    width = max(r.completion_ids.shape[1] for r in parts)
    plen = max(r.prompt_ids.shape[1] for r in parts)
    has_b = any(r.behaviour_logps is not None for r in parts)
    beh = []
    for r in parts:
        b = r.behaviour_logps
        if b is None:
            b = torch.full(r.completion_ids.shape, float("nan"), dtype=torch.float32, device=r.completion_ids.device)
        beh.append(_pad_cols(b, width, float("nan")))
    return Rollouts(
        prompt_ids=torch.cat([_left_pad_cols(r.prompt_ids, plen, pad_id) for r in parts]),
        prompt_mask=torch.cat([_left_pad_cols(r.prompt_mask, plen, 0) for r in parts]),
        completion_ids=torch.cat([_pad_cols(r.completion_ids, width, pad_id) for r in parts]),
        completion_mask=torch.cat([_pad_cols(r.completion_mask, width, 0) for r in parts]),
        texts=[t for r in parts for t in r.texts], prompt_index=torch.cat([r.prompt_index for r in parts]),
        deployed=torch.cat([r.deployed for r in parts]), behaviour_logps=torch.cat(beh) if has_b else None,
    )


def group_by_prompt(r: Rollouts, n_prompts: int, group_size: int) -> Rollouts:
    """Reorder rows into contiguous groups of `group_size` per prompt (stable within a prompt)."""
    counts = torch.bincount(r.prompt_index.cpu(), minlength=n_prompts)
    if counts.numel() != n_prompts or bool((counts != group_size).any()):
        raise ValueError(f"every prompt needs exactly {group_size} rows, got counts {counts.tolist()}")
    order = torch.argsort(r.prompt_index.cpu(), stable=True)
    return select_rows(r, order)


def chunks(n: int, size: int) -> list[slice]:
    """Row slices of at most `size` (0: one slice of all n)."""
    size = n if size <= 0 else size
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]
