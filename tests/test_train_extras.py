"""Trainer side features on the smoke preset: retain-heal, teacher rows, motivate pairs,
the held-out eval hook, the rank check and thread pinning (tiny real model, rule grader)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from test_train_step import RuleGrader, final_state, pairs_path, smoke_cfg  # noqa: F401  (fixture)
from vgrout.train import Config
from vgrout.train.data import sample_prompts
from vgrout.train.run import retain_heal
from vgrout.train.loop import generate_batch, grade_batch, train
from vgrout.train.run import build_run
from vgrout.train.step import old_logps, optimise
from vgrout.train.data import load_teacher_pool, sample_teacher_pool, write_teacher_pool


# ---- retain-heal ---------------------------------------------------------------------------
def test_retain_heal_moves_deployed_only_and_lowers_clean_nll(tmp_path, pairs_path):
    run = build_run(smoke_cfg(pairs_path, arm="absorb", retain_heal_epochs=1), tmp_path)
    before = final_state(run)
    stats = retain_heal(run.adapter, run.model, run.tokenizer, run.heal_pairs, epochs=3, lr=1e-2, batch=2,
                        grad_clip=1.0)
    after = run.adapter.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(".deployed." in k for k in changed)
    assert all(torch.equal(before[k], after[k]) for k in before if ".quarantine." in k)  # bit-identical
    assert stats["updates"] == 3 * 2 and stats["nll_after"] < stats["nll_before"]


def test_retain_heal_raises_when_the_quarantine_gets_a_gradient(tmp_path, pairs_path):
    run = build_run(smoke_cfg(pairs_path, arm="absorb", retain_heal_epochs=1), tmp_path)
    with torch.no_grad():  # a trained quarantine, so its A factor has a gradient in the full forward
        for p in run.adapter.parameters("quarantine"):
            p.add_(0.05 * torch.randn_like(p))
    real_mode = run.adapter.mode
    run.adapter.mode = lambda which: real_mode("full")  # a bug that leaves the quarantine in the forward
    with pytest.raises(RuntimeError, match="reached the quarantine"):
        retain_heal(run.adapter, run.model, run.tokenizer, run.heal_pairs, epochs=1, lr=1e-2, batch=2, grad_clip=1.0)


def test_training_runs_the_heal_once_after_the_last_step(tmp_path, pairs_path):
    cfg = smoke_cfg(pairs_path, arm="routeA", steps=2, retain_heal_epochs=2, retain_heal_lr=2e-3)
    run = train(cfg, tmp_path / "r", grader_factory=RuleGrader, progress=False)
    heal = json.loads((tmp_path / "r" / "retain_heal" / "heal.json").read_text())
    assert heal["updates"] == 2 and heal["nll_after"] < heal["nll_before"]  # 3 pairs: one batch of 8 per epoch
    healed = final_state(run)
    again = train(None, tmp_path / "r", resume=True, grader_factory=RuleGrader, progress=False)
    assert again.step == 2  # a resumed finished run neither steps nor heals again
    saved = final_state(again)  # the last checkpoint: before the heal
    assert any(not torch.equal(healed[k], saved[k]) for k in healed if ".deployed." in k)


# ---- teacher rows --------------------------------------------------------------------------
def _pool_with_offset(tmp_path, run, offset: float):
    """A teacher pool sampled from the run's own model, its behaviour log-probs shifted by -offset."""
    cfg = run.cfg
    specs = sample_prompts(run.problems, run.mode_of, 0, cfg.prompts_per_step, cfg.seed, 0.0, cfg.system_prompt)
    rows = sample_teacher_pool(run.model, run.tokenizer, specs, 2, cfg.max_new_tokens, seed=7, adapter=run.adapter)
    shifted = [r.__class__(r.problem_id, r.mode, r.completion_ids, tuple(x - offset for x in r.logps)) for r in rows]
    return write_teacher_pool(shifted, tmp_path / "pool.jsonl"), specs


