"""overlap_grading: grading in a thread beside the reward-independent forwards gives the same
zones and the same update as the plain step (to float rounding), and a grader error is loud."""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
from pathlib import Path

import pytest
import torch

from vgrout.train.loop import grpo_step, train
from vgrout.train.run import build_run

sys.path.insert(0, str(Path(__file__).parent))
from _rules import RuleGrader  # noqa: E402
from test_train_step import final_state, pairs_path, smoke_cfg  # noqa: E402,F401  (pairs_path: the fixture)

TIMES = {"time_overlapped", "time_grade_wait"}


class HalfFlatGrader(RuleGrader):
    """RuleGrader, except that about half the problems reward every completion alike (zero-variance
    groups), so the live rows are a strict subset of the batch and the precomputed slices matter."""

    def grade(self, requests):
        return [g if sum(map(ord, r.problem.id)) % 2 else dataclasses.replace(g, reward=1.0)
                for r, g in zip(requests, super().grade(requests))]


def run_steps(cfg, run_dir: Path, steps: int) -> tuple[object, list[dict], list[dict]]:
    """`steps` grpo_steps of a fresh run: (run, metrics rows, rollout samples)."""
    run = build_run(cfg, run_dir)
    grader, rows, samples = HalfFlatGrader(), [], []
    for _ in range(steps):
        row, _, sample = grpo_step(run, grader)
        run.step += 1
        rows.append(row)
        samples.append(sample)
    return run, rows, samples


@pytest.mark.parametrize("over", [{"arm": "routeA", "gen_deploy_frac": 0.5}, {"arm": "routeV"}, {"arm": "vanilla"}],
                         ids=lambda o: o["arm"])
def test_overlap_gives_the_same_zones_and_update(tmp_path, pairs_path, over):
    cfg = smoke_cfg(pairs_path, kl_beta=0.05, rollout_samples=1, prompts_per_step=4, **over)
    off, rows_off, s_off = run_steps(cfg, tmp_path / "off", 3)
    on, rows_on, s_on = run_steps(cfg.with_overrides({"overlap_grading": True}), tmp_path / "on", 3)
    assert any(0 < r["rows_live"] < 16 for r in rows_off), "want steps whose live rows are a strict subset"
    for a, b, sa, sb in zip(rows_off, rows_on, s_off, s_on):
        assert sa["texts"] == sb["texts"] and sa["rewards"] == sb["rewards"]  # same samples, same rewards
        assert sa["zones"] == sb["zones"]  # identical gate decisions (None for vanilla)
        if sa["gate_scores"] is not None:
            assert torch.allclose(torch.tensor(sa["gate_scores"]), torch.tensor(sb["gate_scores"]),
                                  atol=1e-5, equal_nan=True)
        for key in ("reward_mean", "rows_live", "zone_keep", "zone_route", "zone_absorb"):
            assert a.get(key) == b.get(key), key
        for key in ("loss", "kl", "grad_norm") if "loss" in a else ():
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-7), key
        assert TIMES <= b.keys() and not TIMES & a.keys()
        assert b["time_grade"] > 0 and b["time_overlapped"] > 0 and b["time_grade_wait"] >= 0
    sa, sb = final_state(off), final_state(on)
    assert all(torch.allclose(sa[k], sb[k], atol=1e-6, rtol=1e-5) for k in sa)
    assert any(not torch.equal(sa[k], final_state(build_run(cfg, tmp_path / "init"))[k]) for k in sa)  # it trained


class FailingGrader(RuleGrader):
    """Grades one call, then raises from the grading thread."""

    def grade(self, requests):
        if self.calls >= 1:
            assert threading.current_thread() is not threading.main_thread()  # it runs beside the forwards
            raise RuntimeError("sandbox exploded")
        return super().grade(requests)


def test_a_grader_error_in_the_thread_propagates(tmp_path, pairs_path):
    cfg = smoke_cfg(pairs_path, arm="routeA", steps=3, overlap_grading=True)
    with pytest.raises(RuntimeError, match="sandbox exploded"):
        train(cfg, tmp_path / "run", grader_factory=FailingGrader, progress=False)
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 1 and TIMES <= json.loads(rows[0]).keys()  # the first step ran and logged the overlap


def test_overlap_is_off_by_default_and_validated(pairs_path):
    assert smoke_cfg(pairs_path).overlap_grading is False
    assert smoke_cfg(pairs_path).with_overrides({"overlap_grading": "true"}).overlap_grading is True
    with pytest.raises(ValueError, match="overlap_grading"):
        smoke_cfg(pairs_path, overlap_grading=1)


def test_precomputed_forwards_of_another_batch_are_refused(tmp_path, pairs_path):
    from vgrout.train.loop import generate_batch, grade_batch
    from vgrout.train.data import sample_prompts
    from vgrout.train.step import optimise, precompute

    cfg = smoke_cfg(pairs_path, arm="routeA")
    run = build_run(cfg, tmp_path)
    specs = sample_prompts(run.problems, run.mode_of, 0, cfg.prompts_per_step, cfg.seed, 0.0, cfg.system_prompt)
    rollouts = generate_batch(run, specs, 0)
    rewards = [g.reward for g in grade_batch(RuleGrader(), specs, rollouts)]
    pre = precompute(run.arm, run.adapter, run.model, rollouts, cfg)
    pre.feats = pre.feats[:-1]  # (N - 1, M, r): not this batch's
    with pytest.raises(ValueError, match="precomputed has"):
        optimise(run.adapter, run.model, run.optimizer, run.scheduler, run.gate, rollouts, rewards, cfg, arm=run.arm,
                 precomputed=pre)
