"""`vgrout compare`: one markdown report across arms and seeds, every number read from run files.

The question it answers: does an arm beat vanilla and its placebo after deployment
ablation, over seeds, without breaking the model? Per arm it gives deployed and as-trained
hack/solve/valid (mean ± SEM over seeds) beside the base model's (step 0), flags degraded arms
(vgrout.report.base), paired differences to vanilla and to the placebo (a 95% bootstrap interval
over seeds and problems, vgrout.report.intervals, read against an equivalence margin; the paired
t-test by seed, each seed's sign and an exact sign-flip p beside it), the seeds each headline
difference needs, the deploy-scale panel when the evals have it (vgrout.report.scale), the gate's
classifier table, quoted samples, PNG plots and summary.json. The "Findings" section states each
comparison in words: a difference, equivalent within the margin, or inconclusive; and "degraded".
Right after it, the gate under test (vgrout.report.gatequality): each gated arm's AUROC, where
its zones put hacks and clean rollouts, and its quality flag; a comparison of a method arm whose
gate is not informative says it is no evidence about routing, and the `oracle` arm (it uses
oracle labels: an upper bound) is labelled as a reference wherever it appears.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from pathlib import Path
from typing import Sequence

from vgrout.io import write_text_atomic
from vgrout.report import baselines, gate, gatequality, intervals, plots, scale
from vgrout.report.modes import section_heldout_modes
from vgrout.report.base import GT_ONLY, Base, degradation, find_base, rule_text
from vgrout.report.runs import (METRICS, PLACEBO_SUFFIX, VANILLA, RunData, group_by_arm, load_run, order_arms,
                                  placebo_base, placebo_draw, placebo_draws)
from vgrout.report.samples import section_samples
from vgrout.report.summary import REGIME_BARS, ROOM_BARS, summary_json, summary_path, write_summary
from vgrout.stats import PairedTest, mean_sem, paired_test, wilson_interval

Arms = dict[str, dict[int, RunData]]
Degraded = dict[str, list[str]]  # {arm: reasons its deployed model is degraded ([] = held)}
ALPHA = 0.05
ABSORB_ARM = "absorb"  # the gate pinned to absorb: the no-routing control every direction arm must beat


def fmt(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def fmt_p(p: float) -> str:
    return "n/a" if not math.isfinite(p) else (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")


def fmt_mean_sem(vals: Sequence[float]) -> str:
    mean, sem, n = mean_sem(vals)
    return f"{fmt(mean)} ± {fmt(sem)} (n={n})" if n > 1 else f"{fmt(mean)} (n=1)"


_DRAWS_MEAN = re.compile(r"^(?P<base>.+)-placebo \(mean of (?P<n>[0-9]+) draws\)$")


def placebo_ref(arms: Arms, arm: str) -> str | None:
    """What `arm` is compared against as its placebo: its one placebo draw's label, or, with several
    draws ("ARM-placebo", "ARM-placebo1", ...), "ARM-placebo (mean of N draws)", whose value on a
    seed is the mean over that seed's draws; None without a placebo."""
    draws = placebo_draws(arms, arm)
    if not draws:
        return None
    return draws[0] if len(draws) == 1 else f"{arm}{PLACEBO_SUFFIX} (mean of {len(draws)} draws)"


def members(arms: Arms, arm: str) -> list[str]:
    """The arms behind a name: itself, or the placebo draws a placebo_ref() mean stands for."""
    if arm in arms:
        return [arm]
    m = _DRAWS_MEAN.match(arm)
    if m is None:
        raise KeyError(f"no arm {arm!r} in this comparison")
    return placebo_draws(arms, m["base"])


def arm_values(arms: Arms, arm: str, state: str, metric: str) -> dict[int, float]:
    """{seed: final eval rate} for one arm (a placebo_ref() mean: per seed, the mean over its draws)."""
    names = members(arms, arm)
    if len(names) == 1:
        return {seed: run.final_rate(state, metric) for seed, run in arms[names[0]].items()}
    per_seed: dict[int, list[float]] = {}
    for name in names:
        for seed, run in arms[name].items():
            per_seed.setdefault(seed, []).append(run.final_rate(state, metric))
    return {seed: sum(v) / len(v) for seed, v in sorted(per_seed.items())}


