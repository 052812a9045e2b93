"""`vgrout compare` renders from tiny run directories written in the trainer's and eval's formats."""

import json
import math
import subprocess
import sys

import pytest
from _cli import run_cli
from _report_runs import N_PROBLEMS, make_run  # noqa: E402

from vgrout.eval.results import write_json_atomic
from vgrout.report.compare import build_report, paired
from vgrout.report.runs import group_by_arm, load_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture()
def runs(tmp_path):
    dirs = []
    for seed, (v_hack, r_hack) in enumerate([(36, 8), (38, 12), (34, 6)]):
        dirs.append(make_run(tmp_path, "vanilla", seed, {0: (2, 2), 4: (v_hack, v_hack)}, {0: (3, 3), 4: (2, 2)}))
        dirs.append(make_run(tmp_path, "routeA", seed, {0: (2, 2), 4: (v_hack, r_hack)}, {0: (3, 3), 4: (4, 2)},
                             gate_quality=2.0))
        dirs.append(make_run(tmp_path, "routeA", seed, {0: (2, 2), 4: (v_hack, v_hack - 1)}, {0: (3, 3), 4: (2, 2)},
                             placebo=True, gate_quality=0.0))
    return dirs


def test_load_run_reads_final_eval_and_arm_labels(runs):
    run = load_run(runs[2])
    assert run.arm == "routeA-placebo" and run.seed == 0 and run.final_step == 4
    assert run.final_rate("deployed", "hack") == 35 / N_PROBLEMS
    assert [r["step"] for r in run.curve] == [0, 4]
    assert run.curve[1]["valid_deployed"] == 1.0 and run.step0_eval["step"] == 0
    assert run.placebo_seed == 1000 and load_run(runs[0]).placebo_seed is None


def test_paired_difference_to_vanilla_by_seed(runs):
    arms = group_by_arm([load_run(d) for d in runs])
    res = paired(arms, "routeA", "vanilla", "deployed", "hack")
    expected = [(8 - 36) / 40, (12 - 38) / 40, (6 - 34) / 40]
    assert res.n == 3 and res.diffs == pytest.approx(expected) and res.signs == "---"
    assert res.p < 0.01  # large, consistent drop


def test_compare_report_renders_with_statements_and_pngs(runs, tmp_path):
    out = build_report(runs, tmp_path / "out" / "report.md")
    text = out.read_text()
    v = sum([36, 38, 34]) / 3 / 40
    assert f"Vanilla's deployed hack rate is {v:.3f}" in text and "phenomenon is present" in text
    assert "**routeA's deployed hack rate is lower than vanilla's by 0.683" in text
    assert "routeA − routeA-placebo" in text
    # placebo: one fewer hack on every seed, exactly -> zero spread, t-test undefined (not p ~ 1e-31); the
    # headline is the bootstrap interval over seeds and problems, which one hack in 40 problems cannot pin down
    line = next(x for x in text.splitlines() if "routeA-placebo vs vanilla in deployed hack rate" in x)
    assert line.startswith("- Inconclusive, routeA-placebo vs vanilla in deployed hack rate: no significant "
                           "difference, Δ = -0.025, but the interval [")
    assert "every seed gives the same difference Δ = -0.025 (n=3, signs ---), so the paired t-test is undefined" in line
    line = next(x for x in text.splitlines() if "routeA vs vanilla in deployed solve rate" in x)
    assert "the data cannot tell these arms apart" in line and "every seed gives the same difference Δ = +0.000" in line
    # valid is identical on every problem of every seed: a zero-width interval, equivalent within the margin
    assert ("routeA and vanilla are equivalent in deployed valid rate within ±0.05: no significant difference, "
            "Δ = +0.000 and the 95% interval of Δ [+0.000, +0.000] lies inside ±0.05") in text
    assert "| routeA | pooled | 3 |" in text  # gate table row for routeA over 3 seeds
    # validity beside hack and solve; the base model (the runs' step-0 evals) as a row
    assert "| arm | seeds | final step | deployed hack | deployed solve | deployed valid |" in text
    assert "| base (step 0) | — | 0 | 0.050 | 0.075 | 1.000 | 0.050 | 0.075 | 1.000 | reference (n=40) |" in text
    assert "Valid and solve held: deployed valid 1.000, solve 0.050 (base: valid 1.000, solve 0.075)." in text
    assert "| routeA − vanilla | valid | +0.000 ± 0.000 |" in text
    assert "Degraded deployed models: none." in text
    pngs = sorted(out.parent.glob("report_*.png"))
    assert {p.name for p in pngs} == {"report_curves.png", "report_deployed_bars.png", "report_gate_auroc.png"}
    assert (out.parent / "summary.json").is_file()
    import matplotlib.image as mpimg

    for png in pngs:
        assert png.read_bytes()[:8] == PNG_SIGNATURE
        img = mpimg.imread(png)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
        assert f"({png.name})" in text


