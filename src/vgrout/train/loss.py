"""The per-token GRPO loss: dual-clipped policy gradient plus a k3 KL to the base, constant normaliser.

    rho_t   = exp(logp_t - logp_old_t)
    obj_t   = min(rho_t A, clip(rho_t, 1 - eps, 1 + eps) A)          (PPO)
    obj_t   = max(obj_t, c A)                 where A < 0              (dual clip, Ye et al. 2020)
    kl_t    = exp(ref_t - logp_t) - (ref_t - logp_t) - 1               (k3, unbiased, >= 0)
    loss    = sum_t mask_t (-obj_t + beta kl_t) / normaliser

Why the dual clip: PPO's clip bounds the update only from one side. With A < 0 the min picks
rho A, which grows without bound in rho, and off-policy rows (keep rows sampled with the full
adapter but trained deployed-only, deploy-sampled absorb/route rows, teacher rows) can have
rho far above 1. Capping rho at c when A < 0 makes such a token's term the constant c A (no
gradient), so |obj_t| <= c |A| and its gradient is at most c |A| per token. On-policy rows have
rho = 1 < c: their loss and gradient are bit for bit the PPO ones.

The normaliser is a constant (P * G * T_max): Dr.GRPO's "no length normalisation", and the
reason micro-batches can be summed exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor


def grpo_token_loss(
    logp: Tensor, logp_old: Tensor, adv: Tensor, mask: Tensor, *, clip: float, normaliser: float,
    logp_ref: Tensor | None = None, kl_beta: float = 0.0, dual_clip: float = 0.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """logp, logp_old, mask, logp_ref: (N, T); adv (N,) -> (scalar loss, detached per-row stats).

    `dual_clip` c > 1 caps rho at c on tokens with A < 0 (0: off, plain PPO).
    Stats (each (N,)): `ratio` token-mean rho, `clipped` share of tokens where the PPO clip binds,
    `dual_clipped` share of tokens where the dual clip binds, `kl` token-mean k3 (zeros without
    a reference).
    """
    if logp.shape != logp_old.shape or logp.shape != mask.shape or adv.shape != logp.shape[:1]:
        raise ValueError(f"shape mismatch: logp {tuple(logp.shape)}, old {tuple(logp_old.shape)}, "
                         f"mask {tuple(mask.shape)}, adv {tuple(adv.shape)}")
    if dual_clip != 0.0 and not dual_clip > 1.0:
        raise ValueError(f"dual_clip={dual_clip} must be > 1 (a cap on rho above the PPO band) or 0 (off)")
    m = mask.to(logp.dtype)  # (N, T)
    A = adv.to(logp.dtype)[:, None]  # (N, 1)
    ratio = torch.exp(logp - logp_old)  # (N, T)
    clipped_ratio = torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    obj = torch.minimum(ratio * A, clipped_ratio * A)  # (N, T)
    if dual_clip > 0:
        floor = torch.where(A < 0, dual_clip * A, torch.full_like(A, -torch.inf))  # (N, 1): c A for A < 0
        dual_binds = obj < floor  # (N, T); then rho > c, and the term is the constant c A
        obj = torch.maximum(obj, floor)
    else:
        dual_binds = torch.zeros_like(obj, dtype=torch.bool)
    per_token = -obj
    if logp_ref is not None and kl_beta > 0:
        d = logp_ref - logp  # (N, T)
        kl = torch.exp(d) - d - 1.0
        per_token = per_token + kl_beta * kl
    else:
        kl = torch.zeros_like(logp)
    loss = (per_token * m).sum() / normaliser
    n_tok = m.sum(1).clamp(min=1.0)  # (N,)
    with torch.no_grad():
        binds = ((ratio * A) > (clipped_ratio * A)).to(logp.dtype)  # the clipped branch is the min
        stats = {
            "ratio": (ratio.detach() * m).sum(1) / n_tok,
            "clipped": (binds * m).sum(1) / n_tok,
            "dual_clipped": (dual_binds.to(logp.dtype) * m).sum(1) / n_tok,
            "kl": (kl.detach() * m).sum(1) / n_tok,
        }
    return loss, stats