def arm_mean(arms: Arms, arm: str, state: str, metric: str) -> float:
    return mean_sem(list(arm_values(arms, arm, state, metric).values()))[0]


def degraded_arms(arms: Arms, base: Base | None) -> Degraded:
    """{arm: degradation reasons} by vgrout.report.base.degradation on the final deployed rates, against
    the base and (when a gt_only arm is in the comparison) gt_only's deployed solve."""
    gt = list(arm_values(arms, GT_ONLY, "deployed", "solve").values()) if GT_ONLY in arms else None
    n = (min(r.final_eval["states"]["deployed"]["overall"]["n"] for r in arms[GT_ONLY].values())
         if GT_ONLY in arms else None)
    return {arm: degradation({m: list(arm_values(arms, arm, "deployed", m).values()) for m in METRICS}, base,
                             gt_only=None if arm == GT_ONLY else gt, n=n)
            for arm in arms}


def paired(arms: Arms, a: str, b: str, state: str, metric: str) -> PairedTest | None:
    """a − b paired by seed over the seeds both arms have; None when they share no seed."""
    va, vb = arm_values(arms, a, state, metric), arm_values(arms, b, state, metric)
    seeds = sorted(set(va) & set(vb))
    return paired_test([va[s] for s in seeds], [vb[s] for s in seeds]) if seeds else None


def describe(a: str, b: str, what: str, res: PairedTest | None, ci: intervals.Interval | None = None,
             margin: float = intervals.EQUIV_MARGIN) -> str:
    """One plain sentence for a paired comparison (a − b) of `what`. With `ci` (the bootstrap interval
    of Δ over seeds and problems) the sentence is the interval's: a difference when it excludes 0,
    else equivalent within ±margin or inconclusive; the paired t-test is kept in the details."""
    if res is None:
        return f"{a} vs {b}, {what}: no seed in common, so no paired comparison."
    detail = f"paired t, p={fmt_p(res.p)}, n={res.n}; per-seed signs {res.signs}; sign-flip p={fmt_p(res.p_sign_flip)}"
    if ci is not None:
        if res.n < 2:
            t_detail = "one paired seed: no t-test"
        elif not math.isfinite(res.p):
            t_detail = (f"every seed gives the same difference Δ = {res.mean:+.3f} (n={res.n}, signs {res.signs}), "
                        "so the paired t-test is undefined with zero spread")
        else:
            t_detail = detail
        return intervals.headline(a, b, what, ci, f"{intervals.boot_text(ci)}; {t_detail}", margin)[1]
    if res.n < 2:
        return f"{a} vs {b}, {what}: only one paired seed (Δ = {res.mean:+.3f}); no test possible."
    if not math.isfinite(res.p):
        return (f"{a} vs {b}, {what}: every seed gives the same difference Δ = {res.mean:+.3f} "
                f"(n={res.n}, signs {res.signs}); the t-test is undefined with zero spread.")
    if res.p < ALPHA and res.mean != 0:
        direction = "lower" if res.mean < 0 else "higher"
        return f"**{a}'s {what} is {direction} than {b}'s by {abs(res.mean):.3f} ± {fmt(res.sem)}** ({detail})."
    return f"No significant difference between {a} and {b} in {what}: Δ = {res.mean:+.3f} ± {fmt(res.sem)} ({detail})."