def test_gate_table_shows_real_direction_beats_placebo(runs):
    from vgrout.report import gate

    real = gate.pooled(load_run(runs[1]).diagnostics)
    plc = gate.pooled(load_run(runs[2]).diagnostics)
    assert real.auroc > 0.8 and abs(plc.auroc - 0.5) < 0.25
    assert real.n == sum(1 for r in load_run(runs[1]).diagnostics for a in r["advantage"] if a > 0)
    assert not math.isnan(real.route_f05)
    # the per-step AUROC computed here matches the trainer's own (torch) gate_auroc on the same rows
    for row, (step, g) in zip(load_run(runs[1]).diagnostics, gate.step_table(load_run(runs[1]).diagnostics)):
        assert g.auroc == pytest.approx(row["gate_auroc"]) and g.route_f05 == pytest.approx(row["gate_route_f05"])


def test_gate_table_from_trainer_aggregates_only(tmp_path):
    from vgrout.report import gate

    run = make_run(tmp_path, "routeA", 0, {4: (10, 5)}, {4: (2, 2)}, gate_quality=2.0, per_rollout=False)
    diags = load_run(run).diagnostics
    assert gate.pooled(diags) is None
    table = gate.step_table(diags)
    assert [s for s, _ in table] == [0, 1, 2, 3]
    assert table[0][1].auroc == pytest.approx(diags[0]["gate_auroc"]) and math.isnan(table[0][1].route_recall)
    assert gate.run_summary(diags)["step_auroc"] == pytest.approx(sum(r["gate_auroc"] for r in diags) / 4)
    vanilla = make_run(tmp_path, "vanilla", 0, {4: (10, 10)}, {4: (2, 2)}, per_rollout=False)
    assert not gate.has_gate(load_run(vanilla).diagnostics)


def test_compare_cli_and_duplicate_runs_rejected(runs, tmp_path):
    out = tmp_path / "cli" / "r.md"
    proc = run_cli(["compare", *map(str, runs), "--out", str(out)])
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and "report:" in proc.stdout
    # the findings and the per-arm table are printed, not only paths
    assert "Findings" in proc.stdout and "routeA's deployed hack rate is lower than vanilla's" in proc.stdout
    assert "base (step 0)" in proc.stdout and "summary: " + str(tmp_path / "cli" / "r_summary.json") in proc.stdout
    with pytest.raises(ValueError, match="two runs with arm 'vanilla' and seed 0"):
        build_report([runs[0], runs[0]], tmp_path / "dup.md")


def test_report_stays_torch_free(runs, tmp_path):
    code = ("import sys; from vgrout.report.compare import build_report; "
            f"build_report({[str(r) for r in runs[:3]]!r}, {str(tmp_path / 'tf.md')!r}); "
            "assert 'torch' not in sys.modules, 'report imported torch'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_runs_evaluated_differently_are_refused(runs, tmp_path):
    run = load_run(runs[0])
    res = json.loads((run.path / "eval" / "step_000004.json").read_text())
    res["settings"]["n_samples"] = 4
    write_json_atomic(run.path / "eval" / "step_000004.json", res)
    with pytest.raises(ValueError, match="evaluated differently.*n_samples"):
        build_report(runs, tmp_path / "x.md")


def test_summarise_for_the_demo_table(runs):
    from vgrout.report.compare import summarise

    summary = summarise(runs)
    assert list(summary["arms"]) == ["vanilla", "routeA", "routeA-placebo"]
    assert summary["arms"]["routeA"]["deployed"]["hack"] == pytest.approx((8 + 12 + 6) / 3 / 40)
    vanilla = summary["arms"]["vanilla"]
    assert vanilla["seeds"] == [0, 1, 2] and vanilla["as_trained"]["hack"] == vanilla["deployed"]["hack"]
