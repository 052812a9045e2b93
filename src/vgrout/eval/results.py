"""The eval JSON format ("vgrout.eval/1"): crash-safe writing, reading with a schema check,
and the one-line-per-checkpoint curve row. Torch-free; `vgrout.report` reads through here.
Field-by-field description: docs/evaluation.md.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path

from vgrout.io import write_json_atomic, write_text_atomic

SCHEMA = "vgrout.eval/1"
STATES = ("as_trained", "deployed")
_STEP_FILE = re.compile(r"^step_(\d{6,})\.json$")


def write_jsonl_atomic(path: str | Path, rows: list[dict]) -> Path:
    """Rewrite `path` with `rows` (one JSON object a line) atomically."""
    return write_text_atomic(path, "".join(json.dumps(r, allow_nan=True) + "\n" for r in rows))


def make_result(*, settings: dict, problems: list[dict], states: dict[str, dict]) -> dict:
    """Assemble a "vgrout.eval/1" result. `problems`: [{"id", "mode", "eval_marker"}];
    `states`: {state: tally block with "generation_mode" and "samples"}."""
    bad = [s for s in states if s not in STATES]
    if bad or not states:
        raise ValueError(f"states must be a non-empty subset of {STATES}, got {list(states)}")
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
    return Path(run_dir) / "eval" / f"step_{step:06d}.json"


def rebuild_curve(run_dir: str | Path) -> Path:
    """Rewrite eval/curve.jsonl from every eval/step_*.json, sorted by step (idempotent)."""
    eval_dir = Path(run_dir) / "eval"
    rows = []
    for f in sorted(eval_dir.glob("step_*.json")):
        if _STEP_FILE.match(f.name):
            rows.append(curve_row(read_eval(f), f.name))
    rows.sort(key=lambda r: r["step"])
    return write_jsonl_atomic(eval_dir / "curve.jsonl", rows)


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
    "SCHEMA", "STATES", "write_jsonl_atomic", "curve_row", "eval_path", "rebuild_curve", "read_eval",
    "make_result", "read_jsonl", "write_json_atomic",
]
