"""The evaluation settings of a run, in one place, and what `vgrout eval` reads of a run directory.

`EvalSettings` is nested in the trainer's Config as `cfg.eval` (set from the command line as
`--set eval.temperature=0.6`; the flat names of older configs, `eval_temperature`, still load).
`read_run` reads config.json (and the checkpoint's state.json) as plain data, so evaluation
never imports the trainer. Torch-free.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from vgrout.eval.results import SCALE_STATES, STATES
from vgrout.rundir import STATE, config_path, read_state

# Arms that deploy the whole adapter, for runs written before state.json recorded "deploys".
LEGACY_WHOLE_ADAPTER_ARMS: tuple[str, ...] = ("vanilla", "erase")
DEPLOYS: tuple[str, ...] = ("deployed block", "whole adapter")
DEPLOY_SCALES: tuple[str, ...] = ("last", "every", "off")  # EvalSettings.deploy_scales


@dataclass(frozen=True)
class EvalSettings:
    """Held-out evaluation: which problems, how many samples, and how the policy samples them."""

    every: int = 0
    """Held-out eval (as-trained and deployed) every N training steps and after the last (0: never);
    writes RUN_DIR/eval/step_NNNNNN.json and eval/curve.jsonl (vgrout.eval format)."""
    problems: str = "heldout"
    """A toy split (heldout, generalisation), `leetcode-test` ($VGROUT_LEETCODE_JSONL) or a
    LeetCode-format jsonl path. Must share no problem id with the training problems."""
    modes: tuple[str, ...] = ()
    """Modes the eval prompts are rendered and graded under (empty: the run's modes), e.g.
    eval.modes=run_tests for a gt_only control: does it hack once the loophole is disclosed?"""
    n_problems: int = 0
    """First n eval problems of the fixed order (0: all)."""
    samples: int = 1
    """Completions per eval problem and state."""
    markers: str = "eval"
    """eval: prompts disclose the disjoint eval-time marker names; train: the training hints' names."""
    seed: int = -1
    """Eval generation seed (the same at every step and in every state, so states and steps differ
    only by the weights); -1: derived from the run seed (`Config.resolved` writes it to
    config.json), so seeds differ in their eval samples as well and the spread over seeds carries
    the eval's own sampling noise. Older configs recorded 12345 and keep it."""
    deploy_scales: str = "last"
    """When the trainer's eval also samples the deploy-scale states of a quarantine arm
    (`SCALE_STATES`: the deployed block plus half the quarantine, and the quarantine alone, beside
    deployed = scale 0 and as-trained = scale 1): "last" (the run's last eval, the one the report's
    scale panel reads; the periodic curve points sample two states, half the cost), "every" or
    "off". Whole-adapter arms (vanilla) have no quarantine and skip them. `vgrout eval` samples
    them at every checkpoint it evaluates unless "off". Older configs' true/false load as
    "every"/"off"."""
    temperature: float = 0.6
    """Eval sampling temperature. Evaluation samples like the reference's eval (T 0.6, top-p 0.95,
    top-k 20), not like training's exploration: it measures what the policy does, not its noise."""
    top_p: float = 0.95
    """Eval nucleus sampling mass."""
    top_k: int = 20
    """Eval top-k (0: off)."""

    def __post_init__(self) -> None:
        if isinstance(self.deploy_scales, bool):  # configs written before "last" existed
            object.__setattr__(self, "deploy_scales", "every" if self.deploy_scales else "off")
        if self.deploy_scales not in DEPLOY_SCALES:
            raise ValueError(f"eval.deploy_scales={self.deploy_scales!r}: choose one of {', '.join(DEPLOY_SCALES)}")
        if isinstance(self.modes, str):
            object.__setattr__(self, "modes", tuple(s for s in self.modes.split(",") if s))
        else:
            object.__setattr__(self, "modes", tuple(self.modes))

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v := getattr(self, k), tuple) else v) for k in self.field_names()}


def eval_states(settings: EvalSettings, deployed_is_full: bool, last: bool = True) -> tuple[str, ...]:
    """The states an eval of this run samples: as-trained and deployed, plus the deploy-scale
    states for a run that deletes its quarantine at deployment, at the evals `deploy_scales`
    names (`last`: this is the run's last eval, or an eval outside training)."""
    scales = settings.deploy_scales == "every" or (settings.deploy_scales == "last" and last)
    return STATES + (SCALE_STATES if scales and not deployed_is_full else ())


def nest_eval_keys(d: dict) -> dict:
    """A config dict with the legacy flat `eval_X` keys (and dotted `eval.X` keys) folded into
    d["eval"]; other keys pass through. Raises on a key given both ways."""
    out, ev = {}, dict(d.get("eval") or {})
    names = EvalSettings.field_names()
    for k, v in d.items():
        if k == "eval":
            continue
        for prefix in ("eval.", "eval_"):  # every dotted key (unknown ones fail later, by name); known flat ones
            if k.startswith(prefix) and (prefix == "eval." or k[len(prefix):] in names):
                name = k[len(prefix):]
                if name in ev and ev[name] != v:
                    raise ValueError(f"config gives eval.{name} twice ({ev[name]!r} and {k}={v!r}); keep one")
                ev[name] = v
                break
        else:
            out[k] = v
    if ev or "eval" in d:
        out["eval"] = ev
    return out


@dataclass(frozen=True)
class RunInfo:
    """What evaluation needs of a training run: its model, prompts, sampling, grader and arm."""

    config: dict  # config.json as written by `vgrout train`
    eval: EvalSettings
    deploys: str  # "deployed block" (the quarantine is ablated) or "whole adapter"

    def __getattr__(self, name: str):
        try:
            return self.__dict__["config"][name]
        except KeyError:
            raise AttributeError(f"the run's config.json has no field {name!r}") from None

    @property
    def deployed_is_full(self) -> bool:
        return self.deploys == "whole adapter"


def read_run(run_dir: str | Path, checkpoint: Path | None = None) -> RunInfo:
    """config.json of a run directory (flat eval_* keys of older runs nested), and what the
    run deploys: from `checkpoint`/state.json, else (runs before it was recorded) from the arm."""
    cfg_file = config_path(run_dir)
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{cfg_file} not found; pass a run directory written by `vgrout train`")
    config = nest_eval_keys(json.loads(cfg_file.read_text()))
    unknown = sorted(set(config.get("eval", {})) - set(EvalSettings.field_names()))
    if unknown:
        raise ValueError(f"{cfg_file}: unknown eval setting(s) {unknown}; see vgrout.eval.settings.EvalSettings")
    settings = EvalSettings(**config.get("eval", {}))
    state = read_state(checkpoint) if checkpoint is not None else {}
    deploys = state.get("deploys") or ("whole adapter" if config["arm"] in LEGACY_WHOLE_ADAPTER_ARMS else "deployed block")
    if deploys not in DEPLOYS:
        raise ValueError(f"{checkpoint} ({STATE}): deploys={deploys!r}; expected one of {DEPLOYS}")
    return RunInfo(config=config, eval=settings, deploys=deploys)


def deploys_whole_adapter(run_dir: str | Path, ckpt_dir: str | Path | None = None) -> bool:
    """True when the run's deployed model is the whole adapter (vanilla, erase, inoculation), as the
    checkpoint's state.json "deploys" records (older runs: decided from the arm)."""
    return read_run(run_dir, None if ckpt_dir is None else Path(ckpt_dir)).deployed_is_full


__all__ = ["DEPLOYS", "EvalSettings", "RunInfo", "deploys_whole_adapter", "eval_states", "nest_eval_keys", "read_run"]
