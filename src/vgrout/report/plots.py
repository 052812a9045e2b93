"""PNG figures for the compare report (matplotlib, Agg backend: no display needed).

Every point comes from run files: eval/curve.jsonl for curves, the final eval JSON for bars,
diagnostics.jsonl for gate AUROC. Lines and bars are means over seeds; error bars are ±1 SEM
across seeds, and each seed is drawn as a dot so n = 3 is visible as three dots.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be set first)

from vgrout.io import atomic_file  # noqa: E402
from vgrout.stats import mean_sem  # noqa: E402
from vgrout.report import gate  # noqa: E402
from vgrout.report.rundir import RunData  # noqa: E402

Arms = dict[str, dict[int, RunData]]


def _colors(arms: list[str]) -> dict[str, str]:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {a: cycle[i % len(cycle)] for i, a in enumerate(arms)}


def _save(fig, path: Path) -> Path:
    """Save atomically (vgrout.io), so a reader never sees half a PNG."""
    try:
        with atomic_file(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def _mean_curve(runs: list[RunData], key: str) -> tuple[list[int], list[float]]:
    """Mean of `key` over seeds at the steps every seed evaluated."""
    by_run = [{r["step"]: r[key] for r in run.curve} for run in runs]
    steps = sorted(set.intersection(*(set(d) for d in by_run))) if by_run else []
    return steps, [sum(d[s] for d in by_run) / len(by_run) for s in steps]


def plot_curves(arms: Arms, order: list[str], path: Path) -> Path:
    """Hack and solve over training steps per arm: deployed solid, as-trained dashed."""
    colors = _colors(order)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    for ax, metric in zip(axes, ("hack", "solve")):
        for arm in order:
            runs = [arms[arm][s] for s in sorted(arms[arm]) if arms[arm][s].curve]
            if not runs:
                continue
            for state, style in (("deployed", "-"), ("as_trained", "--")):
                steps, ys = _mean_curve(runs, f"{metric}_{state}")
                if steps:
                    ax.plot(steps, ys, style, color=colors[arm], marker="o", ms=3,
                            label=f"{arm} {state.replace('_', '-')} (n={len(runs)})")
        ax.set_title(f"{metric} rate on held-out problems")
        ax.set_xlabel("training step")
        ax.set_ylabel(f"{metric} rate (mean over seeds)")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="best")
    return _save(fig, path)


def plot_bars(arms: Arms, order: list[str], path: Path) -> Path:
    """Deployed hack and solve per arm at the final checkpoint: mean ± SEM, seeds as dots."""
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(order) + 2), 4))
    width = 0.38
    for k, (metric, color) in enumerate((("hack", "tab:red"), ("solve", "tab:green"))):
        for i, arm in enumerate(order):
            vals = [arms[arm][s].final_rate("deployed", metric) for s in sorted(arms[arm])]
            mean, sem, n = mean_sem(vals)
            x = i + (k - 0.5) * width
            ax.bar(x, mean, width, color=color, alpha=0.6, label=f"deployed {metric}" if i == 0 else None,
                   yerr=sem if math.isfinite(sem) else None, capsize=4)
            ax.scatter([x] * n, vals, color="black", s=10, zorder=3)
    ax.set_xticks(range(len(order)), order, rotation=20)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("rate (mean ± SEM over seeds; dots = seeds)")
    ax.set_title("deployed (quarantine ablated) hack and solve, final checkpoint")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_gate_auroc(arms: Arms, order: list[str], path: Path) -> Path | None:
    """Per-step AUROC of the routing score vs the oracle hack label, mean over seeds per arm
    (chance = 0.5). None when no run has a gate."""
    colors = _colors(order)
    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = False
    for arm in order:
        per_seed = [dict((s, g.auroc) for s, g in gate.step_table(run.diagnostics))
                    for run in arms[arm].values() if gate.has_gate(run.diagnostics)]
        if not per_seed:
            continue
        steps = sorted(set().union(*per_seed))
        ys = []
        for s in steps:
            vals = [d[s] for d in per_seed if s in d and math.isfinite(d[s])]
            ys.append(sum(vals) / len(vals) if vals else float("nan"))
        ax.plot(steps, ys, "-", color=colors[arm], marker="o", ms=3, label=f"{arm} (n={len(per_seed)})")
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.axhline(0.5, color="grey", lw=1, ls=":", label="chance")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("training step")
    ax.set_ylabel("AUROC (score vs hack), mean over seeds")
    ax.set_title("gate classifier quality per step")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


__all__ = ["plot_bars", "plot_curves", "plot_gate_auroc"]
