"""Grade each distinct request once per call: a wrapper any grader fits into.

Why: a small policy repeats itself. On the toy benchmark's batches (8 prompts x 8 samples,
T 16) only ~38% of (prompt, completion) pairs are distinct, and every duplicate costs a
sandbox run. Identical requests (same problem, completion text, mode and markers: a frozen
`GradeRequest` compares by value) get the same `Grade` object back, which is what a
deterministic grader returns anyway. The one difference: a completion whose verdict depends
on timing (the wall-clock kill) now gets one verdict for all its copies instead of one each.
The trainer grades every step through it (`vgrout.train.loop.grade_batch`); docs/results/performance-history.md ("Grading").
"""

from __future__ import annotations

from collections.abc import Sequence

from vgrout.types import Grade, GradeRequest


class DedupGrader:
    """`grade(requests)` runs the wrapped grader on the distinct requests only, in first-seen order."""

    def __init__(self, grader) -> None:
        if not callable(getattr(grader, "grade", None)):
            raise TypeError(f"DedupGrader wraps a grader with .grade(requests), got {type(grader).__name__}")
        self.grader = grader
        self.requests = 0  # requests seen, over all calls
        self.graded = 0  # requests actually passed to the wrapped grader

    def grade(self, requests: Sequence[GradeRequest]) -> list[Grade]:
        slot: dict[GradeRequest, int] = {}
        distinct: list[GradeRequest] = []
        for r in requests:
            if r not in slot:
                slot[r] = len(distinct)
                distinct.append(r)
        grades = self.grader.grade(distinct)
        if len(grades) != len(distinct):
            raise RuntimeError(f"the wrapped grader returned {len(grades)} grades for {len(distinct)} requests")
        self.requests += len(requests)
        self.graded += len(distinct)
        return [grades[slot[r]] for r in requests]

    def __enter__(self) -> "DedupGrader":
        return self

    def __exit__(self, *exc) -> None:
        close = getattr(self.grader, "close", None)
        if close is not None:
            close()
