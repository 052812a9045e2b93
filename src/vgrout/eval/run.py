"""Eval curves over a run's checkpoints, offline: load each saved adapter, evaluate, write
`eval/step_NNNNNN.json` and rebuild `eval/curve.jsonl`. Runs after (or beside) training, so
evaluation never slows a training step.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

from vgrout.eval.evaluator import evaluate
from vgrout.eval.results import eval_path, read_eval, rebuild_curve, write_json_atomic
from vgrout.types import Problem

_STEP_DIR = re.compile(r"^step_(\d{6,})$")


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


def _check_same_settings(path: Path, existing: dict, problems: Sequence[Problem], eval_kwargs: Mapping) -> None:
    """An eval file kept from an earlier call must answer the same question (same problems and
    sampling), else a curve would silently mix two settings."""
    diff = {k: (existing["settings"].get(k), v) for k, v in eval_kwargs.items()
            if k in existing["settings"] and existing["settings"][k] != v}
    if [p["id"] for p in existing["problems"]] != [p.id for p in problems]:
        diff["problems"] = (f"{existing['n_problems']} ids", f"{len(problems)} ids")
    if diff:
        raise ValueError(f"{path} was evaluated with different settings (there, now): {diff}; "
                         "pass overwrite=True (--overwrite) to recompute it")


def evaluate_run(
    run_dir: str | Path, model, tokenizer, adapter, problems: Sequence[Problem],
    modes: Mapping[str, str] | str, *, grader, checkpoints: str = "all", overwrite: bool = False,
    run_info: Mapping | None = None, **eval_kwargs,
) -> list[dict]:
    """Evaluate the run's checkpoints ("all" or "last") with `evaluate(**eval_kwargs)`.

    The adapter must already be attached to `model` with the run's adapter config; each
    checkpoint is loaded into it with `adapter.load`. Existing step files are kept unless
    `overwrite` (so an interrupted curve resumes). `run_info` (arm, seed, ...) is copied into
    each result. Returns the results in step order.
    """
    if checkpoints not in ("all", "last"):
        raise ValueError(f"checkpoints must be 'all' or 'last', got {checkpoints!r}")
    found = list_checkpoints(run_dir)
    if not found:
        raise FileNotFoundError(f"no checkpoints/step_NNNNNN/adapter.safetensors under {run_dir}")
    if checkpoints == "last":
        found = found[-1:]
    results = []
    for step, ckpt in found:
        out = eval_path(run_dir, step)
        if out.exists() and not overwrite:
            existing = read_eval(out)
            _check_same_settings(out, existing, problems, eval_kwargs)
            results.append(existing)
            continue
        adapter.load(ckpt / "adapter.safetensors")
        result = evaluate(model, tokenizer, adapter, problems, modes, grader=grader, **eval_kwargs)
        result.update({"run_dir": str(run_dir), "step": step, "checkpoint": str(ckpt)})
        result["run"] = dict(run_info or {})
        write_json_atomic(out, result)
        results.append(result)
    rebuild_curve(run_dir)
    return results


__all__ = ["evaluate_run", "list_checkpoints"]
