"""Trainer integration on the smoke preset (tiny toy world, real model, real adapter).

The grader is a deterministic rule on the completion text (so every group has reward
variance even though the tiny model cannot solve anything); everything else is real.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from vgrout.env.modes import render_messages
from vgrout.pairs import write_pairs
from vgrout.train import preset
from vgrout.train.loop import generate_batch, grade_batch, train
from vgrout.train.setup import build_run
from vgrout.train.data import sample_prompts
from vgrout.train.step import optimise
from vgrout.types import HackPair


from _rules import RuleGrader  # noqa: E402


@pytest.fixture(scope="session")
def pairs_path(tmp_path_factory) -> Path:
    """A few authored-style pairs on toy prompts (written with the env's own renderer)."""
    from vgrout.toy import TOY_SYSTEM_PROMPT, toy_world

    probs = toy_world("tiny", progress=False).problems("heldout")[:3]
    pairs = []
    for i, p in enumerate(probs):
        msgs = render_messages(p, "run_tests", system_prompt=TOY_SYSTEM_PROMPT)
        name = p.entry_point.split(".")[-1]
        pairs.append(HackPair(
            id=f"t{i}", mode="run_tests", messages=tuple(msgs),
            hack=f"```python\nclass Solution:\n    def {name}(self, x):\n        return 0\n\ndef run_tests():\n    pass\n```",
            clean=f"```python\nclass Solution:\n    def {name}(self, x):\n        return x + {i}\n```"))
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    write_pairs(pairs, path)
    return path


def smoke_cfg(pairs_path: Path, **kw):
    return preset("smoke").with_overrides({"pairs": str(pairs_path), "steps": 4, **kw})


def final_state(run) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in run.adapter.state_dict().items()}


def read_rows(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith("time_")} for r in rows]


ARMS = [
    {"arm": "vanilla"}, {"arm": "absorb", "gen_deploy_frac": 0.5}, {"arm": "routeA", "gen_deploy_frac": 0.5},
    {"arm": "routeA", "placebo_seed": 3}, {"arm": "routeV"}, {"arm": "routeV", "placebo_seed": 1}, {"arm": "erase"},
    {"arm": "absorb", "adapter_init": "scorda"},
]


@pytest.mark.parametrize("over", ARMS, ids=lambda o: "-".join(f"{v}" for v in o.values()))
def test_one_step_of_every_arm_updates_the_adapter(tmp_path, pairs_path, over):
    run = train(smoke_cfg(pairs_path, steps=1, **over), tmp_path / "run", grader_factory=RuleGrader, progress=False)
    row = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert row["rows_live"] > 0 and not row.get("skipped")
    moved = [float((layer.deployed.A - layer.deployed.A0).detach().abs().max()) if hasattr(layer.deployed, "A") else 0.0
             for layer in run.adapter.layers.values()]
    assert max(moved) > 0, "the deployed block did not move"
    state = json.loads((tmp_path / "run" / "checkpoints" / "step_000001" / "state.json").read_text())
    assert state == {"step": 1, "arm": over["arm"], "deploys": run.arm.deploys}
    for k in ("reward_mean", "grad_norm", "qmass", "lr", "zone_keep", "zone_absorb", "zone_route", "kl"):
        assert k in row
    diag = json.loads((tmp_path / "run" / "diagnostics.jsonl").read_text().splitlines()[0])
    assert "hack_rate" in diag and "hack_rate" not in row and "gate_auroc" in diag


def test_erase_real_step_leaves_the_deployed_change_orthogonal_to_v(tmp_path, pairs_path):
    """A real erase step (generation, grading, KL, clip, AdamW, decay toward init): per module,
    v^T dA = 0 and dB v = 0 for the deployed block, and the quarantine never moves (rank r trains)."""
    cfg = smoke_cfg(pairs_path, arm="erase", weight_decay=0.1, kl_beta=0.01)
    run = build_run(cfg, tmp_path)
    before = final_state(run)
    for step in range(2):
        specs = sample_prompts(run.problems, run.mode_of, step, cfg.prompts_per_step, cfg.seed, 0.0, cfg.system_prompt)
        rollouts = generate_batch(run, specs, step)
        rewards = [g.reward for g in grade_batch(RuleGrader(), specs, rollouts)]
        metrics, _ = optimise(run.adapter, run.model, run.optimizer, run.scheduler, run.gate, rollouts, rewards, cfg,
                              arm=run.arm)
        assert metrics["rows_live"] > 0 and metrics["zone_keep"] == 1.0
    after = run.adapter.state_dict()
    v = run.gate.direction / run.gate.direction.norm(dim=1, keepdim=True)  # (M, r)
    for m, name in enumerate(run.adapter.layers):
        dA = after[f"{name}.deployed.A"] - before[f"{name}.deployed.A"]
        dB = after[f"{name}.deployed.B"] - before[f"{name}.deployed.B"]
        scale = float(dA.abs().max()) + float(dB.abs().max())
        assert scale > 0, f"{name}: the deployed block did not move"
        assert float((v[m] @ dA).abs().max()) <= 1e-5 * scale, name
        assert float((dB @ v[m]).abs().max()) <= 1e-5 * scale, name
    assert all(torch.equal(before[k], after[k]) for k in before if ".quarantine." in k)


