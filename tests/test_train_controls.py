"""Controls that can fail, and bounded updates: per-seed placebo and init draws recorded in
config.json, the dual clip inside a real step, and extending a finished run
(tiny toy world, real model and adapter, rule grader)."""

from __future__ import annotations

import json

import pytest
import torch

from test_train_step import RuleGrader, final_state, pairs_path, read_rows, smoke_cfg  # noqa: F401  (fixture)
from vgrout.train.config import derived_seed
from vgrout.train.data import sample_prompts
from vgrout.train.loop import generate_batch, grade_batch, train
from vgrout.train.run import build_run
from vgrout.train.step import loss_backward
from vgrout.types import KEEP


def init_factors(run) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in run.adapter.state_dict().items() if k.endswith(".A0") or k.endswith(".B0")}


def test_placebo_direction_and_adapter_init_vary_with_the_seed(tmp_path, pairs_path):
    runs = {s: build_run(smoke_cfg(pairs_path, arm="routeA", placebo=True, seed=s), tmp_path / f"s{s}") for s in (0, 1)}
    again = build_run(smoke_cfg(pairs_path, arm="routeA", placebo=True, seed=0), tmp_path / "again")
    d0, d1 = runs[0].gate.direction, runs[1].gate.direction
    assert d0.shape == d1.shape and not torch.allclose(d0, d1)  # two seeds, two Haar draws
    assert torch.equal(d0, again.gate.direction)  # the same seed draws the same placebo
    i0, i1, ia = init_factors(runs[0]), init_factors(runs[1]), init_factors(again)
    assert i0 and any(not torch.equal(i0[k], i1[k]) for k in i0)  # and starts from another init
    assert all(torch.equal(i0[k], ia[k]) for k in i0)
    assert runs[0].cfg.placebo_seed == derived_seed("placebo", 0) != runs[1].cfg.placebo_seed
    assert runs[0].direction_info["placebo_seed"] == runs[0].cfg.placebo_seed


def test_config_json_records_the_resolved_seeds(tmp_path, pairs_path):
    cfg = smoke_cfg(pairs_path, arm="routeA", placebo=True, seed=3, steps=1)
    assert cfg.placebo_seed == -1 and cfg.adapter_init_seed == -1  # derived, not yet drawn
    train(cfg, tmp_path / "r", grader_factory=RuleGrader, progress=False)
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["placebo"] is True
    assert saved["placebo_seed"] == derived_seed("placebo", 3) and saved["adapter_init_seed"] == derived_seed("adapter_init", 3)
    assert json.loads((tmp_path / "r" / "direction.json").read_text())["placebo_seed"] == saved["placebo_seed"]
    plain = smoke_cfg(pairs_path, arm="routeA", seed=3, steps=1)
    train(plain, tmp_path / "p", grader_factory=RuleGrader, progress=False)
    saved = json.loads((tmp_path / "p" / "config.json").read_text())
    assert (saved["placebo"], saved["placebo_seed"]) == (False, -1)
    assert saved["adapter_init_seed"] == derived_seed("adapter_init", 3)


def test_keep_rows_with_a_huge_ratio_and_negative_advantage_make_no_update(tmp_path, pairs_path):
    """Full-sampled rows trained in keep are off-policy: give them a behaviour log-prob 30 nats
    below the deployed block's (rho = e^30) and A < 0. With the dual clip their gradient is
    exactly zero (the term is the constant c A); without it the same rows blow the gradient up."""
    grads = {}
    for c in (3.0, 0.0):
        cfg = smoke_cfg(pairs_path, arm="absorb", kl_beta=0.0, dual_clip_c=c)
        run = build_run(cfg, tmp_path / f"c{c}")
        specs = sample_prompts(run.problems, run.mode_of, 0, cfg.prompts_per_step, cfg.seed, 0.0, cfg.system_prompt)
        rollouts = generate_batch(run, specs, 0)
        assert not bool(rollouts.deployed.any())  # sampled with the full adapter
        n, t = rollouts.completion_ids.shape
        zones = torch.full((n,), KEEP, dtype=torch.long)
        adv = -torch.linspace(0.5, 2.0, n)  # A < 0 on every row
        old = torch.full((n, t), -60.0)  # the behaviour log-prob: far below any real one, so rho >> c
        need = torch.ones(n, dtype=torch.bool)
        loss, stats = loss_backward(run.adapter, run.model, rollouts, adv, zones, old, need, None, cfg,
                                    normaliser=float(n * t))
        g = torch.cat([p.grad.flatten() for p in run.adapter.parameters("all") if p.grad is not None])
        grads[c] = float(g.norm())
        if c:
            assert float(stats["dual_clipped"].min()) == 1.0  # every token of every row hit the cap
            bound = c * float(adv.abs().max())  # |term| <= c |A| per token
            assert 0 < loss <= bound + 1e-6
    assert grads[3.0] == 0.0 and grads[0.0] > 1e6


