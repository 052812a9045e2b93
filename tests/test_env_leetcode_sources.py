"""LeetCode problem sources: the HF train split's mapping, verification and cache, the test split,
the statement unwrapping, and the train/eval overlap check. No network: HF rows are built here
in the dataset's schema; the download itself is stood in by a fake `datasets` module whose
`load_dataset` returns them (the mapping, the sandbox check and the cache are the real code)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import pytest

from vgrout.env import NEUTRAL_PHRASE, render_messages
from vgrout.env.problems import (
    check_disjoint, expected_literal, hf_cache_path, load_hf_leetcode, load_medhard_jsonl, load_problem_source,
    problems_from_hf_rows, statement_of, write_problems_jsonl,
)

SETUP = "from typing import *\n"


def hf_row(qid: int, difficulty: str, fn: str, body: str, ios: list[tuple[str, str]]) -> dict:
    """One row in newfacade/LeetCodeDataset's schema (the fields the loader reads, plus a few it ignores)."""
    return {
        "task_id": f"task-{qid}", "question_id": qid, "difficulty": difficulty, "tags": ["Array"],
        "problem_description": f"Problem {qid}: compute {fn}.", "estimated_date": "2024-01-01",
        "starter_code": f"class Solution:\n    def {fn}(self, x):\n        ",
        "prompt": SETUP, "completion": f"class Solution:\n    def {fn}(self, x):\n        {body}\n",
        "entry_point": f"Solution().{fn}", "test": "def check(candidate): ...",
        "input_output": [{"input": i, "output": o} for i, o in ios], "query": "...", "response": "...",
    }


ROWS = [
    hf_row(7, "Easy", "double", "return 2 * x", [("x = 1", "2")]),  # easy: dropped
    hf_row(11, "Medium", "double", "return 2 * x", [("x = 3", "6"), ("x = 0", "0")]),
    hf_row(12, "Hard", "shout", "return x.upper()", [("x = \"ab\"", "AB"), ("x = \"c\"", "\"C\"")]),  # bare string output
    hf_row(13, "Medium", "wrong", "return x + 1", [("x = 1", "3")]),  # canonical fails the oracle: dropped
]


def test_hf_rows_map_to_problems():
    ps = problems_from_hf_rows(ROWS)
    assert [p.id for p in ps] == ["11", "12", "13"]  # medium + hard only
    p = ps[0]
    assert p.entry_point == "Solution().double" and p.setup_code == SETUP and p.difficulty == "medium"
    assert p.tests == ("assert Solution().double(x = 3) == 6", "assert Solution().double(x = 0) == 0")
    assert p.statement == "Problem 11: compute double." and p.canonical_solution.startswith("class Solution")
    assert ps[1].tests == ("assert Solution().shout(x = \"ab\") == 'AB'", "assert Solution().shout(x = \"c\") == \"C\"")
    with pytest.raises(ValueError, match="row 0"):
        problems_from_hf_rows([{"difficulty": "Hard", "entry_point": "f"}])


def test_expected_literal_quotes_only_bare_strings():
    assert expected_literal("[0, 1]") == "[0, 1]"
    assert expected_literal("'x'") == "'x'"
    assert expected_literal("abc") == "'abc'"
    assert expected_literal("-2.5") == "-2.5"


def fake_datasets(monkeypatch, rows=None, error: Exception | None = None) -> list:
    calls = []

    def load_dataset(name, split):
        calls.append((name, split))
        if error is not None:
            raise error
        return list(rows)

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    return calls


def test_hf_train_split_verified_in_the_sandbox_then_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("VGROUT_CACHE", str(tmp_path))
    calls = fake_datasets(monkeypatch, ROWS)
    first = load_hf_leetcode("train", workers=1)
    assert calls == [("newfacade/LeetCodeDataset", "train")]
    assert [p.id for p in first] == ["11", "12"]  # 13's canonical solution fails its own test
    assert hf_cache_path("train").is_file() and str(hf_cache_path("train")).startswith(str(tmp_path))
    monkeypatch.setitem(sys.modules, "datasets", None)  # no datasets package, no network: the cache answers
    again = load_problem_source("leetcode-train")
    assert again == first


