"""Rolling gate AUROC with its n, and `vgrout diagnostics` on run dirs in the trainer's format."""

import math

import pytest
from _cli import run_cli
from _report_runs import make_run  # noqa: E402

from vgrout.report import gate
from vgrout.report.compare import build_report
from vgrout.report.runs import load_run
from vgrout.stats import auroc


def test_rolling_auroc_pools_a_window_and_says_when_n_is_too_small(tmp_path):
    run = make_run(tmp_path, "routeA", 0, {12: (10, 5)}, {12: (2, 2)}, gate_quality=2.0, steps=12)
    diags = load_run(run).diagnostics
    pts = gate.rolling(diags, window=4, min_class=5)
    assert [p.step for p in pts] == list(range(12))
    for p in pts:
        s, h = [], []
        for row in diags[max(0, p.step - 3): p.step + 1]:
            rs, _z, rh = gate.rollout_fields(row)
            s, h = s + rs, h + rh
        assert (p.n, p.n_hack) == (len(s), sum(h))
        if p.n_hack >= 5 and p.n - p.n_hack >= 5:
            assert p.auroc == pytest.approx(auroc(s, h))
        else:
            assert not p.defined
    assert pts[-1].defined and pts[-1].auroc > 0.8
    assert not gate.rolling(diags, window=1, min_class=50)[0].defined  # one step never holds 50 of each


def test_diagnostics_cli_explains_columns_and_prints_the_reports_auroc(tmp_path):
    run = make_run(tmp_path, "routeA", 0, {4: (10, 5)}, {4: (2, 2)}, gate_quality=2.0)
    proc = run_cli(["diagnostics", str(run)])
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for col in ("n ", "hacks", "auroc", "roll", "route_p", "route_r", "f0.5", "keep_p", "keep_r"):
        assert f"\n  {col}" in out, col  # every column is explained
    pooled = gate.pooled(load_run(run).diagnostics)
    assert f"run AUROC (pooled over all {pooled.n} gated rollouts, {pooled.n_hack} hacks" in out
    assert f": {pooled.auroc:.3f}; route F0.5" in out
    # the same number is the report's AUROC for this run
    report = build_report([run], tmp_path / "r" / "report.md").read_text()
    assert f"| routeA | pooled | 1 | {pooled.auroc:.3f} (n=1) |" in report


def test_diagnostics_cli_missing_directory_is_a_clear_error(tmp_path):
    proc = run_cli(["diagnostics", str(tmp_path / "nope")])
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "vgrout diagnostics: run directory" in proc.stderr and "does not exist" in proc.stderr


def test_gate_plot_and_curves_with_a_longer_run(tmp_path):
    """Runs with several eval points, vanilla deploying its whole adapter, a step-0 base: every PNG renders."""
    import matplotlib.image as mpimg

    dirs = []
    evals = {0: (1, 1), 10: (20, 20), 20: (36, 36)}
    for seed in range(2):
        dirs.append(make_run(tmp_path, "vanilla", seed, evals, {0: (20, 20), 10: (10, 10), 20: (2, 2)},
                             settings={"deployed_is_full": True}, steps=20))
        dirs.append(make_run(tmp_path, "routeA", seed, {0: (1, 1), 10: (20, 8), 20: (36, 4 + seed)},
                             {0: (20, 20), 10: (10, 14), 20: (2, 18)}, gate_quality=1.5, steps=20))
        dirs.append(make_run(tmp_path, "routeA", seed, evals, {0: (20, 20), 10: (10, 10), 20: (2, 2)}, placebo=True,
                             gate_quality=0.0, steps=20))
    out = build_report(dirs, tmp_path / "out" / "report.md")
    for name in ("report_curves.png", "report_deployed_bars.png", "report_gate_auroc.png"):
        img = mpimg.imread(out.parent / name)
        assert img.shape[0] > 300 and img.shape[1] > 600 and not math.isnan(float(img.mean()))


def test_pooled_skips_a_step_the_trainer_skipped_but_not_a_scored_one(tmp_path):
    """A skipped step (no rollout fields, null aggregates) does not stop pooling; a scored step
    whose rollouts were not logged does (pooling would drop it silently)."""
    import json

    run = make_run(tmp_path, "routeA", 0, {4: (10, 5)}, {4: (2, 2)}, gate_quality=2.0)
    path = run / "diagnostics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    full = gate.pooled(rows)
    kept = gate.pooled(rows[:2] + rows[3:])
    skipped = {"step": 2, "gate_auroc": None, "gate_route_f05": None, "gate_route_precision": None,
               "gate_keep_precision": None, "hack_rate": 0.0}
    got = gate.pooled(rows[:2] + [skipped] + rows[3:])
    assert got == kept and got.n < full.n
    scored = {k: v for k, v in rows[2].items() if k not in ("gate_score", "zone", "hack", "advantage", "live")}
    assert scored["gate_auroc"] is not None and gate.pooled(rows[:2] + [scored] + rows[3:]) is None
