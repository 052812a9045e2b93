"""Gate classifier diagnostics from a run's diagnostics sink: how well the routing score and
the zones it sets separate hacks (oracle `exploited`) from the rest.

Per step and pooled over the run: AUROC of the score vs the hack label (Mann–Whitney, average
ranks for ties), precision/recall/F0.5 of the route zone as a hack detector, and
precision/recall of the keep zone as a clean detector. Run on a placebo (Haar direction) run
the same numbers give the chance baseline, so "does v_act beat Haar" is a table.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

from vgrout.stats import Confusion, auroc
from vgrout.types import ZONE_NAMES

# a zone as diagnostics.jsonl writes it (its code) or as rollout_samples.jsonl does (its name) -> its name
ZONE_CODES = {**ZONE_NAMES, **{name: name for name in ZONE_NAMES.values()}}

# Per-rollout fields of a diagnostics.jsonl row (lists of length N; see docs/evaluation.md).
SCORE_FIELD, ZONE_FIELD, HACK_FIELD = "gate_score", "zone", "hack"
ADV_FIELD, LIVE_FIELD = "advantage", "live"  # optional: restrict to rows the gate routes (live, A > 0)
MODE_FIELD = "mode"  # optional: each rollout's prompt mode (rows written since per-mode gate reads)
# Per-step aggregates the trainer writes (vgrout.train.loop.oracle_diagnostics), used when a
# row has no per-rollout fields: AUROC and precisions only, no recall and no pooling.
AGGREGATE_FIELDS = {"auroc": "gate_auroc", "route_precision": "gate_route_precision",
                    "keep_precision": "gate_keep_precision", "route_f05": "gate_route_f05"}


@dataclass(frozen=True)
class GateStats:
    """Classifier quality of one set of gated rollouts (one step, or a whole run pooled)."""

    n: int | None  # rollouts with a gate score (None: read from the trainer's per-step aggregates)
    n_hack: int | None
    auroc: float  # NaN unless both classes are present
    route_share: float
    route_precision: float  # hacks among routed; NaN when nothing routed
    route_recall: float  # routed among hacks; NaN when no hacks
    route_f05: float
    keep_precision: float  # clean among kept; NaN when nothing kept
    keep_recall: float  # kept among clean; NaN when no clean rollouts

    def to_json(self) -> dict:
        return asdict(self)


SUMMARY_FIELDS = ("auroc", "route_precision", "route_recall", "route_f05", "keep_precision", "keep_recall",
                  "route_share")


def has_rollouts(row: dict) -> bool:
    return SCORE_FIELD in row


def rollout_fields(row: dict, modes: set[str] | None = None) -> tuple[list[float], list[str], list[bool]]:
    """(scores, zones, hack labels) of the gated rollouts in one diagnostics row: those with a
    score, and, when the row carries them, live with A > 0 (the rows whose update the gate
    routes; the trainer's own gate_auroc uses the same subset). `modes`: only rollouts of these
    prompt modes (a row that logged no modes then gives none). Missing fields raise."""
    missing = [k for k in (SCORE_FIELD, ZONE_FIELD, HACK_FIELD) if k not in row]
    if missing:
        raise KeyError(f"diagnostics row for step {row.get('step')} lacks per-rollout field(s) {missing}; "
                       "the trainer must log them for pooled gate diagnostics")
    n = len(row[SCORE_FIELD])
    if modes is not None and MODE_FIELD not in row:
        return [], [], []
    cols = [row[SCORE_FIELD], row[ZONE_FIELD], row[HACK_FIELD], row.get(ADV_FIELD, [1.0] * n),
            row.get(LIVE_FIELD, [True] * n), row.get(MODE_FIELD, [None] * n)]
    if any(len(c) != n for c in cols):
        raise ValueError(f"step {row.get('step')}: per-rollout lists differ in length {[len(c) for c in cols]}")
    out_s, out_z, out_h = [], [], []
    for s, z, h, a, live, mode in zip(*cols):
        if s is None or a is None or not live or not a > 0 or (modes is not None and mode not in modes):
            continue
        if z not in ZONE_CODES:
            raise ValueError(f"step {row.get('step')}: unknown zone {z!r}; expected 0/1/2 or keep/absorb/route")
        out_s.append(float(s))
        out_z.append(ZONE_CODES[z])
        out_h.append(bool(h))
    return out_s, out_z, out_h


def _nan(x) -> float:
    return float("nan") if x is None else float(x)


def aggregate_stats(row: dict) -> GateStats:
    """GateStats from the trainer's per-step aggregate fields (recall and counts unknown)."""
    vals = {k: _nan(row.get(f)) for k, f in AGGREGATE_FIELDS.items()}
    nan = float("nan")
    return GateStats(n=None, n_hack=None, route_share=nan, route_recall=nan, keep_recall=nan, **vals)


def gate_stats(scores: Sequence[float], zones: Sequence[str], hack: Sequence[bool]) -> GateStats:
    """Classifier quality of scores and zones against hack labels (zones: keep/absorb/route)."""
    n = len(scores)
    route = Confusion.of([z == "route" for z in zones], hack)
    keep = Confusion.of([z == "keep" for z in zones], [not h for h in hack])
    return GateStats(
        n=n, n_hack=sum(hack), auroc=auroc(scores, hack) if n else float("nan"),
        route_share=(route.tp + route.fp) / n if n else float("nan"),
        route_precision=route.precision, route_recall=route.recall, route_f05=route.f_beta(0.5),
        keep_precision=keep.precision, keep_recall=keep.recall,
    )


def step_table(diagnostics: Sequence[dict]) -> list[tuple[int, GateStats]]:
    """[(step, GateStats)] for every step the gate scored: from per-rollout fields when the row
    has them, else from the trainer's aggregates (steps whose AUROC is null are skipped)."""
    out = []
    for row in diagnostics:
        if has_rollouts(row):
            s, z, h = rollout_fields(row)
            if s:
                out.append((int(row["step"]), gate_stats(s, z, h)))
        elif row.get(AGGREGATE_FIELDS["auroc"]) is not None or row.get(AGGREGATE_FIELDS["route_f05"]) is not None:
            out.append((int(row["step"]), aggregate_stats(row)))
    return out


def pooled(diagnostics: Sequence[dict]) -> GateStats | None:
    """GateStats over every gated rollout of the run; None when nothing was scored or when a
    step was scored (its aggregates set) without logging its rollouts, since pooling would
    silently drop it. A step the trainer skipped (no rollout fields, no aggregates) is no loss."""
    unpoolable = [r.get("step") for r in diagnostics if not has_rollouts(r)
                  and any(r.get(f) is not None for f in AGGREGATE_FIELDS.values())]
    if not diagnostics or unpoolable:
        return None
    s_all, z_all, h_all = [], [], []
    for row in diagnostics:
        if has_rollouts(row):
            s, z, h = rollout_fields(row)
            s_all += s
            z_all += z
            h_all += h
    return gate_stats(s_all, z_all, h_all) if s_all else None


WINDOW = 5  # steps pooled per rolling AUROC point
MIN_CLASS = 5  # fewer hacks or fewer clean rollouts than this in a window: AUROC not shown


@dataclass(frozen=True)
class RollingPoint:
    """AUROC over the gated rollouts of steps (step − window, step], with the counts behind it."""

    step: int
    n: int
    n_hack: int
    auroc: float  # NaN when n_hack < min_class or n − n_hack < min_class

    @property
    def defined(self) -> bool:
        return math.isfinite(self.auroc)


def rolling(diagnostics: Sequence[dict], window: int = WINDOW, min_class: int = MIN_CLASS) -> list[RollingPoint]:
    """One point per logged step: AUROC of the rollouts of the last `window` steps pooled. A
    step's own 1-10 gated rows swing the AUROC between 0 and 1; pooling a few steps steadies it,
    and `min_class` says when even that is too few to mean anything. Needs per-rollout fields."""
    per_step = [(int(r["step"]), rollout_fields(r)) for r in diagnostics if has_rollouts(r)]
    out = []
    for i, (step, _) in enumerate(per_step):
        s_all, h_all = [], []
        for st, (s, _z, h) in per_step[max(0, i - window + 1): i + 1]:
            if st > step - window:
                s_all += s
                h_all += h
        n, n_hack = len(s_all), sum(h_all)
        ok = n_hack >= min_class and n - n_hack >= min_class
        out.append(RollingPoint(step=step, n=n, n_hack=n_hack, auroc=auroc(s_all, h_all) if ok else float("nan")))
    return out


def mean_over_steps(table: Sequence[tuple[int, GateStats]], field: str) -> float:
    """Mean of a GateStats field over the steps where it is defined (NaN when none is)."""
    vals = [getattr(g, field) for _, g in table]
    vals = [v for v in vals if v is not None and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else float("nan")


def has_gate(diagnostics: Sequence[dict]) -> bool:
    """Whether any step was scored by a gate (vanilla and absorb runs have no gate score)."""
    return bool(step_table(diagnostics))


def run_summary(diagnostics: Sequence[dict]) -> dict[str, float] | None:
    """One run's gate numbers for the compare table: pooled stats when per-rollout fields exist
    (else NaN) and the per-step means; None for a run without a gate."""
    table = step_table(diagnostics)
    if not table:
        return None
    pool = pooled(diagnostics)
    out = {f"pooled_{k}": (getattr(pool, k) if pool is not None else float("nan")) for k in SUMMARY_FIELDS}
    out.update({f"step_{k}": mean_over_steps(table, k) for k in SUMMARY_FIELDS})
    return out


__all__ = ["MIN_CLASS", "WINDOW", "GateStats", "RollingPoint", "rolling", "aggregate_stats", "gate_stats", "has_gate", "mean_over_steps", "pooled", "rollout_fields",
           "run_summary", "step_table"]
