"""Held-out problems and their modes: the one loader training's eval hook and `vgrout eval` share.

The order is fixed (sorted ids, then a fixed shuffle) and the modes round-robin over it, so
every arm, seed and checkpoint is evaluated on the same first `n_problems` under the same modes.
Training problems (seeded per run) are loaded by `vgrout.train.data.load_problems`.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from pathlib import Path

from vgrout.types import Problem, check_mode

TOY_SPLITS: tuple[str, ...] = ("heldout", "generalisation")


def heldout_problems(source: str, toy_name: str | None, n_problems: int) -> list[Problem]:
    """The eval problems: a toy split ("heldout" | "generalisation"), a LeetCode source
    (leetcode-test: $VGROUT_LEETCODE_JSONL) or a LeetCode-format jsonl,
    in a fixed order (sorted ids, then a fixed shuffle) so every arm and seed sees the same
    first `n_problems` (0: all)."""
    if source in TOY_SPLITS:
        if toy_name is None:
            raise ValueError(f"--problems {source} is a toy split but this run's model is not a toy model; "
                             "pass --problems PATH to a LeetCode-format jsonl of held-out problems")
        from vgrout.toy.world import toy_world

        problems = toy_world(toy_name, progress=False).problems(source)
    else:  # leetcode-test ($VGROUT_LEETCODE_JSONL), leetcode-train or a jsonl path
        from vgrout.env.problems import load_problem_source

        problems = load_problem_source(source)
    if not problems:
        raise ValueError(f"no eval problems in {source!r}")
    problems = sorted(problems, key=lambda p: p.id)
    random.Random(int(hashlib.sha256(b"vgrout-eval-problems").hexdigest(), 16)).shuffle(problems)
    if n_problems < 0:
        raise ValueError(f"n_problems must be >= 0 (0: all), got {n_problems}")
    return problems[:n_problems] if n_problems else problems


def heldout_modes(problems: Sequence[Problem], modes: Sequence[str]) -> dict[str, str]:
    """Round-robin over the sorted distinct `modes` in problem order: a fixed, balanced
    {problem id: mode}. gt_only is dropped when loophole modes are present (a run trained
    on loopholes is evaluated on loopholes; gt_only alone is a ceiling run)."""
    distinct = sorted({check_mode(m) for m in modes})
    if not distinct:
        raise ValueError("heldout_modes needs at least one mode")
    if len(distinct) > 1 and "gt_only" in distinct:
        distinct.remove("gt_only")
    return {p.id: distinct[i % len(distinct)] for i, p in enumerate(problems)}


__all__ = ["TOY_SPLITS", "heldout_modes", "heldout_problems"]
