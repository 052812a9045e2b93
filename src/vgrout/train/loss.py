"""The per-token GRPO loss: PPO-clipped policy gradient plus a k3 KL to the base, constant normaliser.

    rho_t   = exp(logp_t - logp_old_t)
    pg_t    = -min(rho_t A, clip(rho_t, 1 - eps, 1 + eps) A)
    kl_t    = exp(ref_t - logp_t) - (ref_t - logp_t) - 1          (k3, unbiased, >= 0)
    loss    = sum_t mask_t (pg_t + beta kl_t) / normaliser

The normaliser is a constant (P * G * T_max): Dr.GRPO's "no length normalisation", and the
reason micro-batches can be summed exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor


def grpo_token_loss(
    logp: Tensor, logp_old: Tensor, adv: Tensor, mask: Tensor, *, clip: float, normaliser: float,
    logp_ref: Tensor | None = None, kl_beta: float = 0.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """logp, logp_old, mask, logp_ref: (N, T); adv (N,) -> (scalar loss, detached per-row stats).

    Stats (each (N,)): `ratio` token-mean rho, `clipped` share of tokens where the clip binds,
    `kl` token-mean k3 (zeros without a reference).
    """
    if logp.shape != logp_old.shape or logp.shape != mask.shape or adv.shape != logp.shape[:1]:
        raise ValueError(f"shape mismatch: logp {tuple(logp.shape)}, old {tuple(logp_old.shape)}, "
                         f"mask {tuple(mask.shape)}, adv {tuple(adv.shape)}")
    m = mask.to(logp.dtype)  # (N, T)
    A = adv.to(logp.dtype)[:, None]  # (N, 1)
    ratio = torch.exp(logp - logp_old)  # (N, T)
    clipped_ratio = torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    pg = -torch.minimum(ratio * A, clipped_ratio * A)  # (N, T)
    per_token = pg
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
            "kl": (kl.detach() * m).sum(1) / n_tok,
        }
    return loss, stats
