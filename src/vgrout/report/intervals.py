"""Intervals that include the eval's own sampling noise, equivalence statements and seeds needed.

A seed's final eval is one draw of problems (and of samples per problem), so a seed mean ±
SEM over three seeds leaves out most of the noise in a rate. Here every rate and every paired
difference gets a 95% percentile interval from `vgrout.stats.hierarchical_bootstrap`: resample
seeds with replacement, then each drawn seed's problems with replacement. A difference a − b
is paired by seed and by problem (the per-problem difference is resampled, so both arms see the
same draw: common random numbers). The per-problem values come from each final eval's
per-sample rows (`states[STATE]["samples"]` in the step JSON, else the `.samples.jsonl`
beside it); a run with neither falls back to its overall counts (problems then unpaired, and
the interval says so).

"No difference" is stated against an equivalence margin (EQUIV_MARGIN): an interval of Δ
that excludes 0 is a difference; one inside ±margin is equivalence within the margin; one that
reaches beyond is inconclusive (the data cannot tell the arms apart). The paired t-test and the
sign-flip p stay in the details.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Callable

from vgrout.eval.results import read_jsonl
from vgrout.report.runs import METRICS, RunData
from vgrout.stats import BOOT_B, BOOT_LEVEL, Interval, hierarchical_bootstrap, paired_test, seeds_needed

Arms = dict[str, dict[int, RunData]]
EQUIV_MARGIN = 0.05  # the equivalence margin for hack, solve and valid rates (the gt_only control's solve tolerance)
ALPHA = 0.05
POWER = 0.8
BOOT_SEED = 0  # the bootstrap's RNG seed, mixed with what is compared (crc32) so calls do not depend on order
SAMPLE_KEYS = {"hack": ("exploited", "hack"), "solve": ("gt_correct", "solve"), "valid": ("format_ok", "valid")}
COUNT_KEYS = {"hack": "hacked", "solve": "solved", "valid": "format_ok"}


def _samples_file(run: RunData) -> Path:
    return run.path / "eval" / f"step_{run.final_step:06d}.samples.jsonl"


def _per_sample_rows(run: RunData, state: str) -> list[dict] | None:
    """The final eval's per-sample verdicts of `state` as {problem_id, hack, solve, valid}; None when
    neither the step JSON nor the samples file has them."""
    block = run.final_eval["states"].get(state, {})
    if block.get("samples"):
        json_key = {m: SAMPLE_KEYS[m][0] for m in METRICS}
        return [{"problem_id": s["problem_id"], **{m: bool(s[json_key[m]]) for m in METRICS}}
                for s in block["samples"]]
    path = _samples_file(run)
    if path.is_file():
        rows = [r for r in read_jsonl(path) if r.get("state") == state]
        if rows:
            return [{"problem_id": r["problem_id"], **{m: bool(r[m]) for m in METRICS}} for r in rows]
    return None


class Bootstraps:
    """Bootstrap intervals of one comparison's runs, computed once each and cached."""

    def __init__(self, arms: Arms, *, B: int = BOOT_B, seed: int = BOOT_SEED, level: float = BOOT_LEVEL,
                 margin: float = EQUIV_MARGIN, members: Callable[[str], list[str]] | None = None):
        """`members(name)`: the arms a compared name stands for (vgrout.report.compare.members: a
        "ARM-placebo (mean of N draws)" name is the per-seed, per-problem mean over those draws)."""
        self.arms, self.B, self.seed, self.level, self.margin = arms, B, seed, level, margin
        self.members = members or (lambda name: [name])
        self._rows: dict[tuple[str, int, str], list[dict] | None] = {}
        self._cache: dict[tuple, Interval | None] = {}

    def _rng_seed(self, *key: str) -> int:
        return zlib.crc32("|".join((str(self.seed),) + key).encode())

    def _run_problems(self, arm: str, seed: int, state: str, metric: str) -> dict[str, float] | None:
        key = (arm, seed, state)
        if key not in self._rows:
            self._rows[key] = _per_sample_rows(self.arms[arm][seed], state)
        rows = self._rows[key]
        if rows is None:
            return None
        sums: dict[str, list[int]] = {}
        for r in rows:
            acc = sums.setdefault(r["problem_id"], [0, 0])
            acc[0] += r[metric]
            acc[1] += 1
        return {pid: k / n for pid, (k, n) in sums.items()}

    def problems(self, arm: str, seed: int, state: str, metric: str) -> dict[str, float] | None:
        """{problem_id: the metric's rate over that problem's samples} of one run's final eval (for a
        mean of placebo draws, the mean over the draws with this seed, on the problems they share);
        None when a run has no per-sample rows."""
        per = [self._run_problems(m, seed, state, metric) for m in self.members(arm) if seed in self.arms[m]]
        if not per or any(p is None for p in per):
            return None
        if len(per) == 1:
            return per[0]
        common = set.intersection(*(set(p) for p in per))
        return {pid: sum(p[pid] for p in per) / len(per) for pid in common}

    def _units(self, arm: str, seed: int, state: str, metric: str) -> list[float]:
        """Per-problem values, or (no per-sample rows) one 0/1 unit per sample from the overall counts."""
        per = self.problems(arm, seed, state, metric)
        if per is not None:
            return [per[p] for p in sorted(per)]
        units: list[float] = []
        for m in self.members(arm):
            if seed in self.arms[m]:
                o = self.arms[m][seed].final_eval["states"][state]["overall"]
                k = o[COUNT_KEYS[metric]]
                units += [1.0] * k + [0.0] * (o["n"] - k)
        return units

    def has_state(self, arm: str, state: str) -> list[int]:
        """Seeds whose run (every member's run, for a mean of draws) evaluated `state`."""
        per = [{s for s, r in self.arms[m].items() if state in r.final_eval["states"]} for m in self.members(arm)]
        return sorted(set.union(*per)) if per else []

    def seed_rates(self, arm: str, state: str, metric: str) -> dict[int, float]:
        """{seed: final rate} (a mean of draws: per seed, the mean over its draws)."""
        per: dict[int, list[float]] = {}
        for m in self.members(arm):
            for s, r in self.arms[m].items():
                per.setdefault(s, []).append(r.final_rate(state, metric))
        return {s: sum(v) / len(v) for s, v in sorted(per.items())}

    def seed_diffs(self, a: str, b: str, state: str = "deployed", metric: str = "hack") -> list[float]:
        """Per-seed a − b of the final rates, over the seeds both have."""
        va, vb = self.seed_rates(a, state, metric), self.seed_rates(b, state, metric)
        return [va[s] - vb[s] for s in sorted(set(va) & set(vb))]

    def arm(self, arm: str, state: str, metric: str) -> Interval | None:
        """95% interval of one arm's seed-mean rate (seeds that evaluated `state`); None if none did."""
        key = ("arm", arm, state, metric)
        if key not in self._cache:
            seeds = self.has_state(arm, state)
            self._cache[key] = None if not seeds else hierarchical_bootstrap(
                [self._units(arm, s, state, metric) for s in seeds], B=self.B, level=self.level,
                seed=self._rng_seed(*key))
        return self._cache[key]

    def diff(self, a: str, b: str, state: str, metric: str) -> Interval | None:
        """95% interval of a − b, paired by seed and by problem; None when the arms share no seed."""
        key = ("diff", a, b, state, metric)
        if key not in self._cache:
            seeds = sorted(set(self.has_state(a, state)) & set(self.has_state(b, state)))
            if not seeds:
                self._cache[key] = None
                return None
            pa = [self.problems(a, s, state, metric) for s in seeds]
            pb = [self.problems(b, s, state, metric) for s in seeds]
            common = [sorted(set(x) & set(y)) if x is not None and y is not None else [] for x, y in zip(pa, pb)]
            if all(common):  # pair by problem: resample the per-problem differences
                groups = [[x[p] - y[p] for p in ps] for x, y, ps in zip(pa, pb, common)]
                iv = hierarchical_bootstrap(groups, B=self.B, level=self.level, seed=self._rng_seed(*key))
            else:  # a run without per-sample rows: pair by seed only
                iv = hierarchical_bootstrap([self._units(a, s, state, metric) for s in seeds],
                                            other=[self._units(b, s, state, metric) for s in seeds],
                                            B=self.B, level=self.level, seed=self._rng_seed(*key))
            self._cache[key] = iv
        return self._cache[key]

    def verdict(self, iv: Interval) -> str:
        return verdict(iv, self.margin)


