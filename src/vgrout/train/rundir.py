"""The run directory a training run writes (layout: docs/architecture.md), and its checks.

    config.json  start.json  metrics.jsonl  diagnostics.jsonl  direction.json  motivate_pairs.jsonl
    checkpoints/step_NNNNNN/  eval/  retain_heal/

Every file here is written atomically (`vgrout.io`); checking is read-only so every rank can run it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from vgrout.io import atomic_dir, write_json_atomic, write_text_atomic
from vgrout.train.config import Config


@dataclass(frozen=True)
class StartFrom:
    """Where a new run's adapter starts, instead of its init (`train(..., start=StartFrom(...))`).

    Fork (`vgrout study --fork-at`): another run's checkpoint with its optimizer, schedule, step
    and RNG, so the branch continues that run's training under its own arm. Relearning attack
    (`vgrout eval --relearn-steps`): the weights only (a fresh optimizer at step 0), with the
    quarantine ablated first when the source run deploys the deployed block alone."""

    checkpoint: Path | None  # None: the run's own init (the relearning attack's base reference)
    trainer_state: bool = True  # also optimizer, scheduler, step and RNG (a fork)
    ablate_quarantine: bool = False  # reset the quarantine to its init after loading (the deployed model)

    def to_dict(self) -> dict:
        return {"checkpoint": None if self.checkpoint is None else str(self.checkpoint), "trainer_state": self.trainer_state,
                "ablate_quarantine": self.ablate_quarantine}

    @classmethod
    def from_dict(cls, d: dict) -> StartFrom:
        return cls(checkpoint=None if d["checkpoint"] is None else Path(d["checkpoint"]), trainer_state=bool(d["trainer_state"]),
                   ablate_quarantine=bool(d["ablate_quarantine"]))


def check_run_dir(cfg: Config | None, run_dir: Path, resume: bool, overwrite: bool) -> Config:
    """The config to run (on resume: the directory's config.json), or the error that says why not."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if resume:
        if not cfg_path.exists():
            raise FileNotFoundError(f"--resume {run_dir}: no config.json there; is it a run directory?")
        try:
            return Config.from_dict(json.loads(cfg_path.read_text()))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"--resume {run_dir}: its config.json does not load with this version of vgrout ({exc}); "
                             "start a new run with `vgrout train --out`") from None
    if cfg is None:
        raise ValueError("train() needs a Config for a new run (cfg=None only with resume=True)")
    if run_dir.exists() and any(run_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"run directory {run_dir} already exists; pass --resume {run_dir} to continue it "
                              "or --overwrite to start over")
    return cfg


def write_run_dir(cfg: Config, run_dir: Path, start: StartFrom | None = None) -> None:
    """Start a fresh run directory holding config.json and, for a run that starts from another
    run's checkpoint, start.json (an existing directory is deleted first)."""
    run_dir = Path(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if start is not None:  # before config.json: a directory with a config always has its start
        write_json_atomic(run_dir / "start.json", start.to_dict(), indent=2)
    write_text_atomic(run_dir / "config.json", cfg.to_json())


def read_start(run_dir: Path) -> StartFrom | None:
    """start.json of a run directory (None: the run started from its init)."""
    path = Path(run_dir) / "start.json"
    return StartFrom.from_dict(json.loads(path.read_text())) if path.exists() else None


def write_direction_info(run_dir: Path, info: dict) -> None:
    """direction.json: how the initial direction was extracted (kind, pairs, paired accuracy, placebo)."""
    write_json_atomic(Path(run_dir) / "direction.json", info, indent=2)


def write_retain_heal(run_dir: Path, adapter, stats: dict) -> Path:
    """retain_heal/{adapter.safetensors, heal.json}, published whole."""
    out = Path(run_dir) / "retain_heal"
    with atomic_dir(out) as tmp:
        adapter.save(tmp / "adapter.safetensors")
        write_json_atomic(tmp / "heal.json", stats, indent=2)
    return out


def read_retain_heal(run_dir: Path) -> dict | None:
    """The heal stats of a finished retain-heal, or None."""
    path = Path(run_dir) / "retain_heal" / "heal.json"
    return json.loads(path.read_text()) if path.exists() else None


__all__ = ["StartFrom", "check_run_dir", "read_retain_heal", "read_start", "write_direction_info", "write_retain_heal", "write_run_dir"]
