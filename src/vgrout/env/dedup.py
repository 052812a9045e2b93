"""Grade each distinct request once: per call, and (with `memory`) across the calls of a run.

Why: a small policy repeats itself. On the toy benchmark's batches (8 prompts x 8 samples,
T 16) only ~38% of (prompt, completion) pairs are distinct, and every duplicate costs a
sandbox run; from one step to the next it writes the same solution or the same exploit for a
problem it has seen. Identical requests (same problem, completion text, mode and markers: a
frozen `GradeRequest` compares by value) get the same `Grade` object back, which is what a
deterministic grader returns anyway. The one difference: a completion whose verdict depends
on timing (the wall-clock kill) gets one verdict for all its copies instead of one each.
The trainer grades every step through one remembering instance per run
(`vgrout.train.loop.train`); docs/results/performance-history.md ("Grading").
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from vgrout.types import Grade, GradeRequest


class DedupGrader:
    """`grade(requests)` runs the wrapped grader on the requests it has not graded yet, in
    first-seen order. `memory`: distinct requests remembered across calls, the oldest forgotten
    first (0: each call on its own)."""

    def __init__(self, grader, memory: int = 0) -> None:
        if not callable(getattr(grader, "grade", None)):
            raise TypeError(f"DedupGrader wraps a grader with .grade(requests), got {type(grader).__name__}")
        if memory < 0:
            raise ValueError(f"DedupGrader memory={memory} must be >= 0")
        self.grader = grader
        self.memory = memory
        self.remembered: OrderedDict[GradeRequest, Grade] = OrderedDict()
        self.requests = 0  # requests seen, over all calls
        self.graded = 0  # requests actually passed to the wrapped grader

    def grade(self, requests: Sequence[GradeRequest]) -> list[Grade]:
        known = {r: self.remembered[r] for r in requests if r in self.remembered}  # read before any is forgotten
        distinct = list(dict.fromkeys(r for r in requests if r not in known))
        grades = self.grader.grade(distinct) if distinct else []
        if len(grades) != len(distinct):
            raise RuntimeError(f"the wrapped grader returned {len(grades)} grades for {len(distinct)} requests")
        known.update(zip(distinct, grades))
        if self.memory:
            self.remembered.update(zip(distinct, grades))
            while len(self.remembered) > self.memory:
                self.remembered.popitem(last=False)
        self.requests += len(requests)
        self.graded += len(distinct)
        return [known[r] for r in requests]

    def __enter__(self) -> "DedupGrader":
        return self

    def __exit__(self, *exc) -> None:
        close = getattr(self.grader, "close", None)
        if close is not None:
            close()
