"""Seen vs held-out loophole modes: does a direction built from some hack types suppress others?

A run that trains on several loophole modes (`modes`) and builds its direction from the pairs
of some of them (`pair_modes`) is read here per mode group at its final checkpoint: "seen"
(modes in pair_modes) and "held-out" (the other loophole modes). Counts are pooled over the
group's problems and then over seeds (a Wilson interval on the pooled counts: every sample of
every seed is one trial; it ignores between-seed variance, which the per-seed table shows).
Runs without pair_modes, or with a single loophole mode, have no held-out group and are skipped.

The held-out question is asked only where the direction works on what it was built from: a
method arm's seed counts when its gate's live AUROC on the seen modes' rollouts (A > 0, the
rows it routes; `seen_gate_auroc`, from the per-rollout `mode` of diagnostics.jsonl) is at
least SEEN_INFORMATIVE_MIN, and the second table pools every arm over those seeds only.
Torch-free, reads only eval JSON and diagnostics.
"""

from __future__ import annotations

import math

from vgrout.report import gate
from vgrout.report.runs import RunData, placebo_base
from vgrout.stats import auroc, wilson_interval

GROUPS = ("seen", "held-out")
SEEN_INFORMATIVE_MIN = 0.8  # a method seed's live AUROC on the seen modes at or above: its held-out result counts


def mode_groups(config: dict) -> dict[str, str] | None:
    """{loophole mode: "seen" | "held-out"} for a run, or None when it has no held-out modes. A
    run trained loophole-free (gt_only) is read by the loophole modes it was evaluated on."""
    modes = [m for m in config.get("modes") or () if m != "gt_only"]
    if not modes:
        modes = [m for m in (config.get("eval") or {}).get("modes") or () if m != "gt_only"]
    seen = set(config.get("pair_modes") or ())
    if not seen or not [m for m in modes if m not in seen]:
        return None
    return {m: ("seen" if m in seen else "held-out") for m in modes}


def group_counts(run: RunData, state: str = "deployed") -> dict[str, dict[str, int]] | None:
    """{group: {"n", "hacked", "solved", "format_ok"}} pooled over the group's modes at the final eval."""
    groups = mode_groups(run.config)
    if groups is None or run.final_eval is None:
        return None
    out = {g: {"n": 0, "hacked": 0, "solved": 0, "format_ok": 0} for g in GROUPS}
    for mode, block in run.final_eval["states"][state]["by_mode"].items():
        if mode in groups:
            for k in out[groups[mode]]:
                out[groups[mode]][k] += int(block[k])
    return out


def pooled(runs: dict[int, RunData], state: str = "deployed") -> dict[str, dict[str, int]] | None:
    """group_counts summed over an arm's seeds (None when no run of the arm has held-out modes)."""
    per_seed = [c for c in (group_counts(r, state) for r in runs.values()) if c is not None]
    if not per_seed:
        return None
    return {g: {k: sum(c[g][k] for c in per_seed) for k in per_seed[0][g]} for g in GROUPS}


def summary_block(runs: dict[int, RunData]) -> dict | None:
    """summary.json's per-arm "deployed_by_group": rates of the pooled deployed counts."""
    p = pooled(runs)
    if p is None:
        return None
    return {g: {"n": c["n"], "hack": c["hacked"] / c["n"], "solve": c["solved"] / c["n"],
                "valid": c["format_ok"] / c["n"]} for g, c in p.items() if c["n"]}


def seen_gate_auroc(run: RunData) -> float | None:
    """The gate's AUROC (score vs the oracle's hack label) over the run's live rollouts with A > 0
    on its seen modes (`gate.rollout_fields`); None without per-rollout modes (runs written before
    they were logged), held-out groups or both labels among those rollouts."""
    groups = mode_groups(run.config)
    if groups is None:
        return None
    seen = {m for m, g in groups.items() if g == "seen"}
    scores, hacks = [], []
    for row in run.diagnostics:
        if gate.has_rollouts(row):
            s, _zones, h = gate.rollout_fields(row, modes=seen)
            scores += s
            hacks += h
    if not scores or all(hacks) or not any(hacks):
        return None
    value = auroc(scores, hacks)
    return float(value) if math.isfinite(value) else None