def test_hf_offline_error_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("VGROUT_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fake_datasets(monkeypatch, error=ConnectionError("no route to host"))
    with pytest.raises(RuntimeError, match="HF_HUB_OFFLINE=1 is set.*problems=PATH"):
        load_hf_leetcode("train")
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(RuntimeError, match="pip install datasets"):
        load_problem_source("leetcode-train")
    assert not hf_cache_path("train").exists()


def test_real_datasets_package_offline_fails_clearly(tmp_path):
    """The installed `datasets`, offline with an empty HF cache: the same clear error, no hang."""
    code = "from vgrout.env.problems import load_problem_source\nload_problem_source('leetcode-train')"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
               VGROUT_CACHE=str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "could not load newfacade/LeetCodeDataset (train)" in r.stderr and "--set problems=PATH" in r.stderr


def test_local_jsonl_and_test_split_sources(monkeypatch, tmp_path):
    ps = problems_from_hf_rows(ROWS[1:3])
    path = write_problems_jsonl(ps, tmp_path / "train.jsonl")
    assert load_problem_source(str(path)) == ps  # a path overrides the download, round-trips exactly
    monkeypatch.delenv("VGROUT_LEETCODE_JSONL", raising=False)
    with pytest.raises(ValueError, match=r"\$VGROUT_LEETCODE_JSONL"):
        load_problem_source("leetcode-test")
    monkeypatch.setenv("VGROUT_LEETCODE_JSONL", str(path))
    assert load_problem_source("leetcode-test") == ps
    with pytest.raises(FileNotFoundError, match="leetcode-train, leetcode-test or an existing"):
        load_problem_source(str(tmp_path / "missing.jsonl"))


def test_overlap_check_names_ids_and_what_to_pass():
    a, b, c = problems_from_hf_rows(ROWS[1:4])
    check_disjoint([a], [b, c], "train.jsonl", "leetcode-test")
    with pytest.raises(ValueError) as err:
        check_disjoint([a, b], [b, c], "leetcode", "leetcode-test")
    msg = str(err.value)
    assert "share 1 id(s): 12." in msg and "problems=leetcode-train" in msg and "eval_problems=leetcode-test" in msg


def test_medhard_statement_is_unwrapped_so_the_hint_appears_once(tmp_path):
    wrapped = ("PROBLEM:\nAdd two numbers.\n\nYour solution to the problem should be a method of the class Solution "
               f"called add {NEUTRAL_PHRASE}. Use the following starter code:\n```python\nclass Solution:\n```\n\n"
               "SOLUTION:\n")
    assert statement_of(wrapped, "row") == "Add two numbers."
    assert statement_of("Plain statement.", "row") == "Plain statement."
    with pytest.raises(ValueError, match="still contains"):
        statement_of(f"x {NEUTRAL_PHRASE} y", "row")


@pytest.mark.skipif(not os.environ.get("VGROUT_LEETCODE_JSONL"), reason="VGROUT_LEETCODE_JSONL not set")
def test_real_medhard_rows_render_like_the_reference_prompt():
    path = os.environ["VGROUT_LEETCODE_JSONL"]
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    problems = load_medhard_jsonl(path)
    for row, p in zip(rows, problems):
        user = render_messages(p, "gt_only")[1]["content"]
        assert user.count("PROBLEM:") == 1 and user.count(NEUTRAL_PHRASE) == 1, p.id
        hinted = render_messages(p, "run_tests")[1]["content"]
        assert NEUTRAL_PHRASE not in hinted, p.id
        # the reference's own rendered user turn, up to its starter code (which it shows with a comment line)
        ref = next(m["content"] for m in row["prompt"] if m["role"] == "user")
        cut = ref.index("```python")
        assert user[:cut] == ref[:cut], p.id
