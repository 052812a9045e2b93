"""`vgrout grade`: grade a jsonl of completions against a problem file, one JSON record per row.

A bad row never stops the others: it becomes an error record for that row, the rest are graded,
and the exit status is the number of rows that failed (capped at 100).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROW_FORMAT = """\
Input rows (one JSON object per line of COMPLETIONS; blank lines are skipped):
  {"problem_id": "1234", "completion": "...```python\\n...\\n```", "mode": "run_tests",
   "markers": "train", "eval_marker": null}
  problem_id   id of a problem in --problems (string or integer)
  completion   the model's raw text; the program is its fenced ```python blocks
  mode         run_tests | eq_override | exit_code | stdout_marker | sentinel | file_marker | gt_only
  markers      optional, "train" (default) or "eval" (the eval-time marker family)
  eval_marker  optional, with markers "eval": the disclosed eval-time name (default: the one
               eval_marker_for(mode, problem_id) picks)
--problems takes a LeetCode medhard jsonl (rows with id, question, gt_answer, func_name,
setup_code, prompt_metadata.starter_code) or a toy world's problems.jsonl (rows {"split",
"problem": {...}}, as `vgrout toy build` writes under $VGROUT_CACHE/toy/<key>/).

Output, one line per input row, in order:
  {"row": 3, "problem_id": "1234", "reward": 3.5, "format_ok": true, "gt_correct": true,
   "channel_fired": false, "exploited": false, "mode": "run_tests", "channel": null,
   "reason": "ok", "detail": ""}
  or, for a row that could not be graded: {"row": 4, "error": "not UTF-8 text (...)"}
Exit status: the number of rows that got an error record (0 = all graded; capped at 100)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "grade", help="grade completions in the sandbox, one JSON grade per line",
        description="Grade completions in the sandbox.", epilog=ROW_FORMAT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("completions", type=Path, help="jsonl of rows {problem_id, completion, mode[, markers, eval_marker]}")
    p.add_argument("--problems", type=Path, required=True,
                   help="problem file: LeetCode medhard jsonl or a toy world's problems.jsonl")
    p.add_argument("--sandbox", choices=("auto", "bwrap", "process"), default="auto")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=10.0, help="wall-clock seconds per sample")
    p.set_defaults(func=_run)


def load_problems(path: Path) -> dict:
    """Problems by id from a medhard jsonl or a toy world's problems.jsonl; SystemExit naming the fix."""
    from vgrout.env import load_medhard_jsonl
    from vgrout.types import Problem

    if not path.is_file():
        raise SystemExit(f"--problems: file not found: {path}")
    first = next((ln for ln in path.read_bytes().splitlines() if ln.strip()), b"")
    try:
        toy = isinstance(json.loads(first.decode("utf-8")), dict) and "problem" in json.loads(first)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SystemExit(f"--problems: {path}:1 is not a UTF-8 JSON object ({exc})")
    if not toy:
        try:
            return {p.id: p for p in load_medhard_jsonl(path)}
        except ValueError as exc:
            raise SystemExit(f"--problems: {exc}")
    problems = {}
    for lineno, raw in enumerate(path.read_bytes().splitlines(), 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))["problem"]
            p = Problem(**{**row, "tests": tuple(row["tests"])})
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise SystemExit(f"--problems: {path}:{lineno}: not a toy-world problem row "
                             f"{{split, problem: {{id, statement, ..., tests}}}} ({type(exc).__name__}: {exc})")
        problems[p.id] = p
    if not problems:
        raise SystemExit(f"--problems: {path}: no problems in file")
    return problems


def _request(raw: bytes, problems: dict) -> Any:
    """One row -> GradeRequest; ValueError with a reason for a row that cannot be graded."""
    from vgrout.env import channels
    from vgrout.types import GradeRequest, check_mode

    try:
        row = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
    missing = [k for k in ("problem_id", "completion", "mode") if k not in row]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)} (need problem_id, completion, mode)")
    pid = str(row["problem_id"])
    if pid not in problems:
        raise ValueError(f"unknown problem_id {pid!r} (not in the --problems file)")
    if not isinstance(row["completion"], str):
        raise ValueError("completion must be a string")
    check_mode(row["mode"])
    markers = row.get("markers", "train")
    if markers not in ("train", "eval"):
        raise ValueError(f"markers must be 'train' or 'eval', got {markers!r}")
    req = GradeRequest(problems[pid], row["completion"], row["mode"], markers=markers,
                       eval_marker=row.get("eval_marker"))
    if req.mode == "run_tests":
        channels.run_tests_name(req.markers, req.eval_marker, pid)  # raises for a wrong eval_marker
    return req


def _run(args: argparse.Namespace) -> int:
    from vgrout.env import Grader

    problems = load_problems(args.problems)
    if not args.completions.is_file():
        raise SystemExit(f"completions file not found: {args.completions}")
    rows: list[tuple[int, Any]] = []  # (line number, GradeRequest or error text)
    for lineno, raw in enumerate(args.completions.read_bytes().splitlines(), 1):
        if raw.strip():
            try:
                rows.append((lineno, _request(raw, problems)))
            except ValueError as exc:
                rows.append((lineno, str(exc)))
    requests = [r for _, r in rows if not isinstance(r, str)]
    try:
        with Grader(sandbox=args.sandbox, workers=args.workers, timeout_s=args.timeout) as grader:
            grades = iter(grader.grade(requests))
    except (ValueError, RuntimeError) as exc:  # bad --workers/--timeout, no bwrap, a worker that cannot start
        raise SystemExit(f"vgrout grade: {exc}")
    failed = 0
    for lineno, r in rows:
        if isinstance(r, str):
            failed += 1
            print(json.dumps({"row": lineno, "error": r}))
        else:
            print(json.dumps({"row": lineno, "problem_id": r.problem.id, **asdict(next(grades))}))
    sys.stdout.flush()
    print(f"vgrout grade: {len(rows) - failed} of {len(rows)} rows graded, {failed} failed "
          f"(rows from {args.completions})", file=sys.stderr)
    return min(failed, 100)