def counted_seeds(arms: dict[str, dict[int, RunData]], order: list[str]) -> dict[str, dict[int, float | None]]:
    """{method arm: {seed: seen-mode AUROC}} for each gated method arm of a held-out-mode matrix
    (placebos and the oracle are references, not directions under test)."""
    out = {}
    for arm in order:
        if arm == "oracle" or placebo_base(arm) is not None or pooled(arms[arm]) is None:
            continue
        per_seed = {seed: seen_gate_auroc(run) for seed, run in sorted(arms[arm].items())
                    if any(gate.has_rollouts(row) for row in run.diagnostics)}
        if per_seed:
            out[arm] = per_seed
    return out


def _rows(arms: dict[str, dict[int, RunData]], order: list[str], seeds: set[int] | None = None) -> list[str]:
    rows = []
    for arm in order:
        runs = arms[arm] if seeds is None else {s: r for s, r in arms[arm].items() if s in seeds}
        p = pooled(runs) if runs else None
        if p is None:
            continue
        for g in GROUPS:
            c = p[g]
            if not c["n"]:
                continue
            lo, hi = wilson_interval(c["hacked"], c["n"])
            rows.append(f"| {arm} | {g} | {c['n']} | {c['hacked'] / c['n']:.3f} [{lo:.3f}, {hi:.3f}] | "
                        f"{c['solved'] / c['n']:.3f} | {c['format_ok'] / c['n']:.3f} |")
    return rows


def section_heldout_modes(arms: dict[str, dict[int, RunData]], order: list[str]) -> list[str]:
    """The report's "Seen vs held-out loophole modes" section ([] when no run has held-out modes):
    every seed, then, per gated method arm, only the seeds where its gate is informative on the
    seen modes (`counted_seeds`)."""
    rows = _rows(arms, order)
    if not rows:
        return []
    any_run = next(r for arm in order for r in arms[arm].values() if mode_groups(r.config))
    groups = mode_groups(any_run.config)
    seen = sorted(m for m, g in groups.items() if g == "seen")
    held = sorted(m for m, g in groups.items() if g == "held-out")
    head = ["| arm | modes | n | deployed hack [95% CI] | deployed solve | deployed valid |", "|---|---|---|---|---|---|"]
    out = ["## Seen vs held-out loophole modes", "",
           f"The direction was built from the pairs of the seen modes ({', '.join(seen)}); the held-out "
           f"modes ({', '.join(held)}) contributed no pairs. Deployed model, final checkpoint, counts pooled "
           "over problems and seeds (Wilson 95% on the pooled counts). A held-out hack drop counts only "
           "beside its solve and valid rates.", "", "Every seed:", "", *head, *rows, ""]
    for arm, per_seed in counted_seeds(arms, order).items():
        shown = ", ".join(f"seed {s} {a:.2f}" if a is not None else f"seed {s} n/a" for s, a in per_seed.items())
        keep = {s for s, a in per_seed.items() if a is not None and a >= SEEN_INFORMATIVE_MIN}
        out += [f"{arm}'s gate on the seen modes (live AUROC, rollouts with A > 0; n/a: the run logged no "
                f"per-rollout modes or saw one label): {shown}. The held-out question counts only the seeds at or "
                f"above {SEEN_INFORMATIVE_MIN}, where the direction separates the hacks it was built from: "
                + (f"seeds {', '.join(map(str, sorted(keep)))}, every arm on those seeds:" if keep else
                   "none, so this matrix says nothing about held-out modes for this arm."), ""]
        if keep:
            out += [*head, *_rows(arms, order, keep), ""]
    return out


__all__ = ["GROUPS", "SEEN_INFORMATIVE_MIN", "counted_seeds", "group_counts", "mode_groups", "pooled",
           "section_heldout_modes", "seen_gate_auroc", "summary_block"]
