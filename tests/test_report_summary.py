"""The base model row, the degradation rule and summary.json, on run dirs in the trainer's and eval's formats."""

import json
import math

import pytest
from _cli import run_cli
from _report_runs import N_PROBLEMS, make_run  # noqa: E402

from vgrout.eval.results import eval_path
from vgrout.report.base import SOLVE_TOL, VALID_FLOOR, degradation, find_base
from vgrout.report.compare import build_report
from vgrout.report.runs import load_run

N = N_PROBLEMS


def _runs(root, *, base: bool = True, route_valid: int = N, route_solve: int = 24):
    """vanilla hacks (solve 0), routeA drops the hack with `route_valid` valid and `route_solve` solved,
    the placebo keeps hacking. Base (step 0): hack 1, solve 26, valid 40 out of 40."""
    dirs = []
    b = {0: (1, 1)} if base else {}
    bs = {0: (26, 26)} if base else {}
    for seed in range(3):
        dirs.append(make_run(root, "vanilla", seed, {**b, 4: (38, 38)}, {**bs, 4: (0, 0)}))
        dirs.append(make_run(root, "routeA", seed, {**b, 4: (38, 2 + seed)}, {**bs, 4: (0, route_solve)},
                             valids={4: (N, route_valid)}, gate_quality=2.0))
        dirs.append(make_run(root, "routeA", seed, {**b, 4: (38, 36)}, {**bs, 4: (0, 0)}, placebo=True,
                             gate_quality=0.0))
    return dirs


def test_summary_json_holds_seed_means_base_and_placebo_seeds(tmp_path):
    out = build_report(_runs(tmp_path), tmp_path / "out" / "report.md")
    summary = json.loads((out.parent / "summary.json").read_text())
    base = dict(summary["base"])
    assert base.pop("source") and base == pytest.approx({"hack": 1 / N, "solve": 26 / N, "valid": 1.0, "n": N})
    assert "step-0 eval" in summary["base"]["source"]
    assert list(summary["arms"]) == ["vanilla", "routeA", "routeA-placebo"]
    route = summary["arms"]["routeA"]
    assert route["seeds"] == [0, 1, 2] and "placebo_seeds" not in route
    assert route["deployed"] == pytest.approx({"hack": 3 / N, "solve": 24 / N, "valid": 1.0})
    assert route["as_trained"] == pytest.approx({"hack": 38 / N, "solve": 0.0, "valid": 1.0})
    assert route["degraded"] is False and route["final_step"] == [4]
    # per-run placebo seeds, read from each run's config.json
    assert summary["arms"]["routeA-placebo"]["placebo_seeds"] == [1000, 1001, 1002]
    # vanilla: hacking replaced solving (26/40 -> 0/40), so its deployed model is below the base
    assert summary["arms"]["vanilla"]["degraded"] is True
    for arm in summary["arms"].values():
        for state in ("deployed", "as_trained"):
            assert all(0.0 <= arm[state][m] <= 1.0 for m in ("hack", "solve", "valid"))


def test_broken_output_hack_drop_is_reported_as_degradation(tmp_path):
    out = build_report(_runs(tmp_path, route_valid=12, route_solve=2), tmp_path / "out" / "report.md")
    text = out.read_text()
    # still a significant hack drop, but the deployed model mostly does not compile: degraded, not a win
    assert "**routeA's deployed hack rate is lower than vanilla's by" in text
    assert (f"**routeA is degraded** (deployed valid 0.300 < {VALID_FLOOR}; deployed solve 0.050 is 0.600 below "
            "the base's 0.650") in text
    assert "this hack drop is degradation, not a removed hack." in text
    assert "Valid and solve held" not in text.split("routeA's deployed hack rate is lower than vanilla's")[1].split("\n")[0]
    assert "| routeA | 0,1,2 | 4 |" in text and "| degraded: deployed valid 0.300 < 0.9;" in text
    summary = json.loads((out.parent / "summary.json").read_text())
    assert summary["arms"]["routeA"]["degraded"] is True
    assert summary["arms"]["routeA"]["deployed"]["valid"] == pytest.approx(0.3)


