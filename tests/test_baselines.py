"""Baselines the field compares against (issue 14): the inoculation arm, the relearning attack,
branching at onset in `vgrout study`, and the oracle-selected early-stopping reference.

Real runs on the tiny toy world (smoke preset, 1-2 steps, 4 held-out problems): each test is seconds.
"""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from vgrout.report.baselines import oracle_early_stop, section_early_stop
from vgrout.study import fork_mismatch, parse_seeds, run_study
from vgrout.train.config import preset

TINY = {"steps": "2", "eval.every": "1", "eval.n_problems": "4", "max_new_tokens": "12"}


def _cfg(**over):
    return preset("smoke").with_overrides({**TINY, **over})


def _train(cfg, run_dir, **kw):
    from vgrout.train.loop import train

    return train(cfg, run_dir, progress=False, **kw)


# ---- 1. inoculation -------------------------------------------------------------------------
def test_inoculation_instruction_is_in_training_prompts_only(tmp_path, monkeypatch):
    import vgrout.train.loop as loop
    from vgrout.env.modes import SYSTEM_PROMPT
    from vgrout.pairs import load_pairs

    cfg = _cfg(arm="inoculation", steps="1")
    line = cfg.inoculation_prompt
    assert "tests" in line and line.strip()
    seen: list[list[dict]] = []
    real_generate = loop.generate

    def spy(model, tok, messages, **kw):  # the training sampler's prompts; the real model still generates
        seen.extend(messages)
        return real_generate(model, tok, messages, **kw)

    monkeypatch.setattr(loop, "generate", spy)
    run = _train(cfg, tmp_path / "inoc")
    assert run.step == 1 and (tmp_path / "inoc" / "checkpoints" / "step_000001" / "state.json").is_file()
    systems = [m["content"] for msgs in seen for m in msgs if m["role"] == "system"]
    assert systems and all(s.endswith(line) for s in systems)  # every training prompt carries the instruction
    # the held-out eval used the normal system prompt (recorded as a hash in the eval file)
    ev = json.loads((tmp_path / "inoc" / "eval" / "step_000001.json").read_text())
    normal = cfg.system_prompt or SYSTEM_PROMPT
    assert ev["settings"]["system_prompt_sha256"] == hashlib.sha256(normal.encode()).hexdigest()[:16]
    assert ev["settings"]["system_prompt_sha256"] != hashlib.sha256(systems[0].encode()).hexdigest()[:16]
    assert not any(line in m["content"] for p in load_pairs(cfg.pairs) for m in p.messages)
    # everything else is vanilla: the whole adapter deploys
    assert json.loads((tmp_path / "inoc" / "checkpoints" / "step_000001" / "state.json").read_text())["deploys"] == \
        "whole adapter"


def test_inoculation_needs_its_instruction():
    with pytest.raises(ValueError, match="inoculation_prompt"):
        _cfg(arm="inoculation", inoculation_prompt="  ")


