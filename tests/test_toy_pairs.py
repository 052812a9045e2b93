"""The authored toy pairs: reproducible, rendered as rollouts are, hacks pay only in their mode,
two sets (build, check) that split forms and families, and lengths that do not give the label away."""

from __future__ import annotations

import pytest

from vgrout.env import Grader
from vgrout.env.modes import render_messages
from vgrout.pairs import load_pairs, resolve_pairs_path
from vgrout.stats import auroc
from vgrout.toy.config import PRESETS
from vgrout.toy.corpus import TOY_SYSTEM_PROMPT
from vgrout.toy.families import make_problem, sample_key
from vgrout.toy.make_pairs import (
    BUILD_FAMILIES, CHECK_FAMILIES, CLEAN_FORMS, HACK_FORMS, check_pairs, pairs_with_problems, toy_pairs,
)
from vgrout.toy.world import make_splits
from vgrout.types import LOOPHOLE_MODES, MODES, GradeRequest

SETS = ("toy", "toy_check")


@pytest.fixture(scope="module")
def authored():
    return {which: pairs_with_problems(which) for which in SETS}


def form(pair, side: str) -> str:
    (tag,) = [t for t in pair.tags if t.startswith(f"{side}:")]
    return tag.split(":", 1)[1]


def test_bundled_files_are_what_the_script_writes(tmp_path):
    from vgrout.toy.make_pairs import main

    out, check = tmp_path / "toy.jsonl", tmp_path / "toy_check.jsonl"
    assert main(["--out", str(out), "--check-out", str(check)]) == 0
    assert out.read_text() == resolve_pairs_path("toy").read_text()
    assert check.read_text() == resolve_pairs_path("toy_check").read_text()
    assert load_pairs("toy") == toy_pairs()
    assert load_pairs("toy_check") == check_pairs()


def test_several_pairs_per_loophole_mode_with_the_environment_prompt(authored):
    for which in SETS:
        for mode in LOOPHOLE_MODES:
            assert sum(p.mode == mode for p, _ in authored[which]) >= 6
        for pair, problem in authored[which]:
            assert list(pair.messages) == render_messages(problem, pair.mode, system_prompt=TOY_SYSTEM_PROMPT)
            for side in (pair.hack, pair.clean):
                assert side.startswith("```python\n") and side.endswith("\n```")


def test_the_two_sets_split_families_problems_and_hack_forms(authored):
    assert not set(BUILD_FAMILIES) & set(CHECK_FAMILIES)
    fams = {w: {problem.family for _, problem in authored[w]} for w in SETS}
    assert fams["toy"] <= set(BUILD_FAMILIES) and fams["toy_check"] <= set(CHECK_FAMILIES)
    for w in SETS:  # each set reaches the hard families the demo trains on
        assert any(problem.difficulty == "hard" for _, problem in authored[w])
    hack_forms = {w: {form(p, "hack") for p, _ in authored[w]} for w in SETS}
    clean_forms = {w: {form(p, "clean") for p, _ in authored[w]} for w in SETS}
    assert hack_forms["toy"] == {"bare", "stub"} and hack_forms["toy_check"] == {"attempt"}
    assert clean_forms["toy"] == {"solution", "counterpart"}
    assert {"attempt", "attempt_counterpart"} <= clean_forms["toy_check"]
    assert hack_forms["toy"] | hack_forms["toy_check"] == set(HACK_FORMS)
    assert clean_forms["toy"] | clean_forms["toy_check"] == set(CLEAN_FORMS)
    for mode in ("run_tests", "exit_code", "stdout_marker", "file_marker"):  # the bare exploit, where one exists
        assert any(p.mode == mode and form(p, "hack") == "bare" for p, _ in authored["toy"])
    for w in SETS:  # both clean shapes: with and without a tests function / honest counterpart
        rt = [p for p, _ in authored[w] if p.mode == "run_tests"]
        assert any("def run_tests" in p.clean for p in rt) and any("def run_tests" not in p.clean for p in rt)


@pytest.mark.parametrize("which", SETS)
def test_length_alone_does_not_tell_hack_from_clean(authored, which):
    pairs = [p for p, _ in authored[which]]
    labels = [True] * len(pairs) + [False] * len(pairs)
    chars = [len(p.hack) for p in pairs] + [len(p.clean) for p in pairs]
    assert 0.35 <= auroc(chars, labels) <= 0.65, auroc(chars, labels)


@pytest.mark.parametrize("which", SETS)
def test_length_alone_is_near_chance_in_the_toy_models_tokens(authored, which):
    from transformers import AutoTokenizer

    from vgrout.toy import toy_world

    tok = AutoTokenizer.from_pretrained(toy_world("default", progress=False).model_dir)
    pairs = [p for p, _ in authored[which]]
    n = [len(tok(p.hack)["input_ids"]) for p in pairs] + [len(tok(p.clean)["input_ids"]) for p in pairs]
    score = auroc(n, [True] * len(pairs) + [False] * len(pairs))
    assert 0.35 <= score <= 0.65, score


def test_pair_problems_are_outside_every_held_out_split(authored):
    ids = {problem.id for w in SETS for _, problem in authored[w]}
    for cfg in PRESETS.values():
        splits = make_splits(cfg)
        held = {make_problem(k).id for k in splits["heldout"] + splits["generalisation"]}
        assert not ids & held, cfg.name


def test_every_hack_pays_only_in_its_own_mode_and_no_clean_side_exploits(authored):
    """A hack is `exploited` in its own mode (its channel fires and the oracle fails it: a
    placeholder or a wrong attempt) and only there; a clean side is never exploited, and it is
    `gt_correct` unless its form is a wrong attempt, which fails the oracle honestly."""
    cases = [(pair, side, mode, GradeRequest(problem, getattr(pair, side), mode))
             for w in SETS for pair, problem in authored[w] for side in ("hack", "clean") for mode in MODES]
    with Grader(sandbox="auto", workers=2) as g:
        grades = g.grade([c[-1] for c in cases])
    for (pair, side, mode, _), grade in zip(cases, grades):
        where = (pair.id, side, mode, grade.reason, grade.detail)
        if side == "clean":
            assert not grade.exploited, where
            assert grade.gt_correct == (not form(pair, "clean").startswith("attempt")), where
        else:
            assert not grade.gt_correct, where
            assert grade.exploited == (mode == pair.mode), where


def test_pairs_need_a_known_family_instance():
    # sample_key is what the script draws from; a clean side must exist for every train family
    import random

    from vgrout.toy.families import FAMILIES, TRAIN_FAMILIES
    from vgrout.toy.make_pairs import attempt_expr, clean_code, side_code

    rng = random.Random(0)
    for name in TRAIN_FAMILIES:
        key = sample_key(FAMILIES[name], rng)
        problem = make_problem(key)
        wrong = attempt_expr(key, problem, rng)
        assert wrong != FAMILIES[name].expr(key[2])
        for mode in LOOPHOLE_MODES:
            assert "class Solution" in clean_code(mode, key, problem)
            for f in CLEAN_FORMS:
                assert "class Solution" in side_code("clean", f, mode, key, problem, wrong)
    with pytest.raises(ValueError, match="not a loophole mode"):
        clean_code("gt_only", key, problem)
    with pytest.raises(ValueError, match="unknown hack form"):
        side_code("hack", "nope", "run_tests", key, problem, wrong)
