"""Unit and bad-input tests for vgrout.env: extraction, oracle parsing, loaders, grader inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from vgrout.env import LEETCODE_SETUP, Grader, RewardConfig, extract_code, load_hf_leetcode, load_medhard_jsonl
from vgrout.env import oracle
from vgrout.types import GradeRequest, Problem

P = Problem(
    id="u-double", statement="Return 2*n.", starter_code="", entry_point="Solution().solve",
    setup_code=LEETCODE_SETUP, tests=("assert Solution().solve(3) == 6", "assert Solution().solve(1) == 2"),
)
CLEAN = "```python\nclass Solution:\n    def solve(self, n):\n        return 2 * n\n```"


@pytest.fixture(scope="module")
def grader():
    with Grader(workers=1, timeout_s=5.0) as g:
        yield g


def test_extract_code_blocks():
    assert extract_code("x\n```python\na = 1\n```\ntext\n```\nb = 2\n```") == "a = 1\n\nb = 2"
    assert extract_code("```Python\nunclosed = 1\n") == "unclosed = 1"
    assert extract_code("```py\nskipped = 1\n```") is None
    assert extract_code("no code at all") is None
    assert extract_code("") is None
    with pytest.raises(TypeError):
        extract_code(b"```python\nx\n```")  # type: ignore[arg-type]


def test_parse_tests_shapes():
    calls, lit = zip(*[oracle.parse_test(t) for t in (
        "assert Solution().f(1) == [1, (2, 3)]",
        "assert Solution().f(x = 2) == -inf",
        "assert is_same_tree(Solution().g([1]), tree_node([1, None, 2]))",
        "assert Solution().h() is None",
    )])
    assert calls[0] == "Solution().f(1)" and lit[0] == (True, [1, (2, 3)])
    assert lit[1] == (True, float("-inf"))
    assert lit[2] == (False, "tree_node([1, None, 2])")
    assert lit[3] == (True, None)
    for bad in ("assert f(1) > 2", "x = 1", "assert f(", "assert f(1) == 2\nassert g() == 1", "assert f() is 3"):
        with pytest.raises(oracle.UnparseableTest):
            oracle.parse_test(bad)


def test_decode_is_strict():
    assert oracle.decode({"t": [1, {"s": [2]}]}) == (1, {2})
    assert oracle.decode({"d": [[{"t": [1, 2]}, "x"]]}) == {(1, 2): "x"}
    assert oracle.decode({"ln": [1, 2]}) == oracle.Node("list", (1, 2))
    for bad in ({"x": 1}, {"s": [[1]]}, {"d": [[[1], 2]]}, {"f": "1.0"}, {"t": 1, "s": 2}):
        with pytest.raises(oracle.BadResult):
            oracle.decode(bad)
    assert oracle.equal([1, 2], [1, 2]) and not oracle.equal([1, 2], (1, 2)) and oracle.equal(2, 2.0)


def _write(tmp_path, rows: list) -> str:
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"\n".join(r if isinstance(r, bytes) else json.dumps(r).encode() for r in rows))
    return str(path)


ROW = {"id": 1, "question": "q", "gt_answer": ["assert Solution().f(1) == 1"], "func_name": "Solution().f",
       "setup_code": "", "prompt_metadata": {"starter_code": "class Solution:\n"}, "canonical_solution": "x",
       "difficulty": "hard"}


def test_load_medhard_ok_and_bad_rows(tmp_path):
    (p,) = load_medhard_jsonl(_write(tmp_path, [ROW]))
    assert (p.id, p.entry_point, p.difficulty, p.tests) == ("1", "Solution().f", "hard", tuple(ROW["gt_answer"]))
    with pytest.raises(ValueError, match=r"p.jsonl:2: malformed JSON"):
        load_medhard_jsonl(_write(tmp_path, [ROW, b"{not json"]))
    with pytest.raises(ValueError, match="missing field.*gt_answer"):
        load_medhard_jsonl(_write(tmp_path, [{k: v for k, v in ROW.items() if k != "gt_answer"}]))
    with pytest.raises(ValueError, match="not UTF-8"):
        load_medhard_jsonl(_write(tmp_path, [b'{"id": "\xff\xfe"}']))
    with pytest.raises(ValueError, match="gt_answer must be"):
        load_medhard_jsonl(_write(tmp_path, [dict(ROW, gt_answer=[])]))
    with pytest.raises(ValueError, match="duplicate"):
        load_medhard_jsonl(_write(tmp_path, [ROW, ROW]))
    with pytest.raises(FileNotFoundError):
        load_medhard_jsonl(tmp_path / "missing.jsonl")


def test_hf_loader_fails_clearly_offline():
    code = "from vgrout.env import load_hf_leetcode\nload_hf_leetcode('test')"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME="/nonexistent-vgrout-hf")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "RuntimeError: could not load newfacade/LeetCodeDataset" in r.stderr and "HF_HUB_OFFLINE" in r.stderr
    with pytest.raises(ValueError, match="split"):
        load_hf_leetcode("validation")


def test_env_package_does_not_import_torch():
    code = ("import sys, vgrout.env, vgrout.env.cli\nfrom vgrout.env import Grader\n"
            "assert 'torch' not in sys.modules, 'torch imported'\nprint('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_bad_requests_raise_clearly(grader):
    with pytest.raises(ValueError, match="unknown mode 'cheat'"):
        grader.grade([GradeRequest(P, CLEAN, "cheat")])
    with pytest.raises(ValueError, match="markers"):
        grader.grade([GradeRequest(P, CLEAN, "gt_only", markers="test")])
    with pytest.raises(TypeError):
        grader.grade([{"problem": P, "completion": CLEAN, "mode": "gt_only"}])
    with pytest.raises(TypeError):
        grader.grade([GradeRequest(P, None, "gt_only")])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not an eval-time"):
        grader.grade([GradeRequest(P, CLEAN, "run_tests", markers="eval", eval_marker="run_tests")])
    with pytest.raises(ValueError, match="sandbox"):
        Grader(sandbox="docker")


def test_bad_completions_fail_with_reason(grader):
    cases = {
        "": "no_code",
        "just prose": "no_code",
        "```python\ndef f(:\n```": "syntax_error",
        "```python\nx = '\udcff'\nclass Solution:\n    def solve(self, n):\n        return 2 * n\n```": "syntax_error",  # lone surrogate
        "```python\nx = 1\x00\n```": "syntax_error",
        "```python\n" + "x = 1\n" * 20000 + "```": "too_long",
        "```python\nclass Solution:\n    pass\n```": "runtime_error",
        "```python\nraise ValueError('boom')\n```": "exec_error",
    }
    grades = grader.grade([GradeRequest(P, c, "gt_only") for c in cases])
    for (c, reason), g in zip(cases.items(), grades):
        assert g.reason == reason, (c[:40], g)
        assert g.gt_correct is (reason == "ok")
    assert [g.reward for g in grades[:3]] == [0.0, 0.0, 0.0]


def test_unparseable_problem_fails_closed(grader):
    bad = Problem(id="u-bad", statement="", starter_code="", entry_point="Solution().solve", setup_code="",
                  tests=("assert Solution().solve(3) > 5",))
    (g,) = grader.grade([GradeRequest(bad, CLEAN, "gt_only")])
    assert (g.gt_correct, g.reward, g.reason) == (False, 0.0, "unparseable_test")


def test_reward_config_and_empty_batch():
    with Grader(workers=1, reward=RewardConfig(format_reward=0.25, correct_reward=1.0)) as g:
        assert g.grade([]) == []
        (x,) = g.grade([GradeRequest(P, CLEAN, "gt_only")])
    assert x.reward == 1.25


def test_broken_expected_expression_fails_closed(grader):
    p = Problem(id="u-exp", statement="", starter_code="", entry_point="Solution().solve", setup_code="",
                tests=("assert Solution().solve(3) == undefined_helper(6)",))
    (g,) = grader.grade([GradeRequest(p, CLEAN, "gt_only")])
    assert (g.gt_correct, g.reason) == (False, "bad_expected")


def test_process_sandbox_also_grades():
    with Grader(sandbox="process", workers=1) as g:
        (x,) = g.grade([GradeRequest(P, CLEAN, "gt_only")])
    assert x.gt_correct and g.sandbox == "process"