# ---- 2. relearning attack ---------------------------------------------------------------------
def test_relearn_two_steps_writes_its_file_and_the_report_row(tmp_path):
    from vgrout.relearn import relearn_run
    from vgrout.report.compare import build_report

    run_dir = tmp_path / "absorb_s0"
    _train(_cfg(arm="absorb"), run_dir)
    # two tiny steps barely move the quarantine: give it a trained-looking value so ablation shows
    final = run_dir / "checkpoints" / "step_000002" / "adapter.safetensors"
    trained = load_file(final)
    q = [k for k in trained if ".quarantine." in k and not k.endswith("0")]
    with safe_open(final, "pt") as f:
        meta = f.metadata()
    save_file({k: (v + 0.5 if k in q else v) for k, v in trained.items()}, final, metadata=meta)
    trained = load_file(final)
    entry = relearn_run(run_dir, 2, start="deployed", every=1, n_problems=4)
    relearn_run(run_dir, 2, start="base", every=1, n_problems=4)
    doc = json.loads((run_dir / "relearn" / "relearn.json").read_text())
    assert doc["schema"] == "vgrout.relearn/1" and set(doc["starts"]) == {"deployed", "base"}
    assert [p["step"] for p in entry["curve"]] == [0, 1, 2]  # held-out eval at the start and after every step
    assert [p["step"] for p in entry["train_hack"]] == [1, 2]
    assert entry["quarantine_ablated"] and entry["steps_to_threshold"] in (None, 0, 1, 2)
    # the attack starts from the deployed model: the quarantine at its init, the deployed block as trained
    start = load_file(run_dir / "relearn" / "deployed" / "checkpoints" / "step_000000" / "adapter.safetensors")
    assert q and all(torch.equal(start[k], start[k + "0"]) for k in q)
    assert not any(torch.equal(trained[k], trained[k + "0"]) for k in q)
    d = [k for k in start if ".deployed." in k]
    assert all(torch.equal(start[k], trained[k]) for k in d)
    text = build_report([run_dir], tmp_path / "report.md").read_text()
    section = text.split("## Relearning attack", 1)[1].split("\n## ", 1)[0]
    assert "| base model (reference) | base | 0 |" in section
    assert "| absorb | deployed | 0 |" in section
    row = next(line for line in section.splitlines() if line.startswith("| absorb | deployed"))
    last = entry["curve"][-1]  # hack, solve and valid after the attack, in that order
    assert f"| {last['hack']:.3f} | {last['solve']:.3f} | {last['valid']:.3f} |" in row, row
    from vgrout.report.baselines import summary
    from vgrout.report.runs import group_by_arm, load_run

    block = summary(group_by_arm([load_run(run_dir)]), ["absorb"])["relearn"]
    assert block["arms"]["absorb"]["deployed"]["seeds"] == [0] and block["base"]["verdict"] == "reference"
    assert block["arms"]["absorb"]["deployed"]["hack_at_start"] == entry["curve"][0]["hack"]


