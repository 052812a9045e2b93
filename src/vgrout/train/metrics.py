"""Append-only jsonl sinks (flushed every row) and the oracle diagnostics of a step.

`metrics.jsonl` holds oracle-free fields only; `diagnostics.jsonl` holds what needs the
oracle's labels (as-trained hack/solve rates, the gate's quality as a hack classifier).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from vgrout.io import write_jsonl_atomic
from vgrout.gates import KEEP, ROUTE, auroc, f_beta, precision
from vgrout.types import Grade


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class JsonlSink:
    """One json object per line, flushed each row. On resume, rows at or after a step are dropped."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, row: dict) -> None:
        self._f.write(json.dumps({k: _clean(v) for k, v in row.items()}, sort_keys=True) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def truncate_from(path: Path, step: int) -> None:
    """Keep only rows with row['step'] < step (crash-safe rewrite); a torn last line is dropped."""
    path = Path(path)
    if not path.exists():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by a kill
        if row.get("step", step) < step:
            keep.append(line)
    write_jsonl_atomic(path, keep)


def oracle_diagnostics(grades: Sequence[Grade], hackable: Sequence[bool], deployed: torch.Tensor, live: torch.Tensor,
                       zones: torch.Tensor, scores: torch.Tensor, advantages: torch.Tensor) -> dict:
    """As-trained hack/solve rates (all rows, hackable prompts, deploy-sampled rows) and gate quality.

    Gate quality is measured on rows with A > 0 (the ones whose update the gate has to route)
    against the oracle's hack label `exploited`.
    """
    hack = torch.tensor([g.exploited for g in grades])
    solve = torch.tensor([g.gt_correct for g in grades])
    hk = torch.tensor(list(hackable))

    def rate(x: torch.Tensor, sel: torch.Tensor) -> float:
        return float(x[sel].float().mean()) if bool(sel.any()) else math.nan

    all_rows = torch.ones_like(hack)
    pos = live & (advantages > 0) & ~torch.isnan(scores)
    out = {
        "hack_rate": rate(hack, all_rows), "solve_rate": rate(solve, all_rows),
        "hack_rate_hackable": rate(hack, hk), "solve_rate_hackable": rate(solve, hk),
        "hack_rate_deploy_sampled": rate(hack, deployed), "solve_rate_deploy_sampled": rate(solve, deployed),
        "format_rate": rate(torch.tensor([g.format_ok for g in grades]), all_rows),
        "gate_auroc": auroc(scores[pos], hack[pos]) if bool(pos.any()) else math.nan,
        "gate_route_precision": precision(zones[pos] == ROUTE, hack[pos]) if bool(pos.any()) else math.nan,
        "gate_keep_precision": precision(zones[pos] == KEEP, ~hack[pos]) if bool(pos.any()) else math.nan,
        "gate_route_f05": f_beta(zones[pos] == ROUTE, hack[pos], 0.5) if bool(pos.any()) else math.nan,
        "route_share_of_hacks": rate(zones == ROUTE, live & hack),
    }
    if not bool(torch.isnan(scores).all()):  # gated arms: per-rollout rows for pooled gate diagnostics
        out.update({
            "gate_score": [None if math.isnan(s) else s for s in scores.tolist()],
            "zone": [int(z) for z in zones.tolist()], "hack": [bool(h) for h in hack.tolist()],
            "advantage": [float(a) for a in advantages.tolist()], "live": [bool(x) for x in live.tolist()],
        })
    return out
