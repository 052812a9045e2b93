"""Retain-heal: after training, teacher-forced NLL on the clean side of the authored pairs,
deployed block only.

Ablating the quarantine at deployment removes whatever capability it absorbed along with
the hack; the heal gives the deployed block one cheap supervised pass on honest completions
to recover some of it. The quarantine is out of the forward (adapter mode "deployed"), only
the deployed parameters are in the optimizer, and every batch checks that no gradient
reached the quarantine: a non-zero quarantine gradient would mean the heal is training the
block that gets deleted, so it raises instead.
"""

from __future__ import annotations

import torch

from vgrout.rollout import per_token_logps
from vgrout.train.batch import chunks, select_rows
from vgrout.train.features import pair_rollouts


def _mean_nll(adapter, model, r, rows: slice, with_grad: bool) -> torch.Tensor:
    sub = select_rows(r, torch.arange(rows.start, rows.stop))
    T = sub.completion_ids.shape[1]
    m = sub.completion_mask.float()  # (n, T)
    with torch.set_grad_enabled(with_grad), adapter.mode("deployed"):
        lp = per_token_logps(model, sub.input_ids, sub.attention_mask, T)  # (n, T)
    return -(lp * m).sum() / m.sum().clamp(min=1.0)


def retain_heal(adapter, model, tokenizer, pairs: list, *, epochs: int, lr: float, batch: int,
                grad_clip: float) -> dict:
    """`epochs` passes over the clean sides in fixed order (batches of `batch` pairs), fresh
    AdamW(0.9, 0.99) on the deployed block. Returns {"nll_before", "nll_after", "updates"}.

    Raises RuntimeError if a quarantine gradient is not exactly zero or a deployed gradient
    is all zero (nothing to heal with).
    """
    if epochs < 1 or batch < 1:
        raise ValueError(f"retain_heal needs epochs >= 1 and batch >= 1, got {epochs}, {batch}")
    r = pair_rollouts(tokenizer, model, pairs, "clean")  # P rows
    dep, quar = adapter.parameters("deployed"), adapter.parameters("quarantine")
    for p in dep + quar:
        p.grad = None
    opt = torch.optim.AdamW(dep, lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    slices = chunks(len(r), batch)

    def full_nll() -> float:
        tot = sum(float(_mean_nll(adapter, model, r, sl, False)) * (sl.stop - sl.start) for sl in slices)
        return tot / len(r)

    before = full_nll()
    updates = 0
    for _ in range(epochs):
        for sl in slices:
            _mean_nll(adapter, model, r, sl, True).backward()
            leaked = [float(p.grad.abs().max()) for p in quar if p.grad is not None and bool((p.grad != 0).any())]
            if leaked:
                raise RuntimeError(f"retain-heal reached the quarantine (max |grad| {max(leaked):.3g}); "
                                   "it must train the deployed block only")
            if not any(p.grad is not None and bool((p.grad != 0).any()) for p in dep):
                raise RuntimeError("retain-heal gave the deployed block a zero gradient; check the pairs' clean sides")
            if grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(dep, grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            for p in quar:
                p.grad = None
            updates += 1
    return {"nll_before": before, "nll_after": full_nll(), "updates": updates, "n_pairs": len(r), "epochs": epochs,
            "lr": lr}


__all__ = ["retain_heal"]