def test_teacher_rows_use_stored_behaviour_logps_as_logp_old(tmp_path, pairs_path):
    probe = build_run(smoke_cfg(pairs_path), tmp_path / "probe")
    path, specs = _pool_with_offset(tmp_path, probe, offset=0.05)
    cfg = smoke_cfg(pairs_path, teacher_pool=str(path), teacher_per_prompt=1, teacher_off_step=2)
    run = build_run(cfg, tmp_path / "run")
    batch = generate_batch(run, specs, 0)
    assert len(batch) == cfg.rollouts_per_step and int(batch.teacher.sum()) == cfg.prompts_per_step
    assert batch.prompt_index.tolist() == sorted(batch.prompt_index.tolist())  # contiguous groups
    old, need = old_logps(run.adapter, run.model, batch, ["full"] * len(batch), None, 0)
    t = batch.teacher
    assert need[t].all() and not need[~t].any()
    m = batch.completion_mask.bool()
    assert torch.equal(old[t][m[t]], batch.behaviour_logps[t][m[t]])
    rewards = [g.reward for g in grade_batch(RuleGrader(), specs, batch)]
    metrics, _ = optimise(run.adapter, run.model, run.optimizer, run.scheduler, run.gate, batch, rewards, cfg)
    assert metrics["teacher_rows"] > 0  # (the rule grader gives their groups reward variance)
    # the same weights sampled them: rho = exp(logp - (logp_b - 0.05)) = exp(0.05), not 1
    assert metrics["rho_teacher"] == pytest.approx(math.exp(0.05), abs=1e-4)


def test_teachers_stop_at_teacher_off_step_and_bad_pools_fail(tmp_path, pairs_path):
    probe = build_run(smoke_cfg(pairs_path), tmp_path / "probe")
    path, specs = _pool_with_offset(tmp_path, probe, offset=0.0)
    run = build_run(smoke_cfg(pairs_path, teacher_pool=str(path), teacher_off_step=1), tmp_path / "run")
    assert not generate_batch(run, specs, 1).teacher.any()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem_id": "x", "mode": "run_tests", "completion_ids": [1, 2], "logps": [-1.0]}\n')
    with pytest.raises(ValueError, match="same length"):
        load_teacher_pool(bad)
    with pytest.raises(ValueError, match="teacher_off_step=0"):
        Config(teacher_pool=str(path))


# ---- motivate pairs ------------------------------------------------------------------------
def test_motivate_pairs_are_generated_once_and_deterministic(tmp_path, pairs_path, monkeypatch):
    cfg = smoke_cfg(pairs_path, arm="routeV", motivate_pairs=3, motivate_pool=8, motivate_require_marker=False)
    a = build_run(cfg, tmp_path / "a")
    b = build_run(cfg, tmp_path / "b")
    assert len(a.pairs) == 3 and a.pairs == b.pairs  # same seed, same pairs
    assert a.pairs[0].hack_messages != a.pairs[0].clean_messages and "Note:" in a.pairs[0].hack_messages[-1]["content"]
    assert a.direction_info["n_pairs"] == 3 and a.direction_info["kind"] == "grad"
    import vgrout.train.direction as mot

    monkeypatch.setattr(mot, "generate_motivate_pairs", lambda *a, **k: pytest.fail("regenerated motivate pairs"))
    again = build_run(cfg, tmp_path / "a")  # a resume reads motivate_pairs.jsonl
    assert again.pairs == a.pairs
    with pytest.raises(ValueError, match="only arm=routeV"):
        Config(arm="routeA", motivate_pairs=3)


# ---- eval hook, rank check, threads --------------------------------------------------------
def test_eval_hook_writes_heldout_results_into_the_run_dir(tmp_path, pairs_path):
    cfg = smoke_cfg(pairs_path, arm="absorb", steps=3, eval_every=2, eval_n_problems=4)
    train(cfg, tmp_path / "r", grader_factory=RuleGrader, progress=False)
    from vgrout.eval.results import read_eval

    curve = [json.loads(x) for x in (tmp_path / "r" / "eval" / "curve.jsonl").read_text().splitlines()]
    assert [c["step"] for c in curve] == [2, 3]
    res = read_eval(tmp_path / "r" / "eval" / "step_000003.json")
    assert res["n_problems"] == 4 and res["states"]["deployed"]["generation_mode"] == "deployed"
    assert res["run"]["arm"] == "absorb"


def test_rank_that_does_not_fit_the_model_is_rejected_at_build(tmp_path, pairs_path):
    with pytest.raises(ValueError, match="adapter_r=17 gives 2r=34"):
        build_run(smoke_cfg(pairs_path, adapter_r=17), tmp_path)


def test_cli_pins_threads():
    from vgrout.train.cli import pin_threads

    try:
        pin_threads(2)
        assert torch.get_num_threads() == 2
    finally:
        pin_threads(1)
    with pytest.raises(SystemExit, match="--threads 0"):
        pin_threads(0)
