"""summary.json: the report's numbers for machines, written beside report.md.

    {"schema": "vgrout.summary/1", "base": {"hack", "solve", "valid", "n", "source"} | null,
     "degradation_rule": {...},
     "arms": {NAME: {"seeds": [...], "placebo_seeds": [...] (placebo arms only), "final_step": [...],
                     "n": samples per state, "deployed": {"hack", "solve", "valid"},
                     "as_trained": {...}, "deployed_sem": {...}, "as_trained_sem": {...},
                     "degraded": bool, "degraded_reasons": [...]}}}

Rates are seed means at each run's final checkpoint, in [0, 1]; SEMs are over seeds (null for
one seed). `base` is null when no base model evaluation exists.
"""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path

from vgrout.io import write_json_atomic
from vgrout.report.base import NOISE_SIGMAS, SOLVE_TOL, VALID_FLOOR, Base
from vgrout.report.rundir import METRICS, RunData
from vgrout.stats import mean_sem

SCHEMA = "vgrout.summary/1"


def summary_path(report: str | Path) -> Path:
    """summary.json beside report.md; `<stem>_summary.json` for a report with another name."""
    report = Path(report)
    return report.with_name("summary.json" if report.stem == "report" else f"{report.stem}_summary.json")


def _none_if_nan(x: float) -> float | None:
    return x if math.isfinite(x) else None


def arm_block(runs: dict[int, RunData], reasons: list[str]) -> dict:
    seeds = sorted(runs)
    block: dict = {"seeds": seeds}
    placebo = [runs[s].placebo_seed for s in seeds]
    if any(p is not None for p in placebo):
        block["placebo_seeds"] = placebo
    block["final_step"] = sorted({runs[s].final_step for s in seeds})
    block["n"] = sorted({runs[s].final_eval["states"]["deployed"]["overall"]["n"] for s in seeds})
    for state in ("deployed", "as_trained"):
        stats = {m: mean_sem([runs[s].final_rate(state, m) for s in seeds]) for m in METRICS}
        block[state] = {m: stats[m][0] for m in METRICS}
        block[f"{state}_sem"] = {m: _none_if_nan(stats[m][1]) for m in METRICS}
    block["degraded"] = bool(reasons)
    block["degraded_reasons"] = list(reasons)
    return block


def summary_json(arms: dict[str, dict[int, RunData]], order: list[str], base: Base | None,
                 degraded: dict[str, list[str]]) -> dict:
    return {
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "base": None if base is None else base.to_json(),
        "degradation_rule": {"valid_floor": VALID_FLOOR, "solve_tolerance": SOLVE_TOL, "noise_sigmas": NOISE_SIGMAS,
                             "solve_checked": base is not None},
        "arms": {arm: arm_block(arms[arm], degraded[arm]) for arm in order},
    }


def write_summary(path: Path, summary: dict) -> Path:
    return write_json_atomic(path, summary)


def console_table(summary: dict) -> str:
    """Plain-text table of a summary: base row, then per arm deployed and as-trained hack/solve/valid."""
    cols = [f"{st} {m}" for st in ("deployed", "as-trained") for m in METRICS]
    head = f"{'arm':<18} {'n':>2}  " + "  ".join(f"{c:>17}" for c in cols) + "  deployed model"
    lines = [head, "-" * len(head)]
    base = summary["base"]
    if base is None:
        lines.append(f"{'base (step 0)':<18} {'-':>2}  no base model evaluation")
    else:
        cells = [f"{base[m]:.3f}" for m in METRICS] * 2
        lines.append(f"{'base (step 0)':<18} {'-':>2}  " + "  ".join(f"{c:>17}" for c in cells) + "  reference")
    for arm, a in summary["arms"].items():
        cells = []
        for st in ("deployed", "as_trained"):
            for m in METRICS:
                sem = a[f"{st}_sem"][m]
                cells.append(f"{a[st][m]:.3f} ± {sem:.3f}" if sem is not None else f"{a[st][m]:.3f}")
        status = "DEGRADED" if a["degraded"] else "held"
        lines.append(f"{arm:<18} {len(a['seeds']):>2}  " + "  ".join(f"{c:>17}" for c in cells) + f"  {status}")
    return "\n".join(lines)


__all__ = ["SCHEMA", "arm_block", "console_table", "summary_json", "summary_path", "write_summary"]
