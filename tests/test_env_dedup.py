"""DedupGrader: duplicates are graded once and get the same Grade back, order kept, on the real sandboxed Grader."""

from __future__ import annotations

import pytest

from vgrout.env import Grader
from vgrout.env.dedup import DedupGrader
from vgrout.types import GradeRequest, Problem

PROBLEM = Problem(id="double", statement="Return 2 * x.",
                  starter_code="class Solution:\n    def f(self, x: int) -> int:\n", entry_point="Solution().f",
                  setup_code="", tests=("assert Solution().f(2) == 4", "assert Solution().f(5) == 10"))
GOOD = "```python\nclass Solution:\n    def f(self, x: int) -> int:\n        return 2 * x\n```"
BAD = "```python\nclass Solution:\n    def f(self, x: int) -> int:\n        return x\n```"


class Counting:
    def __init__(self, inner) -> None:
        self.inner, self.seen = inner, []

    def grade(self, requests):
        self.seen.append(len(requests))
        return self.inner.grade(requests)


def test_duplicates_are_graded_once_with_the_plain_graders_verdicts():
    reqs = [GradeRequest(PROBLEM, c, "gt_only") for c in (GOOD, BAD, GOOD, GOOD, "no code", BAD)]
    with Grader(sandbox="auto", workers=1) as g:
        plain = g.grade(reqs)
        counting = Counting(g)
        dedup = DedupGrader(counting)
        got = dedup.grade(reqs)
    assert counting.seen == [3] and (dedup.requests, dedup.graded) == (6, 3)
    assert got == plain  # same verdicts, same order
    assert [x.gt_correct for x in got] == [True, False, True, True, False, False]
    assert got[0] is got[2] is got[3]
    with Grader(sandbox="auto", workers=1) as g:
        two_modes = DedupGrader(g)
        two_modes.grade([GradeRequest(PROBLEM, GOOD, "gt_only"), GradeRequest(PROBLEM, GOOD, "run_tests")])
    assert two_modes.graded == 2  # a different mode is a different request


def test_wrapping_something_that_cannot_grade_fails_loudly():
    with pytest.raises(TypeError, match="grade"):
        DedupGrader(object())


def test_memory_grades_a_request_once_per_run_and_forgets_the_oldest_first():
    good, bad = GradeRequest(PROBLEM, GOOD, "gt_only"), GradeRequest(PROBLEM, BAD, "gt_only")
    with Grader(sandbox="auto", workers=1) as g:
        counting = Counting(g)
        run = DedupGrader(counting, memory=1)
        first = run.grade([good, good])
        again = run.grade([good, bad])  # good remembered; bad is new and pushes good out (memory 1)
        last = run.grade([good])
    assert counting.seen == [1, 1, 1] and (run.requests, run.graded) == (5, 3)
    assert again[0] is first[0] and [x.gt_correct for x in again] == [True, False]
    assert last[0] == first[0] and last[0] is not first[0]  # graded anew once forgotten, the same verdict
    with pytest.raises(ValueError, match="memory"):
        DedupGrader(counting, memory=-1)