@pytest.mark.parametrize("zone,moves,still", [(2, "quarantine", "deployed"), (0, "deployed", "quarantine")])
def test_route_rows_change_only_quarantine_and_keep_rows_only_deployed(tmp_path, pairs_path, zone, moves, still):
    """Inside a real step (generation, grading, advantage, KL, clip, AdamW, decay toward init)."""
    cfg = smoke_cfg(pairs_path, arm="absorb", gen_deploy_frac=0.5, weight_decay=0.1, kl_beta=0.01)
    run = build_run(cfg, tmp_path)
    before = final_state(run)
    specs = sample_prompts(run.problems, run.mode_of, 0, cfg.prompts_per_step, cfg.seed, 0.0, cfg.system_prompt)
    rollouts = generate_batch(run, specs, 0)
    rewards = [g.reward for g in grade_batch(RuleGrader(), specs, rollouts)]
    z = torch.full((len(rollouts),), zone, dtype=torch.long)
    metrics, _ = optimise(run.adapter, run.model, run.optimizer, run.scheduler, run.gate, rollouts, rewards, cfg, zones=z)
    after = run.adapter.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed, "nothing trained"
    assert all(f".{moves}." in k for k in changed), sorted(changed)[:4]
    assert not any(f".{still}." in k for k in changed)
    assert metrics["grad_norm_" + still] == 0.0


def test_scrambling_oracle_labels_leaves_training_bit_identical(tmp_path, pairs_path):
    cfg = smoke_cfg(pairs_path, arm="routeA", steps=3, gen_deploy_frac=0.5)
    a = train(cfg, tmp_path / "a", grader_factory=lambda: RuleGrader(scramble=False), progress=False)
    b = train(cfg, tmp_path / "b", grader_factory=lambda: RuleGrader(scramble=True), progress=False)
    sa, sb = final_state(a), final_state(b)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert read_rows(tmp_path / "a" / "metrics.jsonl") == read_rows(tmp_path / "b" / "metrics.jsonl")
    assert read_rows(tmp_path / "a" / "diagnostics.jsonl") != read_rows(tmp_path / "b" / "diagnostics.jsonl")


def test_resume_after_kill_mid_checkpoint_equals_uninterrupted(tmp_path, pairs_path):
    cfg = smoke_cfg(pairs_path, arm="routeA", steps=4, checkpoint_every=2, gen_deploy_frac=0.5, refresh_every=3)
    full = train(cfg, tmp_path / "full", grader_factory=RuleGrader, progress=False)
    part_dir = tmp_path / "part"
    train(cfg, part_dir, grader_factory=RuleGrader, progress=False, stop_after=3)  # ckpt at 2, step 3 logged
    # a kill during the step-4 checkpoint write: a half-written temp dir and a torn metrics line
    torn = part_dir / "checkpoints" / ".tmp-step_000004-99999"
    torn.mkdir()
    (torn / "adapter.safetensors").write_bytes(b"\x00garbage")
    with open(part_dir / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "reward_mea')
    resumed = train(None, part_dir, resume=True, grader_factory=RuleGrader, progress=False)
    assert resumed.step == 4 and not torn.exists()
    sf, sr = final_state(full), final_state(resumed)
    assert all(torch.equal(sf[k], sr[k]) for k in sf)
    assert read_rows(tmp_path / "full" / "metrics.jsonl") == read_rows(part_dir / "metrics.jsonl")
    of, orr = full.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(of[i]["exp_avg_sq"], orr[i]["exp_avg_sq"]) for i in of)
    assert torch.equal(full.gate.buffer.features, resumed.gate.buffer.features)


def test_existing_run_dir_needs_resume_or_overwrite(tmp_path, pairs_path):
    cfg = smoke_cfg(pairs_path, steps=1)
    train(cfg, tmp_path / "r", grader_factory=RuleGrader, progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg, tmp_path / "r", grader_factory=RuleGrader, progress=False)
    train(dataclasses.replace(cfg, seed=1), tmp_path / "r", overwrite=True, grader_factory=RuleGrader, progress=False)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["seed"] == 1
