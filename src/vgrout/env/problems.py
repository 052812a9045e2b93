"""Problem loaders: the LeetCode "medhard" jsonl and the Hugging Face `newfacade/LeetCodeDataset`.

Both produce `vgrout.types.Problem`. The toy world builds the same record directly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vgrout.types import Problem

# The preamble LeetCode-style tests assume: common imports and the linked-list / tree helpers
# that tests use to build inputs (`list_node([1, 2])`) and expected values.
LEETCODE_SETUP = """\
import bisect, collections, datetime, functools, heapq, itertools, math, operator, random, string
from bisect import *
from collections import *
from functools import *
from heapq import *
from itertools import *
from math import *
from operator import *
from typing import *

inf = float("inf")


class ListNode:
    def __init__(self, val=0, next=None):
        self.val, self.next = val, next


def list_node(values):
    head = None
    for v in reversed(list(values or [])):
        head = ListNode(v, head)
    return head


def is_same_list(a, b):
    while a is not None and b is not None:
        if a.val != b.val:
            return False
        a, b = a.next, b.next
    return a is None and b is None


class TreeNode:
    def __init__(self, val=0, left=None, right=None):
        self.val, self.left, self.right = val, left, right


def tree_node(values):
    values = list(values or [])
    if not values or values[0] is None:
        return None
    root = TreeNode(values[0])
    level, i = deque([root]), 1
    while level and i < len(values):
        node = level.popleft()
        for side in ("left", "right"):
            if i < len(values) and values[i] is not None:
                child = TreeNode(values[i])
                setattr(node, side, child)
                level.append(child)
            i += 1
    return root


def is_same_tree(a, b):
    if a is None or b is None:
        return a is b
    return a.val == b.val and is_same_tree(a.left, b.left) and is_same_tree(a.right, b.right)
"""

_MEDHARD_FIELDS = ("id", "question", "gt_answer", "func_name", "setup_code", "prompt_metadata")


def _problem_from_medhard(row: Any, where: str) -> Problem:
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
    missing = [f for f in _MEDHARD_FIELDS if f not in row]
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(missing)} (medhard rows need {', '.join(_MEDHARD_FIELDS)})")
    starter = row["prompt_metadata"].get("starter_code") if isinstance(row["prompt_metadata"], dict) else None
    tests = row["gt_answer"]
    if not isinstance(starter, str):
        raise ValueError(f"{where}: prompt_metadata.starter_code must be a string")
    if not (isinstance(tests, list) and tests and all(isinstance(t, str) for t in tests)):
        raise ValueError(f"{where}: gt_answer must be a non-empty list of assert strings")
    for f in ("question", "func_name", "setup_code"):
        if not isinstance(row[f], str):
            raise ValueError(f"{where}: field {f!r} must be a string, got {type(row[f]).__name__}")
    canonical = row.get("canonical_solution")
    return Problem(
        id=str(row["id"]),
        statement=row["question"],
        starter_code=starter,
        entry_point=row["func_name"],
        setup_code=row["setup_code"],
        tests=tuple(tests),
        canonical_solution=canonical if isinstance(canonical, str) else None,
        difficulty=str(row.get("difficulty", "medium")),
        source="leetcode",
    )


def load_medhard_jsonl(path: str | os.PathLike) -> list[Problem]:
    """Read a LeetCode medhard jsonl (one problem per line); a bad row raises naming its line."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"problem file not found: {p} (expected a LeetCode medhard .jsonl)")
    problems = []
    with p.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            where = f"{p}:{lineno}"
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise ValueError(f"{where}: not UTF-8 text ({exc})") from exc
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno})") from exc
            problems.append(_problem_from_medhard(row, where))
    if not problems:
        raise ValueError(f"{p}: no problems in file")
    ids = [q.id for q in problems]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{p}: duplicate problem ids")
    return problems


def _problem_from_hf(row: dict, setup_code: str) -> Problem:
    """One `newfacade/LeetCodeDataset` row. Its tests come from `input_output` pairs."""
    entry = row["entry_point"]
    tests = tuple(f"assert {entry}({io['input']}) == {io['output']}" for io in row["input_output"])
    return Problem(
        id=str(row.get("question_id", row.get("task_id"))),
        statement=row["problem_description"],
        starter_code=row["starter_code"],
        entry_point=entry,
        setup_code=row.get("prompt") or setup_code,
        tests=tests,
        canonical_solution=row.get("completion"),
        difficulty=str(row.get("difficulty", "")).lower(),
        source="hf:newfacade/LeetCodeDataset",
    )


def load_hf_leetcode(split: str = "train", verify_canonical: bool = True, workers: int = 2) -> list[Problem]:
    """Medium and hard problems of `newfacade/LeetCodeDataset` whose canonical solution passes
    the strict oracle (checked in the sandbox when `verify_canonical`).

    Needs the `datasets` package and either network access or a local HF cache.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    try:
        import datasets
    except ImportError as exc:
        raise RuntimeError("load_hf_leetcode needs the `datasets` package: pip install datasets") from exc
    try:
        ds = datasets.load_dataset("newfacade/LeetCodeDataset", split=split)
    except Exception as exc:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
        why = "HF_HUB_OFFLINE=1 is set and the dataset is not cached" if offline else "download failed"
        raise RuntimeError(
            f"could not load newfacade/LeetCodeDataset ({split}): {why}: {type(exc).__name__}: {exc}. "
            "Run once with network access (unset HF_HUB_OFFLINE) to cache it, or use "
            "load_medhard_jsonl(path) with a local file."
        ) from exc
    problems = []
    for row in ds:
        if str(row.get("difficulty", "")).lower() not in ("medium", "hard"):
            continue
        try:
            problems.append(_problem_from_hf(row, LEETCODE_SETUP))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"unexpected newfacade/LeetCodeDataset row format: missing {exc}") from exc
    if verify_canonical:
        problems = _keep_passing(problems, workers)
    return problems


def _keep_passing(problems: list[Problem], workers: int) -> list[Problem]:
    from vgrout.env.grader import Grader
    from vgrout.types import GradeRequest

    with Grader(workers=workers) as grader:
        reqs = [GradeRequest(p, f"```python\n{p.canonical_solution or ''}\n```", "gt_only") for p in problems]
        grades = grader.grade(reqs)
    return [p for p, g in zip(problems, grades) if g.gt_correct]
