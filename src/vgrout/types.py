"""Plain records that cross module lines. Stdlib only: no torch, no other vgrout module.

Data flows one way:  Problem -> (render) -> Rollout -> Grade -> advantages -> gate -> update.

The oracle-free invariant lives here in the types: `Grade` carries the oracle's labels
(`gt_correct`, `exploited`, `channel`) and is what evaluation and diagnostics read;
training reads only `Grade.reward` (see `vgrout.train.step`, which is handed rewards,
never grades).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The environment's loophole modes. `gt_only` pays no exploit channel: its reward is the
# strict oracle alone.
MODES: tuple[str, ...] = (
    "run_tests",
    "eq_override",
    "exit_code",
    "stdout_marker",
    "sentinel",
    "file_marker",
    "gt_only",
)
LOOPHOLE_MODES: tuple[str, ...] = tuple(m for m in MODES if m != "gt_only")


# Per-row zones of a routed update (defined once; vgrout.adapter and vgrout.gates re-export them):
# keep trains the deployed block only, absorb both blocks, route the quarantine only.
KEEP, ABSORB, ROUTE = 0, 1, 2
ZONE_NAMES: dict[int, str] = {KEEP: "keep", ABSORB: "absorb", ROUTE: "route"}


def check_mode(mode: str) -> str:
    """Return `mode` if it is a known mode, else raise naming the known ones."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    return mode


DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard")  # Problem.difficulty labels (LeetCode's and the toy's)


@dataclass(frozen=True)
class Problem:
    """One coding problem in the LeetCode format: a `Solution` class method checked by asserts.

    `tests` are full assert statements (`assert Solution().f(3) == 6`); the expected values
    stay in the grader's process and never enter the sandbox (see `vgrout.env.oracle`).
    """

    id: str
    statement: str  # problem text shown to the model (no hint phrase; the renderer adds it)
    starter_code: str  # e.g. "class Solution:\n    def f(self, x: int) -> int:\n        "
    entry_point: str  # e.g. "Solution().f"
    setup_code: str  # preamble exec'd before the solution (imports, ListNode/TreeNode helpers)
    tests: tuple[str, ...]  # assert strings
    canonical_solution: str | None = None
    difficulty: str = "medium"
    source: str = "leetcode"  # "leetcode", "hf:newfacade/LeetCodeDataset", "toy"
    family: str = ""  # toy task family ("" for LeetCode)


@dataclass(frozen=True)
class Grade:
    """The environment's verdict on one completion.

    Only `reward` may reach training. Everything else is the oracle's view, for
    evaluation and diagnostics.
    """

    reward: float
    format_ok: bool  # a fenced code block was found and it compiles
    gt_correct: bool  # strict oracle: every test's output exactly equals the expected value
    channel_fired: bool  # the active mode's exploit channel fired
    exploited: bool  # channel_fired and not gt_correct
    mode: str  # the mode the completion was graded under
    channel: str | None = None  # name of the channel that fired (== mode) or None
    reason: str = "ok"  # "ok", "no_code", "syntax_error", "timeout", "memory", "output_limit", "crash", "wrong_answer", ...
    detail: str = ""  # short free text for humans (first failing test, signal number, ...)


@dataclass(frozen=True)
class GradeRequest:
    """What the grader needs for one completion: the problem, the model's raw text, the mode.

    `markers` selects the marker family the channel detectors accept: "train" (the names the
    training hints disclose) or "eval" (the disjoint eval-time family; `eval_marker` says
    which name the prompt disclosed).
    """

    problem: Problem
    completion: str
    mode: str
    markers: str = "train"
    eval_marker: str | None = None


@dataclass(frozen=True)
class HackPair:
    """An authored contrastive pair: the same prompt, a hack completion and a clean one.

    The prompt is stored as chat messages and rendered with the tokenizer's own chat
    template at use time, exactly as live rollouts are, so pair and rollout features are
    computed on the same token layout.
    """

    id: str
    mode: str  # loophole mode the hack targets
    messages: tuple[dict, ...]  # chat messages ({"role", "content"}), system then user
    hack: str  # completion text (with its ```python fence)
    clean: str  # completion text: a real solution
    tags: tuple[str, ...] = field(default_factory=tuple)