def test_dual_clip_metrics_are_logged(tmp_path, pairs_path):
    train(smoke_cfg(pairs_path, arm="routeA", gen_deploy_frac=0.5, steps=1), tmp_path / "r", grader_factory=RuleGrader,
          progress=False)
    row = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[0])
    assert 0.0 <= row["dual_clip_frac"] <= row["dual_clip_row_frac"] <= 1.0


def test_resume_with_more_steps_extends_a_finished_run_bit_for_bit(tmp_path, pairs_path):
    """A finished 2-step run resumed with steps=3 takes exactly one more step and ends where a
    3-step run ends (constant lr: with cosine decay the first steps ran under the shorter schedule)."""
    cfg = smoke_cfg(pairs_path, arm="routeA", gen_deploy_frac=0.5, cosine=False, warmup_steps=1,
                    checkpoint_every=1, refresh_every=2)
    full = train(cfg.with_overrides({"steps": 3}), tmp_path / "full", grader_factory=RuleGrader, progress=False)
    short = tmp_path / "short"
    train(cfg.with_overrides({"steps": 2}), short, grader_factory=RuleGrader, progress=False)
    again = train(None, short, resume=True, grader_factory=RuleGrader, progress=False)  # finished: nothing to do
    assert again.step == 2 and len(read_rows(short / "metrics.jsonl")) == 2
    grader = RuleGrader()
    ext = train(None, short, resume=True, steps=3, grader_factory=lambda: grader, progress=False)
    assert ext.step == 3 and grader.calls == 1  # exactly one more step
    assert json.loads((short / "config.json").read_text())["steps"] == 3
    sf, se = final_state(full), final_state(ext)
    assert all(torch.equal(sf[k], se[k]) for k in sf)
    assert read_rows(tmp_path / "full" / "metrics.jsonl") == read_rows(short / "metrics.jsonl")
    import pytest

    with pytest.raises(ValueError, match="cannot be shortened"):
        train(None, short, resume=True, steps=1, grader_factory=RuleGrader, progress=False)


def test_the_smoke_preset_takes_a_real_update_with_the_real_grader(tmp_path):
    """`vgrout train --preset smoke` as a new user runs it: real sandboxed grading, no stand-ins."""
    from vgrout.train import preset

    train(preset("smoke"), tmp_path / "smoke", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "smoke" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    assert any(not r.get("skipped") and r["rows_live"] > 0 for r in rows), [r["reward_mean"] for r in rows]


def test_training_keeps_a_bounded_label_free_sample_of_rollouts(tmp_path, pairs_path):
    cfg = smoke_cfg(pairs_path, arm="routeA", steps=3, rollout_samples=3, checkpoint_every=1)
    train(cfg, tmp_path / "r", grader_factory=RuleGrader, progress=False, stop_after=2)
    path = tmp_path / "r" / "rollout_samples.jsonl"
    with open(path, "a") as f:
        f.write('{"step": 2, "comp')  # a kill mid-write of a step the checkpoint does not cover
    train(None, tmp_path / "r", resume=True, grader_factory=RuleGrader, progress=False)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["step"] for r in rows] == [0] * 3 + [1] * 3 + [2] * 3  # k per step, resume drops the torn row
    n = cfg.rollouts_per_step
    for r in rows:
        assert set(r) == {"step", "index", "problem_id", "mode", "completion", "reward", "zone", "gate_score"}
        assert 0 <= r["index"] < n and isinstance(r["completion"], str) and r["zone"] in ("keep", "absorb", "route")
    off = smoke_cfg(pairs_path, arm="vanilla", steps=1, rollout_samples=0)
    train(off, tmp_path / "off", grader_factory=RuleGrader, progress=False)
    assert not (tmp_path / "off" / "rollout_samples.jsonl").exists()