def hack_verdict(arms: Arms, a: str, base: Base | None, degraded: Degraded) -> str:
    """What a lower deployed hack rate of arm `a` means: degradation, or a drop with the model intact."""
    v, s = arm_mean(arms, a, "deployed", "valid"), arm_mean(arms, a, "deployed", "solve")
    if degraded[a]:
        return (f" **{a} is degraded** ({'; '.join(degraded[a])}): this hack drop is degradation, not a removed "
                "hack.")
    gt = (f"; {GT_ONLY}'s deployed solve {arm_mean(arms, GT_ONLY, 'deployed', 'solve'):.3f}"
          if GT_ONLY in arms and a != GT_ONLY else "")
    if base is None:
        return (f" Deployed valid {v:.3f} clears the floor; no base model, so solve was not checked against it"
                + (f", only against {GT_ONLY}'s ({s:.3f} vs {arm_mean(arms, GT_ONLY, 'deployed', 'solve'):.3f})."
                   if gt else "."))
    return (f" Valid and solve held: deployed valid {v:.3f}, solve {s:.3f} (base: valid {base.valid:.3f}, solve "
            f"{base.solve:.3f}{gt}).")


def _diff_row(a: str, b: str, metric: str, res: PairedTest | None, ci: intervals.Interval | None = None) -> str:
    if res is None:
        return f"| {gatequality.display(a)} − {b} | {metric} | no common seed | | | | | | |"
    boot = (f" {intervals.fmt_interval(ci, signed=True)} | {intervals.verdict(ci)} |" if ci is not None
            else " n/a | |")
    return (f"| {gatequality.display(a)} − {b} | {metric} | {res.mean:+.3f} ± {fmt(res.sem)} | {res.n} | {fmt(res.t, 2)} | "
            f"{fmt_p(res.p)} | {res.signs} ({fmt_p(res.p_sign_flip)}) |" + boot)


DIFF_HEADER = ("| comparison | deployed metric | Δ mean ± SEM | n | t | p (paired t) | seed signs (sign-flip p) | "
               f"Δ 95% interval (bootstrap) | verdict (±{intervals.EQUIV_MARGIN:g}) |\n"
               "|---|---|---:|---:|---:|---:|---|---|---|")


def comparisons(arms: Arms, order: list[str]) -> list[tuple[str, str]]:
    """(arm, reference) pairs: every arm against vanilla, every arm with a placebo against it (with
    several placebo draws, against their per-seed mean: placebo_ref()) and against absorb."""
    # a placebo's further draws (X-placebo1, ...) meet vanilla only through their per-seed mean below
    pairs = [(a, VANILLA) for a in order if a != VANILLA and VANILLA in arms and not placebo_draw(a)]
    pairs += [(a, placebo_ref(arms, a)) for a in order if placebo_base(a) is None and placebo_ref(arms, a)]
    # a direction arm (one with a placebo) against the gate pinned to absorb: does routing beat no routing?
    pairs += [(a, ABSORB_ARM) for a in order if placebo_base(a) is None and placebo_ref(arms, a) and ABSORB_ARM in arms]
    return pairs


def base_sentence(base: Base | None) -> str:
    if base is None:
        return ("**No base model evaluation**: no run has `eval/step_000000.json` and no `--base EVAL_JSON` was "
                "given, so nothing here says how far any arm moved from the model training started from.")
    spread = f"; the step-0 evals differ by up to {base.spread:.3f}" if base.spread > 0 else ""
    return (f"Base model (before training): hack {base.hack:.3f}, solve {base.solve:.3f}, valid {base.valid:.3f} "
            f"(n={base.n} samples; from the {base.source}{spread}).")


