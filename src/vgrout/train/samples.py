"""A bounded, readable sample of each step's training rollouts: RUN_DIR/rollout_samples.jsonl.

One row per kept rollout: {step, index, problem_id, mode, completion, reward, zone, gate_score}.
Only what training itself sees is written (text, the environment's reward, the gate's zone and
score): the oracle's labels stay in diagnostics.jsonl, whose per-rollout lists (`hack`, gated
arms) join these rows on `index`. Which rollouts are kept is a seeded choice per step that reads
no label and no global RNG, so writing samples changes nothing about training. Torch-free.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Sequence
from pathlib import Path

ROLLOUT_SAMPLES = "rollout_samples.jsonl"
ZONE_NAMES = {0: "keep", 1: "absorb", 2: "route"}  # vgrout.adapter KEEP / ABSORB / ROUTE


def kept_indices(n: int, k: int, step: int, seed: int = 0) -> list[int]:
    """The k (or all n, if fewer) batch rows kept at `step`: seeded by (seed, step) only."""
    if k < 0 or n < 0:
        raise ValueError(f"n and k must be >= 0, got n={n}, k={k}")
    rng = random.Random(f"vgrout-rollout-samples:{seed}:{step}")
    return sorted(rng.sample(range(n), min(k, n)))


def _num(x) -> float | None:
    v = float(x)
    return None if math.isnan(v) else v


def write_rollout_samples(
    run_dir: str | Path, step: int, texts: Sequence[str], rewards: Sequence[float], *,
    zones: Sequence[int] | None = None, gate_scores: Sequence[float] | None = None,
    problem_ids: Sequence[str] | None = None, modes: Sequence[str] | None = None, k: int = 4, seed: int = 0,
) -> list[dict]:
    """Append step `step`'s kept rollouts (k of the N batch rows) to RUN_DIR/rollout_samples.jsonl
    and return them. `texts`, `rewards` (N,); `zones` (N,) KEEP=0/ABSORB=1/ROUTE=2 and `gate_scores`
    (N,, NaN = unscored) for gated arms, None otherwise. Tensors work (elements go through
    float/int). On resume, drop rows from the resumed step on with
    `vgrout.train.metrics.truncate_from(run_dir / ROLLOUT_SAMPLES, step)`."""
    n = len(texts)
    for name, seq in (("rewards", rewards), ("zones", zones), ("gate_scores", gate_scores),
                      ("problem_ids", problem_ids), ("modes", modes)):
        if seq is not None and len(seq) != n:
            raise ValueError(f"write_rollout_samples: {name} has {len(seq)} entries for {n} texts")
    rows = []
    for i in kept_indices(n, k, step, seed):
        rows.append({
            "step": int(step), "index": i,
            "problem_id": None if problem_ids is None else str(problem_ids[i]),
            "mode": None if modes is None else str(modes[i]),
            "completion": str(texts[i]), "reward": _num(rewards[i]),
            "zone": None if zones is None else ZONE_NAMES[int(zones[i])],
            "gate_score": None if gate_scores is None else _num(gate_scores[i]),
        })
    path = Path(run_dir) / ROLLOUT_SAMPLES
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:  # one write per step: a kill tears at most the last line
        f.write("".join(json.dumps(r) + "\n" for r in rows))
        f.flush()
        os.fsync(f.fileno())
    return rows


__all__ = ["ROLLOUT_SAMPLES", "ZONE_NAMES", "kept_indices", "write_rollout_samples"]