def test_train_cli_resumes_with_more_steps_and_ends_with_a_summary(tmp_path, capsys):
    from vgrout.cli import main

    out = tmp_path / "cli"
    assert main(["train", "--preset", "smoke", "--set", "steps=1", "--set", "eval.every=1", "--set", "eval.n_problems=2",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert str(out) in text and f"vgrout eval {out}" in text  # where the files are, what comes next
    assert "as-trained: hack" in text and "deployed:   hack" in text and "valid" in text  # the final rates
    assert main(["train", "--resume", str(out), "--set", "steps=2"]) == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    import pytest

    with pytest.raises(SystemExit, match="only --set steps=N"):
        main(["train", "--resume", str(out), "--set", "lr=1"])


def test_an_extended_cosine_run_follows_the_new_totals_schedule(tmp_path, pairs_path):
    """The optimizer's saved lr belongs to the old total (0 after a finished cosine run); the
    extension must take the new total's lr for its steps."""
    from vgrout.train.run import lr_multiplier

    cfg = smoke_cfg(pairs_path, arm="vanilla", steps=2, cosine=True, warmup_steps=0, checkpoint_every=1)
    train(cfg, tmp_path / "r", grader_factory=RuleGrader, progress=False)
    train(None, tmp_path / "r", resume=True, steps=4, grader_factory=RuleGrader, progress=False)
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert lrs[2:] == [cfg.lr * lr_multiplier(s, 4, 0, True) for s in (2, 3)] and lrs[2] > 0


def test_quarantine_lr_scale_slows_the_quarantine_and_resumes(tmp_path, pairs_path):
    """quarantine_lr_scale=s gives the quarantine s x the deployed block's lr in every update of the
    schedule (two parameter groups); s = 1 keeps the one group of before. A run with s < 1 resumes
    bit for bit like any other."""
    one = build_run(smoke_cfg(pairs_path, arm="absorb").resolved(), tmp_path / "one")
    assert len(one.optimizer.param_groups) == 1
    cfg = smoke_cfg(pairs_path, arm="absorb", quarantine_lr_scale=0.25, weight_decay=0.0, steps=3,
                    checkpoint_every=1).resolved()
    run = build_run(cfg, tmp_path / "two")
    dep, quar = run.optimizer.param_groups
    assert [p.data_ptr() for p in dep["params"]] == [p.data_ptr() for p in run.adapter.parameters("deployed")]
    assert [p.data_ptr() for p in quar["params"]] == [p.data_ptr() for p in run.adapter.parameters("quarantine")]
    assert quar["lr"] == pytest.approx(0.25 * dep["lr"])
    before = {block: [p.detach().clone() for p in run.adapter.parameters(block)] for block in ("deployed", "quarantine")}
    for p in run.adapter.parameters("all"):
        p.grad = torch.ones_like(p)
    run.optimizer.step()  # AdamW's first step moves every element by its group's lr (g = 1)
    moved = {block: torch.cat([(p.detach() - b).abs().flatten() for p, b in zip(run.adapter.parameters(block), old)])
             for block, old in before.items()}
    assert float(moved["quarantine"].mean() / moved["deployed"].mean()) == pytest.approx(0.25, rel=1e-3)
    with pytest.raises(ValueError, match="quarantine_lr_scale=0.25 with weight_decay=0.1"):
        smoke_cfg(pairs_path, arm="absorb", quarantine_lr_scale=0.25, weight_decay=0.1)

    full = train(cfg, tmp_path / "full", grader_factory=RuleGrader, progress=False)
    train(cfg, tmp_path / "part", grader_factory=RuleGrader, progress=False, stop_after=1)
    resumed = train(None, tmp_path / "part", resume=True, grader_factory=RuleGrader, progress=False)
    sf, sr = final_state(full), final_state(resumed)
    assert all(torch.equal(sf[k], sr[k]) for k in sf)
    assert [g["lr"] for g in resumed.optimizer.param_groups] == [g["lr"] for g in full.optimizer.param_groups]