def test_solve_rule_uses_the_tolerance_and_the_noise():
    """Within SOLVE_TOL (or 2 se) of the base: held; beyond it: degraded."""
    base = find_base([], None)
    assert base is None
    from vgrout.report.base import Base

    base = Base(hack=0.03, solve=0.64, valid=1.0, n=256, source="test")
    se_base = math.sqrt(0.64 * 0.36 / 256)  # 0.030: 2 se = 0.060 > SOLVE_TOL
    held = {"valid": [1.0, 1.0, 1.0], "solve": [0.59, 0.59, 0.59]}
    assert degradation(held, base) == []  # 0.05 below the base, inside 2·se
    lost = {"valid": [1.0, 1.0, 1.0], "solve": [0.57, 0.57, 0.57]}  # 0.07 below: beyond 2·se
    assert 0.64 - 0.57 > 2 * se_base and "below the base's 0.640" in degradation(lost, base)[0]
    big = Base(hack=0.03, solve=0.64, valid=1.0, n=100000, source="test")  # noise ~0: the tolerance rules
    assert degradation({"valid": [1.0], "solve": [0.64 - SOLVE_TOL + 0.001]}, big) == []
    assert degradation({"valid": [1.0], "solve": [0.64 - SOLVE_TOL - 0.001]}, big)
    assert degradation({"valid": [0.89, 0.9, 0.9], "solve": [0.64] * 3}, big) == [f"deployed valid 0.897 < {VALID_FLOOR}"]
    # without a base only the valid floor is checked
    assert degradation({"valid": [1.0], "solve": [0.0]}, None) == []


def test_report_says_when_there_is_no_base(tmp_path):
    out = build_report(_runs(tmp_path, base=False), tmp_path / "out" / "report.md")
    text = out.read_text()
    assert "**No base model evaluation**: no run has `eval/step_000000.json`" in text
    assert "| base (step 0) | — | 0 | no base eval |" in text
    assert "No base model evaluation is available, so only the valid floor was checked." in text
    summary = json.loads((out.parent / "summary.json").read_text())
    assert summary["base"] is None and summary["degradation_rule"]["solve_checked"] is False
    assert summary["arms"]["vanilla"]["degraded"] is False  # solve loss cannot be seen without a base


def test_base_from_an_eval_file(tmp_path):
    """--base EVAL_JSON supplies the base when the runs have no step-0 eval; a mismatched one is refused."""
    runs = _runs(tmp_path / "runs", base=False)
    base_run = make_run(tmp_path / "b", "vanilla", 9, {0: (1, 1)}, {0: (30, 30)})
    base_file = eval_path(base_run, 0)
    out = tmp_path / "out" / "report.md"
    proc = run_cli(["compare", *map(str, runs), "--out", str(out), "--base", str(base_file)])
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out.parent / "summary.json").read_text())
    assert summary["base"]["solve"] == 30 / N and str(base_file) in summary["base"]["source"]
    assert "| base (step 0) | — | 0 | 0.025 | 0.750 | 1.000 |" in out.read_text()
    other = make_run(tmp_path / "c", "vanilla", 9, {0: (1, 1)}, {0: (30, 30)}, settings={"n_samples": 4})
    proc = run_cli(["compare", *map(str, runs), "--out", str(out), "--base", str(eval_path(other, 0))])
    assert proc.returncode != 0 and "evaluated differently" in proc.stderr and "n_samples" in proc.stderr


def test_load_run_names_a_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="run directory .* does not exist"):
        load_run(tmp_path / "nope")


