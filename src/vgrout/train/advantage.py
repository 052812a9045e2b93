"""Dr.GRPO advantages: A = r - mean(group), no std scaling; zero-variance groups are skipped."""

from __future__ import annotations

import torch
from torch import Tensor


def group_advantages(rewards: Tensor, group_size: int, tol: float = 1e-6) -> tuple[Tensor, Tensor]:
    """rewards (N,) with contiguous groups of G -> advantages (N,), live rows (N,) bool.

    A row is live when its group's rewards are not all equal (within `tol`); a group with
    zero variance carries no signal under r - mean and is dropped from the update.
    """
    if rewards.ndim != 1 or rewards.numel() % group_size != 0:
        raise ValueError(f"rewards must be (N,) with N a multiple of group_size={group_size}, got {tuple(rewards.shape)}")
    r = rewards.to(torch.float32).view(-1, group_size)  # (P, G)
    adv = r - r.mean(1, keepdim=True)  # (P, G)
    live = (r.max(1).values - r.min(1).values > tol)[:, None].expand_as(r)  # (P, G)
    return adv.reshape(-1), live.reshape(-1)
