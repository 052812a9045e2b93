"""`vgrout demo` end to end on the tiny toy world: every default arm x 2 seeds, a report, resume."""

import json

import pytest

from vgrout.demo import DEFAULT_ARMS, run_demo

TINY = {"model": "toy:tiny", "steps": "2", "warmup_steps": "0", "eval_every": "2", "eval_n_problems": "4", "prompts_per_step": "2",
        "group_size": "4", "max_new_tokens": "12", "grader_workers": "1", "buffer_size": "64"}


@pytest.mark.slow
def test_demo_runs_every_arm_and_writes_report(tmp_path, capsys):
    out = tmp_path / "demo"
    report = run_demo(out, DEFAULT_ARMS, (0, 1), dict(TINY), fresh=False)
    text = report.read_text()
    for arm in ("vanilla", "routeA", "routeA-placebo", "absorb"):
        assert f"| {arm} | 0,1 |" in text  # the arm's row in the per-arm table, over both seeds
        for seed in (0, 1):
            ev = json.loads((out / f"{arm}_s{seed}" / "eval" / "step_000002.json").read_text())
            assert ev["schema"] == "vgrout.eval/1"
    assert sorted(p.name for p in out.glob("*.png"))  # plots written beside the report
    printed = capsys.readouterr().out
    assert "deployed hack" in printed and str(report) in printed

    # a second call finds every run finished and only rebuilds the report
    run_demo(out, DEFAULT_ARMS, (0, 1), dict(TINY), fresh=False)
    assert printed.count(": trained") == 8  # every (arm, seed) trained once
    assert capsys.readouterr().out.count(": cached") == 8  # and reused on the second call


def test_demo_rejects_unknown_arm(tmp_path):
    with pytest.raises(SystemExit, match="unknown arm"):
        run_demo(tmp_path / "d", ("vanilla", "nope"), (0,), dict(TINY), fresh=False)
