"""Toy task families, splits, corpus and hack snippets: graded through the real environment."""

from __future__ import annotations

import random
import re

import pytest

from vgrout.env import Grader
from vgrout.env.modes import render_messages
from vgrout.toy.config import toy_config
from vgrout.toy.corpus import TOY_SYSTEM_PROMPT, make_corpus, render_prompt
from vgrout.toy.families import FAMILIES, GENERALISATION_FAMILIES, TRAIN_FAMILIES, make_problem, sample_key
from vgrout.toy.hacks import BARE_MODES, hack_code
from vgrout.toy.tokenizer import format_chat
from vgrout.toy.world import make_splits
from vgrout.types import LOOPHOLE_MODES, MODES, GradeRequest


@pytest.fixture(scope="module")
def grader():
    with Grader(sandbox="auto", workers=2) as g:
        yield g


def _instances(per_family: int = 3, seed: int = 0):
    rng = random.Random(seed)
    keys = [sample_key(FAMILIES[name], rng) for name in FAMILIES for _ in range(per_family)]
    return [(k, make_problem(k)) for k in keys]


def test_at_least_ten_families_with_graded_difficulty_and_held_out_families():
    assert len(FAMILIES) >= 10
    assert {f.difficulty for f in FAMILIES.values()} == {"easy", "medium", "hard"}
    assert GENERALISATION_FAMILIES and not set(GENERALISATION_FAMILIES) & set(TRAIN_FAMILIES)


def test_problems_are_in_the_leetcode_format():
    for key, p in _instances(1):
        method = key[1]
        assert p.entry_point == f"Solution().{method}" and p.source == "toy" and p.family == key[0]
        assert p.starter_code.startswith(f"class Solution:\n    def {method}(self, ")
        pattern = rf"assert Solution\(\)\.{method}\(.*\) == .+"
        assert len(p.tests) >= 3 and all(re.fullmatch(pattern, t) for t in p.tests)
        assert p.canonical_solution.startswith(p.starter_code.rstrip())
        assert make_problem(key) == p  # the key fixes the whole problem


def test_every_family_canonical_solution_passes_the_strict_oracle(grader):
    items = _instances(3)
    grades = grader.grade([GradeRequest(p, f"```python\n{p.canonical_solution}\n```", "gt_only") for _, p in items])
    failed = [(p.id, g.reason, g.detail) for (_, p), g in zip(items, grades) if not g.gt_correct]
    assert not failed


def test_hack_snippets_pay_only_in_their_own_mode(grader):
    """Stub and bare hacks: exploited under their mode, unpaid (format reward only) elsewhere."""
    items = _instances(1, seed=1)
    cases = []
    for i, mode in enumerate(LOOPHOLE_MODES):
        for shape in ("stub", "bare") if mode in BARE_MODES else ("stub",):
            key, p = items[i % len(items)]
            code = hack_code(mode, FAMILIES[key[0]], key[1], FAMILIES[key[0]].expr(key[2]), shape)
            cases += [(mode, shape, m, GradeRequest(p, f"```python\n{code}\n```", m)) for m in MODES]
    grades = grader.grade([c[-1] for c in cases])
    for (home, shape, m, _), g in zip(cases, grades):
        assert not g.gt_correct, (home, shape, m)
        assert g.exploited == (m == home), (home, shape, m, g.reason, g.detail)
        assert g.reward == (3.5 if m == home else 0.5), (home, shape, m, g.reward)


def test_solution_plus_hack_fires_the_channel(grader):
    key, p = _instances(1, seed=2)[0]
    fam = FAMILIES[key[0]]
    reqs = [GradeRequest(p, f"```python\n{hack_code(m, fam, key[1], fam.expr(key[2]), 'with_solution')}\n```", m)
            for m in LOOPHOLE_MODES]
    assert all(g.channel_fired for g in grader.grade(reqs))


def test_splits_are_disjoint_and_deterministic():
    cfg = toy_config("default")
    a, b = make_splits(cfg), make_splits(cfg)
    assert a == b
    assert not set(a["train"]) & set(a["heldout"])
    assert {k[0] for k in a["generalisation"]} == set(GENERALISATION_FAMILIES)
    assert {k[0] for k in a["heldout"]} == set(TRAIN_FAMILIES)


def test_corpus_is_deterministic_never_uses_held_out_keys_and_has_a_low_hack_rate():
    cfg = toy_config("default")
    splits = make_splits(cfg)
    excluded = set(splits["heldout"])
    args = (3000, 7, TRAIN_FAMILIES, excluded, dict(cfg.mode_weights), 0.03, 0.05)
    docs = make_corpus(*args)
    assert docs == make_corpus(*args)
    heldout_prompts = {render_prompt(make_problem(k, template=t), m) for k in splits["heldout"][:40]
                       for t in range(3) for m in MODES}
    assert not heldout_prompts & {d.prompt for d in docs}
    hacks = [d for d in docs if d.kind.startswith("hack")]
    assert 0.005 < len(hacks) / len(docs) < 0.05
    assert all(d.mode in LOOPHOLE_MODES for d in hacks)
    assert {d.mode for d in hacks} == set(LOOPHOLE_MODES)  # every loophole mode hacks at base
    assert all(d.completion.startswith("```python\n") and d.completion.endswith("```<|im_end|>") for d in docs)