def verdict(iv: Interval, margin: float = EQUIV_MARGIN) -> str:
    """"lower" / "higher" (the interval of Δ excludes 0), "equivalent" (it contains 0 and lies
    inside ±margin) or "inconclusive" (it contains 0 and reaches beyond ±margin)."""
    if iv.excludes_zero():
        return "lower" if iv.estimate < 0 else "higher"
    return "equivalent" if iv.inside(margin) else "inconclusive"


def fmt_interval(iv: Interval | None, signed: bool = False) -> str:
    if iv is None:
        return "n/a"
    f = "+.3f" if signed else ".3f"
    return f"[{iv.lo:{f}}, {iv.hi:{f}}]"


def boot_text(iv: Interval) -> str:
    """How an interval was made, for the report's details."""
    problems = "problems" if iv.paired_units else "samples (no per-sample rows on some run: problems unpaired)"
    return f"bootstrap over {iv.n_seeds} seed{'s' if iv.n_seeds != 1 else ''} and {iv.n_units} {problems}, B={iv.B}"


def headline(a: str, b: str, what: str, iv: Interval, detail: str, margin: float = EQUIV_MARGIN) -> tuple[str, str]:
    """(verdict, sentence) for a − b in `what`, stated from the interval of Δ; `detail` (the
    bootstrap and the paired t-test) goes in the closing parenthesis."""
    v = verdict(iv, margin)
    ci = f"{iv.level:.0%} interval of Δ {fmt_interval(iv, signed=True)}"
    if v in ("lower", "higher"):
        small = f", inside ±{margin:g}: a real but small difference" if iv.inside(margin) else ""
        return v, f"**{a}'s {what} is {v} than {b}'s by {abs(iv.estimate):.3f}** ({ci} excludes 0{small}; {detail})."
    if v == "equivalent":
        return v, (f"{a} and {b} are equivalent in {what} within ±{margin:g}: no significant difference, "
                   f"Δ = {iv.estimate:+.3f} and the {ci} lies inside ±{margin:g} ({detail}).")
    reach = "is wider than" if iv.width > 2 * margin else "reaches beyond"
    return v, (f"Inconclusive, {a} vs {b} in {what}: no significant difference, Δ = {iv.estimate:+.3f}, but the "
               f"interval {fmt_interval(iv, signed=True)} {reach} ±{margin:g}: the data cannot tell these arms apart "
               f"({detail}).")


