"""Problems, their mode partition, and the step's prompts: a pure function of (seed, step).

Prompt order is a fresh seeded permutation of the problems each epoch, so a resumed run
draws exactly the prompts the uninterrupted run would, with no RNG state to carry.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from vgrout.env.modes import SYSTEM_PROMPT, render_messages
from vgrout.types import Problem


@dataclass(frozen=True)
class PromptSpec:
    """One prompt group of a step: the problem, the grading mode, and the rendered chat messages."""

    problem: Problem
    mode: str  # the mode it is graded under (gt_only for the unhackable share)
    messages: tuple[dict, ...]
    hackable: bool  # False: shown hint-free and graded gt_only


def seed_for(*parts: object) -> int:
    """A 63-bit seed from any parts (stable across processes, unlike hash())."""
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big") >> 1


def load_problems(source: str, toy_world_name: str | None, n_problems: int, seed: int,
                  difficulties: tuple[str, ...] = ()) -> list[Problem]:
    """`toy` (the toy world's train split), a LeetCode source (`vgrout.env.problems.load_problem_source`:
    leetcode-train, leetcode-test) or a jsonl path; only the given difficulty labels (empty: all);
    seeded shuffle, then the first n_problems (0: all)."""
    if source == "toy":
        if toy_world_name is None:
            raise ValueError("problems='toy' needs a toy model (model='toy:NAME'); set problems to a jsonl path instead")
        from vgrout.toy import toy_world

        problems = toy_world(toy_world_name, progress=False).problems("train")
    else:  # leetcode-train (HF, cached), leetcode-test / leetcode ($VGROUT_LEETCODE_JSONL) or a jsonl path
        from vgrout.env.problems import load_problem_source

        problems = load_problem_source(source)
    if not problems:
        raise ValueError(f"no training problems found in {source!r}")
    if difficulties:
        have = sorted({p.difficulty for p in problems})
        problems = [p for p in problems if p.difficulty in difficulties]
        if not problems:
            raise ValueError(f"no training problems in {source!r} have difficulty {', '.join(difficulties)} "
                             f"(it has: {', '.join(have)}); set difficulties to some of those, or empty for all")
    problems = sorted(problems, key=lambda p: p.id)
    random.Random(seed_for("problems", seed)).shuffle(problems)
    return problems[:n_problems] if n_problems else problems


def partition_modes(problems: list[Problem], modes: tuple[str, ...], seed: int) -> dict[str, str]:
    """Problem id -> mode: round-robin over a seeded order, so each mode gets an equal share."""
    order = list(range(len(problems)))
    random.Random(seed_for("modes", seed)).shuffle(order)
    return {problems[i].id: modes[k % len(modes)] for k, i in enumerate(order)}


def unhackable_slots(step: int, prompts_per_step: int, frac: float) -> set[int]:
    """Slots shown hint-free this step: round(P * frac) of them, rotating with the step."""
    k = round(prompts_per_step * frac)
    return {(step * k + i) % prompts_per_step for i in range(k)}


def sample_prompts(problems: list[Problem], mode_of: dict[str, str], step: int, prompts_per_step: int, seed: int,
                   unhackable_frac: float, system_prompt: str) -> list[PromptSpec]:
    """The P prompts of `step`."""
    n = len(problems)
    out = []
    hint_free = unhackable_slots(step, prompts_per_step, unhackable_frac)
    for j in range(prompts_per_step):
        idx = step * prompts_per_step + j
        epoch = idx // n
        perm = list(range(n))
        random.Random(seed_for("order", seed, epoch)).shuffle(perm)
        p = problems[perm[idx % n]]
        mode = "gt_only" if j in hint_free else mode_of[p.id]
        msgs = render_messages(p, mode, system_prompt=system_prompt or SYSTEM_PROMPT)
        out.append(PromptSpec(problem=p, mode=mode, messages=tuple(msgs), hackable=mode != "gt_only"))
    return out
