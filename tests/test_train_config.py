"""Config validation, presets, overrides, schedule and the pure loss/advantage pieces."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from vgrout.train import PRESETS, Config, preset
from vgrout.train.step import group_advantages
from vgrout.train.cli import build_config
from vgrout.train.config import check_rank_fits
from vgrout.train.data import load_problems, unhackable_slots
from vgrout.train.step import grpo_token_loss
from vgrout.train.run import lr_multiplier


@pytest.mark.parametrize("kw,msg", [
    ({"arm": "vanila"}, "arm='vanila'"),
    ({"modes": ("run_test",)}, "unknown mode 'run_test'"),
    ({"placebo_seed": 3}, "placebo_seed=3 replaces a routing direction, but arm=vanilla"),
    ({"arm": "absorb", "placebo_seed": 3}, "arm=absorb has none"),
    ({"unhackable_frac": 1.5}, r"unhackable_frac=1.5 must be a fraction"),
    ({"gen_deploy_frac": -0.1}, "gen_deploy_frac=-0.1"),
    ({"gen_deploy_frac": 0.5}, "only the quarantine arms"),
    ({"tail_q": 0.5}, "tail_q=0.5"),
    ({"group_size": 1}, "group_size=1"),
    ({"warmup_steps": 300}, "warmup_steps=300 must be < steps=300"),
    ({"arm": "routeV", "adapter_init": "antipasto"}, "gradient probe"),
    ({"pair_modes": ("gt_only",)}, "pairs exist only for"),
    ({"difficulties": ("hardd",)}, "unknown difficulty 'hardd'"),
    ({"retain_heal_epochs": 1}, "no quarantine at deploy"),
])
def test_validation_names_the_problem(kw, msg):
    with pytest.raises(ValueError, match=msg):
        Config(**kw)


def test_rank_too_big_for_the_model_is_rejected():
    with pytest.raises(ValueError, match="adapter_r=20 gives 2r=40 > 32"):
        check_rank_fits(20, 32)


def test_presets_build_and_round_trip():
    for name in PRESETS:
        cfg = preset(name)
        assert cfg.preset == name and Config.from_dict(cfg.to_dict()) == cfg
    c = preset("leetcode-4b")
    assert (c.model, c.prompts_per_step, c.group_size, c.max_new_tokens, c.lr, c.steps) == (
        "Qwen/Qwen3-4B", 8, 8, 512, 7e-5, 40)
    with pytest.raises(ValueError, match="unknown preset"):
        preset("full")


def test_overrides_parse_types_and_reject_unknown_fields():
    c = preset("smoke").with_overrides({"lr": "0.01", "modes": "run_tests,sentinel", "cosine": "false", "steps": "7"})
    assert c.lr == 0.01 and c.modes == ("run_tests", "sentinel") and c.cosine is False and c.steps == 7
    with pytest.raises(ValueError, match="unknown config field 'lrr'"):
        c.with_overrides({"lrr": "1"})
    with pytest.raises(ValueError, match="cannot parse"):
        c.with_overrides({"steps": "many"})
    ns = type("A", (), {"preset": "smoke", "set": ["kl_beta=0.5"], "arm": "routeA", "seed": 4})
    c2 = build_config(ns)
    assert (c2.arm, c2.seed, c2.kl_beta) == ("routeA", 4, 0.5)


def test_first_step_updates_and_schedule_ends_near_zero():
    assert lr_multiplier(0, 100, 10, True) > 0
    assert lr_multiplier(10, 100, 10, True) == 1.0
    assert 0 < lr_multiplier(99, 100, 10, True) < 0.01
    assert lr_multiplier(0, 100, 0, True) == 1.0 and lr_multiplier(50, 100, 0, False) == 1.0


def test_dr_grpo_advantage_and_zero_variance_groups():
    adv, live = group_advantages(torch.tensor([0.0, 3.5, 0.5, 0.0, 1.0, 1.0, 1.0, 1.0]), 4)
    assert torch.allclose(adv[:4], torch.tensor([-1.0, 2.5, -0.5, -1.0]))  # r - mean, no std
    assert live.tolist() == [True] * 4 + [False] * 4


def test_loss_is_policy_gradient_on_policy_and_clips_off_policy():
    logp = torch.tensor([[-1.0, -2.0, -3.0]], requires_grad=True)
    mask = torch.tensor([[1, 1, 0]])
    loss, st = grpo_token_loss(logp, logp.detach(), torch.tensor([2.0]), mask, clip=0.2, normaliser=4.0)
    loss.backward()
    assert torch.allclose(logp.grad, torch.tensor([[-0.5, -0.5, 0.0]]))  # -A * mask / normaliser
    assert float(st["ratio"]) == 1.0 and float(st["clipped"]) == 0.0
    old = torch.tensor([[-2.0, -2.0, -2.0]])  # rho = e on token 0: clipped for A > 0
    _, st = grpo_token_loss(logp.detach(), old, torch.tensor([1.0]), mask, clip=0.2, normaliser=1.0)
    assert float(st["clipped"]) == 0.5


def test_k3_kl_is_zero_at_the_reference_and_positive_elsewhere():
    logp = torch.tensor([[-1.0, -2.0]])
    mask = torch.ones(1, 2)
    _, st = grpo_token_loss(logp, logp, torch.zeros(1), mask, clip=0.2, normaliser=1.0, logp_ref=logp, kl_beta=1.0)
    assert float(st["kl"]) == 0.0
    _, st = grpo_token_loss(logp, logp, torch.zeros(1), mask, clip=0.2, normaliser=1.0, logp_ref=logp - 1, kl_beta=1.0)
    assert float(st["kl"]) > 0


def test_unhackable_slots_rotate_with_exact_share():
    seen = set()
    for step in range(4):
        s = unhackable_slots(step, 8, 0.25)
        assert len(s) == 2
        seen |= s
    assert seen == set(range(8))
    assert unhackable_slots(3, 8, 0.0) == set()


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        preset("smoke").lr = 1.0


def test_eval_settings_nest_and_old_flat_configs_still_load():
    c = preset("toy").with_overrides({"eval.temperature": "0.7", "eval_every": "3"})  # dotted and the old flat name
    assert (c.eval.temperature, c.eval.every, c.eval.markers) == (0.7, 3, "train")
    d = c.to_dict()
    assert "eval_temperature" not in d and d["eval"]["temperature"] == 0.7
    assert Config.from_dict(d) == c
    flat = {k: v for k, v in d.items() if k != "eval"} | {f"eval_{k}": v for k, v in d["eval"].items()}
    assert Config.from_dict(flat) == c  # a config.json written before the nesting
    with pytest.raises(ValueError, match="unknown eval setting eval.temp"):
        c.with_overrides({"eval.temp": "1"})
    with pytest.raises(ValueError, match="eval.temperature=0.0 must be > 0"):
        c.with_overrides({"eval.temperature": "0"})
    with pytest.raises(ValueError, match="twice"):
        Config.from_dict({**d, "eval_seed": 1})


def test_dual_clip_bounds_a_negative_advantage_row_with_a_huge_ratio():
    """A keep row whose full-adapter sampling probability dwarfs the deployed block's (rho = e^20)
    with A < 0: PPO alone gives a loss and gradient that scale with rho; the dual clip caps the
    term at c |A| per token with zero gradient."""
    logp = torch.tensor([[-1.0, -2.0, -3.0]], requires_grad=True)
    old = logp.detach() - 20.0  # rho = e^20 on every token
    mask, adv, c = torch.tensor([[1, 1, 0]]), torch.tensor([-2.0]), 3.0
    loss_ppo, _ = grpo_token_loss(logp, old, adv, mask, clip=0.2, normaliser=1.0)
    (g_ppo,) = torch.autograd.grad(loss_ppo, logp)
    assert float(loss_ppo.detach()) > 1e8 and float(g_ppo.abs().max()) > 1e8  # unbounded without the cap
    loss, st = grpo_token_loss(logp, old, adv, mask, clip=0.2, normaliser=1.0, dual_clip=c)
    (g,) = torch.autograd.grad(loss, logp)
    assert float(loss.detach()) == pytest.approx(c * 2.0 * 2)  # c |A| per unmasked token
    assert float(g.abs().max()) == 0.0
    assert float(st["dual_clipped"]) == 1.0 and float(st["ratio"]) > 1e8
    # below the cap the dual clip changes nothing; A > 0 never binds it (PPO's clip does)
    old_small = logp.detach() - 0.5  # rho = e^0.5 < c
    for a in (-2.0, 2.0):
        l0, s0 = grpo_token_loss(logp, old_small, torch.tensor([a]), mask, clip=0.2, normaliser=1.0)
        l1, s1 = grpo_token_loss(logp, old_small, torch.tensor([a]), mask, clip=0.2, normaliser=1.0, dual_clip=c)
        assert torch.equal(l0, l1) and float(s1["dual_clipped"]) == 0.0
    _, st = grpo_token_loss(logp, old, torch.tensor([2.0]), mask, clip=0.2, normaliser=1.0, dual_clip=c)
    assert float(st["dual_clipped"]) == 0.0 and float(st["clipped"]) == 1.0
    with pytest.raises(ValueError, match="dual_clip=0.5 must be > 1"):
        grpo_token_loss(logp, old, adv, mask, clip=0.2, normaliser=1.0, dual_clip=0.5)


def test_dual_clip_leaves_on_policy_rows_bit_identical():
    torch.manual_seed(0)
    logp0 = torch.randn(4, 5) - 2.0
    adv, mask = torch.tensor([-1.5, 0.0, 0.7, -0.2]), torch.ones(4, 5)
    grads, losses = [], []
    for c in (0.0, 3.0):
        logp = logp0.clone().requires_grad_(True)
        loss, _ = grpo_token_loss(logp, logp.detach(), adv, mask, clip=0.2, normaliser=20.0, dual_clip=c,
                                  logp_ref=logp0 - 0.1, kl_beta=0.01)
        loss.backward()
        grads.append(logp.grad)
        losses.append(loss.detach())
    assert torch.equal(losses[0], losses[1]) and torch.equal(grads[0], grads[1])


def test_derived_seeds_differ_per_seed_and_resolve_once():
    a, b = Config(arm="routeA", placebo=True, seed=0).resolved(), Config(arm="routeA", placebo=True, seed=1).resolved()
    assert a.placebo_seed >= 0 and a.adapter_init_seed >= 0
    assert a.placebo_seed != b.placebo_seed and a.adapter_init_seed != b.adapter_init_seed
    assert a.placebo_seed != a.adapter_init_seed
    assert a == Config(arm="routeA", placebo=True, seed=0).resolved() == a.resolved()  # reproducible, idempotent
    assert Config.from_dict(a.to_dict()) == a  # what config.json holds loads back unchanged
    off = Config(arm="routeA", seed=0).resolved()
    assert (off.placebo, off.placebo_seed) == (False, -1)  # no placebo: nothing drawn
    explicit = Config(arm="routeA", placebo_seed=11)  # an explicit seed turns the placebo on and is kept
    assert explicit.placebo and explicit.resolved().placebo_seed == 11
    assert Config(adapter_init_seed=0).resolved().adapter_init_seed == 0  # older configs' fixed init seed
    with pytest.raises(ValueError, match="placebo=true replaces a routing direction, but arm=absorb"):
        Config(arm="absorb", placebo=True)
    with pytest.raises(ValueError, match="dual_clip_c=1.0 must be > 1"):
        Config(dual_clip_c=1.0)


def test_difficulties_keep_only_those_labels(tmp_path):
    """The training set keeps the problems whose own label is listed, and an empty pick fails by name."""
    import json

    from vgrout.env.problems import problem_to_row
    from vgrout.types import Problem

    def prob(i: int, level: str) -> Problem:
        return Problem(id=f"p{i}", statement="Return x.", starter_code="class Solution:\n    def f(self, x: int) -> int:\n        ",
                       entry_point="Solution().f", setup_code="", tests=("assert Solution().f(1) == 1",), difficulty=level)

    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(problem_to_row(prob(i, lv))) + "\n"
                            for i, lv in enumerate(["easy", "hard", "medium", "hard", "easy"])))
    assert {p.id for p in load_problems(str(path), None, 0, 0)} == {f"p{i}" for i in range(5)}
    hard = load_problems(str(path), None, 0, 0, ("hard",))
    assert sorted(p.id for p in hard) == ["p1", "p3"] and all(p.difficulty == "hard" for p in hard)
    assert len(load_problems(str(path), None, 0, 0, ("medium", "hard"))) == 3
    path.write_text(json.dumps(problem_to_row(prob(9, "easy"))) + "\n")
    with pytest.raises(ValueError, match="no training problems .* have difficulty hard .*it has: easy"):
        load_problems(str(path), None, 0, 0, ("hard",))


def test_eval_seed_and_placebo_draws_are_derived_from_the_run_seed():
    a, b = Config(seed=0).resolved(), Config(seed=1).resolved()
    assert a.eval.seed >= 0 and b.eval.seed >= 0 and a.eval.seed != b.eval.seed  # eval noise varies with the seed
    assert a.eval.seed not in (a.adapter_init_seed, a.placebo_seed)
    assert Config.from_dict(a.to_dict()) == a == a.resolved()
    old = Config.from_dict({**Config().to_dict(), "eval": {**Config().eval.to_dict(), "seed": 12345}})
    assert old.resolved().eval.seed == 12345  # an older config.json keeps the seed it ran with
    draws = [Config(arm="routeA", placebo=True, seed=0, placebo_draw=k).resolved().placebo_seed for k in range(3)]
    assert draws[0] == Config(arm="routeA", placebo=True, seed=0).resolved().placebo_seed  # draw 0 unchanged
    assert len(set(draws)) == 3
    with pytest.raises(ValueError, match="placebo_draw=2 picks a placebo direction"):
        Config(arm="routeA", placebo_draw=2)
    with pytest.raises(ValueError, match="eval.seed=-2"):
        Config().with_overrides({"eval.seed": "-2"})


def test_placebo_draws_are_filed_as_their_own_labels():
    from vgrout.rundir import arm_label
    from vgrout.study import arm_config, with_placebo_draws

    assert with_placebo_draws(("routeA", "routeA-placebo", "absorb"), 3) == (
        "routeA", "routeA-placebo", "routeA-placebo1", "routeA-placebo2", "absorb")
    assert with_placebo_draws(("routeA-placebo",), 1) == ("routeA-placebo",)
    base = preset("demo")
    labels = [arm_label(arm_config(base, lab, 0).to_dict()) for lab in ("routeA-placebo", "routeA-placebo1", "oracle")]
    assert labels == ["routeA-placebo", "routeA-placebo1", "oracle"]
    with pytest.raises(ValueError, match="unknown study arm 'absorb-placebo1'"):
        arm_config(base, "absorb-placebo1", 0)


def test_a_removed_setting_loads_at_its_old_default_and_is_refused_otherwise():
    """overlap_grading is gone: a config.json that holds false (every run that used the default) still
    loads as the same run; true, from the file or the command line, is refused with the reason."""
    d = preset("smoke").to_dict()
    assert "overlap_grading" not in d
    assert Config.from_dict({**d, "overlap_grading": False}) == Config.from_dict(d)
    with pytest.raises(ValueError, match="overlap_grading=True: grading beside .* drop the setting"):
        Config.from_dict({**d, "overlap_grading": True})
    assert preset("smoke").with_overrides({"overlap_grading": "false"}) == preset("smoke")
    with pytest.raises(ValueError, match="overlap_grading='true'"):
        preset("smoke").with_overrides({"overlap_grading": "true"})


def test_settings_are_grouped_by_concern_and_a_set_may_name_the_group():
    """Every Config field is in exactly one group (model/adapter, rollout, optimiser, gate, eval,
    run); a group reads back as its own dataclass; `--set optim.lr=` is `--set lr=`, and a field
    named under the wrong group is refused with its own group; config.json keeps the flat names."""
    import dataclasses

    from vgrout.train.config import GROUPS, group_of

    owned = [f.name for name, cls in GROUPS.items() if name != "eval" for f in dataclasses.fields(cls)]
    assert len(owned) == len(set(owned))  # no field in two groups
    assert set(owned) | {"eval"} == {f.name for f in dataclasses.fields(Config)}  # and none outside them
    cfg = preset("demo")
    assert cfg.group("optim").quarantine_lr_scale == 0.1 and cfg.group("gate").tail_q == cfg.tail_q
    assert cfg.group("eval") is cfg.eval and group_of("adapter_r") == "model" and group_of("group_size") == "rollout"
    assert cfg.with_overrides({"optim.lr": "1e-3", "eval.every": "5"}) == cfg.with_overrides({"lr": "1e-3", "eval_every": "5"})
    with pytest.raises(ValueError, match="'lr' is not in the gate group; it is optim.lr"):
        cfg.with_overrides({"gate.lr": "1e-3"})
    with pytest.raises(ValueError, match="unknown config group 'optimiser'"):
        cfg.group("optimiser")
    assert "lr" in cfg.to_dict() and "optim" not in cfg.to_dict()  # on disk: flat, as every run before wrote it
