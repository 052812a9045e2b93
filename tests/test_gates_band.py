"""Band gate, recency-weighted quantiles, directions, Haar placebo, classifier quality."""

from __future__ import annotations

import math

import pytest
import torch

from vgrout.gates import (
    ABSORB, KEEP, ROUTE, ScoreBuffer, auroc, band_gate, band_zones, f_beta, haar_unit_rows, mean_difference_direction,
    precision, recency_weights, thresholds, weighted_quantiles,
)


def test_weighted_quantiles_equal_weights_match_sorted_order():
    v = torch.tensor([5.0, 1.0, 3.0, 2.0, 4.0])
    assert weighted_quantiles(v, torch.ones(5), (0.2, 0.5, 1.0)) == [1.0, 3.0, 5.0]


def test_recency_weights_halve_every_half_life():
    w = recency_weights(torch.tensor([0, 10, 20]), now=20, half_life=10.0)
    assert torch.allclose(w, torch.tensor([0.25, 0.5, 1.0], dtype=torch.float64))
    assert torch.equal(recency_weights(torch.tensor([0, 5]), 9, None), torch.ones(2, dtype=torch.float64))


def test_recency_weighting_moves_thresholds_toward_recent_scores():
    old, new = torch.zeros(100), torch.full((100,), 10.0)
    scores, stamps = torch.cat([old, new]), torch.arange(200)
    lo_flat, _ = thresholds(scores, stamps, 200, 0.3, None)
    lo_recent, _ = thresholds(scores, stamps, 200, 0.3, 5.0)
    assert lo_flat == 0.0 and lo_recent == 10.0


def test_band_zones_tails_and_middle():
    z = band_zones(torch.tensor([-1.0, 0.0, 0.5, 1.0, 2.0]), t_lo=0.0, t_hi=1.0)
    assert z.tolist() == [KEEP, KEEP, ABSORB, ROUTE, ROUTE]
    with pytest.raises(ValueError, match="finite"):
        band_zones(torch.tensor([math.nan]), 0.0, 1.0)


def test_thresholds_come_from_the_buffer_before_the_batch_is_added():
    v = torch.tensor([[1.0, 0.0]])  # (M=1, r=2)
    buf = ScoreBuffer(100)
    feats = lambda xs: torch.tensor(xs)[:, None, None] * torch.tensor([1.0, 0.0])  # (N, 1, 2), score = x
    z0, _, lo, hi = band_gate(buf, feats([0.0, 1.0, 2.0, 3.0]), v, tail_q=0.25, half_life=None, warmup=0)
    assert (z0 == ABSORB).all() and math.isnan(lo) and len(buf) == 4  # empty buffer: all absorb
    # an extreme batch cannot move the cut it is judged by: all 100s route against the old buffer
    z1, s1, lo, hi = band_gate(buf, feats([100.0, 100.0, 100.0, 100.0]), v, tail_q=0.25, half_life=None, warmup=0)
    assert (lo, hi) == (0.0, 2.0) and (z1 == ROUTE).all() and len(buf) == 8


def test_gate_warmup_keeps_absorb_until_the_buffer_fills():
    v = torch.ones(1, 1)
    buf = ScoreBuffer(10)
    z, *_ = band_gate(buf, torch.randn(3, 1, 1), v, tail_q=0.1, half_life=None, warmup=5)
    assert (z == ABSORB).all()
    z, *_ = band_gate(buf, torch.randn(3, 1, 1), v, tail_q=0.1, half_life=None, warmup=5)
    assert (z == ABSORB).all()
    z, _, lo, _ = band_gate(buf, torch.tensor([[[-99.0]], [[99.0]]]), v, tail_q=0.1, half_life=None, warmup=5)
    assert z.tolist() == [KEEP, ROUTE] and not math.isnan(lo)


def test_buffer_evicts_oldest_and_round_trips_its_state():
    buf = ScoreBuffer(3)
    buf.add(torch.arange(5.0)[:, None, None])
    assert buf.features.flatten().tolist() == [2.0, 3.0, 4.0] and buf.stamps.tolist() == [2, 3, 4] and buf.count == 5
    other = ScoreBuffer(1)
    other.load_state_dict(buf.state_dict())
    assert torch.equal(other.features, buf.features) and other.count == 5 and other.capacity == 3


def test_haar_placebo_has_the_shape_and_row_norms_of_the_real_direction():
    g = torch.Generator().manual_seed(0)  # a fixed draw: the "not the real direction" bound is then deterministic
    hack, clean = torch.randn(6, 5, 4, generator=g), torch.randn(6, 5, 4, generator=g)
    v = mean_difference_direction(hack, clean)  # (M, r)
    p = haar_unit_rows(tuple(v.shape), seed=11)
    assert p.shape == v.shape
    assert torch.allclose(p.norm(dim=-1), v.norm(dim=-1), atol=1e-6)
    assert torch.allclose(v.norm(dim=-1), torch.ones(5), atol=1e-6)
    assert torch.equal(p, haar_unit_rows((5, 4), seed=11)) and not torch.equal(p, haar_unit_rows((5, 4), seed=12))
    assert float((p * v).sum(-1).abs().max()) < 0.999  # not the real direction


def test_mean_difference_direction_points_from_clean_to_hack():
    clean = torch.zeros(3, 1, 2)
    hack = torch.tensor([[[2.0, 0.0]], [[4.0, 0.0]], [[3.0, 0.0]]])
    assert mean_difference_direction(hack, clean).tolist() == [[1.0, 0.0]]
    with pytest.raises(ValueError, match="identical"):
        mean_difference_direction(clean, clean)


def test_auroc_precision_and_f_beta():
    s = torch.tensor([0.1, 0.4, 0.35, 0.8])
    y = torch.tensor([0, 0, 1, 1])
    assert auroc(s, y) == 0.75
    assert auroc(torch.tensor([1.0, 1.0]), torch.tensor([0, 1])) == 0.5  # ties: average ranks
    assert math.isnan(auroc(s, torch.zeros(4)))
    pred = torch.tensor([False, True, False, True])
    assert precision(pred, y) == 0.5
    assert f_beta(pred, y, 0.5) == pytest.approx((1.25 * 1) / (1.25 * 1 + 0.25 * 1 + 1))
    assert math.isnan(precision(torch.zeros(4, dtype=torch.bool), y))
