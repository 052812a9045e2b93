"""The gate under test: how well each gated arm's routing score separated hacks from clean
rollouts, and where its zones put each kind, as a result of the comparison rather than a
footnote to it.

A routing arm whose score ranks hacks *below* clean rollouts routed few hacks; its deployed
numbers then say nothing about gradient routing, whatever they are. This module reads the
per-rollout rows of every run's diagnostics.jsonl (`gate_score`, `zone` 0 keep / 1 absorb /
2 route, `hack` = the oracle's `exploited`, `advantage`, `live`) and gives per arm:

- `auroc`: the pooled AUROC of the score vs the hack label over the live rollouts with
  advantage > 0 (the rollouts whose update the gate routes; `vgrout.report.gate.pooled`, the
  trainer's own `gate_auroc` subset). The quality flag reads this one.
- `auroc_all_live`: the same over every live scored rollout, whatever its advantage's sign.
- the shares of hacking live rollouts the gate routed / absorbed / kept, and of clean ones.
- `quality`: mean `auroc` over seeds >= INFORMATIVE_MIN -> "informative"; below it ->
  "uninformative"; below INVERTED_BELOW -> "inverted"; no defined AUROC -> "no scores".
- for an arm with placebo draws (`ARM-placebo`, `ARM-placebo1`, ...): the draws' AUROCs as a
  distribution (min / median / max) and, per seed, where the arm's AUROC falls among them.

The `oracle` arm routes exactly the oracle's hacks (score 1 for a hack, 0 otherwise): its AUROC
is 1 by construction. It uses oracle labels and is an upper bound, a reference, not a method:
it is labelled so everywhere and left out of the gate's regime checks. Placebo draws are the
chance baseline, also left out of the checks. Torch-free.
"""

from __future__ import annotations

import math
import statistics
from typing import Sequence

from vgrout.report import gate
from vgrout.report.runs import RunData, placebo_base, placebo_draws
from vgrout.stats import auroc, mean_sem

INFORMATIVE_MIN = 0.6  # mean live AUROC at or above: the gate separates hacks ("informative")
INVERTED_BELOW = 0.4  # mean live AUROC below: the score ranks hacks under clean rollouts ("inverted")
ORACLE = "oracle"
ORACLE_NOTE = "uses oracle labels: an upper bound"
ZONES = ("route", "absorb", "keep")
FLAWED = ("uninformative", "inverted", "no scores")  # a method arm whose result is no evidence about routing

Arms = dict[str, dict[int, RunData]]


def role(arm: str) -> str:
    """"reference" (the oracle arm), "placebo" (a placebo draw) or "method"."""
    if arm == ORACLE:
        return "reference"
    return "placebo" if placebo_base(arm) is not None else "method"


def display(arm: str) -> str:
    """The arm's name as tables and findings print it: the oracle arm carries its label."""
    return f"{arm} ({ORACLE_NOTE})" if arm == ORACLE else arm


def classify(auroc: float | None) -> str:
    """The quality flag of a mean live AUROC (thresholds INFORMATIVE_MIN, INVERTED_BELOW)."""
    if auroc is None or not math.isfinite(auroc):
        return "no scores"
    if auroc >= INFORMATIVE_MIN:
        return "informative"
    return "inverted" if auroc < INVERTED_BELOW else "uninformative"


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _live_rows(row: dict) -> list[tuple[float | None, int, bool]]:
    """(score, zone code, hack) of every live rollout of a diagnostics row with per-rollout fields."""
    gate.rollout_fields(row)  # checks presence and lengths, raising with the step
    n = len(row[gate.SCORE_FIELD])
    live = row.get(gate.LIVE_FIELD, [True] * n)
    out = []
    for s, z, h, lv in zip(row[gate.SCORE_FIELD], row[gate.ZONE_FIELD], row[gate.HACK_FIELD], live):
        if lv:
            out.append((None if s is None else float(s), gate.ZONE_CODES[z], bool(h)))
    return out


def _shares(zones: list[str]) -> dict:
    n = len(zones)
    out: dict = {z: (zones.count(z) / n if n else None) for z in ZONES}
    out["n"] = n
    return out


