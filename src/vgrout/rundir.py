"""The run directory: every file name, its place, and the plain-data readers and writers.

One owner for the layout that `vgrout train` writes and eval, report, twins, relearning and the
study read (docs/architecture.md draws it):

    RUN/config.json  start.json  metrics.jsonl  diagnostics.jsonl  rollout_samples.jsonl
        direction.json  motivate_pairs.jsonl  tensorboard/
        checkpoints/step_NNNNNN/{adapter.safetensors, trainer_state.pt, state.json}
        eval/{step_NNNNNN.json, step_NNNNNN.samples.jsonl, curve.jsonl, after_retain_heal.json}
        retain_heal/{adapter.safetensors, heal.json}   relearn/FROM/ (a run)   relearn/relearn.json
    MATRIX/study.json  base_eval.json  RUN...          (`vgrout study`, `vgrout demo`)

Torch-free, and it imports nothing of train/eval/report: the trainer writes through it, and
everything else reads through it. Writes are atomic (`vgrout.io`).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

from vgrout.io import atomic_dir, write_json_atomic, write_jsonl_atomic, write_text_atomic
from vgrout.types import ZONE_NAMES

# ---- names -------------------------------------------------------------------------------
CONFIG = "config.json"  # the resolved Config, eval settings nested under "eval"
START = "start.json"  # a run started from another run's checkpoint (a study branch, a relearning attack)
METRICS = "metrics.jsonl"  # one oracle-free row per step
DIAGNOSTICS = "diagnostics.jsonl"  # one row per step of what needs the oracle's labels
ROLLOUT_SAMPLES = "rollout_samples.jsonl"  # a bounded, label-free sample of each step's rollouts
DIRECTION = "direction.json"  # how the initial direction was extracted, and its transfer check
MOTIVATE_PAIRS = "motivate_pairs.jsonl"  # routeV's self-generated pairs, reused on resume
TENSORBOARD = "tensorboard"
CHECKPOINTS = "checkpoints"
STEP_PREFIX = "step_"
ADAPTER = "adapter.safetensors"
TRAINER_STATE = "trainer_state.pt"
STATE = "state.json"  # written last: marks a checkpoint complete
CHECKPOINT_FILES = (ADAPTER, TRAINER_STATE, STATE)
EVAL = "eval"
CURVE = "curve.jsonl"
AFTER_RETAIN_HEAL = "after_retain_heal.json"
RETAIN_HEAL = "retain_heal"
HEAL = "heal.json"
RELEARN = "relearn"
RELEARN_RESULT = "relearn.json"
TWIN = "twin.json"  # a run written from its twin (vgrout.twin), not trained
# what the trainer writes besides config.json: a twin copies exactly these (vgrout.twin)
TRAINER_FILES = (START, METRICS, DIAGNOSTICS, ROLLOUT_SAMPLES, DIRECTION, MOTIVATE_PAIRS, CHECKPOINTS, EVAL,
                 TENSORBOARD)
# a matrix directory (`vgrout study`, `vgrout demo`)
STUDY = "study.json"
BASE_EVAL = "base_eval.json"
GRADE_STORE = "grades.sqlite"  # the grades the matrix's runs share (vgrout.env.dedup.GradeStore)

_STEP_DIR = re.compile(r"^step_(\d{6,})$")


# ---- paths -------------------------------------------------------------------------------
def config_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / CONFIG


def start_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / START


def metrics_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / METRICS


def diagnostics_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / DIAGNOSTICS


def rollout_samples_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / ROLLOUT_SAMPLES


def motivate_pairs_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / MOTIVATE_PAIRS


def tensorboard_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / TENSORBOARD


def checkpoints_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINTS


def step_dir(run_dir: str | Path, step: int) -> Path:
    """checkpoints/step_NNNNNN: the checkpoint after `step` completed steps."""
    return checkpoints_dir(run_dir) / f"{STEP_PREFIX}{step:06d}"


def eval_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / EVAL


def curve_path(run_dir: str | Path) -> Path:
    return eval_dir(run_dir) / CURVE


def after_retain_heal_path(run_dir: str | Path) -> Path:
    return eval_dir(run_dir) / AFTER_RETAIN_HEAL


def retain_heal_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / RETAIN_HEAL


def relearn_dir(run_dir: str | Path, start: str | None = None) -> Path:
    """relearn/ of a run, or relearn/START: the attack's own run directory."""
    return Path(run_dir) / RELEARN if start is None else Path(run_dir) / RELEARN / start


def relearn_result_path(run_dir: str | Path) -> Path:
    return relearn_dir(run_dir) / RELEARN_RESULT


def has_config(run_dir: str | Path) -> bool:
    """True once a run (or a started one) lives here."""
    return config_path(run_dir).is_file()


