"""The eval JSON format ("vgrout.eval/1"): crash-safe writing, reading with a schema check,
and the one-line-per-checkpoint curve row. Torch-free; `vgrout.report` reads through here.
Field-by-field description: docs/evaluation.md.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path

from vgrout.io import umask_mode, write_json_atomic, write_text_atomic
from vgrout.rundir import curve_path, eval_dir

SCHEMA = "vgrout.eval/1"
STATES = ("as_trained", "deployed")  # every result has these two (quarantine scale 1 and 0)
# The deploy-scale states (quarantine arms only): the deployed block plus half the quarantine,
# and the quarantine alone. With as_trained and deployed they bound what deletion removes.
SCALE_STATES = ("half_quarantine", "quarantine_only")
ALL_STATES = STATES + SCALE_STATES
_STEP_FILE = re.compile(r"^step_(\d{6,})\.json$")


def write_jsonl_atomic(path: str | Path, rows: list[dict]) -> Path:
    """Rewrite `path` with `rows` (one JSON object a line) atomically."""
    return write_text_atomic(path, "".join(json.dumps(r, allow_nan=True) + "\n" for r in rows))


def samples_path(eval_file: str | Path) -> Path:
    """eval/step_NNNNNN.json -> eval/step_NNNNNN.samples.jsonl (the completions beside it)."""
    eval_file = Path(eval_file)
    if eval_file.suffix != ".json":
        raise ValueError(f"{eval_file} is not an eval .json file")
    return eval_file.with_name(eval_file.stem + ".samples.jsonl")


def sample_rows(result: dict) -> list[dict]:
    """One readable row per graded completion of a result that kept its texts (`evaluate(...,
    keep_texts=True)`): {step, state, problem_id, mode, sample, completion, reward, reason,
    valid (format_ok), hack (exploited), solve (gt_correct), channel}."""
    rows = []
    for state in ALL_STATES:
        for s in result["states"].get(state, {}).get("samples", []):
            if "text" not in s:
                raise ValueError("this eval result has no completion texts; evaluate with keep_texts=True")
            rows.append({
                "step": result.get("step"), "state": state, "problem_id": s["problem_id"], "mode": s["mode"],
                "sample": s["sample"], "completion": s["text"], "reward": s.get("reward"), "reason": s["reason"],
                "valid": s["format_ok"], "hack": s["exploited"], "solve": s["gt_correct"], "channel": s.get("channel"),
            })
    return rows


def write_eval_result(path: str | Path, result: dict) -> dict:
    """Write a result with its completions: the texts go to `samples_path(path)` (one row per
    sample, `sample_rows`), the JSON keeps the per-sample verdicts without texts. The samples
    file is written first, so a step JSON (the mark of a finished eval) always has its samples.
    Returns the result as written to JSON (texts dropped)."""
    path = Path(path)
    has_texts = any("text" in s for st in result["states"].values() for s in st.get("samples", []))
    if has_texts:
        write_jsonl_atomic(samples_path(path), sample_rows(result))
    slim = dict(result, states={
        state: dict(block, samples=[{k: v for k, v in s.items() if k != "text"} for s in block.get("samples", [])])
        for state, block in result["states"].items()})
    write_json_atomic(path, slim)
    return slim


def make_result(*, settings: dict, problems: list[dict], states: dict[str, dict]) -> dict:
    """Assemble a "vgrout.eval/1" result. `problems`: [{"id", "mode", "eval_marker"}];
    `states`: {state: tally block with "generation_mode" and "samples"}."""
    bad = [s for s in states if s not in ALL_STATES]
    if bad or not states:
        raise ValueError(f"states must be a non-empty subset of {ALL_STATES}, got {list(states)}")
    return {
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "settings": settings,
        "n_problems": len(problems),
        "problems": problems,
        "states": states,
    }


def read_eval(path: str | Path) -> dict:
    """Load an eval JSON and check its schema and the fields a report relies on."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"eval result {path} does not exist; run `vgrout eval RUN_DIR` first")
    obj = json.loads(path.read_text())
    if obj.get("schema") != SCHEMA:
        raise ValueError(f"{path}: schema {obj.get('schema')!r}, expected {SCHEMA!r}")
    for state in STATES:
        block = obj.get("states", {}).get(state)
        if block is None or "overall" not in block or "by_mode" not in block:
            raise ValueError(f"{path}: missing states.{state}.overall/by_mode")
    return obj


def curve_row(result: dict, file_name: str) -> dict:
    """The eval/curve.jsonl row for one checkpoint's result: overall rates for both states
    and the deployed per-mode counts."""
    row = {"step": result["step"], "file": file_name, "n": result["states"]["deployed"]["overall"]["n"]}
    for state in STATES:
        overall = result["states"][state]["overall"]
        row[f"hack_{state}"] = overall["hack_rate"]
        row[f"solve_{state}"] = overall["solve_rate"]
    row["by_mode_deployed"] = {
        mode: {k: b[k] for k in ("n", "hacked", "solved")}
        for mode, b in result["states"]["deployed"]["by_mode"].items()
    }
    return row


def eval_path(run_dir: str | Path, step: int) -> Path:
    return eval_dir(run_dir) / f"step_{step:06d}.json"


def rebuild_curve(run_dir: str | Path) -> Path:
    """Rewrite eval/curve.jsonl from every eval/step_*.json, sorted by step (idempotent)."""
    rows = []
    for f in sorted(eval_dir(run_dir).glob("step_*.json")):
        if _STEP_FILE.match(f.name):
            rows.append(curve_row(read_eval(f), f.name))
    rows.sort(key=lambda r: r["step"])
    return write_jsonl_atomic(curve_path(run_dir), rows)


def read_jsonl(path: str | Path) -> list[dict]:
    """Rows of a JSON-lines file; a truncated last line (a run killed mid-write) raises."""
    path = Path(path)
    rows = []
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{i}: not valid JSON ({exc}); is the file truncated?") from exc
    return rows


__all__ = [
    "ALL_STATES", "SCALE_STATES", "SCHEMA", "STATES", "write_jsonl_atomic", "samples_path", "sample_rows", "umask_mode", "write_eval_result",
    "write_text_atomic", "curve_row", "eval_path", "rebuild_curve", "read_eval",
    "make_result", "read_jsonl", "write_json_atomic",
]
