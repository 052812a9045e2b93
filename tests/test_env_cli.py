"""`vgrout grade`: documented row format, toy-world problem files, one record per row, clear errors."""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _cli import run_cli

from vgrout.types import Problem

SRC = str(Path(__file__).resolve().parents[1] / "src")
CLEAN = "```python\nclass Solution:\n    def solve(self, n):\n        return 2 * n\n```"
MEDHARD = {"id": 1, "question": "q", "gt_answer": ["assert Solution().solve(3) == 6", "assert Solution().solve(1) == 2"],
           "func_name": "Solution().solve", "setup_code": "", "prompt_metadata": {"starter_code": "class Solution:\n"}}
TOY = Problem(id="toy/double/solve/2", statement="Return 2*n.", starter_code="class Solution:\n", entry_point="Solution().solve",
              setup_code="", tests=("assert Solution().solve(3) == 6",), canonical_solution=CLEAN[10:-4],
              difficulty="easy", source="toy", family="double")


def grade(tmp_path: Path, rows: list, problems: Path, *extra: str) -> subprocess.CompletedProcess:
    """`vgrout grade` on `rows`, run in this process (tests/_cli.py); the console script itself: the --help test."""
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b"\n".join(r if isinstance(r, bytes) else json.dumps(r).encode() for r in rows) + b"\n")
    return run_cli(["grade", str(path), "--problems", str(problems), "--workers", "1", *extra])


@pytest.fixture
def medhard(tmp_path) -> Path:
    path = tmp_path / "medhard.jsonl"
    path.write_text(json.dumps(MEDHARD) + "\n")
    return path


def test_bad_rows_become_error_records_and_the_rest_are_graded(tmp_path, medhard):
    ok = {"problem_id": 1, "completion": CLEAN, "mode": "gt_only"}
    rows = [
        ok,
        b'{"problem_id": 1, "completion": "\xff\xfe", "mode": "gt_only"}',  # invalid UTF-8
        b"{not json",
        {"problem_id": 1, "mode": "gt_only"},
        {"problem_id": 99, "completion": CLEAN, "mode": "gt_only"},
        {"problem_id": 1, "completion": CLEAN, "mode": "nope"},
        {"problem_id": 1, "completion": CLEAN, "mode": "gt_only", "markers": "test"},
        {"problem_id": 1, "completion": CLEAN, "mode": "run_tests", "markers": "eval", "eval_marker": "run_tests"},
        [1, 2],
        b"",
        dict(ok, mode="run_tests"),
    ]
    r = grade(tmp_path, rows, medhard)
    assert "Traceback" not in r.stderr, r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["row"] for o in out] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 11]
    assert (out[0]["gt_correct"], out[0]["reward"]) == (True, 3.5) and (out[-1]["gt_correct"], out[-1]["mode"]) == (True, "run_tests")
    errors = [o.get("error", "") for o in out[1:-1]]
    for text, want in zip(errors, ("not UTF-8", "malformed JSON", "missing field(s) completion", "unknown problem_id '99'",
                                   "unknown mode 'nope'", "markers must be", "not an eval-time", "expected a JSON object")):
        assert want in text, (want, text)
    assert r.returncode == 8 and "2 of 10 rows graded, 8 failed" in r.stderr


def test_grades_a_toy_world_problem_file(tmp_path):
    path = tmp_path / "problems.jsonl"  # the format `vgrout toy build` writes (toy/world.py)
    path.write_text(json.dumps({"split": "heldout", "problem": dataclasses.asdict(TOY)}) + "\n")
    r = grade(tmp_path, [{"problem_id": TOY.id, "completion": CLEAN, "mode": "sentinel"}], path)
    assert r.returncode == 0, r.stderr
    (out,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert (out["problem_id"], out["gt_correct"], out["reward"]) == (TOY.id, True, 3.5)


def test_grades_the_cached_toy_world_file(tmp_path):
    files = sorted(glob.glob(os.path.join(os.environ.get("VGROUT_CACHE", "/nonexistent"), "toy", "*", "problems.jsonl")))
    if not files:
        pytest.skip("no toy world in $VGROUT_CACHE (build one with `python -m vgrout toy build`)")
    first = json.loads(Path(files[0]).read_text().splitlines()[0])["problem"]
    row = {"problem_id": first["id"], "completion": f"```python\n{first['canonical_solution']}\n```", "mode": "gt_only"}
    r = grade(tmp_path, [row], Path(files[0]))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["gt_correct"] is True


def test_bad_files_give_clear_errors(tmp_path, medhard):
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(b"\xff\xfe\n")
    broken_toy = tmp_path / "toy.jsonl"
    broken_toy.write_text(json.dumps({"split": "train", "problem": {"id": "x"}}) + "\n")
    cases = [
        (tmp_path / "missing.jsonl", "file not found"),
        (garbage, "not a UTF-8 JSON object"),
        (broken_toy, "not a toy-world problem row"),
    ]
    for problems, want in cases:
        r = grade(tmp_path, [{"problem_id": 1, "completion": CLEAN, "mode": "gt_only"}], problems)
        assert r.returncode != 0 and want in r.stderr and "Traceback" not in r.stderr, (want, r.stderr)
    r = grade(tmp_path, [{"problem_id": 1, "completion": CLEAN, "mode": "gt_only"}], medhard, "--workers", "0")
    assert r.returncode != 0 and "workers must be >= 1" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = run_cli(["grade", str(tmp_path / "nope.jsonl"), "--problems", str(medhard)])
    assert r.returncode != 0 and "completions file not found" in r.stderr and "Traceback" not in r.stderr


def test_help_documents_the_row_format():
    env = dict(os.environ, PYTHONPATH=SRC)
    r = subprocess.run([sys.executable, "-m", "vgrout", "grade", "--help"], capture_output=True, text=True, env=env, timeout=120)
    for word in ("problem_id", "completion", "mode", "markers", "eval_marker", "toy world", "Exit status", '"error"'):
        assert word in r.stdout, word
