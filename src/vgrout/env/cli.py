"""`vgrout grade`: grade a jsonl of {problem_id, completion, mode} against a problem file."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("grade", help="grade completions in the sandbox, one JSON grade per line")
    p.add_argument("completions", type=Path, help="jsonl rows {problem_id, completion, mode[, markers, eval_marker]}")
    p.add_argument("--problems", type=Path, required=True, help="LeetCode medhard jsonl the problem ids refer to")
    p.add_argument("--sandbox", choices=("auto", "bwrap", "process"), default="auto")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=10.0, help="wall-clock seconds per sample")
    p.set_defaults(func=_run)


def _read_requests(path: Path, problems: dict):
    from vgrout.types import GradeRequest, check_mode

    requests = []
    for lineno, raw in enumerate(path.read_bytes().splitlines(), 1):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SystemExit(f"{where}: not a UTF-8 JSON object ({exc})")
        missing = [k for k in ("problem_id", "completion", "mode") if not isinstance(row, dict) or k not in row]
        if missing:
            raise SystemExit(f"{where}: missing field(s) {', '.join(missing)}")
        pid = str(row["problem_id"])
        if pid not in problems:
            raise SystemExit(f"{where}: unknown problem_id {pid!r} (not in the --problems file)")
        if not isinstance(row["completion"], str):
            raise SystemExit(f"{where}: completion must be a string")
        try:
            check_mode(row["mode"])
        except ValueError as exc:
            raise SystemExit(f"{where}: {exc}")
        requests.append(GradeRequest(problems[pid], row["completion"], row["mode"],
                                     markers=row.get("markers", "train"), eval_marker=row.get("eval_marker")))
    return requests


def _run(args: argparse.Namespace) -> int:
    from vgrout.env import Grader, load_medhard_jsonl

    problems = {p.id: p for p in load_medhard_jsonl(args.problems)}
    requests = _read_requests(args.completions, problems)
    with Grader(sandbox=args.sandbox, workers=args.workers, timeout_s=args.timeout) as grader:
        for req, grade in zip(requests, grader.grade(requests)):
            print(json.dumps({"problem_id": req.problem.id, **asdict(grade)}))
    sys.stdout.flush()
    return 0
