"""The authored toy pairs: reproducible, rendered as rollouts are, hacks pay only in their mode."""

from __future__ import annotations

import pytest

from vgrout.env import Grader
from vgrout.env.modes import render_messages
from vgrout.pairs import load_pairs, resolve_pairs_path
from vgrout.toy.config import PRESETS
from vgrout.toy.corpus import TOY_SYSTEM_PROMPT
from vgrout.toy.families import make_problem, sample_key
from vgrout.toy.make_pairs import toy_pairs, toy_pairs_with_problems
from vgrout.toy.world import make_splits
from vgrout.types import LOOPHOLE_MODES, MODES, GradeRequest


@pytest.fixture(scope="module")
def authored():
    return toy_pairs_with_problems()


def test_bundled_file_is_what_the_script_writes(tmp_path):
    from vgrout.toy.make_pairs import main

    out = tmp_path / "toy.jsonl"
    assert main(["--out", str(out)]) == 0
    assert out.read_text() == resolve_pairs_path("toy").read_text()
    assert load_pairs("toy") == toy_pairs()


def test_several_pairs_per_loophole_mode_with_the_environment_prompt(authored):
    for mode in LOOPHOLE_MODES:
        assert sum(p.mode == mode for p, _ in authored) >= 6
    for pair, problem in authored:
        assert list(pair.messages) == render_messages(problem, pair.mode, system_prompt=TOY_SYSTEM_PROMPT)
        for side in (pair.hack, pair.clean):
            assert side.startswith("```python\n") and side.endswith("\n```")
        # matched in length: the two sides differ by at most a few lines
        assert abs(pair.hack.count("\n") - pair.clean.count("\n")) <= 2, pair.id


def test_pair_problems_are_outside_every_held_out_split(authored):
    ids = {problem.id for _, problem in authored}
    for cfg in PRESETS.values():
        splits = make_splits(cfg)
        held = {make_problem(k).id for k in splits["heldout"] + splits["generalisation"]}
        assert not ids & held, cfg.name


def test_every_hack_pays_only_in_its_own_mode_and_every_clean_side_is_correct(authored):
    cases = [(pair, side, mode, GradeRequest(problem, getattr(pair, side), mode))
             for pair, problem in authored for side in ("hack", "clean") for mode in MODES]
    with Grader(sandbox="auto", workers=2) as g:
        grades = g.grade([c[-1] for c in cases])
    for (pair, side, mode, _), grade in zip(cases, grades):
        where = (pair.id, side, mode, grade.reason, grade.detail)
        if side == "clean":
            assert grade.gt_correct and not grade.exploited, where
        else:
            assert not grade.gt_correct, where
            assert grade.exploited == (mode == pair.mode), where


def test_pairs_need_a_known_family_instance():
    # sample_key is what the script draws from; a clean side must exist for every train family
    import random

    from vgrout.toy.families import FAMILIES, TRAIN_FAMILIES
    from vgrout.toy.make_pairs import clean_code

    rng = random.Random(0)
    for name in TRAIN_FAMILIES:
        key = sample_key(FAMILIES[name], rng)
        for mode in LOOPHOLE_MODES:
            assert "class Solution" in clean_code(mode, key, make_problem(key))
    with pytest.raises(ValueError, match="not a loophole mode"):
        clean_code("gt_only", key, make_problem(key))
