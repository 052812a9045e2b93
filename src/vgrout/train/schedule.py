"""Learning-rate schedule: linear warmup that starts above zero, then cosine to zero."""

from __future__ import annotations

import math

import torch


def lr_multiplier(step: int, steps: int, warmup_steps: int, cosine: bool) -> float:
    """Multiplier of the peak lr for optimizer update `step` (0-based). Step 0 always updates."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    if not cosine:
        return 1.0
    span = max(steps - warmup_steps, 1)
    progress = (step - warmup_steps) / span  # 0 at the end of warmup, < 1 at the last step
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(params: list[torch.nn.Parameter], lr: float, steps: int, warmup_steps: int, cosine: bool):
    """AdamW(betas 0.9, 0.99, no built-in decay: decay toward init is applied separately) and its LambdaLR."""
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_multiplier(s, steps, warmup_steps, cosine))
    return opt, sched