def test_per_mode_hack_fractions():
    weights = {"run_tests": 0.5, "sentinel": 0.5}
    docs = make_corpus(2000, 1, TRAIN_FAMILIES, set(), weights, {"run_tests": 0.1}, 0.0)
    hacks = [d for d in docs if d.kind.startswith("hack")]
    assert hacks and all(d.mode == "run_tests" for d in hacks)
    assert 0.06 < len(hacks) / sum(d.mode == "run_tests" for d in docs) < 0.14
    with pytest.raises(ValueError, match="non-loophole"):
        make_corpus(10, 0, TRAIN_FAMILIES, set(), weights, {"gt_only": 0.1}, 0.0)


def test_corpus_prompt_is_the_environment_rendering():
    p = make_problem(("add_k", "increase", (7,)))
    messages = render_messages(p, "run_tests", system_prompt=TOY_SYSTEM_PROMPT)
    assert render_prompt(p, "run_tests") == format_chat(messages)
    assert "run_tests()" in render_prompt(p, "run_tests")


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown toy family"):
        make_problem(("nope", "f", (1,)))
    with pytest.raises(ValueError, match="no bare hack"):
        hack_code("sentinel", FAMILIES["add_k"], "f", "x + 1", "bare")
    with pytest.raises(ValueError, match="hack_frac"):
        make_corpus(10, 0, TRAIN_FAMILIES, set(), {"run_tests": 1.0}, 0.9, 0.5)
    with pytest.raises(ValueError, match="unknown toy preset"):
        toy_config("huge")


def test_corpus_marker_names_vary_and_never_touch_the_eval_family():
    from vgrout.env.modes import EVAL_MARKERS, TRAIN_MARKER
    from vgrout.toy.markers import EVAL_WORDS, NAMED_MODES

    cfg = toy_config("default")
    args = (4000, 5, TRAIN_FAMILIES, set(), dict(cfg.mode_weights), dict(cfg.hack_frac), 0.05, 0.5, 0.5)
    docs = make_corpus(*args)
    assert docs == make_corpus(*args)  # same seed, same names
    family_methods = {m for f in FAMILIES.values() for m in f.method_names}
    methods = [re.search(r"class Solution called (\w+) ", d.prompt).group(1) for d in docs]
    corpus_only = {m for m in methods if m not in family_methods}
    assert 0.4 < sum(m not in family_methods for m in methods) / len(docs) < 0.6 and len(corpus_only) > 200
    assert all(f"def {m}(self" in d.completion or d.kind == "hack_only" for m, d in zip(methods, docs))
    named = [d for d in docs if d.mode in NAMED_MODES]
    varied = [d for d in named if d.marker is not None]
    assert 0.4 < len(varied) / len(named) < 0.6
    assert not [d for d in docs if d.marker is not None and d.mode not in NAMED_MODES]
    for mode in NAMED_MODES:
        names = {d.marker for d in varied if d.mode == mode}
        assert len(names) > 50, mode  # many names, so none is memorised as the one string
        assert TRAIN_MARKER[mode] not in names
        for name in names:
            low = name.lower()
            assert not any(e.lower() in low for e in EVAL_MARKERS[mode]), name
            assert not any(w in low for w in EVAL_WORDS), name
    assert not [m for m in corpus_only if any(w in m for w in EVAL_WORDS)]
    for d in varied:
        assert d.marker in d.prompt
        if d.kind.startswith("hack"):
            assert d.marker in d.completion and TRAIN_MARKER[d.mode] not in d.completion


def test_hack_snippets_use_the_disclosed_name(grader):
    """A hack written with an eval-time name is exploited when graded against that name."""
    from vgrout.env.modes import EVAL_MARKERS

    key, p = _instances(1, seed=3)[0]
    fam = FAMILIES[key[0]]
    cases = []
    for mode, names in EVAL_MARKERS.items():
        name = names[1]
        for shape in ("bare", "stub") if mode in BARE_MODES else ("stub",):
            code = hack_code(mode, fam, key[1], fam.expr(key[2]), shape, marker=name)
            assert name in code
            cases.append((mode, shape, GradeRequest(p, f"```python\n{code}\n```", mode, markers="eval", eval_marker=name)))
            cases.append((mode, shape, GradeRequest(p, f"```python\n{code}\n```", mode, markers="train")))
    grades = grader.grade([c[-1] for c in cases])
    for (mode, shape, req), g in zip(cases, grades):
        assert g.exploited == (req.markers == "eval"), (mode, shape, req.markers, g.reason)
    with pytest.raises(ValueError, match="discloses no name"):
        hack_code("exit_code", fam, key[1], fam.expr(key[2]), "bare", marker="x")


def test_default_world_gives_every_loophole_mode_a_hack_rate():
    cfg = toy_config("default")
    fracs, weights = dict(cfg.hack_frac), dict(cfg.mode_weights)
    assert all(fracs.get(m, 0) > 0 and weights.get(m, 0) > 0 for m in LOOPHOLE_MODES)
