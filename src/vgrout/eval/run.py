"""Eval curves over a run's checkpoints, offline: load each saved adapter, evaluate, write
`eval/step_NNNNNN.json` with its completions beside it (`eval/step_NNNNNN.samples.jsonl`) and
rebuild `eval/curve.jsonl`. Runs after (or beside) training, so evaluation never slows a
training step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from vgrout.eval.evaluator import evaluate
from vgrout.eval.results import eval_path, read_eval, rebuild_curve, write_eval_result
from vgrout.rundir import ADAPTER, list_checkpoints
from vgrout.types import Problem


# the `vgrout eval` flag that sets each compared setting, for the mismatch message
_FLAG = {"n_samples": "--n-samples", "max_new_tokens": "--max-new-tokens", "seed": "--seed", "markers": "--markers",
         "batch_prompts": "--batch-prompts", "temperature": "--temperature", "top_p": "--top-p", "top_k": "--top-k",
         "problems": "--problems/--n-problems", "modes": "(the run's eval_modes)",
         "deployed_is_full": "(the run's arm)"}


def settings_diff(existing: dict, problems: Sequence[Problem], eval_kwargs: Mapping,
                  modes: Mapping[str, str] | None = None) -> dict[str, tuple]:
    """{setting: (value in the existing result, value requested now)} for every setting that differs."""
    diff = {k: (existing["settings"].get(k), v) for k, v in eval_kwargs.items()
            if k in existing["settings"] and existing["settings"][k] != v}
    ids_there = [p["id"] for p in existing["problems"]]
    if ids_there != [p.id for p in problems]:
        same_order = ids_there == [p.id for p in problems][:len(ids_there)]
        diff["problems"] = (f"{len(ids_there)} ids", f"{len(problems)} ids" + ("" if same_order else ", other ids"))
    elif modes is not None:
        there = {p["id"]: p["mode"] for p in existing["problems"]}
        if any(there[p.id] != modes[p.id] for p in problems):
            diff["modes"] = (sorted(set(there.values())), sorted(set(modes[p.id] for p in problems)))
    return diff


def _check_same_settings(path: Path, existing: dict, problems: Sequence[Problem], eval_kwargs: Mapping,
                         modes: Mapping[str, str] | None = None) -> None:
    """An eval file kept from an earlier call must answer the same question (same problems and
    sampling), else a curve would silently mix two settings."""
    diff = settings_diff(existing, problems, eval_kwargs, modes)
    if diff:
        lines = "; ".join(f"{k}: {there!r} in the file, {now!r} now (flag {_FLAG.get(k, '?')})"
                          for k, (there, now) in diff.items())
        raise ValueError(f"{path} was evaluated with different settings: {lines}. Pass the file's values to "
                         "reproduce its question, or overwrite=True (--overwrite) to recompute the file")


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
        raise FileNotFoundError(f"no checkpoints/step_NNNNNN/{ADAPTER} under {run_dir}")
    if checkpoints == "last":
        found = found[-1:]
    results = []
    for step, ckpt in found:
        out = eval_path(run_dir, step)
        if out.exists() and not overwrite:
            existing = read_eval(out)
            _check_same_settings(out, existing, problems, eval_kwargs,
                                 modes if not isinstance(modes, str) else {p.id: modes for p in problems})
            results.append(existing)
            continue
        adapter.load(ckpt / ADAPTER)
        result = evaluate(model, tokenizer, adapter, problems, modes, grader=grader, **eval_kwargs)
        result.update({"run_dir": str(run_dir), "step": step, "checkpoint": str(ckpt)})
        result["run"] = dict(run_info or {})
        result = write_eval_result(out, result)
        results.append(result)
    rebuild_curve(run_dir)
    return results


__all__ = ["evaluate_run", "list_checkpoints", "settings_diff"]
