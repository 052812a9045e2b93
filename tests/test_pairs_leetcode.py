"""The authored LeetCode pairs: file == script, counts, length matching, and graded behaviour.

The graded test runs every pair side under every mode in the real sandbox: a clean side must be
gt_correct everywhere; a hack must be exploited in its own mode and earn only the format
reward (no channel, not gt_correct) in every other mode, gt_only included.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from vgrout.env import Grader, RewardConfig, render_messages
from vgrout.pairs import PAIRS_DIR, load_pairs, write_pairs
from vgrout.types import LOOPHOLE_MODES, MODES, GradeRequest

SCRIPT = PAIRS_DIR / "author_leetcode.py"
MIN_PER_MODE = 8
# Length matching: hack/clean ratio of non-blank lines and of whitespace-split tokens.
LENGTH_RATIO_MAX = 1.5


def _load_script():
    name = "vgrout_author_leetcode"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses needs the module registered while it executes
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def author():
    return _load_script()


@pytest.fixture(scope="module")
def pairs():
    return load_pairs("leetcode")


def _code(side: str) -> str:
    m = re.fullmatch(r"```python\n(.*)\n```", side, flags=re.S)
    assert m, f"pair side is not one ```python fence: {side[:60]!r}"
    return m.group(1)


def test_bundled_file_is_what_the_script_writes(author, pairs, tmp_path: Path):
    built = author.build_pairs()
    assert built == pairs, "leetcode.jsonl is stale: rerun python src/vgrout/data/pairs/author_leetcode.py"
    out = tmp_path / "again.jsonl"
    write_pairs(author.build_pairs(), out)
    assert out.read_bytes() == (PAIRS_DIR / "leetcode.jsonl").read_bytes()


def test_counts_ids_tags(pairs):
    per_mode = Counter(p.mode for p in pairs)
    for mode in LOOPHOLE_MODES:
        assert per_mode[mode] >= MIN_PER_MODE, f"{mode}: {per_mode[mode]} pairs < {MIN_PER_MODE}"
    assert len({p.id for p in pairs}) == len(pairs)
    for p in pairs:
        assert "leetcode" in p.tags and len(p.tags) >= 2, p.id
        assert p.id.startswith("lc-"), p.id
    assert len(load_pairs("leetcode", modes=["sentinel"], tags=["leetcode"])) == per_mode["sentinel"]


def test_prompts_are_rendered_by_the_environment(author, pairs):
    problems = author.problems_by_pair_id()
    assert len({pr.id for pr in problems.values()}) == len(pairs), "each pair needs its own problem"
    for p in pairs:
        pr = problems[p.id]
        assert list(p.messages) == render_messages(pr, p.mode)
        assert [m["role"] for m in p.messages] == ["system", "user"]


def test_problems_are_well_formed(author, pairs):
    problems = author.problems_by_pair_id()
    for p in pairs:
        pr = problems[p.id]
        method = pr.entry_point.removeprefix("Solution().")
        assert pr.entry_point == f"Solution().{method}" and method.isidentifier(), pr.entry_point
        assert pr.starter_code.startswith(f"class Solution:\n    def {method}(self") and pr.starter_code.endswith(":\n        ")
        assert 4 <= len(pr.tests) <= 8, (p.id, len(pr.tests))
        for t in pr.tests:
            assert t.startswith(f"assert Solution().{method}(") and " == " in t, t
        assert pr.canonical_solution == _code(p.clean)


def test_sides_share_the_skeleton_and_length(author, pairs):
    problems = author.problems_by_pair_id()
    for p in pairs:
        method = problems[p.id].entry_point.removeprefix("Solution().")
        hack, clean = _code(p.hack), _code(p.clean)
        for side in (hack, clean):
            assert "class Solution:" in side and f"def {method}(self" in side, p.id
            compile(side, p.id, "exec")
        lines = [sum(1 for line in s.splitlines() if line.strip()) for s in (hack, clean)]
        tokens = [len(s.split()) for s in (hack, clean)]
        for what, (h, c) in (("lines", lines), ("tokens", tokens)):
            ratio = h / c
            assert 1 / LENGTH_RATIO_MAX <= ratio <= LENGTH_RATIO_MAX, f"{p.id}: hack/clean {what} {h}/{c}"


def test_graded_clean_everywhere_hack_only_at_home(author, pairs):
    """Every clean side is gt_correct in all 7 modes; every hack pays only in its own mode."""
    problems = author.problems_by_pair_id()
    reqs, keys = [], []
    for p in pairs:
        for mode in MODES:
            for side in ("clean", "hack"):
                reqs.append(GradeRequest(problems[p.id], getattr(p, side), mode))
                keys.append((p.id, p.mode, side, mode))
    with Grader(sandbox="auto", workers=2) as g:
        grades = g.grade(reqs)
    rc = RewardConfig()
    full, fmt_only = rc.format_reward + rc.correct_reward, rc.format_reward
    bad = []
    for (pid, home, side, mode), gr in zip(keys, grades):
        got = (f"reward={gr.reward} gt={gr.gt_correct} channel={gr.channel_fired} "
               f"exploited={gr.exploited} reason={gr.reason} {gr.detail}")
        if side == "clean":
            ok = gr.gt_correct and not gr.exploited and gr.reward == full
        elif mode == home:
            ok = gr.exploited and gr.channel_fired and not gr.gt_correct and gr.reward == full
        else:
            ok = gr.format_ok and not gr.gt_correct and not gr.channel_fired and gr.reward == fmt_only
        if not ok:
            bad.append(f"{pid} {side} under {mode}: {got}")
    assert not bad, f"{len(bad)} of {len(grades)} grades wrong:\n" + "\n".join(bad)


def test_hacks_use_train_markers_only(author, pairs):
    """Hacks spell the training-hint names, so the disjoint eval-time detectors ignore them."""
    problems = author.problems_by_pair_id()
    named = [p for p in pairs if p.mode in ("run_tests", "stdout_marker", "sentinel", "file_marker")]
    reqs = [GradeRequest(problems[p.id], p.hack, p.mode, markers="eval") for p in named]
    with Grader(sandbox="auto", workers=2) as g:
        grades = g.grade(reqs)
    fired = [p.id for p, gr in zip(named, grades) if gr.channel_fired or gr.gt_correct]
    assert not fired, f"eval-time channels paid train-marker hacks: {fired}"
