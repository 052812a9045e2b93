"""`vgrout demo` end to end on the tiny toy world: every default arm x 2 seeds, a report, resume."""

import json

import pytest

from vgrout.demo import DEFAULT_ARMS, run_demo

TINY = {"model": "toy:tiny", "steps": "2", "warmup_steps": "0", "eval_every": "1", "eval_n_problems": "4", "prompts_per_step": "2",
        "group_size": "4", "max_new_tokens": "12", "grader_workers": "1", "buffer_size": "64"}


@pytest.mark.slow
def test_demo_runs_every_arm_and_writes_report(tmp_path, capsys):
    out = tmp_path / "demo"
    report = run_demo(out, DEFAULT_ARMS, (0, 1), dict(TINY), fresh=False)
    text = report.read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "base_eval.json").is_file() and summary["base"] is not None  # the base model, evaluated once
    assert "| base (step 0) | — | 0 |" in text and "deployed valid" in text
    assert list(summary["arms"]) == ["vanilla", "absorb", "gt_only", "oracle", "routeA", "routeA-placebo"]
    for arm in DEFAULT_ARMS:
        assert f"| {arm}" in text and " | 0,1 |" in text  # the arm's row in the per-arm table, over both seeds
        a = summary["arms"][arm]
        assert a["seeds"] == [0, 1] and a["final_step"] == [2]
        for state in ("deployed", "as_trained"):
            assert set(a[state]) == {"hack", "solve", "valid"} and all(0 <= v <= 1 for v in a[state].values())
        # the summary's numbers are the seed means of the runs' own final eval files
        ev = [json.loads((out / f"{arm}_s{s}" / "eval" / "step_000002.json").read_text()) for s in (0, 1)]
        valid = sum(e["states"]["deployed"]["overall"]["format_ok"] / e["states"]["deployed"]["overall"]["n"]
                    for e in ev) / 2
        assert a["deployed"]["valid"] == pytest.approx(valid) and all(e["schema"] == "vgrout.eval/1" for e in ev)
    # each placebo run's own draw, read from its config.json
    plc = [json.loads((out / f"routeA-placebo_s{s}" / "config.json").read_text())["placebo_seed"] for s in (0, 1)]
    assert summary["arms"]["routeA-placebo"]["placebo_seeds"] == plc and min(plc) >= 0
    assert sorted(p.name for p in out.glob("*.png"))  # plots written beside the report
    printed = capsys.readouterr().out
    assert "deployed hack" in printed and "deployed valid" in printed and str(report) in printed
    assert "Findings" in printed and "Base model (before training)" in printed
    # the gate under test is a result: its table, its quality and the oracle reference, labelled
    for arm in ("routeA", "oracle"):  # a gate block wherever the tiny runs' gate scored a live row
        gate = summary["arms"][arm].get("gate")
        assert gate is None or gate["quality"] in ("informative", "uninformative", "inverted", "no scores")
    assert "uses oracle labels: an upper bound" in printed and "gate" in printed
    # deploy scale: the quarantine arms' last evals carry the scaled states, vanilla's do not, and
    # the curve point before the last samples two states (eval.deploy_scales="last")
    states = json.loads((out / "absorb_s0" / "eval" / "step_000002.json").read_text())["states"]
    assert set(states) == {"as_trained", "deployed", "half_quarantine", "quarantine_only"}
    assert set(json.loads((out / "absorb_s0" / "eval" / "step_000001.json").read_text())["states"]) == {
        "as_trained", "deployed"}
    assert set(json.loads((out / "vanilla_s0" / "eval" / "step_000002.json").read_text())["states"]) == {
        "as_trained", "deployed"}
    assert "deploy_scale" in summary["arms"]["absorb"] and "Deploy-scale" in text

    # a second call finds every run finished and only rebuilds the report
    run_demo(out, DEFAULT_ARMS, (0, 1), dict(TINY), fresh=False)
    assert printed.count(": trained") == 10  # every (arm, seed) trained once, but vanilla: absorb's twin
    assert printed.count(": written from absorb_s") == 2
    assert capsys.readouterr().out.count(": cached") == 12  # and reused on the second call
    gt = json.loads((out / "gt_only_s0" / "config.json").read_text())
    assert gt["modes"] == ["gt_only"] and gt["eval"]["modes"] == ["run_tests"]  # trained loophole-free, evaluated hinted


@pytest.mark.slow
def test_demo_branches_arms_from_a_vanilla_prefix(tmp_path, capsys):
    """--fork-at: one vanilla prefix per seed, the routing arms branch from it, gt_only (another
    reward) trains from scratch and the log says why."""
    out = tmp_path / "demo"
    run_demo(out, ("vanilla", "routeA", "gt_only"), (0,), {**TINY, "steps": "3", "eval_every": "3"}, fresh=False,
             fork_at=1)
    printed = capsys.readouterr().out
    assert "prefix_s0 (vanilla to step 1): trained" in printed and "branched from a vanilla prefix at step 1" in printed
    assert "gt_only_s0: trained (from scratch: cannot branch" in printed and "modes" in printed
    start = json.loads((out / "routeA_s0" / "start.json").read_text())
    assert "prefix_s0" in json.dumps(start)


def test_demo_rejects_unknown_arm(tmp_path):
    with pytest.raises(ValueError, match="unknown arm"):
        run_demo(tmp_path / "d", ("vanilla", "nope"), (0,), dict(TINY), fresh=False)


def test_demo_help_names_the_arms_it_runs(capsys):
    from vgrout.cli import main

    for argv in (["demo", "--help"], ["--help"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        out = capsys.readouterr().out
        assert exit_.value.code == 0 and "every arm" not in out
    assert "--arms" in out  # the top-level help names the option that picks the arms


def test_a_fork_past_the_last_step_is_refused_before_any_work(tmp_path):
    """--fork-at at or past the steps is a clear error naming --fork-at 0, raised before the toy world or any run."""
    with pytest.raises(ValueError, match=r"--fork-at 25 must be in \[1, steps=20\); pass --fork-at 0"):
        run_demo(tmp_path / "d", ("vanilla",), (0,), {**TINY, "steps": "20"}, fresh=False, fork_at=25)
    assert not (tmp_path / "d").exists()


def test_demo_and_study_share_one_parser_and_one_runner():
    """`vgrout demo` is `vgrout study` with other defaults: the same flags, each with one meaning."""
    import argparse

    from vgrout import demo, study

    def parser(register):
        sub = argparse.ArgumentParser().add_subparsers(dest="command")
        register(sub)
        return next(iter(sub.choices.values()))

    d, s = parser(demo.register), parser(study.register)
    flags = lambda p: sorted(o for a in p._actions for o in a.option_strings)  # noqa: E731
    assert flags(d) == flags(s)
    assert d.get_default("func") is s.get_default("func") is study.run_from_args
    a, b = d.parse_args(["--seeds", "5"]), s.parse_args(["--seeds", "5"])
    assert study.parse_seeds(a.seeds) == study.parse_seeds(b.seeds) == (0, 1, 2, 3, 4)
    assert study.parse_seeds("5,") == (5,)
    assert d.parse_args([]).out == "runs/demo" and s.parse_args([]).out == "runs/study"
    assert d.parse_args([]).eval_last_only and not s.parse_args([]).eval_last_only
    with pytest.raises(ValueError, match="need at least one seed"):
        study.parse_seeds("0")
