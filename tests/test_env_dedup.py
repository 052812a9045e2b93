"""DedupGrader: duplicates are graded once and get the same Grade back, order kept, on the real sandboxed Grader;
a GradeStore shares the normal verdicts between graders (a study's runs) and nothing else."""

from __future__ import annotations

import pytest

from vgrout.env import Grader
from vgrout.env.dedup import DedupGrader, GradeStore
from vgrout.env.grader import grading_code_hash
from vgrout.types import GradeRequest, Problem

PROBLEM = Problem(id="double", statement="Return 2 * x.",
                  starter_code="class Solution:\n    def f(self, x: int) -> int:\n", entry_point="Solution().f",
                  setup_code="", tests=("assert Solution().f(2) == 4", "assert Solution().f(5) == 10"))
GOOD = "```python\nclass Solution:\n    def f(self, x: int) -> int:\n        return 2 * x\n```"
BAD = "```python\nclass Solution:\n    def f(self, x: int) -> int:\n        return x\n```"


class Counting:
    def __init__(self, inner) -> None:
        self.inner, self.seen = inner, []
        self.fingerprint = getattr(inner, "fingerprint", None)

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


LOOP = "```python\nclass Solution:\n    def f(self, x: int) -> int:\n        while True:\n            pass\n```"


def test_a_store_shares_normal_verdicts_across_graders_and_processes_never_abnormal_ones(tmp_path):
    reqs = [GradeRequest(PROBLEM, c, "run_tests") for c in (GOOD, BAD, "no code")]
    loop = GradeRequest(PROBLEM, LOOP, "gt_only")
    path = tmp_path / "grades.sqlite"
    with Grader(sandbox="auto", workers=1, timeout_s=0.5) as g, GradeStore(path) as store:
        assert grading_code_hash() in g.fingerprint  # other grading code (vgrout.env, the Grade) reads nothing stored
        plain = g.grade(reqs + [loop])
        first = Counting(g)
        got = DedupGrader(first, memory=10, store=store).grade(reqs + [loop])
        assert got == plain and first.seen == [4] and plain[3].reason == "timeout"
        assert len(store) == 3  # the timeout is the machine's state, not the request's: not stored
    # another grader, another connection (a run in another worker process): the same settings read them
    with Grader(sandbox="auto", workers=1, timeout_s=0.5) as g, GradeStore(path) as store:
        second = Counting(g)
        dedup = DedupGrader(second, memory=10, store=store)
        again = dedup.grade(reqs + [loop])
        assert again == plain and second.seen == [1] and (dedup.graded, dedup.from_store) == (1, 3)
        dedup.grade(reqs)
        assert second.seen == [1] and dedup.from_store == 3  # remembered by the run now, not read again
    # other limits are another fingerprint: nothing of the first grader's is read
    with Grader(sandbox="auto", workers=1, timeout_s=2.0) as g, GradeStore(path) as store:
        other = Counting(g)
        assert DedupGrader(other, store=store).grade(reqs) == plain[:3] and other.seen == [3]
        assert len(store) == 6


def test_a_store_needs_a_grader_with_a_fingerprint_and_an_existing_directory(tmp_path):
    class Plain:
        def grade(self, requests):
            return []

    with GradeStore(tmp_path / "g.sqlite") as store, pytest.raises(TypeError, match="fingerprint"):
        DedupGrader(Plain(), store=store)
    with pytest.raises(FileNotFoundError, match="directory"):
        GradeStore(tmp_path / "missing" / "g.sqlite")
    (tmp_path / "notes.txt").write_text("not a database, " * 100)
    with pytest.raises(RuntimeError, match="grade store .*notes.txt"):
        GradeStore(tmp_path / "notes.txt")
