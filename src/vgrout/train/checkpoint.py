"""Atomic checkpoints: a step directory is written under a temporary name and renamed whole.

    checkpoints/step_NNNNNN/adapter.safetensors   the adapter (BlockAdapter.save)
    checkpoints/step_NNNNNN/trainer_state.pt      optimizer, scheduler, gate, RNG states
    checkpoints/step_NNNNNN/state.json            {"step": N, "arm": ..., "deploys": ...} (written last; marks completeness)

A kill at any moment leaves either the previous complete checkpoints or a `.tmp-*` directory
that `latest_checkpoint` ignores and `clean_partial` removes.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import torch

from vgrout.io import atomic_dir, write_json_atomic

PREFIX = "step_"


def step_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"{PREFIX}{step:06d}"


def save_checkpoint(run_dir: Path, step: int, adapter, trainer_state: dict, info: dict | None = None) -> Path:
    """Write checkpoint `step` (the number of completed steps) atomically; returns its directory.
    `info` (JSON-able, e.g. {"arm": ...}) is recorded in state.json beside the step."""
    final = step_dir(run_dir, step)
    with atomic_dir(final) as tmp:  # re-saving the same step (e.g. after a resume) replaces it whole
        adapter.save(tmp / "adapter.safetensors")
        state = dict(trainer_state)
        state["rng"] = {"torch": torch.get_rng_state(), "python": random.getstate(),
                        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
        torch.save(state, tmp / "trainer_state.pt")
        write_json_atomic(tmp / "state.json", {"step": step, **(info or {})})
    return final


def is_complete(d: Path) -> bool:
    return d.name.startswith(PREFIX) and all((d / f).is_file() for f in ("adapter.safetensors", "trainer_state.pt", "state.json"))


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The complete checkpoint with the highest step, or None."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return None
    done = sorted(d for d in root.iterdir() if d.is_dir() and is_complete(d))
    return done[-1] if done else None


def clean_partial(run_dir: Path) -> list[Path]:
    """Remove half-written checkpoint directories; returns what was removed."""
    root = Path(run_dir) / "checkpoints"
    gone = []
    if root.is_dir():
        for d in root.iterdir():
            if d.is_dir() and d.name.startswith(".tmp-"):
                shutil.rmtree(d)
                gone.append(d)
    return gone


def load_checkpoint(d: Path, adapter, map_location: str | torch.device | None = None) -> tuple[int, dict]:
    """Load the adapter in place; return (step, trainer state). Restores the global RNG states.

    `map_location` places the trainer-state tensors (e.g. "cpu", so a checkpoint written by
    rank 0 on one GPU loads on any rank or on a CPU)."""
    if not is_complete(d):
        raise ValueError(f"{d} is not a complete checkpoint (needs adapter.safetensors, trainer_state.pt, state.json)")
    step = int(json.loads((d / "state.json").read_text())["step"])
    adapter.load(d / "adapter.safetensors")
    state = torch.load(d / "trainer_state.pt", weights_only=False, map_location=map_location)
    rng = state.pop("rng")
    torch.set_rng_state(rng["torch"].cpu())
    random.setstate(rng["python"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return step, state