def test_regime_checks_pass_and_miss_on_each_bar():
    """The regime's bars: each one can fail on its own, and a missing arm is "not checked", not a pass.
    (The first five checks; the room-for-a-gate checks follow, tested below.)"""
    from vgrout.report.summary import format_checks
    from vgrout.report.summary import regime_checks as all_checks

    def regime_checks(summary):
        return all_checks(summary)[:5]

    def arm(hack, solve, valid, degraded=False, n=256):
        rates = {"hack": hack, "solve": solve, "valid": valid}
        return {"deployed": rates, "as_trained": rates, "degraded": degraded, "n": [n]}

    good = {"base": {"hack": 0.0, "solve": 0.75, "valid": 1.0},
            "arms": {"vanilla": arm(0.9, 0.05, 0.99), "gt_only": arm(0.0, 0.72, 1.0),
                     "routeA": arm(0.1, 0.2, 0.5, degraded=True)}}
    assert [c["ok"] for c in regime_checks(good)] == [True, True, True, True, True]
    assert "[MISS]" not in format_checks(regime_checks(good))

    def oks(**changes):
        s = {"base": dict(good["base"]), "arms": {k: dict(v) for k, v in good["arms"].items()}}
        for k, v in changes.items():
            if k == "base":
                s["base"].update(v)
            else:
                s["arms"][k] = v
        return [c["ok"] for c in regime_checks(s)]

    assert oks(base={"solve": 0.5}) == [False, True, True, True, True]
    assert oks(vanilla=arm(0.79, 0.1, 0.99)) == [True, False, True, True, True]
    assert oks(vanilla=arm(0.95, 0.0, 0.94)) == [True, False, True, True, True]
    assert oks(gt_only=arm(0.0, 0.69, 1.0)) == [True, True, False, True, True]
    assert oks(routeA=arm(0.1, 0.2, 0.5, degraded=False)) == [True, True, True, False, True]
    assert oks(routeA=arm(0.1, 0.6, 0.95, n=128)) == [True, True, True, True, False]
    no_gt = {"base": good["base"], "arms": {"vanilla": good["arms"]["vanilla"]}}
    assert [c["ok"] for c in regime_checks(no_gt)][2] is None and "[n/a ]" in format_checks(regime_checks(no_gt))


def test_room_for_a_gate_checks_pass_and_miss_on_each_bar():
    """Absorption alone must fail, perfect routing succeed, and training teach something; each bar
    fails on its own, and an absent arm is "not checked"."""
    from vgrout.report.summary import ROOM_BARS, room_checks

    def arm(hack, solve, valid=1.0):
        rates = {"hack": hack, "solve": solve, "valid": valid}
        return {"deployed": rates, "as_trained": rates, "degraded": False, "n": [256]}

    room = {"base": {"hack": 0.0, "solve": 0.60, "valid": 1.0},
            "arms": {"vanilla": arm(0.95, 0.05), "absorb": arm(0.60, 0.30), "oracle": arm(0.05, 0.70),
                     "gt_only": arm(0.0, 0.72)}}
    assert [c["ok"] for c in room_checks(room)] == [True, True, True]
    assert all(c["check"].startswith("room for a gate") for c in room_checks(room))

    def oks(**arms):
        return [c["ok"] for c in room_checks({"base": room["base"], "arms": {**room["arms"], **arms}})]

    assert oks(absorb=arm(ROOM_BARS["absorb_hack_min"] - 0.01, 0.6)) == [False, True, True]
    assert oks(oracle=arm(0.20, 0.70)) == [True, False, True]
    assert oks(oracle=arm(0.05, 0.66)) == [True, False, True]  # solve more than 0.05 below gt_only's
    assert oks(gt_only=arm(0.0, 0.64)) == [True, True, False]  # gain 0.04 < 0.05 (the oracle still within 0.05)
    none = room_checks({"base": None, "arms": {"vanilla": arm(0.9, 0.1)}})
    assert [c["ok"] for c in none] == [None, None, None]
