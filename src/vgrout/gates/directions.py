"""Routing directions from paired features, and the Haar-random placebo of matched shape.

Features are computed elsewhere (the trainer runs the model on the authored pairs); here
they are only reduced: a per-module unit-norm mean difference hack - clean. Like the band gate
(`vgrout.gates.band.to_gate`), every function here returns CPU float32, whatever device the
features were computed on, so a placebo and an extracted direction live in the same place.
"""

from __future__ import annotations

import torch
from torch import Tensor


def mean_difference_direction(hack: Tensor, clean: Tensor) -> Tensor:
    """v[m] = unit(mean_p(hack[p, m] - clean[p, m])). hack, clean: (P, M, r) any device -> (M, r) CPU float32."""
    if hack.shape != clean.shape or hack.ndim != 3:
        raise ValueError(f"hack and clean features must both be (P, M, r); got {tuple(hack.shape)} and {tuple(clean.shape)}")
    d = (hack.detach().cpu().to(torch.float64) - clean.detach().cpu().to(torch.float64)).mean(0)  # (M, r)
    norms = d.norm(dim=-1, keepdim=True)  # (M, 1)
    if (norms == 0).any():
        bad = torch.nonzero(norms.squeeze(-1) == 0).flatten().tolist()
        raise ValueError(f"modules {bad} have identical hack and clean features; the pairs give no direction there")
    return (d / norms).to(torch.float32)


def haar_unit_rows(shape: tuple[int, int], seed: int) -> Tensor:
    """(M, r) rows, each an independent uniform direction on the unit sphere S^{r-1} (seeded, CPU)."""
    g = torch.Generator().manual_seed(int(seed))
    x = torch.randn(tuple(shape), generator=g, dtype=torch.float64)
    return (x / x.norm(dim=-1, keepdim=True)).to(torch.float32)


def paired_accuracy(hack_scores: Tensor, clean_scores: Tensor) -> float:
    """Fraction of pairs whose hack side outscores its clean side (a sanity check of a direction)."""
    return float((hack_scores.detach().cpu() > clean_scores.detach().cpu()).to(torch.float64).mean())
