"""Pure gate functions: band gate over a recency-weighted buffer, directions, placebo, quality."""

from vgrout.gates.band import (
    ABSORB, KEEP, ROUTE, ScoreBuffer, band_gate, band_zones, project_scores, recency_weights, thresholds,
    weighted_quantiles,
)
from vgrout.gates.directions import haar_unit_rows, mean_difference_direction, paired_accuracy
from vgrout.gates.quality import auroc, f_beta, precision

__all__ = [
    "ABSORB", "KEEP", "ROUTE", "ScoreBuffer", "auroc", "band_gate", "band_zones", "f_beta", "haar_unit_rows",
    "mean_difference_direction", "paired_accuracy", "precision", "project_scores", "recency_weights",
    "thresholds", "weighted_quantiles",
]
