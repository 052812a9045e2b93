"""Dr.GRPO advantages: A = r - mean(group), no std scaling; zero-variance groups are skipped.

`deployed_block_advantages` is the optional per-block baseline (`Config.per_block_baseline`):
once zones are known, the rows that train the deployed block (keep, absorb) are centred on
their own mean reward in their group, so a routed row's reward no longer sets the baseline the
deployed block is pushed against (docs/training.md, "Per-block baseline").
"""

from __future__ import annotations

import torch
from torch import Tensor

from vgrout.types import ROUTE


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


def deployed_block_advantages(rewards: Tensor, advantages: Tensor, zones: Tensor, group_size: int,
                              tol: float = 1e-6) -> Tensor:
    """The per-block baseline: rewards, advantages, zones (K,) of whole groups of G -> advantages (K,).

    In a group with at least one routed row, each row that trains the deployed block (zone keep
    or absorb) gets r - mean(r over those rows of its group), so within the group the deployed
    block's advantages sum to zero; if those rows' rewards are all equal (within `tol`, or only
    one such row) they get 0. Routed rows keep the group baseline (their `advantages` entry).
    Groups without a routed row are returned unchanged, bit for bit (the two baselines coincide).
    """
    if not (rewards.ndim == advantages.ndim == zones.ndim == 1) or not (
            rewards.numel() == advantages.numel() == zones.numel()) or rewards.numel() % group_size:
        raise ValueError(f"rewards {tuple(rewards.shape)}, advantages {tuple(advantages.shape)}, zones "
                         f"{tuple(zones.shape)} must be (K,) with K a multiple of group_size={group_size}")
    r = rewards.to(torch.float32).reshape(-1, group_size)  # (P, G)
    a = advantages.reshape(-1, group_size)
    dep = zones.to(r.device).reshape(-1, group_size) != ROUTE  # (P, G): rows that train the deployed block
    n_dep = dep.sum(1, keepdim=True)  # (P, 1)
    mean_dep = torch.where(dep, r, torch.zeros_like(r)).sum(1, keepdim=True) / n_dep.clamp(min=1)
    hi = torch.where(dep, r, torch.full_like(r, -torch.inf)).max(1, keepdim=True).values
    lo = torch.where(dep, r, torch.full_like(r, torch.inf)).min(1, keepdim=True).values
    varied = (n_dep >= 2) & (hi - lo > tol)  # (P, 1)
    own = torch.where(varied, r - mean_dep, torch.zeros_like(r)).to(a.dtype)  # (P, G)
    routed = (~dep).any(1, keepdim=True)  # (P, 1)
    return torch.where(dep & routed, own, a).reshape(-1)


__all__ = ["deployed_block_advantages", "group_advantages"]
