"""PNG figures for the compare report (matplotlib, Agg backend: no display needed).

Every point comes from run files: the eval step files for curves, the final eval for bars,
diagnostics.jsonl for gate AUROC. One colour per arm and one line style per state (deployed
solid, as-trained dashed), with two separate legends; the base model (step 0) is a black star
and the first point of every curve; the band is the min-max over seeds. Every title says the
markers, n and sampling the numbers came from.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be set first)
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from vgrout.io import atomic_file  # noqa: E402
from vgrout.report import gate  # noqa: E402
from vgrout.report.base import VALID_FLOOR, Base  # noqa: E402
from vgrout.report.runs import METRICS, RunData, placebo_base  # noqa: E402
from vgrout.stats import mean_sem  # noqa: E402

Arms = dict[str, dict[int, RunData]]
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h", "<", ">")
STATE_STYLE = {"deployed": "-", "as_trained": "--"}
METRIC_COLOR = {"hack": "tab:red", "solve": "tab:green", "valid": "tab:blue"}


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


def eval_caption(arms: Arms) -> str:
    """Markers, n and sampling of the final evals (identical across runs: compare checks it)."""
    run = next(iter(next(iter(arms.values())).values()))
    s, o = run.final_eval["settings"], run.final_eval["states"]["deployed"]["overall"]
    sampling = ", ".join(f"{k}={s[k]}" for k in ("temperature", "top_p", "top_k") if k in s) or "sampling n/a"
    return (f"held-out eval: {s.get('markers', '?')} markers, n={o['n']} samples per state "
            f"({o['n_problems']} problems x {s.get('n_samples', 1)}), {sampling}")


def train_caption(arms: Arms) -> str:
    cfg = next(iter(next(iter(arms.values())).values())).config
    sampling = ", ".join(f"{k}={cfg[k]}" for k in ("temperature", "top_p", "top_k") if k in cfg)
    return (f"training rollouts ({cfg.get('prompts_per_step', '?')} prompts x {cfg.get('group_size', '?')} per step, "
            f"train markers, {sampling}) the gate routes (live, A > 0); label = oracle `exploited`")


def _deployed_is_full(runs: dict[int, RunData]) -> bool:
    return all(r.final_eval["settings"].get("deployed_is_full", False) for r in runs.values())


def _seed_curves(runs: list[RunData], key: str, base: Base | None) -> tuple[list[int], list[list[float]]]:
    """(steps every seed evaluated, per step the seeds' values); the base is step 0 when a run lacks it."""
    by_run = []
    for run in runs:
        d = {p["step"]: p[key] for p in run.curve}
        if 0 not in d and base is not None:
            d[0] = base.rate(key.split("_", 1)[0])
        by_run.append(d)
    steps = sorted(set.intersection(*(set(d) for d in by_run))) if by_run else []
    return steps, [[d[s] for d in by_run] for s in steps]


def plot_curves(arms: Arms, order: list[str], base: Base | None, path: Path) -> Path:
    """Hack, solve and valid over training steps: colour = arm, solid = deployed, dashed =
    as-trained, band = min-max over seeds (deployed), star = base model at step 0."""
    colors = _colors(order)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), sharex=True)
    width = {a: 3.4 - 2.0 * i / max(1, len(order) - 1) for i, a in enumerate(order)}  # thick first: none hides
    for ax, metric in zip(axes, METRICS):
        for i, arm in enumerate(order):
            runs = [arms[arm][s] for s in sorted(arms[arm]) if arms[arm][s].curve]
            states = ("deployed",) if _deployed_is_full(arms[arm]) else ("deployed", "as_trained")
            for state in states:
                steps, vals = _seed_curves(runs, f"{metric}_{state}", base)
                if not steps:
                    continue
                ys = [sum(v) / len(v) for v in vals]
                ax.plot(steps, ys, STATE_STYLE[state], color=colors[arm], lw=width[arm], marker=MARKERS[i % len(MARKERS)],
                        ms=4, alpha=0.9, zorder=2 + i)
                if state == "deployed" and len(runs) > 1:
                    ax.fill_between(steps, [min(v) for v in vals], [max(v) for v in vals], color=colors[arm],
                                    alpha=0.12, lw=0, zorder=1)
        if base is not None:
            ax.plot([0], [base.rate(metric)], "*", color="black", ms=15, zorder=50)
        if metric == "valid":
            ax.axhline(VALID_FLOOR, color="grey", ls=":", lw=1)
        ax.set_title(f"{metric} rate" + (f" (dotted: degradation floor {VALID_FLOOR})" if metric == "valid" else ""))
        ax.set_xlabel("training step")
        ax.set_ylabel(f"{metric} rate, mean over seeds")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    arm_handles = [Line2D([], [], color=colors[a], lw=width[a], marker=MARKERS[i % len(MARKERS)],
                          label=f"{a} (n={len(arms[a])} seeds{'; deployed = as-trained' if _deployed_is_full(arms[a]) else ''})")
                   for i, a in enumerate(order)]
    state_handles = [Line2D([], [], color="black", ls="-", label="deployed (quarantine ablated)"),
                     Line2D([], [], color="black", ls="--", label="as-trained"),
                     Patch(color="grey", alpha=0.3, label="min-max over seeds (deployed)"),
                     Line2D([], [], color="black", marker="*", ls="none", ms=12,
                            label="base model (step 0)" if base is not None else "no base eval available")]
    leg = fig.legend(handles=arm_handles, title="arm (colour)", loc="upper left", bbox_to_anchor=(1.0, 0.92), fontsize=8)
    fig.add_artist(leg)
    fig.legend(handles=state_handles, title="state (line style)", loc="lower left", bbox_to_anchor=(1.0, 0.08),
               fontsize=8)
    fig.suptitle(f"Hack / solve / valid over training (lines: mean over seeds). {eval_caption(arms)}", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_bars(arms: Arms, order: list[str], base: Base | None, degraded: dict[str, list[str]], path: Path) -> Path:
    """Deployed hack, solve and valid per arm at the final checkpoint: mean ± SEM, seeds as
    dots, base rates as dashed lines, degraded arms labelled."""
    fig, ax = plt.subplots(figsize=(max(6.0, 1.9 * len(order) + 2), 4.6))
    width = 0.27
    for k, metric in enumerate(METRICS):
        for i, arm in enumerate(order):
            vals = [arms[arm][s].final_rate("deployed", metric) for s in sorted(arms[arm])]
            mean, sem, n = mean_sem(vals)
            x = i + (k - 1) * width
            ax.bar(x, mean, width, color=METRIC_COLOR[metric], alpha=0.6, yerr=sem if math.isfinite(sem) else None,
                   capsize=3)
            ax.scatter([x] * n, vals, color="black", s=10, zorder=3)
        if base is not None:
            ax.axhline(base.rate(metric), color=METRIC_COLOR[metric], ls="--", lw=1.2)
    for i, arm in enumerate(order):
        if degraded[arm]:
            what = [m for m in ("valid", "solve") if any(r.startswith(f"deployed {m}") for r in degraded[arm])]
            ax.text(i, 1.035, f"degraded\n({', '.join(what)})", ha="center", va="bottom", color="darkred", fontsize=8,
                    fontweight="bold")
    ax.set_xticks(range(len(order)), [f"{a}\n(n={len(arms[a])})" for a in order])
    ax.set_ylim(0, 1.17)
    ax.set_ylabel("deployed rate (mean ± SEM over seeds; dots = seeds)")
    ax.set_title(f"Deployed (quarantine ablated), final checkpoint\n{eval_caption(arms)}", fontsize=9)
    handles = [Patch(color=METRIC_COLOR[m], alpha=0.6, label=f"deployed {m}") for m in METRICS]
    handles += [Line2D([], [], color="grey", ls="--", label="base model (step 0),\nline colour = metric"
                       if base is not None else "no base eval available")]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def _run_auroc(run: RunData) -> tuple[float, bool]:
    """(AUROC, pooled?): pooled over the run's gated rollouts, else the mean of per-step aggregates."""
    p = gate.pooled(run.diagnostics)
    if p is not None:
        return p.auroc, True
    return gate.mean_over_steps(gate.step_table(run.diagnostics), "auroc"), False


def _pooled_panel(ax, arms: Arms, gated: list[str], colors: dict[str, str]) -> None:
    any_step_mean = False
    for i, arm in enumerate(gated):
        got = [_run_auroc(arms[arm][s]) for s in sorted(arms[arm]) if gate.has_gate(arms[arm][s].diagnostics)]
        vals = [v for v, _ in got if math.isfinite(v)]
        any_step_mean |= not all(p for _, p in got)
        hollow = placebo_base(arm) is not None
        xs = [i + 0.08 * (j - (len(vals) - 1) / 2) for j in range(len(vals))]
        ax.scatter(xs, vals, s=36, edgecolors=colors[arm], facecolors="none" if hollow else colors[arm], zorder=3)
        if vals:
            ax.hlines(sum(vals) / len(vals), i - 0.3, i + 0.3, color=colors[arm], lw=2.5)
    ax.axhline(0.5, color="grey", ls=":", lw=1)
    ax.set_xticks(range(len(gated)), [f"{a}\n(n={len(arms[a])})" for a in gated], fontsize=8)
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("AUROC, score vs hack (0.5 = chance)")
    ax.set_title("pooled AUROC per run (dots = seeds, bar = mean;\nhollow = placebo direction"
                 + ("; some runs: mean of per-step values)" if any_step_mean else ")"), fontsize=9)
    ax.grid(axis="y", alpha=0.3)


def plot_gate_auroc(arms: Arms, order: list[str], path: Path, window: int = gate.WINDOW,
                    min_class: int = gate.MIN_CLASS) -> Path | None:
    """Left: pooled AUROC per run, real direction vs placebo. Right: rolling AUROC over the last
    `window` steps (mean over the seeds where defined) above the n behind it; an x marks a step
    where no seed had `min_class` hacks and `min_class` clean rollouts. None when no run has a gate."""
    gated = [a for a in order if any(gate.has_gate(r.diagnostics) for r in arms[a].values())]
    if not gated:
        return None
    colors = _colors(order)
    fig = plt.figure(figsize=(14, 5.4))
    grid = fig.add_gridspec(3, 2, width_ratios=(1, 2), height_ratios=(2, 2, 1.3))
    _pooled_panel(fig.add_subplot(grid[:, 0]), arms, gated, colors)
    ax = fig.add_subplot(grid[:2, 1])
    ax_n = fig.add_subplot(grid[2, 1], sharex=ax)
    for arm in gated:
        runs = [r for r in arms[arm].values() if gate.has_gate(r.diagnostics)]
        rolled = [gate.rolling(r.diagnostics, window, min_class) for r in runs]
        if not any(rolled):  # aggregates only: the trainer's per-step values, n unknown
            steps = sorted({s for r in runs for s, _ in gate.step_table(r.diagnostics)})
            per = [dict((s, g.auroc) for s, g in gate.step_table(r.diagnostics)) for r in runs]
            ys = [_finite_mean([d.get(s, math.nan) for d in per]) for s in steps]
            ax.plot(steps, ys, ":", color=colors[arm], lw=1.2)
            continue
        steps = sorted({p.step for pts in rolled for p in pts})
        by_step = [[p for pts in rolled for p in pts if p.step == s] for s in steps]
        ys = [_finite_mean([p.auroc for p in pts]) for pts in by_step]
        ax.plot(steps, ys, "-", color=colors[arm], lw=1.6, marker="o", ms=2.5)
        undefined = [s for s, y in zip(steps, ys) if not math.isfinite(y)]
        ax.plot(undefined, [0.0] * len(undefined), "x", color=colors[arm], ms=5)
        ax_n.plot(steps, [sum(p.n for p in pts) for pts in by_step], "-", color=colors[arm], lw=1.2)
        ax_n.plot(steps, [sum(p.n_hack for p in pts) for pts in by_step], ":", color=colors[arm], lw=1.2)
    ax.axhline(0.5, color="grey", ls=":", lw=1)
    ax.set_ylim(-0.05, 1.03)
    ax.set_ylabel("AUROC, mean over seeds")
    ax.set_title(f"rolling AUROC over the last {window} steps; x at 0 = undefined "
                 f"(< {min_class} hacks or < {min_class} clean in the window on every seed)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.tick_params(labelbottom=False)
    ax_n.set_xlabel("training step")
    ax_n.set_ylabel("rollouts in window\n(sum over seeds)", fontsize=8)
    ax_n.grid(alpha=0.3)
    handles = [Line2D([], [], color=colors[a], lw=2, label=f"{a} (n={len(arms[a])} seeds)") for a in gated]
    leg = fig.legend(handles=handles, title="arm (colour)", loc="upper left", bbox_to_anchor=(1.0, 0.92), fontsize=8)
    fig.add_artist(leg)
    fig.legend(handles=[Line2D([], [], color="black", ls="-", label="n gated rollouts"),
                        Line2D([], [], color="black", ls=":", label="n hacks among them")],
               title="lower panel", loc="lower left", bbox_to_anchor=(1.0, 0.08), fontsize=8)
    fig.suptitle(f"Gate classifier quality. {train_caption(arms)}", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_deploy_scale(arms: Arms, order: list[str], path: Path) -> Path | None:
    """Deployed hack and solve against the quarantine's scale (0 = deployed, 0.5, 1 = as-trained),
    one line per arm (mean over seeds, ±1 SEM bars), the quarantine block alone as a separate
    hollow point right of the axis. None when no run has a deploy-scale state."""
    from vgrout.report import scale

    shown = scale.scale_arms(arms, order)
    if not shown:
        return None
    colors = _colors(order)
    q_x = 1.35
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), sharey=True)
    for ax, metric in zip(axes, ("hack", "solve")):
        for i, arm in enumerate(shown):
            xs, ys, es = [], [], []
            for state, x, _ in scale.SCALE_STATES:
                st = scale.state_stats(arms[arm], state, metric)
                if st is None or x is None:
                    continue
                xs.append(x)
                ys.append(st[0])
                es.append(st[1] if math.isfinite(st[1]) else 0.0)
            ax.errorbar(xs, ys, yerr=es, fmt="-", color=colors[arm], marker=MARKERS[i % len(MARKERS)], ms=6, lw=2,
                        capsize=3)
            q = scale.state_stats(arms[arm], "quarantine_only", metric)
            if q is not None:
                if math.isfinite(q[1]) and q[1] > 0:
                    ax.errorbar([q_x], [q[0]], yerr=[q[1]], fmt="none", ecolor=colors[arm], capsize=3)
                ax.scatter([q_x], [q[0]], s=70, marker=MARKERS[i % len(MARKERS)], facecolors="none",
                           edgecolors=colors[arm], linewidths=2, zorder=3)
        ax.axvline((1.0 + q_x) / 2, color="grey", ls=":", lw=1)
        ax.set_xticks([0.0, 0.5, 1.0, q_x], ["0\n(deployed)", "0.5", "1\n(as-trained)", "quarantine\nonly"])
        ax.set_xlim(-0.15, q_x + 0.2)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("quarantine block's scale at evaluation")
        ax.set_ylabel(f"{metric} rate, mean ± SEM over seeds")
        ax.set_title(f"{metric} rate against the quarantine's scale", fontsize=10)
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=colors[a], lw=2, marker=MARKERS[i % len(MARKERS)],
                      label=f"{a} (n={len(arms[a])} seeds)") for i, a in enumerate(shown)]
    handles.append(Line2D([], [], color="black", marker="o", mfc="none", ls="none",
                          label="hollow: quarantine block alone\n(deployed block removed)"))
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 0.92), fontsize=8)
    fig.suptitle(f"Deploy-scale, final checkpoint. {eval_caption(arms)}", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _finite_mean(vals: list[float]) -> float:
    vals = [v for v in vals if v is not None and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else math.nan


__all__ = ["eval_caption", "plot_bars", "plot_curves", "plot_deploy_scale", "plot_gate_auroc", "train_caption"]