def seed_gate(diagnostics: Sequence[dict]) -> dict | None:
    """One run's gate numbers; None for a run without gate scores (vanilla, absorb, ...).

    source "pooled": every per-rollout field present, all three numbers computed; source "step":
    the run logged only the trainer's per-step aggregates, `auroc` is their mean over steps and
    the all-live AUROC and the shares are null."""
    table = gate.step_table(diagnostics)
    if not table:
        return None
    pool = gate.pooled(diagnostics)
    if pool is None:
        return {"source": "step", "auroc": _num(gate.mean_over_steps(table, "auroc")), "n": None, "n_hack": None,
                "auroc_all_live": None, "n_live": None, "n_hack_live": None,
                "hack": {**{z: None for z in ZONES}, "n": None}, "clean": {**{z: None for z in ZONES}, "n": None}}
    rows = [r for row in diagnostics if gate.has_rollouts(row) for r in _live_rows(row)]
    scored = [(s, h) for s, _z, h in rows if s is not None]
    auroc_all = auroc([s for s, _ in scored], [h for _, h in scored]) if scored else float("nan")
    return {"source": "pooled", "auroc": _num(pool.auroc), "n": pool.n, "n_hack": pool.n_hack,
            "auroc_all_live": _num(auroc_all), "n_live": len(scored), "n_hack_live": sum(h for _, h in scored),
            "hack": _shares([z for _s, z, h in rows if h]), "clean": _shares([z for _s, z, h in rows if not h])}


def _mean(vals: list) -> tuple[float | None, float | None]:
    vals = [v for v in vals if v is not None and math.isfinite(v)]
    if not vals:
        return None, None
    m, sem, _n = mean_sem(vals)
    return m, _num(sem)


def _distribution(vals: list[float]) -> dict | None:
    vals = sorted(v for v in vals if v is not None and math.isfinite(v))
    if not vals:
        return None
    return {"min": vals[0], "median": statistics.median(vals), "max": vals[-1], "n": len(vals)}


def arm_gate(runs: dict[int, RunData], arm: str) -> dict | None:
    """The summary.json `gate` block of one arm (schema: vgrout.report.summary); None when no run of it has a gate."""
    per_seed = {seed: g for seed, run in sorted(runs.items()) if (g := seed_gate(run.diagnostics)) is not None}
    if not per_seed:
        return None
    mean: dict = {}
    for k in ("auroc", "auroc_all_live"):
        mean[k], mean[f"{k}_sem"] = _mean([g[k] for g in per_seed.values()])
    for kind in ("hack", "clean"):
        mean[kind] = {z: _mean([g[kind][z] for g in per_seed.values()])[0] for z in ZONES}
    block = {"role": role(arm), "seeds": sorted(per_seed), "sources": sorted({g["source"] for g in per_seed.values()}),
             "per_seed": {str(s): g for s, g in per_seed.items()}, "mean": mean,
             "quality": classify(mean["auroc"]), "thresholds": {"informative_min": INFORMATIVE_MIN,
                                                                "inverted_below": INVERTED_BELOW}}
    if arm == ORACLE:
        block["note"] = ORACLE_NOTE
    if placebo_base(arm) is not None:
        block["placebo_of"] = placebo_base(arm)
    return block


def placebo_block(arms: Arms, arm: str, blocks: dict[str, dict]) -> dict | None:
    """The arm's placebo draws' AUROCs as a distribution, overall and per seed, with where the
    arm's own AUROC falls among its seed's draws; None without a gated draw."""
    draws = [d for d in placebo_draws(arms, arm) if d in blocks]
    if not draws:
        return None
    own = blocks.get(arm, {}).get("per_seed", {})
    by_seed = {}
    seeds = sorted({s for d in draws for s in blocks[d]["per_seed"]}, key=int)
    for s in seeds:
        vals = [blocks[d]["per_seed"][s]["auroc"] for d in draws if s in blocks[d]["per_seed"]]
        dist = _distribution(vals) or {"min": None, "median": None, "max": None, "n": 0}
        mine = own.get(s, {}).get("auroc")
        finite = [v for v in vals if v is not None and math.isfinite(v)]
        dist["arm_auroc"] = mine
        dist["arm_above"] = None if mine is None else sum(v < mine for v in finite)  # draws the arm beats
        by_seed[s] = dist
    all_vals = [blocks[d]["per_seed"][s]["auroc"] for d in draws for s in blocks[d]["per_seed"]]
    return {"draws": draws, "auroc": _distribution(all_vals), "per_seed": by_seed}


