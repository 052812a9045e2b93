"""The band gate: score quantile tails of a run-spanning, recency-weighted buffer -> zones.

A rollout whose score falls in the low tail of the buffer is `keep` (it trains the deployed
block only), the high tail is `route` (quarantine only), the band between is `absorb` (both).
Thresholds are cut from the buffer as it stood BEFORE the current batch was added, so a
batch never moves the cut it is judged by. The buffer stores raw features (N, M, r), not
scores, so a refreshed direction re-scores history without a flush.

Device contract: gate features are small (N x M x r), so every gate function moves its inputs
once to the CPU in float32 (`to_gate`); the buffer, the direction, the placebo, the scores and
the zones all live there, whatever device or dtype the model runs in. The trainer moves the
returned zones to the model's device itself.

Data parallelism: `thresholds` takes plain tensors, so a caller can all-gather the buffer
features and stamps across ranks first and every rank cuts the same thresholds.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from vgrout.types import ABSORB, KEEP, ROUTE  # noqa: F401  the zone codes, defined once

GATE_DEVICE = torch.device("cpu")
GATE_DTYPE = torch.float32


def to_gate(x: Tensor) -> Tensor:
    """x detached, on the gate's device (CPU) in float32: the one place a gate input changes device."""
    return x.detach().to(device=GATE_DEVICE, dtype=GATE_DTYPE)


def recency_weights(stamps: Tensor, now: int, half_life: float | None) -> Tensor:
    """Weight 0.5 ** (age / half_life) per entry (age in rollouts); all ones when half_life is None."""
    if half_life is None:
        return torch.ones(stamps.shape, dtype=torch.float64)
    if half_life <= 0:
        raise ValueError(f"half_life must be > 0 rollouts (or None for no recency weighting), got {half_life}")
    age = (now - stamps.cpu()).to(torch.float64)  # (B,)
    return torch.pow(0.5, age / half_life)


def weighted_quantiles(values: Tensor, weights: Tensor, qs: tuple[float, ...]) -> list[float]:
    """Quantiles of a weighted sample: the smallest value whose normalised cumulative weight >= q."""
    if values.ndim != 1 or values.shape != weights.shape:
        raise ValueError(f"values and weights must be matching 1-d tensors, got {tuple(values.shape)}, {tuple(weights.shape)}")
    if values.numel() == 0:
        raise ValueError("cannot take quantiles of an empty buffer")
    values, weights = values.detach().cpu().to(torch.float64), weights.detach().cpu().to(torch.float64)
    order = torch.argsort(values, stable=True)
    v = values[order]
    cw = torch.cumsum(weights[order], 0)
    cw = cw / cw[-1]
    out = []
    for q in qs:
        i = int(torch.searchsorted(cw, torch.tensor([q], dtype=torch.float64)).item())
        out.append(float(v[min(i, v.numel() - 1)]))
    return out


def thresholds(buffer_scores: Tensor, stamps: Tensor, now: int, tail_q: float, half_life: float | None) -> tuple[float, float]:
    """(t_lo, t_hi): the tail_q and 1 - tail_q recency-weighted quantiles of the buffer's scores."""
    if not 0.0 <= tail_q < 0.5:
        raise ValueError(f"tail_q must be in [0, 0.5), got {tail_q}")
    w = recency_weights(stamps, now, half_life)
    lo, hi = weighted_quantiles(buffer_scores, w, (tail_q, 1.0 - tail_q))
    return lo, hi


def band_zones(scores: Tensor, t_lo: float, t_hi: float) -> Tensor:
    """Zones (N,) int64: score <= t_lo -> KEEP, score >= t_hi -> ROUTE, else ABSORB.

    With tail_q = 0 the cuts are the buffer's min and max, so only scores beyond the range
    seen so far leave the absorb band."""
    scores = scores.detach().cpu()
    if not torch.isfinite(scores).all():
        raise ValueError(f"gate scores must be finite, got {scores.tolist()}")
    z = torch.full(scores.shape, ABSORB, dtype=torch.long)  # (N,) on the gate's device
    z[scores <= t_lo] = KEEP
    z[scores >= t_hi] = ROUTE  # route wins a tie when t_lo == t_hi (a degenerate buffer)
    return z


def project_scores(features: Tensor, direction: Tensor) -> Tensor:
    """Score = sum over modules of <feature[m], v[m]>. features (N, M, r), direction (M, r) -> (N,) CPU float32."""
    if features.shape[1:] != direction.shape:
        raise ValueError(f"feature shape {tuple(features.shape[1:])} does not match direction {tuple(direction.shape)}")
    return torch.einsum("nmr,mr->n", to_gate(features), to_gate(direction))


class ScoreBuffer:
    """A bounded FIFO of per-rollout features (B, M, r) with global insertion stamps.

    Plain state (two tensors and a counter) so it checkpoints and all-gathers trivially.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"buffer capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.features: Tensor | None = None  # (B, M, r) float32, B <= capacity
        self.stamps = torch.zeros(0, dtype=torch.long)  # (B,)
        self.count = 0  # rollouts ever added (the clock for recency weights)

    def __len__(self) -> int:
        return int(self.stamps.numel())

    def add(self, features: Tensor) -> None:
        """Append (N, M, r) features, evicting the oldest beyond capacity."""
        f = to_gate(features)
        n = f.shape[0]
        new_stamps = torch.arange(self.count, self.count + n, dtype=torch.long)
        self.count += n
        if self.features is None:
            self.features, self.stamps = f, new_stamps
        else:
            if f.shape[1:] != self.features.shape[1:]:
                raise ValueError(f"feature shape {tuple(f.shape[1:])} differs from buffer {tuple(self.features.shape[1:])}")
            self.features = torch.cat([self.features, f])
            self.stamps = torch.cat([self.stamps, new_stamps])
        if len(self) > self.capacity:
            self.features = self.features[-self.capacity:].clone()
            self.stamps = self.stamps[-self.capacity:].clone()

    def state_dict(self) -> dict:
        return {"capacity": self.capacity, "features": self.features, "stamps": self.stamps, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.capacity = int(state["capacity"])
        self.features = None if state["features"] is None else to_gate(state["features"])
        self.stamps = state["stamps"].cpu()
        self.count = int(state["count"])


def band_gate(
    buffer: ScoreBuffer, features: Tensor, direction: Tensor, *, tail_q: float, half_life: float | None, warmup: int
) -> tuple[Tensor, Tensor, float, float]:
    """Zones for a batch, then add the batch to the buffer. features (N, M, r) -> zones (N,), scores (N,), t_lo, t_hi.

    Until the buffer holds max(warmup, 1) rollouts every zone is ABSORB and the thresholds are NaN.
    Features and direction may arrive on any device in any float dtype; they move to the CPU in
    float32 once here, and zones (long) and scores (float32) come back on the CPU.
    """
    features, direction = to_gate(features), to_gate(direction)  # (N, M, r), (M, r) CPU float32
    scores = project_scores(features, direction)  # (N,)
    if len(buffer) < max(warmup, 1):
        zones = torch.full(scores.shape, ABSORB, dtype=torch.long)
        t_lo = t_hi = math.nan
    else:
        assert buffer.features is not None
        past = project_scores(buffer.features, direction)  # (B,) re-scored against the current direction
        t_lo, t_hi = thresholds(past, buffer.stamps, buffer.count, tail_q, half_life)
        zones = band_zones(scores, t_lo, t_hi)
    buffer.add(features)
    return zones, scores, t_lo, t_hi
