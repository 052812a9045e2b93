"""Classifier quality of a gate against labels (diagnostics only; never fed back to training)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def auroc(scores: Tensor, labels: Tensor) -> float:
    """Mann-Whitney AUROC with average ranks for ties; NaN unless both classes are present."""
    y = labels.to(torch.bool).flatten()
    s = scores.to(torch.float64).flatten()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = torch.argsort(s, stable=True)
    ranks = torch.empty_like(s)
    sorted_s = s[order]
    i = 0
    n = s.numel()
    while i < n:  # average ranks over ties
        j = i
        while j + 1 < n and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    u = float(ranks[y].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def precision(predicted: Tensor, labels: Tensor) -> float:
    """Share of predicted rows that carry the label; NaN when nothing is predicted."""
    p = predicted.to(torch.bool)
    if int(p.sum()) == 0:
        return math.nan
    return float(labels.to(torch.bool)[p].to(torch.float64).mean())


def f_beta(predicted: Tensor, labels: Tensor, beta: float = 0.5) -> float:
    """F_beta of a binary prediction (beta < 1 weights precision); NaN when undefined."""
    p, y = predicted.to(torch.bool), labels.to(torch.bool)
    tp = int((p & y).sum())
    fp = int((p & ~y).sum())
    fn = int((~p & y).sum())
    b2 = beta * beta
    den = (1 + b2) * tp + b2 * fn + fp
    return math.nan if den == 0 else (1 + b2) * tp / den