# ---- 3. the study: branching at onset, resume ---------------------------------------------------
def test_study_forks_every_arm_from_one_prefix_and_resumes(tmp_path, capsys):
    out = tmp_path / "study"
    over = {**TINY, "max_new_tokens": "12"}
    # jobs=1: the runs in this process (worker processes give the same results: test_study_jobs.py)
    report = run_study(out, "smoke", ("vanilla", "routeA"), (0,), dict(over), fork_at=1, relearn_steps=1,
                       relearn_every=1, relearn_n_problems=4, jobs=1)
    first = capsys.readouterr().out
    assert first.count(": trained") == 3  # the prefix and two branches
    prefix = out / "prefix_s0" / "checkpoints" / "step_000001" / "adapter.safetensors"
    for arm in ("vanilla", "routeA"):
        start = json.loads((out / f"{arm}_s0" / "start.json").read_text())
        assert start["trainer_state"] and start["checkpoint"].endswith("prefix_s0/checkpoints/step_000001")
        rows = [json.loads(r) for r in (out / f"{arm}_s0" / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in rows] == [1]  # the branch trained only after the fork
        a, b = load_file(prefix), load_file(out / f"{arm}_s0" / "checkpoints" / "step_000001" / "adapter.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a)  # it started from the prefix's weights
        assert (out / f"{arm}_s0" / "relearn" / "relearn.json").is_file()
    text = report.read_text()
    assert "forked from prefix_s0 at step 1" in text and "## Relearning attack" in text
    assert "Oracle-selected early stopping (a reference, not a method)" in text
    # a second call trains nothing
    run_study(out, "smoke", ("vanilla", "routeA"), (0,), dict(over), fork_at=1, relearn_steps=1, relearn_every=1,
              relearn_n_problems=4, jobs=1)
    second = capsys.readouterr().out
    assert ": trained" not in second and ": resumed" not in second and second.count(": cached") == 3


def test_fork_refuses_arms_whose_adapter_init_or_data_differ():
    from vgrout.study import arm_config

    base = preset("smoke")
    prefix = arm_config(base, "vanilla", 0)
    assert fork_mismatch(prefix, arm_config(base, "routeA-placebo", 0)) == []
    assert fork_mismatch(prefix, arm_config(base, "inoculation", 0)) == []
    assert any("adapter_init" in d for d in fork_mismatch(prefix, arm_config(base, "absorb+scorda", 0)))
    assert any("modes" in d for d in fork_mismatch(prefix, arm_config(base, "gt_only", 0)))
    assert arm_config(base, "routeA-placebo", 3).placebo_seed != arm_config(base, "routeA-placebo", 4).placebo_seed
    assert parse_seeds("5") == (0, 1, 2, 3, 4) and parse_seeds("2,7") == (2, 7)


# ---- 4. oracle-selected early stopping -------------------------------------------------------------
def test_early_stop_picks_lowest_hack_within_tolerance_of_best_solve():
    curve = [{"step": 0, "hack": 0.02, "solve": 0.50, "valid": 1.0},
             {"step": 20, "hack": 0.10, "solve": 0.62, "valid": 1.0},
             {"step": 40, "hack": 0.30, "solve": 0.66, "valid": 1.0},  # best solve
             {"step": 60, "hack": 0.90, "solve": 0.64, "valid": 1.0}]
    pick = oracle_early_stop(curve)
    assert pick["step"] == 20 and pick["best_solve"] == 0.66  # 0.62 is within 0.05 of 0.66; 0.50 is not
    assert oracle_early_stop(curve, tolerance=0.0)["step"] == 40
    assert oracle_early_stop(curve, tolerance=0.2)["step"] == 0
    tie = [{"step": 5, "hack": 0.1, "solve": 0.5}, {"step": 2, "hack": 0.1, "solve": 0.5}]
    assert oracle_early_stop(tie)["step"] == 2  # ties go to the earliest checkpoint
    with pytest.raises(ValueError, match="at least one"):
        oracle_early_stop([])
    assert "No vanilla run" in "\n".join(section_early_stop({}))


def test_a_vanilla_branch_is_the_uninterrupted_vanilla_run(tmp_path):
    """Fork exactness with rewards that vary (the rule grader): prefix to step 1, then branch.
    A branch killed before its start checkpoint resumes from start.json, not from the init."""
    from _rules import RuleGrader

    from vgrout.train.run import StartFrom, write_run_dir

    cfg = preset("smoke").with_overrides({"steps": "3", "max_new_tokens": "12"})
    full = _train(cfg, tmp_path / "full", grader_factory=RuleGrader)
    _train(cfg.with_overrides({"checkpoint_every": "1"}), tmp_path / "prefix", grader_factory=RuleGrader, stop_after=1)
    start = StartFrom((tmp_path / "prefix" / "checkpoints" / "step_000001").resolve())
    branch = _train(cfg, tmp_path / "branch", grader_factory=RuleGrader, start=start)
    a, b = full.adapter.state_dict(), branch.adapter.state_dict()
    assert any(not torch.equal(v, a[k.replace(".A", ".A0")]) for k, v in a.items() if k.endswith(".A"))  # it trained
    assert all(torch.equal(a[k], b[k]) for k in a)
    routed = _train(cfg.with_overrides({"arm": "routeA"}), tmp_path / "routeA", grader_factory=RuleGrader, start=start)
    assert routed.direction_info["step"] == 1  # the direction is read from the forked weights
    assert not all(torch.equal(a[k], v) for k, v in routed.adapter.state_dict().items())
    # killed after write_run_dir, before the start checkpoint: the resume applies start.json
    write_run_dir(cfg, tmp_path / "killed", start)
    resumed = _train(None, tmp_path / "killed", resume=True, grader_factory=RuleGrader)
    r = resumed.adapter.state_dict()
    assert all(torch.equal(a[k], r[k]) for k in a)


def test_attack_config_from_a_placebo_run_is_plain_vanilla():
    """A placebo run's attacker is vanilla GRPO: no routing direction, so no placebo either."""
    from vgrout.relearn import attack_config
    from vgrout.train.config import validate

    for draw in (0, 2):  # the seed's first placebo draw and a further one (routeA-placebo2)
        src = preset("smoke").with_overrides({"arm": "routeA", "placebo": True, "placebo_draw": draw}).resolved()
        cfg = attack_config(src, steps=2, every=1, n_problems=2)
        assert (cfg.arm, cfg.placebo, cfg.placebo_seed, cfg.placebo_draw) == ("vanilla", False, -1, 0)
        validate(cfg)
