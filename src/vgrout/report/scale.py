"""Deploy-scale: hack and solve against the quarantine block's scale at evaluation.

`deployed` is the deployed block with the quarantine at scale 0, `as_trained` at scale 1. Newer
evals of arms that deploy only the deployed block add two states (`vgrout.eval`):
`half_quarantine` (the deployed block + 0.5 × the quarantine) and `quarantine_only` (the
quarantine alone, the deployed block removed). Read together they say where the hack lives: a
hack that grows with the quarantine's scale and is high for the quarantine alone was routed
into it; one present at scale 0 stayed in the deployed block.

Arms that deploy their whole adapter (vanilla, erase) and runs evaluated before these states
existed have no such states; an arm appears here only when at least one of its runs has one,
and the report omits the section when none does. Only `final_eval["states"]` is read, so
`vgrout.report.runs.STATES` and the curves stay as they are.
"""

from __future__ import annotations

import math

from vgrout.report.runs import METRICS, RunData, rate
from vgrout.stats import mean_sem

Arms = dict[str, dict[int, RunData]]
EXTRA_STATES = ("half_quarantine", "quarantine_only")
# (state, quarantine scale, column label); quarantine_only has no scale on that axis
SCALE_STATES = (("deployed", 0.0, "scale 0 (deployed)"), ("half_quarantine", 0.5, "scale 0.5"),
                ("as_trained", 1.0, "scale 1 (as-trained)"), ("quarantine_only", None, "quarantine only"))


def has_deploy_scale(arms: Arms, arm: str) -> bool:
    return any(s in run.final_eval["states"] for run in arms[arm].values() for s in EXTRA_STATES)


def scale_arms(arms: Arms, order: list[str]) -> list[str]:
    """Arms with at least one run evaluated in a deploy-scale state, in report order."""
    return [a for a in order if has_deploy_scale(arms, a)]


def state_stats(runs: dict[int, RunData], state: str, metric: str) -> tuple[float, float, int] | None:
    """(mean, SEM, n seeds) of the final eval's `state` rate over the runs that have it; None if none."""
    vals = [rate(r.final_eval, state, metric) for _, r in sorted(runs.items()) if state in r.final_eval["states"]]
    return mean_sem(vals) if vals else None


def _cell(st: tuple[float, float, int] | None) -> str:
    if st is None:
        return "—"
    mean, sem, n = st
    return f"{mean:.3f} ± {sem:.3f} (n={n})" if n > 1 and math.isfinite(sem) else f"{mean:.3f} (n={n})"


def section(arms: Arms, order: list[str], png_name: str | None) -> list[str]:
    """The report section; [] when no run has a deploy-scale state."""
    rows = scale_arms(arms, order)
    if not rows:
        return []
    lines = ["## Deploy-scale: hack and solve against the quarantine's scale", "",
             "Final checkpoint, mean ± SEM over seeds (n = seeds with that state). Scale s evaluates the deployed "
             "block plus s × the quarantine block: 0 is what deploys, 1 is the model as trained; `quarantine only` "
             "removes the deployed block. A hack that rises with s and is high for the quarantine alone was routed "
             "into the quarantine; one already present at s = 0 stayed where it deploys. Arms that deploy their "
             "whole adapter, and runs evaluated before these states existed, have no row or a — cell.", "",
             "| arm | metric | " + " | ".join(label for _, _, label in SCALE_STATES) + " |",
             "|---|---|" + "---:|" * len(SCALE_STATES)]
    for arm in rows:
        for metric in METRICS:
            cells = [_cell(state_stats(arms[arm], st, metric)) for st, _, _ in SCALE_STATES]
            lines.append(f"| {arm} | {metric} | " + " | ".join(cells) + " |")
    if png_name:
        lines += ["", f"![deployed hack and solve against the quarantine's scale]({png_name})"]
    return lines + [""]


def summary_block(runs: dict[int, RunData]) -> dict | None:
    """summary.json `deploy_scale` of one arm: {state: {"scale", "hack", "solve", "valid", "sem": {...},
    "n_seeds"}} for each state some run has; None when no run has a deploy-scale state."""
    if not any(s in r.final_eval["states"] for r in runs.values() for s in EXTRA_STATES):
        return None
    out = {}
    for state, scale, _ in SCALE_STATES:
        stats = {m: state_stats(runs, state, m) for m in METRICS}
        if stats["hack"] is None:
            continue
        out[state] = {"scale": scale, **{m: stats[m][0] for m in METRICS},
                      "sem": {m: stats[m][1] if math.isfinite(stats[m][1]) else None for m in METRICS},
                      "n_seeds": stats["hack"][2]}
    return out


def extend_summary(summary: dict, arms: Arms) -> dict:
    """Add `deploy_scale` to each arm of a summary.json dict that has the states (in place)."""
    for arm, block in summary["arms"].items():
        got = summary_block(arms[arm])
        if got is not None:
            block["deploy_scale"] = got
    return summary


__all__ = ["EXTRA_STATES", "SCALE_STATES", "extend_summary", "has_deploy_scale", "scale_arms", "section",
           "state_stats", "summary_block"]
