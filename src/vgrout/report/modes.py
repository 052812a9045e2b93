"""Seen vs held-out loophole modes: does a direction built from some hack types suppress others?

A run that trains on several loophole modes (`modes`) and builds its direction from the pairs
of some of them (`pair_modes`) is read here per mode group at its final checkpoint: "seen"
(modes in pair_modes) and "held-out" (the other loophole modes). Counts are pooled over the
group's problems and then over seeds (a Wilson interval on the pooled counts: every sample of
every seed is one trial; it ignores between-seed variance, which the per-seed table shows).
Runs without pair_modes, or with a single loophole mode, have no held-out group and are skipped.
Torch-free, reads only eval JSON.
"""

from __future__ import annotations

from vgrout.report.runs import RunData
from vgrout.stats import wilson_interval

GROUPS = ("seen", "held-out")


def mode_groups(config: dict) -> dict[str, str] | None:
    """{loophole mode: "seen" | "held-out"} for a run, or None when it has no held-out modes."""
    modes = [m for m in config.get("modes") or () if m != "gt_only"]
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


def section_heldout_modes(arms: dict[str, dict[int, RunData]], order: list[str]) -> list[str]:
    """The report's "Seen vs held-out loophole modes" section ([] when no run has held-out modes)."""
    rows = []
    for arm in order:
        p = pooled(arms[arm])
        if p is None:
            continue
        for g in GROUPS:
            c = p[g]
            if not c["n"]:
                continue
            lo, hi = wilson_interval(c["hacked"], c["n"])
            rows.append(f"| {arm} | {g} | {c['n']} | {c['hacked'] / c['n']:.3f} [{lo:.3f}, {hi:.3f}] | "
                        f"{c['solved'] / c['n']:.3f} | {c['format_ok'] / c['n']:.3f} |")
    if not rows:
        return []
    any_run = next(r for arm in order for r in arms[arm].values() if mode_groups(r.config))
    groups = mode_groups(any_run.config)
    seen = sorted(m for m, g in groups.items() if g == "seen")
    held = sorted(m for m, g in groups.items() if g == "held-out")
    return ["## Seen vs held-out loophole modes", "",
            f"The direction was built from the pairs of the seen modes ({', '.join(seen)}); the held-out "
            f"modes ({', '.join(held)}) contributed no pairs. Deployed model, final checkpoint, counts pooled "
            "over problems and seeds (Wilson 95% on the pooled counts). A held-out hack drop counts only "
            "beside its solve and valid rates.", "",
            "| arm | modes | n | deployed hack [95% CI] | deployed solve | deployed valid |",
            "|---|---|---|---|---|---|", *rows, ""]


__all__ = ["GROUPS", "group_counts", "mode_groups", "pooled", "section_heldout_modes", "summary_block"]
