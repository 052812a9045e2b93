"""The `tiny` toy world: build (seconds), cache, round-trip through from_pretrained, determinism."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3ForCausalLM

from vgrout.env import Grader
from vgrout.env.modes import render_messages
from vgrout.toy import TOY_SYSTEM_PROMPT, build_toy_world, toy_config, toy_world
from vgrout.toy.corpus import make_corpus
from vgrout.toy.families import GENERALISATION_FAMILIES, TRAIN_FAMILIES
from vgrout.toy.tokenizer import IM_END, train_tokenizer
from vgrout.types import LOOPHOLE_MODES, GradeRequest


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny world in a cache of its own: a copy of the one in $VGROUT_CACHE (built on first use,
    as the smoke preset's runs load it; a build from an empty cache: test_model_build_is_reproducible)."""
    import shutil

    shared = toy_world("tiny", progress=False)
    cache = tmp_path_factory.mktemp("toycache")
    shutil.copytree(shared.root, cache / "toy" / shared.root.name)
    world = build_toy_world(toy_config("tiny"), cache_dir=cache, progress=False)
    assert world.root == cache / "toy" / shared.root.name  # loaded from the copy
    return world, cache


def test_tiny_world_round_trips_through_from_pretrained(tiny):
    world, _ = tiny
    model = AutoModelForCausalLM.from_pretrained(world.model_dir)
    tok = AutoTokenizer.from_pretrained(world.model_dir)
    assert isinstance(model, Qwen3ForCausalLM) and model.config.tie_word_embeddings
    assert tok.eos_token == IM_END and tok.pad_token_id != tok.eos_token_id
    assert model.config.eos_token_id == tok.eos_token_id and model.config.vocab_size == len(tok)
    problem = world.problems("heldout")[0]
    text = tok.apply_chat_template(render_messages(problem, "run_tests", system_prompt=TOY_SYSTEM_PROMPT),
                                   add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|im_start|>assistant\n") and "run_tests()" in text
    enc = tok([text], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] > enc["input_ids"].shape[1]
    assert tok.decode(tok("x + 1234")["input_ids"]) == "x + 1234"
    assert all(len(tok.decode([i])) == 1 for i in tok("1234", add_special_tokens=False)["input_ids"])  # digits split


def test_tiny_world_splits_and_base_report(tiny):
    world, _ = tiny
    train, held, gen = (world.problems(s) for s in ("train", "heldout", "generalisation"))
    assert {p.family for p in held} == set(TRAIN_FAMILIES) and {p.family for p in gen} == set(GENERALISATION_FAMILIES)
    assert not {p.id for p in train} & {p.id for p in held}
    report = world.base_report["heldout"]
    assert set(report["families"]) == set(TRAIN_FAMILIES)
    assert report["overall"]["n"] == len(held) * world.config.eval_samples
    assert 0.0 <= report["overall"]["solve"] <= 1.0 and 0.0 <= report["overall"]["hack"] <= 1.0
    per_mode = world.base_report["per_mode"]  # every held-out task under every loophole mode
    assert set(per_mode["train"]) == set(LOOPHOLE_MODES)
    assert set(per_mode["eval"]) == {"run_tests", "stdout_marker", "sentinel", "file_marker"}
    assert all(c["n"] == len(held) * world.config.per_mode_samples for c in per_mode["train"].values())
    with pytest.raises(ValueError, match="unknown split"):
        world.problems("test")


def test_every_split_problem_canonical_solution_is_gt_correct(tiny):
    world, _ = tiny
    problems = [p for s in ("train", "heldout", "generalisation") for p in world.problems(s)]
    with Grader(sandbox="auto", workers=2) as g:
        grades = g.grade([GradeRequest(p, f"```python\n{p.canonical_solution}\n```", "gt_only") for p in problems])
    assert all(gr.gt_correct for gr in grades)


def test_second_build_reuses_the_cache(tiny, monkeypatch):
    world, cache = tiny
    import vgrout.toy.world as w

    def boom(*a, **k):
        raise AssertionError("rebuilt although cached")

    monkeypatch.setattr(w, "_build_into", boom)
    again = build_toy_world(toy_config("tiny"), cache_dir=cache, progress=False)
    assert again.root == world.root and again.base_report == world.base_report
    assert not [p for p in (cache / "toy").iterdir() if p.is_dir() and p.name.startswith(".")]  # no temp dirs


def test_config_key_tracks_build_fields_only():
    cfg = toy_config("tiny")
    assert cfg.key() == dataclasses.replace(cfg, name="other").key()
    assert cfg.key() != dataclasses.replace(cfg, seed=1).key()
    with pytest.raises(ValueError, match="unknown families"):
        dataclasses.replace(cfg, families=("nope",))


def test_same_seed_same_corpus_and_tokenizer():
    cfg = toy_config("default")
    docs = make_corpus(1500, 3, TRAIN_FAMILIES, set(), dict(cfg.mode_weights), 0.03, 0.05)
    texts = [t for d in docs for t in (d.prompt, d.completion)]
    a, b = train_tokenizer(texts, 512), train_tokenizer(list(texts), 512)
    assert json.loads(a.backend_tokenizer.to_str()) == json.loads(b.backend_tokenizer.to_str())
    assert docs == make_corpus(1500, 3, TRAIN_FAMILIES, set(), dict(cfg.mode_weights), 0.03, 0.05)


def test_model_build_is_reproducible(tmp_path):
    # two builds of a cheaper tiny world: 30 pretraining steps of 16 (past one 400-doc epoch, so a
    # reshuffle is included) and no per-mode base report (only the weights and tokenizer are compared)
    cfg = dataclasses.replace(toy_config("tiny"), steps=30, per_mode_samples=0)
    world = build_toy_world(cfg, cache_dir=tmp_path / "a", progress=False)
    other = build_toy_world(cfg, cache_dir=tmp_path / "b", progress=False)
    a = AutoModelForCausalLM.from_pretrained(world.model_dir).state_dict()
    b = AutoModelForCausalLM.from_pretrained(other.model_dir).state_dict()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    assert (world.model_dir / "tokenizer.json").read_text() == (other.model_dir / "tokenizer.json").read_text()


def test_cli_builds_and_prints_the_family_table(tiny, capsys):
    from vgrout.cli import main

    _, cache = tiny
    assert main(["toy", "build", "--config", "tiny", "--cache-dir", str(cache), "--no-progress", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "| family |" in out and "add_two" in out and "generalisation" in out
    assert "eval names" in out and "| sentinel |" in out


def test_build_overrides_are_typed_and_change_the_key():
    from vgrout.toy.cli import with_overrides

    cfg = toy_config("tiny")
    new = with_overrides(cfg, ["marker_vary_frac=0.5", "steps=3", "hack_frac=run_tests:0.2,sentinel:0.1"])
    assert (new.marker_vary_frac, new.steps, new.hack_frac) == (0.5, 3, (("run_tests", 0.2), ("sentinel", 0.1)))
    assert new.key() != cfg.key() and with_overrides(cfg, []) is cfg
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        with_overrides(cfg, ["nope=1"])
    with pytest.raises(SystemExit, match="cannot parse"):
        with_overrides(cfg, ["steps=many"])
