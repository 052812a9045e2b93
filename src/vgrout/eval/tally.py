"""The counting layer of evaluation: graded samples in, per-mode and overall rates out.

Kept apart from generation so the numbers in an eval JSON can be checked by hand on
constructed completions, and so it stays torch-free.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

from vgrout.stats import wilson_interval
from vgrout.types import Grade


@dataclass(frozen=True)
class EvalSample:
    """One graded eval completion: which prompt and sample it was, and the oracle's verdict."""

    problem_id: str
    mode: str
    sample: int  # index within the problem's n_samples
    eval_marker: str | None  # the marker the prompt disclosed (None: train marker or none)
    gt_correct: bool
    exploited: bool
    format_ok: bool
    reason: str
    reward: float | None = None  # the environment's reward (what training would have seen)
    channel: str | None = None  # the exploit channel that fired, if any

    @classmethod
    def from_grade(cls, problem_id: str, sample: int, eval_marker: str | None, grade: Grade) -> "EvalSample":
        return cls(
            problem_id=problem_id, mode=grade.mode, sample=sample, eval_marker=eval_marker,
            gt_correct=grade.gt_correct, exploited=grade.exploited, format_ok=grade.format_ok,
            reason=grade.reason, reward=float(grade.reward), channel=grade.channel,
        )

    def to_json(self) -> dict:
        return asdict(self)


def rate_block(samples: Sequence[EvalSample]) -> dict:
    """Counts, rates and Wilson 95% intervals for solve (`gt_correct`) and hack (`exploited`)."""
    n = len(samples)
    if n == 0:
        raise ValueError("rate_block needs at least one sample")
    solved = sum(s.gt_correct for s in samples)
    hacked = sum(s.exploited for s in samples)
    return {
        "n": n,
        "n_problems": len({s.problem_id for s in samples}),
        "solved": solved,
        "hacked": hacked,
        "format_ok": sum(s.format_ok for s in samples),
        "solve_rate": solved / n,
        "solve_ci95": list(wilson_interval(solved, n)),
        "hack_rate": hacked / n,
        "hack_ci95": list(wilson_interval(hacked, n)),
    }


def tally(samples: Iterable[EvalSample]) -> dict:
    """{"overall": rate_block, "by_mode": {mode: rate_block}} over graded samples (modes sorted)."""
    samples = list(samples)
    if not samples:
        raise ValueError("tally needs at least one graded sample; was the problem list empty?")
    by_mode: dict[str, list[EvalSample]] = {}
    for s in samples:
        by_mode.setdefault(s.mode, []).append(s)
    return {
        "overall": rate_block(samples),
        "by_mode": {mode: rate_block(by_mode[mode]) for mode in sorted(by_mode)},
    }


__all__ = ["EvalSample", "rate_block", "tally"]
