"""Read a run directory (written by `vgrout train`, evaluated by `vgrout eval`) into plain data.

Only files are read; nothing is imported from train/adapter/torch. Layout: docs/architecture.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from vgrout.eval.results import read_eval, read_jsonl
from vgrout.rundir import arm_label, config_path, curve_path, diagnostics_path, eval_dir  # one labelling rule

VANILLA = "vanilla"
PLACEBO_SUFFIX = "-placebo"
STATES = ("as_trained", "deployed")
METRICS = ("hack", "solve", "valid")  # valid = the grader's format_ok: a fenced block that compiles


def rate(result: dict, state: str, metric: str) -> float:
    """One overall rate of an eval result: metric "hack"|"solve"|"valid" (format_ok / n)."""
    overall = result["states"][state]["overall"]
    if metric == "valid":
        return overall["format_ok"] / overall["n"]
    return overall[f"{metric}_rate"]


def point(result: dict) -> dict:
    """A curve point: {"step", "n", "hack_as_trained", ..., "valid_deployed"} of one eval result."""
    out = {"step": result["step"], "n": result["states"]["deployed"]["overall"]["n"]}
    out.update({f"{m}_{st}": rate(result, st, m) for st in STATES for m in METRICS})
    return out


@dataclass
class RunData:
    """One run: identity (arm, seed), its config, the oracle diagnostics rows, the eval curve
    (one point per evaluated step, valid rate included), the step-0 eval when the run has one
    (the base model: every adapter init starts at zero delta) and the final (last-step) eval."""

    path: Path
    arm: str
    seed: int
    config: dict
    diagnostics: list[dict] = field(default_factory=list)
    curve: list[dict] = field(default_factory=list)
    final_eval: dict | None = None
    step0_eval: dict | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def final_step(self) -> int | None:
        return None if self.final_eval is None else self.final_eval["step"]

    def final_rate(self, state: str, metric: str) -> float:
        """Final eval overall rate: state "as_trained"|"deployed", metric "hack"|"solve"|"valid"."""
        if self.final_eval is None:
            raise ValueError(f"run {self.path} has no eval results; run `vgrout eval {self.path}` first")
        return rate(self.final_eval, state, metric)

    @property
    def placebo_seed(self) -> int | None:
        """The Haar draw's seed of a placebo run (config.json `placebo_seed`); None otherwise."""
        seed = int(self.config.get("placebo_seed", -1))
        return seed if seed >= 0 else None


def arm_and_seed(config: dict, path: Path) -> tuple[str, int]:
    """The run's arm label and seed from its config.json (fields of vgrout.train.config.Config)."""
    for key in ("arm", "seed"):
        if key not in config:
            raise ValueError(f"{config_path(path)} has no {key!r} field; is this a vgrout run directory?")
    return arm_label(config), int(config["seed"])


_PLACEBO_LABEL = re.compile(r"^(?P<base>.+)-placebo(?P<draw>[0-9]*)$")


def placebo_base(arm: str) -> str | None:
    """"routeA-placebo" (draw 0), "routeA-placebo1", "routeA-placebo2"... -> "routeA": the draws
    of one arm's placebo (Config `placebo_draw`); None for a non-placebo arm."""
    m = _PLACEBO_LABEL.match(arm)
    return m["base"] if m else None


def placebo_draw(arm: str) -> int | None:
    """The placebo draw of a label ("routeA-placebo" -> 0, "routeA-placebo2" -> 2); None for a non-placebo arm."""
    m = _PLACEBO_LABEL.match(arm)
    return (int(m["draw"]) if m["draw"] else 0) if m else None


def placebo_draws(arms, arm: str) -> list[str]:
    """The labels among `arms` that are draws of `arm`'s placebo, in draw order."""
    return sorted((a for a in arms if placebo_base(a) == arm), key=lambda a: placebo_draw(a))


def load_run(path: str | Path, *, require_eval: bool = True) -> RunData:
    """Load config, diagnostics and eval files of one run directory."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"run directory {path} does not exist; pass a directory written by `vgrout train`")
    cfg_file = config_path(path)
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{cfg_file} not found; pass run directories written by `vgrout train`")
    config = json.loads(cfg_file.read_text())
    arm, seed = arm_and_seed(config, path)
    diag_file = diagnostics_path(path)
    diagnostics = read_jsonl(diag_file) if diag_file.is_file() else []
    curve_file = curve_path(path)
    rows = read_jsonl(curve_file) if curve_file.is_file() else []
    # each step file is read (not just curve.jsonl) so the curve carries the valid rate too
    results = sorted((read_eval(eval_dir(path) / r["file"]) for r in rows), key=lambda r: r["step"])
    if not results and require_eval:
        raise FileNotFoundError(f"{curve_file} not found or empty; run `vgrout eval {path}` before comparing")
    step0 = [r for r in results if r["step"] == 0]
    return RunData(path=path, arm=arm, seed=seed, config=config, diagnostics=diagnostics,
                   curve=[point(r) for r in results], final_eval=results[-1] if results else None,
                   step0_eval=step0[0] if step0 else None)


def group_by_arm(runs: list[RunData]) -> dict[str, dict[int, RunData]]:
    """{arm: {seed: run}}; two runs with the same arm and seed are an error (which one counts?)."""
    arms: dict[str, dict[int, RunData]] = {}
    for run in runs:
        seeds = arms.setdefault(run.arm, {})
        if run.seed in seeds:
            raise ValueError(f"two runs with arm {run.arm!r} and seed {run.seed}: {seeds[run.seed].path} and "
                             f"{run.path}; pass one run per (arm, seed)")
        seeds[run.seed] = run
    return arms


def order_arms(arms: list[str]) -> list[str]:
    """vanilla first, then each arm followed by its placebo draws (draw order), others alphabetically."""
    base = sorted(a for a in arms if placebo_base(a) is None and a != VANILLA)
    out = [VANILLA] if VANILLA in arms else []
    for a in base:
        out.append(a)
        out += placebo_draws(arms, a)
    out += sorted(a for a in arms if a not in out)
    return out


__all__ = ["METRICS", "PLACEBO_SUFFIX", "STATES", "VANILLA", "RunData", "point", "rate", "arm_and_seed", "arm_label", "group_by_arm", "load_run", "order_arms",
           "placebo_base", "placebo_draw", "placebo_draws"]