# ---- config.json, start.json, direction.json ----------------------------------------------
def read_config(run_dir: str | Path) -> dict:
    """The run's config.json as a dict; a clear error when `run_dir` is not a run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir} is not a directory; pass a run directory written by `vgrout train`")
    cfg_file = config_path(run_dir)
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{cfg_file} not found; pass a run directory written by `vgrout train`")
    try:
        cfg = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{cfg_file} is not valid JSON ({exc})") from exc
    if not isinstance(cfg, dict) or "arm" not in cfg or "model" not in cfg:
        raise ValueError(f"{cfg_file} has no 'arm'/'model' fields; is {run_dir} a vgrout run directory?")
    return cfg


def write_config(run_dir: str | Path, config_json: str) -> None:
    """config.json, atomically (the text of `Config.to_json()`)."""
    write_text_atomic(config_path(run_dir), config_json)


def need(cfg: dict, key: str, run_dir: str | Path):
    """cfg[key], or an error naming the missing field (a config.json from an older vgrout)."""
    if key not in cfg:
        raise ValueError(f"{config_path(run_dir)} has no {key!r} field (written by an older vgrout?); "
                         f"pass the setting explicitly on the command line")
    return cfg[key]


def read_start(run_dir: str | Path) -> dict | None:
    """start.json as a dict ({"checkpoint", "trainer_state", "ablate_quarantine"}); None: the run started from its init."""
    path = start_path(run_dir)
    return json.loads(path.read_text()) if path.exists() else None


def write_start(run_dir: str | Path, start: dict) -> None:
    write_json_atomic(start_path(run_dir), start, indent=2)


def write_direction(run_dir: str | Path, info: dict) -> None:
    """direction.json: how the initial direction was extracted (kind, pairs, paired accuracy, placebo, transfer)."""
    write_json_atomic(Path(run_dir) / DIRECTION, info, indent=2)


def arm_label(cfg: dict) -> str:
    """The arm a run is filed under: its arm ("gt_only" for vanilla trained on gt_only prompts alone,
    the control), "+init" for a non-gaussian init, "-placebo" for a Haar direction ("-placeboK" for
    the seed's K-th further draw; the labels `vgrout compare` groups by)."""
    label = str(cfg["arm"])
    if list(cfg.get("modes") or []) == ["gt_only"]:  # trained where the loophole pays nothing: the control
        label = "gt_only" if label == "vanilla" else f"{label}:gt_only"
    if cfg.get("adapter_init", "gaussian") != "gaussian":
        label += f"+{cfg['adapter_init']}"
    if int(cfg.get("placebo_seed", -1)) >= 0:
        draw = int(cfg.get("placebo_draw", 0))
        label += "-placebo" + (str(draw) if draw else "")
    return label


# ---- checkpoints ---------------------------------------------------------------------------
def is_complete(ckpt_dir: Path) -> bool:
    """A checkpoint directory with all its files (state.json is written last)."""
    return ckpt_dir.name.startswith(STEP_PREFIX) and all((ckpt_dir / f).is_file() for f in CHECKPOINT_FILES)


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """[(step, checkpoint dir)] sorted by step, for dirs holding an adapter.safetensors."""
    ckpt_root = checkpoints_dir(run_dir)
    if not ckpt_root.is_dir():
        raise FileNotFoundError(f"{ckpt_root} does not exist; is {run_dir} a run directory written by `vgrout train`?")
    found = []
    for d in ckpt_root.iterdir():
        m = _STEP_DIR.match(d.name)
        if m and (d / ADAPTER).is_file():
            found.append((int(m.group(1)), d))
    return sorted(found)


def pick_checkpoint(run_dir: str | Path, step: int | None = None) -> tuple[int, Path]:
    """(step, dir) of checkpoint `step`, or of the last one when `step` is None."""
    found = list_checkpoints(run_dir)
    if not found:
        raise FileNotFoundError(f"{run_dir} has no complete checkpoint ({CHECKPOINTS}/step_NNNNNN/{ADAPTER})")
    if step is None:
        return found[-1]
    for s, d in found:
        if s == step:
            return s, d
    raise FileNotFoundError(f"{run_dir} has no checkpoint at step {step}; it has steps {[s for s, _ in found]}")


def read_state(ckpt_dir: str | Path) -> dict:
    """A checkpoint's state.json ({} when absent: checkpoints of older runs)."""
    path = Path(ckpt_dir) / STATE
    return json.loads(path.read_text()) if path.is_file() else {}


def checkpoint_arm(ckpt_dir: str | Path, cfg: dict) -> str:
    """The arm a checkpoint was trained under: its state.json "arm" when recorded, else config.json's."""
    state = read_state(ckpt_dir)
    if "arm" in state:
        if state["arm"] != cfg["arm"]:
            raise ValueError(f"{Path(ckpt_dir) / STATE} says arm {state['arm']!r} but {CONFIG} says {cfg['arm']!r}; "
                             "the checkpoint does not belong to this run directory")
        return str(state["arm"])
    return str(cfg["arm"])


# ---- retain-heal ---------------------------------------------------------------------------
def write_retain_heal(run_dir: str | Path, save_adapter: Callable[[Path], None], stats: dict) -> Path:
    """retain_heal/{adapter.safetensors, heal.json}, published whole; `save_adapter(path)` writes the adapter."""
    out = retain_heal_dir(run_dir)
    with atomic_dir(out) as tmp:
        save_adapter(tmp / ADAPTER)
        write_json_atomic(tmp / HEAL, stats, indent=2)
    return out


def read_retain_heal(run_dir: str | Path) -> dict | None:
    """The heal stats of a finished retain-heal, or None."""
    path = retain_heal_dir(run_dir) / HEAL
    return json.loads(path.read_text()) if path.exists() else None


# ---- the trainer's jsonl writers: metrics, diagnostics, rollout samples -------------------
def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class JsonlSink:
    """One json object per line, flushed each row. On resume, rows at or after a step are dropped."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, row: dict) -> None:
        self._f.write(json.dumps({k: _clean(v) for k, v in row.items()}, sort_keys=True) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def truncate_from(path: Path, step: int) -> None:
    """Keep only rows with row['step'] < step (crash-safe rewrite); a torn last line is dropped."""
    path = Path(path)
    if not path.exists():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by a kill
        if row.get("step", step) < step:
            keep.append(line)
    write_jsonl_atomic(path, keep)


# rollout_samples.jsonl: one row per kept rollout {step, index, problem_id, mode, completion,
# reward, zone, gate_score}. Only what training itself sees is written (text, the environment's
# reward, the gate's zone and score): the oracle's labels stay in diagnostics.jsonl, whose
# per-rollout lists (`hack`, gated arms) join these rows on `index`. Which rollouts are kept is a
# seeded choice per step that reads no label and no global RNG, so writing samples changes
# nothing about training.
def kept_indices(n: int, k: int, step: int, seed: int = 0) -> list[int]:
    """The k (or all n, if fewer) batch rows kept at `step`: seeded by (seed, step) only."""
    if k < 0 or n < 0:
        raise ValueError(f"n and k must be >= 0, got n={n}, k={k}")
    rng = random.Random(f"vgrout-rollout-samples:{seed}:{step}")
    return sorted(rng.sample(range(n), min(k, n)))


def _num(x) -> float | None:
    v = float(x)
    return None if math.isnan(v) else v


def write_rollout_samples(
    run_dir: str | Path, step: int, texts: Sequence[str], rewards: Sequence[float], *,
    zones: Sequence[int] | None = None, gate_scores: Sequence[float] | None = None,
    problem_ids: Sequence[str] | None = None, modes: Sequence[str] | None = None, k: int = 4, seed: int = 0,
) -> list[dict]:
    """Append step `step`'s kept rollouts (k of the N batch rows) to RUN_DIR/rollout_samples.jsonl
    and return them. `texts`, `rewards` (N,); `zones` (N,) KEEP=0/ABSORB=1/ROUTE=2 and `gate_scores`
    (N,, NaN = unscored) for gated arms, None otherwise. Tensors work (elements go through
    float/int). On resume, drop rows from the resumed step on with
    `truncate_from(rollout_samples_path(run_dir), step)`."""
    n = len(texts)
    for name, seq in (("rewards", rewards), ("zones", zones), ("gate_scores", gate_scores),
                      ("problem_ids", problem_ids), ("modes", modes)):
        if seq is not None and len(seq) != n:
            raise ValueError(f"write_rollout_samples: {name} has {len(seq)} entries for {n} texts")
    rows = []
    for i in kept_indices(n, k, step, seed):
        rows.append({
            "step": int(step), "index": i,
            "problem_id": None if problem_ids is None else str(problem_ids[i]),
            "mode": None if modes is None else str(modes[i]),
            "completion": str(texts[i]), "reward": _num(rewards[i]),
            "zone": None if zones is None else ZONE_NAMES[int(zones[i])],
            "gate_score": None if gate_scores is None else _num(gate_scores[i]),
        })
    path = rollout_samples_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:  # one write per step: a kill tears at most the last line
        f.write("".join(json.dumps(r) + "\n" for r in rows))
        f.flush()
        os.fsync(f.fileno())
    return rows


__all__ = [
    "JsonlSink", "kept_indices", "truncate_from", "write_rollout_samples", "ADAPTER", "AFTER_RETAIN_HEAL", "BASE_EVAL", "CHECKPOINTS", "CHECKPOINT_FILES", "CONFIG", "CURVE", "DIAGNOSTICS",
    "DIRECTION", "EVAL", "HEAL", "METRICS", "MOTIVATE_PAIRS", "RELEARN", "RELEARN_RESULT", "RETAIN_HEAL",
    "ROLLOUT_SAMPLES", "START", "STATE", "TWIN", "STEP_PREFIX", "STUDY", "TENSORBOARD", "TRAINER_FILES", "TRAINER_STATE",
    "after_retain_heal_path", "arm_label", "checkpoint_arm", "checkpoints_dir", "config_path", "curve_path",
    "diagnostics_path", "eval_dir", "has_config", "is_complete", "list_checkpoints", "metrics_path",
    "motivate_pairs_path", "need", "pick_checkpoint", "read_config", "read_retain_heal", "read_start", "read_state", "relearn_dir", "relearn_result_path", "retain_heal_dir", "rollout_samples_path",
    "start_path", "step_dir", "tensorboard_dir", "write_config", "write_direction", "write_retain_heal", "write_start",
]
