"""Trainer integration on the smoke preset (tiny toy world, real model, real adapter).

The grader is a deterministic rule on the completion text (so every group has reward
variance even though the tiny model cannot solve anything); everything else is real.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from vgrout.env.modes import render_messages
from vgrout.pairs import write_pairs
from vgrout.train import preset
from vgrout.train.loop import generate_batch, grade_batch, train
from vgrout.train.run import build_run
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


@pytest.mark.parametrize("arm", sorted(a for a, cls in __import__("vgrout.train.arms", fromlist=["ARMS"]).ARMS.items()
                                       if not cls.reads_oracle_labels and a not in ("routeA",)))
def test_every_method_arm_trains_bit_identically_under_scrambled_oracle_labels(tmp_path, pairs_path, arm):
    """The oracle-free invariant for every arm but the oracle reference (routeA: the test above)."""
    cfg = smoke_cfg(pairs_path, arm=arm, steps=2)
    a = train(cfg, tmp_path / "a", grader_factory=lambda: RuleGrader(scramble=False), progress=False)
    b = train(cfg, tmp_path / "b", grader_factory=lambda: RuleGrader(scramble=True), progress=False)
    sa, sb = final_state(a), final_state(b)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert read_rows(tmp_path / "a" / "metrics.jsonl") == read_rows(tmp_path / "b" / "metrics.jsonl")


def test_the_oracle_arm_is_the_only_way_labels_reach_the_zones(tmp_path, pairs_path):
    """The oracle reference routes exactly the oracle's hacks: scrambled labels change its training,
    its zones are its labels, and no other arm, and no other module, reads labels for zones."""
    import inspect
    import re

    from vgrout.train import loop, step
    from vgrout.train.arms import ARMS

    assert [a for a, cls in ARMS.items() if cls.reads_oracle_labels] == ["oracle"]
    cfg = smoke_cfg(pairs_path, arm="oracle", steps=2)
    a = train(cfg, tmp_path / "a", grader_factory=lambda: RuleGrader(scramble=False), progress=False)
    b = train(cfg, tmp_path / "b", grader_factory=lambda: RuleGrader(scramble=True), progress=False)
    sa, sb = final_state(a), final_state(b)
    assert any(not torch.equal(sa[k], sb[k]) for k in sa)  # the labels do reach this arm's update
    for row in read_rows(tmp_path / "a" / "diagnostics.jsonl"):
        for z, h, live in zip(row["zone"], row["hack"], row["live"]):
            if live:
                assert z == (2 if h else 1)  # route exactly the hacks, absorb the rest
    src = inspect.getsource(loop)
    assert len(re.findall(r"oracle_zones\(", src)) == 1 and "reads_oracle_labels" in src
    assert "oracle_zones" not in inspect.getsource(step) and "exploited" not in inspect.getsource(step)


# ---- per-block baseline (Config.per_block_baseline) ----------------------------------------
def test_deployed_block_advantages_rule():
    """Per group of 4: routed rows keep r - mean(group); keep/absorb rows are centred on their own
    mean (0 when their rewards are equal); a group with no routed row is returned bit for bit."""
    from vgrout.train.step import deployed_block_advantages, group_advantages

    K, A, R = 0, 1, 2
    rewards = torch.tensor([3.5, 0.5, 0.5, 0.0,    # hack routed: deployed rows 0.5, 0.5, 0.0
                            3.5, 0.5, 0.5, 0.5,    # deployed rows all 0.5: zero variance -> 0
                            3.5, 0.5, 0.0, 3.5,    # no routed row: unchanged
                            0.0, 3.5, 0.5, 3.5])   # three routed, one deployed row -> 0
    zones = torch.tensor([R, K, A, A, R, A, A, K, A, K, A, A, R, R, A, R])
    adv, live = group_advantages(rewards, 4)
    out = deployed_block_advantages(rewards, adv, zones, 4)
    routed = zones == R
    assert torch.equal(out[routed], adv[routed])
    assert torch.equal(out[8:12], adv[8:12])
    assert torch.allclose(out[1:4], torch.tensor([0.5, 0.5, 0.0]) - 1.0 / 3)
    assert torch.equal(out[5:8], torch.zeros(3)) and float(out[14]) == 0.0
    for g in range(4):
        dep = ~routed[4 * g:4 * g + 4]
        assert abs(float(out[4 * g:4 * g + 4][dep].sum())) < 1e-6
    with pytest.raises(ValueError, match="group_size"):
        deployed_block_advantages(rewards[:6], adv[:6], zones[:6], 4)


def _fixed_zone_step(tmp_path, pairs_path, monkeypatch, per_block: bool, zones_of_group: list[int], rewards=None,
                     probe: bool = True):
    """One real optimise step on the smoke run (real rollouts) with fixed zones; returns the
    advantages loss_backward received, the zones, the rewards, the metrics and the adapter after."""
    import vgrout.train.step as step_mod

    cfg = smoke_cfg(pairs_path, arm="absorb", per_block_baseline=per_block)
    monkeypatch.setattr(step_mod, "FENCE_PROMPTS", 1 if probe else 0)
    run = build_run(cfg, tmp_path)
    specs = sample_prompts(run.problems, run.mode_of, 0, cfg.prompts_per_step, cfg.seed, 0.0, cfg.system_prompt)
    rollouts = generate_batch(run, specs, 0)
    n, g = len(rollouts), cfg.group_size
    if rewards is None:
        rewards = ([3.5, 0.5, 0.5, 0.0] * n)[:n]  # every group has variance; the routed row is the 3.5
    z = torch.tensor((zones_of_group * n)[:n], dtype=torch.long)
    seen = {}
    real = step_mod.loss_backward

    def spy(adapter, model, r, adv, zones, *a, **kw):
        seen["adv"], seen["zones"] = adv.detach().cpu().clone(), zones.cpu().clone()
        return real(adapter, model, r, adv, zones, *a, **kw)

    monkeypatch.setattr(step_mod, "loss_backward", spy)
    metrics, record = optimise(run.adapter, run.model, run.optimizer, run.scheduler, run.gate, rollouts, rewards, cfg,
                               zones=z, token_sets=run.token_sets)
    assert n % g == 0 and metrics["rows_live"] == n
    return seen, torch.tensor(rewards), metrics, record, final_state(run)


def test_per_block_baseline_centres_the_deployed_rows_of_each_group(tmp_path, pairs_path, monkeypatch):
    """A real step (smoke model, real rollouts, fixed zones): within each group the advantages
    the deployed block's rows (keep, absorb) trained on sum to zero; routed rows keep r - mean(group)."""
    from vgrout.train.step import group_advantages

    seen, rewards, metrics, record, _ = _fixed_zone_step(tmp_path, pairs_path, monkeypatch, True, [2, 0, 1, 1])
    adv, zones, g = seen["adv"], seen["zones"], 4
    group_adv, _ = group_advantages(rewards, g)
    routed = zones == 2
    assert routed.any() and (~routed).any()
    assert torch.equal(adv[routed], group_adv[routed])
    assert not torch.equal(adv[~routed], group_adv[~routed])  # the baseline did move
    for start in range(0, len(adv), g):
        dep = ~routed[start:start + g]
        assert abs(float(adv[start:start + g][dep].sum())) < 1e-6
    assert abs(metrics["adv_sum_deployed"]) < 1e-5
    assert metrics["adv_sum_deployed_group"] == pytest.approx(float(group_adv[~routed].sum()), abs=1e-5)
    assert metrics["adv_n_route"] + metrics["adv_n_deployed"] == len(adv)
    assert metrics["adv_sum_route"] == pytest.approx(float(group_adv[routed].sum()), abs=1e-5)
    assert torch.equal(record.advantages, group_adv)  # the diagnostics keep the group advantages
    assert math.isfinite(metrics["fence_logp_deployed"]) and math.isfinite(metrics["eos_logp_deployed"])


