"""The vgrout environment as a TRL reward function.

TRL's `GRPOTrainer` calls each reward function as

    reward_func(prompts=..., completions=..., completion_ids=..., trainer_state=...,
                log_extra=..., log_metric=..., **dataset_columns) -> list[float | None]

with one entry per completion (N = P·G) and every extra dataset column repeated per
completion. `GraderReward` answers that call by grading each completion through the
sandboxed `vgrout.env.Grader` and returns `Grade.reward` only. The oracle's labels
(`gt_correct`, `exploited`, `channel`) never go back to TRL: they reach an optional sink,
so the oracle-free invariant of `vgrout.train` holds for TRL users too.

The dataset must carry a `problem_id` column (the id of a `Problem` the reward function
was built with) and either a `mode` column or a `default_mode`. `prompt_rows` builds
such rows with the same chat messages vgrout's own trainer renders.

This module imports no torch and no trl: it is usable from any trainer with TRL's
reward-function signature.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from vgrout.env.modes import SYSTEM_PROMPT, render_messages
from vgrout.types import Grade, GradeRequest, Problem, check_mode

# Called once per reward call with the requests graded and their grades (same order).
GradeSink = Callable[[Sequence[GradeRequest], Sequence[Grade]], None]

# Keyword arguments TRL passes that are not dataset columns; accepted and ignored.
_TRL_EXTRA_KWARGS = ("completion_ids", "trainer_state", "log_extra", "log_metric", "environments")


class GraderLike(Protocol):
    """What `GraderReward` needs from `vgrout.env.Grader`."""

    def grade(self, requests: Sequence[GradeRequest]) -> list[Grade]: ...


def completion_text(completion: Any) -> str:
    """The raw text of one TRL completion.

    Plain-text datasets give a `str`; conversational ones give a list of messages
    (`[{"role": "assistant", "content": ...}]`), whose assistant contents are joined.
    Content given as a list of parts (`{"type": "text", "text": ...}`) is flattened.
    """
    if isinstance(completion, str):
        return completion
    if not isinstance(completion, (list, tuple)):
        raise TypeError(
            f"completion must be a str or a list of chat messages, got {type(completion).__name__}"
        )
    parts: list[str] = []
    for message in completion:
        if not isinstance(message, Mapping) or "role" not in message:
            raise TypeError(f"conversational completion must hold {{'role', 'content'}} dicts, got {message!r}")
        if message["role"] != "assistant":
            continue
        parts.append(_content_text(message.get("content")))
    if not parts:
        raise ValueError(f"conversational completion has no assistant message: {completion!r}")
    return "".join(parts)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):  # multimodal-style parts
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    raise TypeError(f"message content must be a str or a list of parts, got {type(content).__name__}")


class GraderReward:
    """A TRL reward function that grades through a vgrout `Grader` and returns rewards only.

    The caller owns the grader's lifetime (`with Grader(...) as g: reward = GraderReward(g, problems)`).
    `sink`, if given, receives every (requests, grades) batch: that is where oracle labels
    go (e.g. `JsonlGradeSink`). `__name__` is what TRL logs the reward under
    (`rewards/<name>/mean`).
    """

    def __init__(
        self,
        grader: GraderLike,
        problems: Iterable[Problem] | Mapping[str, Problem],
        *,
        default_mode: str | None = None,
        markers: str = "train",
        sink: GradeSink | None = None,
        name: str = "vgrout_reward",
    ) -> None:
        if isinstance(problems, Mapping):
            self.problems: dict[str, Problem] = dict(problems)
        else:
            self.problems = {}
            for p in problems:
                if p.id in self.problems:
                    raise ValueError(f"duplicate problem id {p.id!r}: problem ids must be unique")
                self.problems[p.id] = p
        if not self.problems:
            raise ValueError("GraderReward needs at least one Problem to look problem_id up in")
        if default_mode is not None:
            check_mode(default_mode)
        if markers not in ("train", "eval"):
            raise ValueError(f"markers must be 'train' or 'eval', got {markers!r}")
        self.grader = grader
        self.default_mode = default_mode
        self.markers = markers
        self.sink = sink
        self.__name__ = name

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        problem_id: Sequence[str] | None = None,
        mode: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        """Rewards (N,) for N completions; `problem_id`/`mode` are dataset columns (length N)."""
        n = len(completions)
        if len(prompts) != n:
            raise ValueError(f"got {len(prompts)} prompts for {n} completions; TRL passes one prompt per completion")
        if problem_id is None:
            raise ValueError(
                "the dataset has no `problem_id` column; build rows with vgrout.interop.trl.prompt_rows "
                "or add the id of each row's Problem as `problem_id`"
            )
        modes = self._modes(mode, n)
        if len(problem_id) != n:
            raise ValueError(f"`problem_id` column has {len(problem_id)} entries for {n} completions; the dataset must give one value per completion (TRL repeats each row num_generations times)")
        requests = [
            GradeRequest(problem=self._problem(pid), completion=completion_text(c), mode=m, markers=self.markers)
            for pid, c, m in zip(problem_id, completions, modes)
        ]
        grades = self.grader.grade(requests)
        if len(grades) != n:
            raise RuntimeError(f"grader returned {len(grades)} grades for {n} requests")
        if self.sink is not None:
            self.sink(requests, grades)
        return [float(g.reward) for g in grades]

    def _modes(self, mode: Sequence[str] | None, n: int) -> list[str]:
        if mode is None:
            if self.default_mode is None:
                raise ValueError(
                    "no `mode` column in the dataset and no default_mode: pass GraderReward(..., default_mode=...)"
                    " or add a `mode` column"
                )
            return [self.default_mode] * n
        if len(mode) != n:
            raise ValueError(f"`mode` column has {len(mode)} entries for {n} completions; give one mode per completion or set default_mode")
        return [check_mode(m) for m in mode]

    def _problem(self, pid: str) -> Problem:
        try:
            return self.problems[pid]
        except KeyError:
            raise KeyError(
                f"problem_id {pid!r} is not among the {len(self.problems)} problems this reward was built with"
            ) from None


def prompt_rows(
    problems: Iterable[Problem], mode: str | Sequence[str], *, system_prompt: str = SYSTEM_PROMPT
) -> list[dict]:
    """Conversational TRL dataset rows: `{"prompt": messages, "problem_id", "mode"}`.

    `mode` is one mode for every problem or one per problem. The messages are the ones
    vgrout's own rollouts render (`vgrout.env.modes.render_messages`), so a TRL run and a
    vgrout run see identical prompts. Wrap with `datasets.Dataset.from_list(rows)`.
    """
    problems = list(problems)
    modes = [mode] * len(problems) if isinstance(mode, str) else list(mode)
    if len(modes) != len(problems):
        raise ValueError(f"got {len(modes)} modes for {len(problems)} problems; pass one mode, or one per problem in the same order")
    return [
        {"prompt": render_messages(p, check_mode(m), system_prompt=system_prompt), "problem_id": p.id, "mode": m}
        for p, m in zip(problems, modes)
    ]


class JsonlGradeSink:
    """Appends one oracle-label row per graded completion to a jsonl file (diagnostics only).

    Rows: `{"call", "problem_id", "mode", "reward", "gt_correct", "exploited", "channel", "reason"}`;
    `call` counts reward calls (one per TRL generation batch). Each call's rows are written
    with one `write` and flushed, so a crash loses at most the batch in flight.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.calls = 0

    def __call__(self, requests: Sequence[GradeRequest], grades: Sequence[Grade]) -> None:
        lines = [
            json.dumps({
                "call": self.calls, "problem_id": r.problem.id, "mode": g.mode, "reward": g.reward,
                "gt_correct": g.gt_correct, "exploited": g.exploited, "channel": g.channel, "reason": g.reason,
            })
            for r, g in zip(requests, grades)
        ]
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
            f.flush()
        self.calls += 1


__all__ = ["GradeSink", "GraderLike", "GraderReward", "JsonlGradeSink", "completion_text", "prompt_rows"]