def power_text(boots: Bootstraps, a: str, b: str, metric: str = "hack", state: str = "deployed") -> str:
    """How many seeds the observed per-seed spread needs to detect the observed Δ of a − b."""
    d = boots.seed_diffs(a, b, state, metric)
    if len(d) < 2:
        return f"{a} vs {b}: {len(d)} paired seed{'s' if len(d) != 1 else ''}, no spread to estimate"
    mean = sum(d) / len(d)
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1))
    n = seeds_needed(d, ALPHA, POWER)
    if n is None:
        return f"{a} vs {b}: Δ = 0 on the seed means: no difference observed to power"
    floor = " (zero spread: 2 is the least a paired test takes; the seeds do not show the problems' noise)" \
        if sd < 1e-12 else ""
    return f"{a} vs {b}: Δ = {mean:+.3f}, per-seed SD of the difference {sd:.3f} → {n} seeds{floor} (have {len(d)})"


def section_power(boots: Bootstraps, pairs: list[tuple[str, str]]) -> list[str]:
    """One findings bullet: the seeds each headline deployed-hack comparison (`pairs`: each arm vs
    vanilla and vs its placebo) needs."""
    if not pairs:
        return []
    return [f"- Seeds needed for the deployed hack differences as observed (two-sided paired test at α = {ALPHA}, "
            f"{POWER:.0%} power; normal approximation n = ((z₀.₉₇₅ + z₀.₈)·σ/Δ)², σ the per-seed SD of the paired "
            "differences): " + "; ".join(power_text(boots, a, b) for a, b in pairs) + "."]


