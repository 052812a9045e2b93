"""Classifier quality of a gate against labels, on tensors (diagnostics only; never fed back
to training). Thin tensor front-ends over `vgrout.stats`, so there is one formula per metric."""

from __future__ import annotations

from torch import Tensor

from vgrout import stats


def auroc(scores: Tensor, labels: Tensor) -> float:
    """Mann-Whitney AUROC with average ranks for ties; NaN unless both classes are present."""
    return stats.auroc(scores.double().flatten().tolist(), labels.bool().flatten().tolist())


def _counts(predicted: Tensor, labels: Tensor) -> tuple[int, int, int]:
    p, y = predicted.bool().flatten(), labels.bool().flatten()
    return int((p & y).sum()), int((p & ~y).sum()), int((~p & y).sum())


def precision(predicted: Tensor, labels: Tensor) -> float:
    """Share of predicted rows that carry the label; NaN when nothing is predicted."""
    tp, fp, _ = _counts(predicted, labels)
    return float("nan") if tp + fp == 0 else tp / (tp + fp)


def f_beta(predicted: Tensor, labels: Tensor, beta: float = 0.5) -> float:
    """F_beta of a binary prediction (beta < 1 weights precision); NaN when undefined."""
    return stats.f_beta(*_counts(predicted, labels), beta=beta)