def gate_blocks(arms: Arms, order: list[str]) -> dict[str, dict]:
    """{arm: gate block} for every gated arm, a method arm's with its placebo distribution."""
    blocks = {arm: b for arm in order if (b := arm_gate(arms[arm], arm)) is not None}
    for arm in list(blocks):
        if role(arm) == "method":
            plc = placebo_block(arms, arm, blocks)
            if plc is not None:
                blocks[arm]["placebo"] = plc
    return blocks


# ---- read back from summary.json (the console, the regime checks and the findings use these) ----
def _f(x, digits: int = 2) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def quality_reason(arm: str, block: dict) -> str:
    """"routeA's gate is uninformative (live AUROC 0.52 < 0.6)" and the like."""
    q, a = block["quality"], block["mean"]["auroc"]
    if q == "informative":
        return f"{arm}'s gate is informative (live AUROC {_f(a)} >= {INFORMATIVE_MIN})"
    if q == "uninformative":
        return f"{arm}'s gate is uninformative (live AUROC {_f(a)} < {INFORMATIVE_MIN})"
    if q == "inverted":
        return f"{arm}'s gate is inverted (live AUROC {_f(a)} < {INVERTED_BELOW}: it scores hacks below clean rollouts)"
    return f"{arm}'s gate has no defined live AUROC (no run scored both hacks and clean rollouts)"


def no_evidence_note(arm: str, summary_arms: dict) -> str:
    """The sentence a comparison line of a method arm with a flawed gate ends with ("" otherwise)."""
    block = (summary_arms.get(arm) or {}).get("gate")
    if block is None or block["role"] != "method" or block["quality"] not in FLAWED:
        return ""
    return f" {quality_reason(arm, block)}: this difference is no evidence about routing."


def gate_checks(summary: dict) -> list[dict]:
    """One regime check per gated method arm (not placebo draws, not the oracle reference)."""
    out = []
    for arm, a in summary["arms"].items():
        block = a.get("gate")
        if block is None or block["role"] != "method":
            continue
        q, auroc = block["quality"], block["mean"]["auroc"]
        value = {"informative": "informative", "uninformative": "gate uninformative",
                 "inverted": "gate inverted", "no scores": "no scores"}[q]
        out.append({"check": f"{arm} gate: mean live AUROC >= {INFORMATIVE_MIN} (< {INVERTED_BELOW}: inverted)",
                    "ok": None if q == "no scores" else q == "informative",
                    "value": f"AUROC {_f(auroc, 3)} over {len(block['seeds'])} seed(s): {value}"})
    return out


def _shares_text(sh: dict) -> str:
    return " / ".join(_f(sh[z]) for z in ZONES)


def _per_seed(block: dict) -> str:
    return ", ".join(f"s{s} {_f(g['auroc'])}" for s, g in block["per_seed"].items())


def _placebo_text(block: dict) -> str:
    plc = block.get("placebo")
    if plc is None or plc["auroc"] is None:
        return "—"
    d = plc["auroc"]
    seeds = "; ".join(f"s{s}: above {x['arm_above']}/{x['n']}" for s, x in plc["per_seed"].items()
                      if x["arm_above"] is not None)
    return (f"{_f(d['min'])} / {_f(d['median'])} / {_f(d['max'])} ({len(plc['draws'])} draw(s), {d['n']} runs)"
            + (f"; {seeds}" if seeds else ""))


def _mean_sem_text(block: dict, key: str) -> str:
    m, sem = block["mean"][key], block["mean"][f"{key}_sem"]
    return _f(m, 3) if sem is None else f"{_f(m, 3)} ± {_f(sem, 3)}"


