"""Problem loaders: the LeetCode "medhard" jsonl and the Hugging Face `newfacade/LeetCodeDataset`.

Both produce `vgrout.types.Problem`. The toy world builds the same record directly.

Named LeetCode sources (what `problems=` / `eval_problems=` accept besides a jsonl path):

    leetcode-train   newfacade/LeetCodeDataset train split, medium + hard, canonical solution
                     checked in the sandbox; cached as a medhard jsonl under $VGROUT_CACHE after
                     the first load (the reference's training data)
    leetcode-test    $VGROUT_LEETCODE_JSONL (the reference's 119-row test split); `leetcode` is
                     the older name of the same source

A run's training and evaluation ids must not overlap (`check_disjoint`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vgrout.env.modes import NEUTRAL_PHRASE
from vgrout.types import Problem

HF_DATASET = "newfacade/LeetCodeDataset"
TRAIN_SOURCE, TEST_SOURCE = "leetcode-train", "leetcode-test"

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


def statement_of(question: str, where: str) -> str:
    """The bare problem statement of a medhard `question`. The shipped rows wrap it in the
    reference's prompt ("PROBLEM:\n", then the "Your solution ... and should pass all tests ...
    starter code ... SOLUTION:" tail), which `render_messages` adds itself: left in, every prompt
    would carry the neutral phrase beside the hint."""
    q = question[len("PROBLEM:\n"):] if question.startswith("PROBLEM:\n") else question
    cut = q.find("\n\nYour solution to the problem should be a method")
    if cut >= 0:
        q = q[:cut]
    if NEUTRAL_PHRASE in q:
        raise ValueError(f"{where}: the statement still contains {NEUTRAL_PHRASE!r} after removing the prompt "
                         "wrapper; the hint could not be spliced in unambiguously")
    return q


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
        statement=statement_of(row["question"], where),
        starter_code=starter,
        entry_point=row["func_name"],
        setup_code=row["setup_code"],
        tests=tuple(tests),
        canonical_solution=canonical if isinstance(canonical, str) else None,
        difficulty=str(row.get("difficulty", "medium")),
        source=row["dataset"] if str(row.get("dataset", "")).startswith("hf:") else "leetcode",  # a cached HF split keeps its origin
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


def expected_literal(output: str) -> str:
    """An `input_output` output as Python source: as-is when it is a literal (`[0, 1]`, `"bab"`,
    `3.5`), else quoted (a bare string such as `bab`), so the assert compares values."""
    import ast

    try:
        ast.literal_eval(output)
        return output
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return repr(output)


def _problem_from_hf(row: dict, setup_code: str) -> Problem:
    """One `newfacade/LeetCodeDataset` row. Its tests come from `input_output` pairs."""
    entry = row["entry_point"]
    tests = tuple(f"assert {entry}({io['input']}) == {expected_literal(io['output'])}" for io in row["input_output"])
    if not tests:
        raise KeyError("input_output (empty)")
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


def cache_root() -> Path:
    """$VGROUT_CACHE, else ~/.cache/vgrout (the toy world's cache root too)."""
    return Path(os.environ.get("VGROUT_CACHE") or Path.home() / ".cache" / "vgrout")


def hf_cache_path(split: str) -> Path:
    """Where the verified medium + hard problems of one split are cached (medhard jsonl)."""
    return cache_root() / "leetcode" / f"newfacade_LeetCodeDataset_{split}_medhard_verified.jsonl"


def problem_to_row(p: Problem) -> dict:
    """A Problem as one medhard jsonl row (what `load_medhard_jsonl` reads back to the same Problem)."""
    return {"id": p.id, "difficulty": p.difficulty, "dataset": p.source, "question": p.statement,
            "gt_answer": list(p.tests), "func_name": p.entry_point, "setup_code": p.setup_code,
            "canonical_solution": p.canonical_solution, "prompt_metadata": {"starter_code": p.starter_code}}


def write_problems_jsonl(problems: Sequence[Problem], path: str | os.PathLike) -> Path:
    """Write problems as medhard jsonl atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for p in problems:
                f.write(json.dumps(problem_to_row(p)) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def problems_from_hf_rows(rows, setup_code: str = LEETCODE_SETUP) -> list[Problem]:
    """Medium and hard rows of `newfacade/LeetCodeDataset` as Problems (no verification)."""
    problems = []
    for i, row in enumerate(rows):
        if str(row.get("difficulty", "")).lower() not in ("medium", "hard"):
            continue
        try:
            problems.append(_problem_from_hf(row, setup_code))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"unexpected {HF_DATASET} row format (row {i}): missing or malformed {exc}") from exc
    return problems


def load_hf_leetcode(split: str = "train", verify_canonical: bool = True, workers: int = 2,
                     cache: bool = True) -> list[Problem]:
    """Medium and hard problems of `newfacade/LeetCodeDataset` whose canonical solution passes
    the strict oracle (checked in the sandbox when `verify_canonical`).

    With `cache` (and verification) the kept problems are written to `hf_cache_path(split)` on
    the first load and read from there afterwards, so later runs need neither the network nor
    the sandbox pass. The first load needs the `datasets` package and network access (or a
    local HF cache).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    cached = hf_cache_path(split)
    if cache and verify_canonical and cached.is_file():
        return load_medhard_jsonl(cached)
    try:
        import datasets
    except ImportError as exc:
        raise RuntimeError(f"loading {HF_DATASET} needs the `datasets` package: pip install datasets "
                           "(or pass a local medhard jsonl instead, e.g. --set problems=PATH)") from exc
    try:
        ds = datasets.load_dataset(HF_DATASET, split=split)
    except Exception as exc:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
        why = "HF_HUB_OFFLINE=1 is set and the dataset is not cached" if offline else "download failed"
        raise RuntimeError(
            f"could not load {HF_DATASET} ({split}): {why}: {type(exc).__name__}: {exc}. "
            f"Run once with network access (unset HF_HUB_OFFLINE) to cache it at {cached}, or pass a local "
            "medhard jsonl of training problems (--set problems=PATH)."
        ) from exc
    problems = problems_from_hf_rows(ds)
    if verify_canonical:
        problems = _keep_passing(problems, workers)
        if not problems:
            raise RuntimeError(f"no {HF_DATASET} ({split}) canonical solution passed the oracle; is the sandbox working "
                               "(python -m vgrout env check)?")
        if cache:
            write_problems_jsonl(problems, cached)
    return problems


def load_problem_source(source: str, workers: int = 2) -> list[Problem]:
    """Problems of a named LeetCode source (`leetcode-train`, `leetcode-test`, `leetcode`) or a
    medhard jsonl path. A path always overrides the download."""
    if source == TRAIN_SOURCE:
        return load_hf_leetcode("train", verify_canonical=True, workers=workers)
    if source in (TEST_SOURCE, "leetcode"):
        path = os.environ.get("VGROUT_LEETCODE_JSONL", "")
        if not path:
            raise ValueError(f"{source!r} reads $VGROUT_LEETCODE_JSONL (the LeetCode test split, medhard jsonl); "
                             "set it, or pass the file's path instead")
        return load_medhard_jsonl(path)
    if not Path(source).is_file():
        raise FileNotFoundError(f"problem source {source!r}: not {TRAIN_SOURCE}, {TEST_SOURCE} or an existing "
                                "medhard .jsonl file")
    return load_medhard_jsonl(source)


def check_disjoint(train: Sequence[Problem], held_out: Sequence[Problem], train_source: str,
                   eval_source: str) -> None:
    """Raise if a run would evaluate on problems it trains on, naming the shared ids and the fix."""
    shared = sorted({p.id for p in train} & {p.id for p in held_out}, key=lambda x: (len(x), x))
    if shared:
        shown = ", ".join(shared[:20]) + (f", ... ({len(shared)} in all)" if len(shared) > 20 else "")
        raise ValueError(
            f"training problems ({train_source!r}) and evaluation problems ({eval_source!r}) share "
            f"{len(shared)} id(s): {shown}. Train and evaluate on disjoint problems: e.g. "
            f"problems={TRAIN_SOURCE} (the {HF_DATASET} train split) or a jsonl of train rows, with "
            f"eval.problems={TEST_SOURCE} ($VGROUT_LEETCODE_JSONL) or another held-out jsonl."
        )


def _keep_passing(problems: list[Problem], workers: int) -> list[Problem]:
    from vgrout.env.grader import Grader
    from vgrout.types import GradeRequest

    with Grader(workers=workers) as grader:
        reqs = [GradeRequest(p, f"```python\n{p.canonical_solution or ''}\n```", "gt_only") for p in problems]
        grades = grader.grade(reqs)
    return [p for p, g in zip(problems, grades) if g.gt_correct]