def section_arm_intervals(order: list[str], boots: Bootstraps) -> list[str]:
    lines = [f"## Deployed rates with {boots.level:.0%} intervals (bootstrap over seeds and problems)", "",
             f"Seed mean and a percentile interval from B = {boots.B} resamples: seeds drawn with replacement, then "
             "each drawn seed's problems with replacement, so the eval's own sampling noise is in the interval, not "
             "only the seed spread. With few seeds the interval is optimistic (a resample of 3 seeds has at most 10 "
             "distinct seed sets).", "",
             "| arm | seeds | problems | deployed hack | deployed solve | deployed valid |", "|---|---:|---:|---|---|---|"]
    for arm in order:
        ivs = [boots.arm(arm, "deployed", m) for m in METRICS]
        cells = [f"{iv.estimate:.3f} {fmt_interval(iv)}" for iv in ivs]
        per_problem = all(boots.problems(arm, s, "deployed", "hack") is not None for s in boots.arms[arm])
        problems = ivs[0].n_units if per_problem else f"{ivs[0].n_units} samples (counts only)"
        lines.append(f"| {arm} | {ivs[0].n_seeds} | {problems} | " + " | ".join(cells) + " |")
    return lines + [""]


def summary_blocks(order: list[str], boots: Bootstraps, pairs: list[tuple[str, str]]) -> dict:
    """summary.json additions: per-arm `deployed_ci95`, the `bootstrap` settings and `comparisons`."""
    per_arm = {arm: {m: [boots.arm(arm, "deployed", m).lo, boots.arm(arm, "deployed", m).hi] for m in METRICS}
               for arm in order}
    comps = []
    for a, b in pairs:
        for m in METRICS:
            iv = boots.diff(a, b, "deployed", m)
            if iv is None:
                continue
            d = boots.seed_diffs(a, b, "deployed", m)
            t = paired_test(d, [0.0] * len(d))
            row = {"a": a, "b": b, "state": "deployed", "metric": m, "delta": iv.estimate, "ci95": [iv.lo, iv.hi],
                   "verdict": boots.verdict(iv), "margin": boots.margin, "paired_problems": iv.paired_units,
                   "n_seeds": len(d), "p_paired_t": t.p if math.isfinite(t.p) else None,
                   "p_sign_flip": t.p_sign_flip}
            if m == "hack":
                row["seeds_needed"] = seeds_needed(d, ALPHA, POWER) if len(d) >= 2 else None
            comps.append(row)
    settings = {"B": boots.B, "seed": boots.seed, "level": boots.level, "equivalence_margin": boots.margin,
                "resampling": "seeds with replacement, then problems with replacement within each drawn seed; "
                              "differences paired by seed and problem",
                "power": {"alpha": ALPHA, "power": POWER}}
    return {"arms": per_arm, "bootstrap": settings, "comparisons": comps}


def extend_summary(summary: dict, order: list[str], boots: Bootstraps, pairs: list[tuple[str, str]]) -> dict:
    """Add the interval blocks to a summary.json dict in place (and return it)."""
    blocks = summary_blocks(order, boots, pairs)
    for arm, ci in blocks["arms"].items():
        summary["arms"][arm]["deployed_ci95"] = ci
    summary["bootstrap"] = blocks["bootstrap"]
    summary["comparisons"] = blocks["comparisons"]
    return summary


__all__ = ["ALPHA", "BOOT_SEED", "Bootstraps", "EQUIV_MARGIN", "POWER", "boot_text", "extend_summary",
           "fmt_interval", "headline", "power_text", "section_arm_intervals", "section_power", "summary_blocks",
           "verdict"]