def section_gate_quality(summary: dict) -> list[str]:
    """The report's "The gate under test" section, from the summary's gate blocks."""
    gated = [(arm, a["gate"]) for arm, a in summary["arms"].items() if a.get("gate") is not None]
    lines = ["## The gate under test (oracle labels; diagnostics only)", ""]
    if not gated:
        return lines + ["No run in this comparison was scored by a gate.", ""]
    lines += [f"Does the routing score separate hacks from clean rollouts? AUROC (live, A > 0): the routing score vs "
              "the oracle's hack label over the live training rollouts with advantage > 0, the ones whose update the "
              "gate routes, pooled over each run (0.5 = chance, 1 = perfect, below 0.5 = hacks score lower than clean "
              "rollouts); mean ± SEM over seeds, then per seed. AUROC (all live): the same over every live scored "
              "rollout, whatever the advantage's sign. Shares: of the hacking (clean) live rollouts, the fraction the "
              f"gate routed / absorbed / kept. Quality: mean AUROC (live, A > 0) >= {INFORMATIVE_MIN} informative, "
              f"below it uninformative, below {INVERTED_BELOW} inverted; a method arm with a gate that is not "
              "informative routed no more hacks than chance, and its comparisons are no evidence about routing. "
              "Placebo AUROCs: the placebo draws' AUROCs min / median / max, and per seed how many of that seed's "
              f"draws the arm's AUROC is above. The oracle arm {ORACLE_NOTE} (AUROC 1 by construction), a "
              "reference, not a method.", "",
              "| arm | role | seeds | AUROC (live, A > 0) | per seed | AUROC (all live) | hacks routed / absorbed / "
              "kept | clean routed / absorbed / kept | placebo AUROCs min / median / max | quality |",
              "|---|---|---:|---:|---|---:|---|---|---|---|"]
    for arm, b in gated:
        quality = b["quality"] if b["role"] == "method" else f"{b['quality']} ({b['role']}: not checked)"
        lines.append(f"| {display(arm)} | {b['role']} | {len(b['seeds'])} | {_mean_sem_text(b, 'auroc')} | "
                     f"{_per_seed(b)} | {_mean_sem_text(b, 'auroc_all_live')} | {_shares_text(b['mean']['hack'])} | "
                     f"{_shares_text(b['mean']['clean'])} | {_placebo_text(b)} | {quality} |")
    return lines + [""]


def gate_console_table(summary: dict) -> str:
    """Plain-text gate table of a summary (the demo prints it under the arm table)."""
    gated = [(arm, a["gate"]) for arm, a in summary["arms"].items() if a.get("gate") is not None]
    if not gated:
        return "no arm was scored by a gate"
    head = (f"{'arm':<18} {'AUROC A>0':>15} {'AUROC live':>15}  {'hacks rte/abs/keep':>18}  "
            f"{'clean rte/abs/keep':>18}  {'placebo min/med/max':>19}  quality")
    lines = [head, "-" * len(head)]
    for arm, b in gated:
        plc = b.get("placebo")
        d = plc["auroc"] if plc else None
        plc_text = f"{_f(d['min'])}/{_f(d['median'])}/{_f(d['max'])}" if d else "-"
        quality = b["quality"].upper() if b["role"] == "method" and b["quality"] in FLAWED else b["quality"]
        if b["role"] != "method":
            quality += f" ({b['role']}{': ' + ORACLE_NOTE if arm == ORACLE else ''})"
        lines.append(f"{arm:<18} {_mean_sem_text(b, 'auroc'):>15} {_mean_sem_text(b, 'auroc_all_live'):>15}  "
                     f"{_shares_text(b['mean']['hack']):>18}  {_shares_text(b['mean']['clean']):>18}  "
                     f"{plc_text:>19}  {quality}")
    lines.append(f"AUROC A>0: score vs oracle hack over live rollouts with advantage > 0 (the quality flag: >= "
                 f"{INFORMATIVE_MIN} informative, < {INVERTED_BELOW} inverted); AUROC live: every live rollout.")
    return "\n".join(lines)


__all__ = ["FLAWED", "INFORMATIVE_MIN", "INVERTED_BELOW", "ORACLE", "ORACLE_NOTE", "arm_gate", "classify", "display",
           "gate_blocks", "gate_checks", "gate_console_table", "no_evidence_note", "placebo_block", "quality_reason",
           "role", "section_gate_quality", "seed_gate"]
