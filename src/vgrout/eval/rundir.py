"""A run directory's config.json and checkpoints read as plain data, for eval, samples and export.

Torch-free and independent of `vgrout.train`: config.json is a dict of `Config` fields
(docs/training.md), read here by name. What a run deploys (the whole adapter, or the deployed
block alone) comes from its checkpoints' state.json "deploys", written by the trainer's arm.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

_STEP_DIR = re.compile(r"^step_(\d{6,})$")


def read_config(run_dir: str | Path) -> dict:
    """The run's config.json as a dict; a clear error when `run_dir` is not a run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir} is not a directory; pass a run directory written by `vgrout train`")
    cfg_file = run_dir / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{cfg_file} not found; pass a run directory written by `vgrout train`")
    try:
        cfg = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{cfg_file} is not valid JSON ({exc})") from exc
    if not isinstance(cfg, dict) or "arm" not in cfg or "model" not in cfg:
        raise ValueError(f"{cfg_file} has no 'arm'/'model' fields; is {run_dir} a vgrout run directory?")
    return cfg


def need(cfg: dict, key: str, run_dir: str | Path):
    """cfg[key], or an error naming the missing field (a config.json from an older vgrout)."""
    if key not in cfg:
        raise ValueError(f"{Path(run_dir) / 'config.json'} has no {key!r} field (written by an older vgrout?); "
                         f"pass the setting explicitly on the command line")
    return cfg[key]


def deploys_whole_adapter(run_dir: str | Path, ckpt_dir: str | Path | None = None) -> bool:
    """True when the run's deployed model is the whole adapter (vanilla, erase, inoculation), as the
    checkpoint's state.json "deploys" records (older runs: decided from the arm by `read_run`)."""
    from vgrout.eval.settings import read_run

    return read_run(run_dir, None if ckpt_dir is None else Path(ckpt_dir)).deployed_is_full


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


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """[(step, checkpoint dir)] sorted by step, for dirs holding an adapter.safetensors."""
    ckpt_root = Path(run_dir) / "checkpoints"
    if not ckpt_root.is_dir():
        raise FileNotFoundError(f"{ckpt_root} does not exist; is {run_dir} a run directory written by `vgrout train`?")
    found = []
    for d in ckpt_root.iterdir():
        m = _STEP_DIR.match(d.name)
        if m and (d / "adapter.safetensors").is_file():
            found.append((int(m.group(1)), d))
    return sorted(found)


def pick_checkpoint(run_dir: str | Path, step: int | None = None) -> tuple[int, Path]:
    """(step, dir) of checkpoint `step`, or of the last one when `step` is None."""
    found = list_checkpoints(run_dir)
    if not found:
        raise FileNotFoundError(f"{run_dir} has no complete checkpoint (checkpoints/step_NNNNNN/adapter.safetensors)")
    if step is None:
        return found[-1]
    for s, d in found:
        if s == step:
            return s, d
    raise FileNotFoundError(f"{run_dir} has no checkpoint at step {step}; it has steps {[s for s, _ in found]}")


def checkpoint_arm(ckpt_dir: str | Path, cfg: dict) -> str:
    """The arm a checkpoint was trained under: its state.json "arm" when recorded, else config.json's."""
    state_file = Path(ckpt_dir) / "state.json"
    if state_file.is_file():
        state = json.loads(state_file.read_text())
        if "arm" in state:
            if state["arm"] != cfg["arm"]:
                raise ValueError(f"{state_file} says arm {state['arm']!r} but config.json says {cfg['arm']!r}; "
                                 "the checkpoint does not belong to this run directory")
            return str(state["arm"])
    return str(cfg["arm"])


__all__ = ["arm_label", "checkpoint_arm", "deploys_whole_adapter",
           "list_checkpoints", "need", "pick_checkpoint", "read_config"]
