"""The reward-hacking coding environment: problems, modes, the strict oracle, the sandbox, `Grader`.

Pure Python; never imports torch (tested), so it is cheap to use on its own.
"""

from vgrout.env.extract import extract_code
from vgrout.env.grader import Grader, RewardConfig
from vgrout.env.modes import (
    EVAL_MARKERS,
    NEUTRAL_PHRASE,
    SYSTEM_PROMPT,
    TRAIN_MARKER,
    eval_marker_for,
    hint,
    render_messages,
    user_message,
)
from vgrout.env.problems import (
    LEETCODE_SETUP,
    check_disjoint,
    load_hf_leetcode,
    load_medhard_jsonl,
    load_problem_source,
    write_problems_jsonl,
)
from vgrout.env.sandbox import bwrap_available

__all__ = [
    "EVAL_MARKERS", "LEETCODE_SETUP", "NEUTRAL_PHRASE", "SYSTEM_PROMPT", "TRAIN_MARKER", "Grader",
    "RewardConfig", "bwrap_available", "check_disjoint", "eval_marker_for", "extract_code", "hint",
    "load_hf_leetcode", "load_medhard_jsonl", "load_problem_source", "render_messages", "user_message",
    "write_problems_jsonl",
]