def test_per_block_baseline_off_is_the_group_baseline_bit_for_bit(tmp_path, pairs_path, monkeypatch):
    """Off, the update trains on r - mean(group) exactly; on, a step whose groups have no routed
    row is bit for bit the same step (same advantages, same adapter after). The first-token probe
    (off in the first of those two steps, on in the second) only adds its metrics."""
    from vgrout.train.step import group_advantages

    off, rewards, m_off, _, state_off = _fixed_zone_step(tmp_path / "off", pairs_path, monkeypatch, False, [2, 0, 1, 1])
    assert torch.equal(off["adv"], group_advantages(rewards, 4)[0])
    assert m_off["adv_sum_deployed"] == m_off["adv_sum_deployed_group"] != 0
    a, _, m_a, _, state_a = _fixed_zone_step(tmp_path / "a", pairs_path, monkeypatch, False, [0, 1, 1, 0], probe=False)
    b, _, m_b, _, state_b = _fixed_zone_step(tmp_path / "b", pairs_path, monkeypatch, True, [0, 1, 1, 0])
    assert torch.equal(a["adv"], b["adv"])
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    fence, eos = m_b.pop("fence_logp_deployed"), m_b.pop("eos_logp_deployed")
    assert fence < 0 and eos < 0 and math.log(math.exp(fence) + math.exp(eos)) <= 1e-6
    strip = lambda m: {k: v for k, v in m.items() if not k.startswith("time")}  # noqa: E731
    assert strip(m_a) == strip(m_b)