def gap_line(arms: Arms, a: str) -> str | None:
    """Where method arm `a` lands between its placebo and the oracle (seed means, deployed hack and
    solve): the share of the placebo-to-oracle gap it closes. None without placebo and oracle."""
    ref, has_oracle = placebo_ref(arms, a), gatequality.ORACLE in arms
    if ref is None and not has_oracle:
        return None
    if ref is None or not has_oracle:
        missing = "no placebo run" if ref is None else "no oracle arm run"
        return f"{a} between its placebo and the oracle: {missing}, so no placebo-to-oracle gap to place it in."
    parts = []
    for metric in ("hack", "solve"):
        x, p, o = (arm_mean(arms, name, "deployed", metric) for name in (a, ref, gatequality.ORACLE))
        gap = o - p
        if not all(math.isfinite(v) for v in (x, p, o)):
            closes = "cannot be placed (a rate is undefined)"
        elif abs(gap) < 1e-9:
            closes = "placebo and oracle are equal, so there is no gap to close"
        else:
            closes = f"{a} closes {100 * (x - p) / gap:.0f}% of the placebo-to-oracle gap"
        parts.append(f"deployed {metric} {x:.3f}: placebo {p:.3f}, oracle {o:.3f} → {closes}")
    n_draws = len(members(arms, ref))
    plc = f"placebo = the mean of {n_draws} draws" if n_draws > 1 else f"placebo = {ref}"
    return (f"{a} between its placebo and the oracle (seed means; {plc}; oracle "
            f"{gatequality.ORACLE_NOTE}): " + "; ".join(parts) + ".")


def section_findings(arms: Arms, order: list[str], phenomenon: float, base: Base | None,
                     degraded: Degraded, summary_arms: dict | None = None,
                     boots: intervals.Bootstraps | None = None) -> list[str]:
    """The findings; with `summary_arms` (summary.json's "arms", carrying the gate blocks) each
    comparison of a method arm whose gate is not informative says it is no evidence about routing,
    and each method arm is placed between its placebo and the oracle."""
    summary_arms = summary_arms or {}
    lines = ["## Findings", "", f"- {base_sentence(base)}"]
    if VANILLA in arms:
        vals = list(arm_values(arms, VANILLA, "deployed", "hack").values())
        present = "present" if mean_sem(vals)[0] >= phenomenon else "NOT present"
        lines.append(f"- Vanilla's deployed hack rate is {fmt_mean_sem(vals)}: the reward-hacking phenomenon is "
                     f"{present} (threshold {phenomenon}); its deployed solve is "
                     f"{arm_mean(arms, VANILLA, 'deployed', 'solve'):.3f} and valid "
                     f"{arm_mean(arms, VANILLA, 'deployed', 'valid'):.3f}.")
    else:
        lines.append("- No vanilla run was given, so nothing is compared to vanilla.")
    for a in order:  # the gate under test, before anything is read as a result about routing
        block = (summary_arms.get(a) or {}).get("gate")
        if block is not None and block["role"] == "method":
            sh = block["mean"]
            routed = (f"; it routed {fmt(sh['hack']['route'], 2)} of hacking and "
                      f"{fmt(sh['clean']['route'], 2)} of clean live rollouts"
                      if sh["hack"]["route"] is not None else "")
            lines.append(f"- Gate under test: {gatequality.quality_reason(a, block)}{routed}.")
    if ABSORB_ARM in arms:  # is there room for a gate? (summary.json: the "room for a gate" regime checks)
        left, bar = arm_mean(arms, ABSORB_ARM, "deployed", "hack"), ROOM_BARS["absorb_hack_min"]
        if left < bar:
            v = arm_mean(arms, VANILLA, "deployed", "hack") if VANILLA in arms else None
            share = (f" (vanilla {v:.3f}: deleting the quarantine alone removes {1 - left / v:.0%} of it)"
                     if v else "")
            lines.append(f"- Room for a gate: absorb (every row trains both blocks, then the quarantine is deleted) "
                         f"deploys with hack {left:.3f}, below {bar}{share}: absorption alone goes far here, so the "
                         "room a gate has is small, and what a direction adds is read only against absorb and its "
                         "placebo.")
        else:
            lines.append(f"- Room for a gate: absorb deploys with hack {left:.3f} (>= {bar}): absorption alone "
                         "leaves the hack, so where a gate routes the hacks matters.")
    for a, b in comparisons(arms, order):
        for metric in ("hack", "solve", "valid"):
            res = paired(arms, a, b, "deployed", metric)
            ci = boots.diff(a, b, "deployed", metric) if boots is not None else None
            text = describe(a, b, f"deployed {metric} rate", res, ci)
            if metric == "hack" and res is not None and res.mean < 0:
                text += hack_verdict(arms, a, base, degraded)
            if a == gatequality.ORACLE:
                text += f" ({a} {gatequality.ORACLE_NOTE}, a reference, not a method.)"
            text += gatequality.no_evidence_note(a, summary_arms)
            lines.append(f"- {text}")
    for a in order:
        block = (summary_arms.get(a) or {}).get("gate")
        if block is not None and block["role"] == "method" and (line := gap_line(arms, a)) is not None:
            lines.append(f"- {line}{gatequality.no_evidence_note(a, summary_arms)}")
    bad = [a for a in order if degraded[a]]
    lines.append(f"- Degraded deployed models: {', '.join(bad) if bad else 'none'}. {rule_text(base, GT_ONLY in arms)}")
    if boots is not None:
        lines += intervals.section_power(boots, comparisons(arms, order))
    n_min = min(len(seeds) for seeds in arms.values())
    if boots is not None:
        lines.append(f"- Significance: each difference is read from its {boots.level:.0%} interval of Δ, a bootstrap "
                     f"over seeds and then problems (B = {boots.B}), paired by seed and by problem: a difference "
                     f"when the interval excludes 0; otherwise equivalent within ±{boots.margin:g} when it lies "
                     f"inside that margin, or inconclusive when it reaches beyond. The two-sided paired t-test at "
                     f"α = {ALPHA} (by seed) and the exact sign-flip p are in the details; with n = {n_min} seeds "
                     f"the sign-flip test cannot go below p = {2 / 2 ** n_min:.3g}.")
    else:
        lines.append(f"- Significance: two-sided paired t-test at α = {ALPHA}, pairing runs by seed. With n = {n_min} "
                     f"seeds the exact sign-flip test cannot go below p = {2 / 2 ** n_min:.3g}, so read the per-seed "
                     "signs alongside the t-test.")
    return lines + [""]


