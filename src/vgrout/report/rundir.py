"""Read a run directory (written by `vgrout train`, evaluated by `vgrout eval`) into plain data.

Only files are read; nothing is imported from train/adapter/torch. Layout: docs/architecture.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from vgrout.eval.results import read_eval, read_jsonl

VANILLA = "vanilla"
PLACEBO_SUFFIX = "-placebo"


@dataclass
class RunData:
    """One run: identity (arm, seed), its config, the oracle diagnostics rows, the eval curve
    and the final (last-step) eval result."""

    path: Path
    arm: str
    seed: int
    config: dict
    diagnostics: list[dict] = field(default_factory=list)
    curve: list[dict] = field(default_factory=list)
    final_eval: dict | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def final_step(self) -> int | None:
        return None if self.final_eval is None else self.final_eval["step"]

    def final_rate(self, state: str, metric: str) -> float:
        """Final eval overall rate: state "as_trained"|"deployed", metric "hack"|"solve"."""
        if self.final_eval is None:
            raise ValueError(f"run {self.path} has no eval results; run `vgrout eval {self.path}` first")
        return self.final_eval["states"][state]["overall"][f"{metric}_rate"]


def arm_label(config: dict) -> str:
    """The label a run is grouped under: its arm ("gt_only" for vanilla trained on gt_only prompts
    alone, the control), "+init" for a non-gaussian adapter init,
    "-placebo" when a Haar direction replaced the real one (placebo_seed >= 0)."""
    label = str(config["arm"])
    if list(config.get("modes") or []) == ["gt_only"]:  # the loophole pays nothing: the gt_only control
        label = "gt_only" if label == VANILLA else f"{label}:gt_only"
    if config.get("adapter_init", "gaussian") != "gaussian":
        label += f"+{config['adapter_init']}"
    if int(config.get("placebo_seed", -1)) >= 0:
        label += PLACEBO_SUFFIX
    return label


def arm_and_seed(config: dict, path: Path) -> tuple[str, int]:
    """The run's arm label and seed from its config.json (fields of vgrout.train.config.Config)."""
    for key in ("arm", "seed"):
        if key not in config:
            raise ValueError(f"{path}/config.json has no {key!r} field; is this a vgrout run directory?")
    return arm_label(config), int(config["seed"])


def placebo_base(arm: str) -> str | None:
    """"routeA-placebo" -> "routeA"; None for a non-placebo arm."""
    return arm[: -len(PLACEBO_SUFFIX)] if arm.endswith(PLACEBO_SUFFIX) else None


def load_run(path: str | Path, *, require_eval: bool = True) -> RunData:
    """Load config, diagnostics and eval files of one run directory."""
    path = Path(path)
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{cfg_file} not found; pass run directories written by `vgrout train`")
    config = json.loads(cfg_file.read_text())
    arm, seed = arm_and_seed(config, path)
    diag_file = path / "diagnostics.jsonl"
    diagnostics = read_jsonl(diag_file) if diag_file.is_file() else []
    curve_file = path / "eval" / "curve.jsonl"
    curve = read_jsonl(curve_file) if curve_file.is_file() else []
    final_eval = None
    if curve:
        last = max(curve, key=lambda r: r["step"])
        final_eval = read_eval(path / "eval" / last["file"])
    elif require_eval:
        raise FileNotFoundError(f"{curve_file} not found; run `vgrout eval {path}` before comparing")
    return RunData(path=path, arm=arm, seed=seed, config=config, diagnostics=diagnostics, curve=curve,
                   final_eval=final_eval)


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
    """vanilla first, then each arm followed by its placebo, others alphabetically."""
    base = sorted(a for a in arms if placebo_base(a) is None and a != VANILLA)
    out = [VANILLA] if VANILLA in arms else []
    for a in base:
        out.append(a)
        if a + PLACEBO_SUFFIX in arms:
            out.append(a + PLACEBO_SUFFIX)
    out += sorted(a for a in arms if a not in out)
    return out


__all__ = ["PLACEBO_SUFFIX", "VANILLA", "RunData", "arm_and_seed", "arm_label", "group_by_arm", "load_run", "order_arms",
           "placebo_base"]