def _status(reasons: list[str]) -> str:
    return "degraded: " + "; ".join(reasons) if reasons else "held"


def section_arm_table(arms: Arms, order: list[str], base: Base | None, degraded: Degraded) -> list[str]:
    lines = ["## Final evaluation per arm (mean ± SEM over seeds)", "",
             "Valid = a fenced code block that compiles (the grader's `format_ok`).", "",
             "| arm | seeds | final step | deployed hack | deployed solve | deployed valid | as-trained hack | "
             "as-trained solve | as-trained valid | deployed model |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    if base is None:
        lines.append("| base (step 0) | — | 0 | no base eval | | | | | | — |")
    else:
        cells = [fmt(base.rate(m)) for m in METRICS]
        lines.append(f"| base (step 0) | — | 0 | {' | '.join(cells)} | {' | '.join(cells)} | reference (n={base.n}) |")
    for arm in order:
        runs = arms[arm]
        cells = [fmt_mean_sem(list(arm_values(arms, arm, st, m).values()))
                 for st in ("deployed", "as_trained") for m in METRICS]
        steps = sorted({r.final_step for r in runs.values()})
        lines.append(f"| {gatequality.display(arm)} | {','.join(map(str, sorted(runs)))} | "
                     f"{','.join(map(str, steps))} | "
                     + " | ".join(cells) + f" | {_status(degraded[arm])} |")
    return lines + [""]


def section_differences(arms: Arms, order: list[str], boots: intervals.Bootstraps | None = None) -> list[str]:
    lines = ["## Paired differences (deployed, final checkpoint)", "", DIFF_HEADER]
    for a, b in comparisons(arms, order):
        for metric in METRICS:
            ci = boots.diff(a, b, "deployed", metric) if boots is not None else None
            lines.append(_diff_row(a, b, metric, paired(arms, a, b, "deployed", metric), ci))
    lines += ["", "## As-trained minus deployed, within each arm", "",
              "What deleting the quarantine removes. Zero by construction for arms whose whole adapter deploys.", "",
              "| arm | metric | as-trained − deployed, mean ± SEM | n | p (paired t) | seed signs |", "|---|---|---:|---:|---:|---|"]
    for arm in order:
        for metric in METRICS:
            seeds = sorted(arms[arm])
            res = paired_test([arms[arm][s].final_rate("as_trained", metric) for s in seeds],
                              [arms[arm][s].final_rate("deployed", metric) for s in seeds])
            lines.append(f"| {arm} | {metric} | {res.mean:+.3f} ± {fmt(res.sem)} | {res.n} | {fmt_p(res.p)} | {res.signs} |")
    return lines + [""]


GATE_COLS = ("auroc", "route_precision", "route_recall", "route_f05", "keep_precision", "keep_recall", "route_share")


def gate_values(run: RunData) -> tuple[str, dict[str, float]] | None:
    """(source, {column: value}) for a gated run: pooled over its rollouts when the diagnostics
    carry per-rollout fields, else the mean over steps of the trainer's aggregates."""
    summary = gate.run_summary(run.diagnostics)
    if summary is None:
        return None
    src = "pooled" if math.isfinite(summary["pooled_auroc"]) or math.isfinite(summary["pooled_route_f05"]) else "step"
    vals = {c: summary[f"{src}_{c}"] for c in GATE_COLS}
    vals["step_auroc"] = summary["step_auroc"]
    return src, vals


def section_gate(arms: Arms, order: list[str]) -> list[str]:
    head = ["## Gate classifier quality (oracle labels; diagnostics only)", "",
            "Training rollouts the gate routed (live, advantage > 0), labelled by the oracle's `exploited`. "
            "AUROC: routing score vs hack label (0.5 = chance). Route: the route zone as a hack detector; keep: "
            "the keep zone as a clean detector. Source `pooled`: every such rollout of the run at once; `step`: the "
            "mean over steps of the trainer's per-step values. Mean ± SEM over seeds. A placebo arm "
            "(Haar-random direction) is the chance baseline for its arm.", ""]
    lines = ["| arm | source | n seeds | AUROC | AUROC (mean per step) | route precision | route recall | route F0.5 | "
             "keep precision | keep recall | route share |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    per_arm: dict[str, dict[int, dict[str, float]]] = {}
    for arm in order:
        rows, sources = {}, set()
        for seed, run in arms[arm].items():
            got = gate_values(run)
            if got is not None:
                sources.add(got[0])
                rows[seed] = got[1]
        if not rows:
            continue
        per_arm[arm] = rows
        cells = []
        for c in ("auroc", "step_auroc") + GATE_COLS[1:]:
            vals = [r[c] for r in rows.values() if math.isfinite(r[c])]
            cells.append(fmt_mean_sem(vals) if vals else "n/a")
        lines.append(f"| {gatequality.display(arm)} | {'+'.join(sorted(sources))} | {len(rows)} | "
                     + " | ".join(cells) + " |")
    if not per_arm:
        return head[:2] + ["No run in this comparison was scored by a gate.", ""]
    lines += ["", "Does the real direction beat its placebo? (paired by seed)", "",
              "| comparison | metric | Δ mean ± SEM | n | p (paired t) | seed signs |", "|---|---|---:|---:|---:|---|"]
    for arm in order:
        draws = [d for d in placebo_draws(arms, arm) if d in per_arm]
        if arm in per_arm and draws:  # several draws: per seed, the mean over that seed's draws
            plc = draws[0] if len(draws) == 1 else f"{arm}{PLACEBO_SUFFIX} (mean of {len(draws)} draws)"
            plc_seeds = {s: [per_arm[d][s] for d in draws if s in per_arm[d]]
                         for s in set().union(*(per_arm[d] for d in draws))}
            seeds = sorted(set(per_arm[arm]) & set(plc_seeds))
            for c in ("auroc", "route_f05"):
                a = [per_arm[arm][s][c] for s in seeds]
                b = [sum(r[c] for r in plc_seeds[s]) / len(plc_seeds[s]) for s in seeds]
                if seeds and all(math.isfinite(x) for x in a + b):
                    res = paired_test(a, b)
                    lines.append(f"| {arm} − {plc} | {c} | {res.mean:+.3f} ± {fmt(res.sem)} | {res.n} | "
                                 f"{fmt_p(res.p)} | {res.signs} |")
                else:
                    lines.append(f"| {arm} − {plc} | {c} | undefined on some seed | {len(seeds)} | | |")
    return head + lines + [""]



def _ci(k: int, n: int) -> str:
    lo, hi = wilson_interval(k, n)
    return f"{fmt(k / n)} [{fmt(lo)}, {fmt(hi)}]"


def section_runs(arms: Arms, order: list[str]) -> list[str]:
    lines = ["## Every run (final checkpoint; Wilson 95% intervals)", "",
             "| arm | seed | placebo seed | run | step | n | deployed hack [95% CI] | deployed solve [95% CI] | "
             "deployed valid [95% CI] | as-trained hack / solve / valid | markers |",
             "|---|---:|---:|---|---:|---:|---|---|---|---|---|"]
    for arm in order:
        for seed in sorted(arms[arm]):
            run = arms[arm][seed]
            o = run.final_eval["states"]["deployed"]["overall"]
            at = " / ".join(fmt(run.final_rate("as_trained", m)) for m in METRICS)
            plc = "—" if run.placebo_seed is None else str(run.placebo_seed)
            lines.append(f"| {gatequality.display(arm)} | {seed} | {plc} | {run.name} | {run.final_step} | {o['n']} | "
                         f"{_ci(o['hacked'], o['n'])} | {_ci(o['solved'], o['n'])} | {_ci(o['format_ok'], o['n'])} | "
                         f"{at} | {run.final_eval['settings']['markers']} |")
    return lines + [""]


def summarise(run_dirs: Sequence[str | Path], base_file: str | Path | None = None) -> dict:
    """The summary.json dict of these runs (what `vgrout demo` prints as a table)."""
    runs = [load_run(d) for d in run_dirs]
    base = find_base(runs, base_file)
    check_comparable(runs, base_file)
    arms = group_by_arm(runs)
    order = order_arms(list(arms))
    summary = summary_json(arms, order, base, degraded_arms(arms, base))
    return extend_summary(summary, arms, order, bootstraps(arms))


def bootstraps(arms: Arms) -> intervals.Bootstraps:
    """The comparison's bootstrap intervals (seeds, then problems), computed on demand and cached."""
    return intervals.Bootstraps(arms, members=lambda name: members(arms, name))


def extend_summary(summary: dict, arms: Arms, order: list[str], boots: intervals.Bootstraps) -> dict:
    """summary.json additions: intervals (`deployed_ci95`, `bootstrap`, `comparisons`) and `deploy_scale`."""
    intervals.extend_summary(summary, order, boots, comparisons(arms, order))
    return scale.extend_summary(summary, arms)


# Not the eval seed: it derives from the run seed (EvalSettings.seed), so seeds of one arm differ in it.
SETTINGS_THAT_MUST_MATCH = ("markers", "n_samples", "max_new_tokens", "temperature", "top_p", "top_k")


def _eval_diff(ref: dict, other: dict) -> dict:
    diff = {k: (ref["settings"].get(k), other["settings"].get(k)) for k in SETTINGS_THAT_MUST_MATCH
            if ref["settings"].get(k) != other["settings"].get(k)}
    if [(p["id"], p["mode"]) for p in other["problems"]] != [(p["id"], p["mode"]) for p in ref["problems"]]:
        diff["problems"] = "different problem ids or modes"
    return diff


def check_comparable(runs: Sequence[RunData], base_file: str | Path | None = None) -> None:
    """Paired differences only mean something if every run's final eval (and the base's, and any
    step-0 eval used as the base) asked the same question: same problems (ids and modes) and the
    same sampling settings. Raise naming the difference."""
    from vgrout.eval.results import read_eval

    ref = runs[0]
    others = [(str(r.path), r.final_eval) for r in runs[1:]]
    others += [(f"{r.path} (step 0)", r.step0_eval) for r in runs if r.step0_eval is not None]
    if base_file is not None:
        others.append((f"--base {base_file}", read_eval(base_file)))
    for name, result in others:
        diff = _eval_diff(ref.final_eval, result)
        if diff:
            raise ValueError(f"{ref.path} and {name} were evaluated differently (first, second): {diff}; re-run "
                             "`vgrout eval --overwrite` with the same options on every run")


def build_report(run_dirs: Sequence[str | Path], out: str | Path, *, phenomenon: float = REGIME_BARS["vanilla_hack_min"],
                 base_file: str | Path | None = None) -> Path:
    """Read the runs, write `out` (markdown), its PNGs and summary.json beside it; return the report path."""
    if not run_dirs:
        raise ValueError("compare needs at least one run directory")
    runs = [load_run(d) for d in run_dirs]
    check_comparable(runs, base_file)
    base = find_base(runs, base_file)
    arms = group_by_arm(runs)
    order = order_arms(list(arms))
    degraded = degraded_arms(arms, base)
    summary = summary_json(arms, order, base, degraded)  # its gate blocks feed the findings and the gate table
    boots = bootstraps(arms)
    extend_summary(summary, arms, order, boots)
    out = Path(out)
    fig_dir, stem = out.parent, out.stem
    curves = plots.plot_curves(arms, order, base, fig_dir / f"{stem}_curves.png")
    bars = plots.plot_bars(arms, order, base, degraded, fig_dir / f"{stem}_deployed_bars.png")
    auroc_png = plots.plot_gate_auroc(arms, order, fig_dir / f"{stem}_gate_auroc.png")
    scale_png = plots.plot_deploy_scale(arms, order, fig_dir / f"{stem}_deploy_scale.png")

    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    settings = {r.final_eval["settings"]["markers"] for r in runs}
    lines = [f"# vGROUT comparison: {len(runs)} runs, {len(arms)} arms", "",
             f"Generated {now} by `vgrout compare` from run files; no number below is typed by hand. "
             f"Eval marker families: {', '.join(sorted(settings))}. Deployed = quarantine ablated "
             "(the arms that deploy their whole adapter, vanilla, erase and inoculation, have deployed = as-trained). "
             "Rates in [0, 1]; "
             f"machine-readable: `{summary_path(out).name}`.", ""]
    lines += section_findings(arms, order, phenomenon, base, degraded, summary["arms"], boots)
    lines += gatequality.section_gate_quality(summary)  # the gate under test, right after the findings
    lines += section_arm_table(arms, order, base, degraded)
    lines += intervals.section_arm_intervals(order, boots)
    lines += section_differences(arms, order, boots)
    lines += scale.section(arms, order, None if scale_png is None else scale_png.name)
    lines += section_heldout_modes(arms, order)
    lines += section_gate(arms, order)
    lines += baselines.sections(arms, order)  # early-stop reference, relearning, branching
    lines += ["## Plots", "",
              f"![hack, solve and valid over steps (colour = arm, solid = deployed, dashed = as-trained)]({curves.name})",
              "", f"![deployed hack, solve and valid per arm]({bars.name})", ""]
    if auroc_png is not None:
        lines += [f"![gate AUROC: pooled per run and rolling per step]({auroc_png.name})", ""]
    lines += section_samples(arms, order)
    lines += section_runs(arms, order)
    write_text_atomic(out, "\n".join(lines))
    summary["baselines"] = baselines.summary(arms, order)  # early-stop reference, relearning, fork steps
    write_summary(summary_path(out), summary)
    return out


def findings(report: str | Path) -> str:
    """The Findings section of a written report, as plain text for a console."""
    text = Path(report).read_text()
    section = text.split("## Findings", 1)[1].split("\n## ", 1)[0]
    return section.strip().replace("**", "")


__all__ = ["bootstraps", "build_report", "check_comparable", "comparisons", "degraded_arms", "describe",
           "extend_summary", "findings", "gap_line",
           "members", "paired", "placebo_ref", "summarise"]
