"""Bootstrap intervals, equivalence wording, the gt_only degradation reference, seeds needed,
the deploy-scale panel and the eval seed, on run dirs in the trainer's and eval's formats."""

import json
import math

import pytest

from vgrout.eval.results import eval_path, write_json_atomic
from vgrout.report.base import Base, degradation
from vgrout.report.compare import bootstraps, build_report, check_comparable, summarise
from vgrout.report.runs import group_by_arm, load_run

from _report_runs import N_PROBLEMS, _block, _samples, make_run  # noqa: E402

N = N_PROBLEMS


def _findings(out) -> list[str]:
    text = out.read_text()
    return text.split("## Findings", 1)[1].split("\n## ", 1)[0].splitlines()


def _line(lines: list[str], needle: str) -> str:
    hits = [x for x in lines if needle in x]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def test_equivalent_vs_inconclusive_switches_with_the_data(tmp_path):
    """Same seed means in both cases (Δ = 0); what differs is how much the problems move. absorb hacks
    on exactly vanilla's problems: a zero-width interval, equivalent within ±0.05. routeV's seeds
    disagree (−8, +4, +4 hacks): the interval reaches beyond ±0.05, inconclusive."""
    dirs = []
    for seed, c_hack in enumerate([28, 40, 40]):
        dirs.append(make_run(tmp_path, "vanilla", seed, {4: (36, 36)}, {4: (2, 2)}))
        dirs.append(make_run(tmp_path, "absorb", seed, {4: (36, 36)}, {4: (2, 2)}))
        dirs.append(make_run(tmp_path, "routeV", seed, {4: (36, c_hack)}, {4: (2, 0)}))
    out = build_report(dirs, tmp_path / "out" / "report.md")
    lines = _findings(out)
    eq = _line(lines, "absorb and vanilla are equivalent in deployed hack rate")
    assert "within ±0.05: no significant difference, Δ = +0.000 and the 95% interval of Δ [+0.000, +0.000] lies " \
           "inside ±0.05" in eq
    inc = _line(lines, "routeV vs vanilla in deployed hack rate")
    assert inc.startswith("- Inconclusive, routeV vs vanilla in deployed hack rate: no significant difference, "
                          "Δ = +0.000, but the interval [")
    assert "is wider than ±0.05: the data cannot tell these arms apart" in inc
    assert "paired t, p=1.000, n=3; per-seed signs -++" in inc  # the t-test stays in the details
    summary = json.loads((out.parent / "summary.json").read_text())
    verdicts = {(c["a"], c["metric"]): c["verdict"] for c in summary["comparisons"]}
    assert verdicts[("absorb", "hack")] == "equivalent" and verdicts[("routeV", "hack")] == "inconclusive"
    c = next(c for c in summary["comparisons"] if c["a"] == "routeV" and c["metric"] == "hack")
    assert c["ci95"][0] < -0.05 and c["ci95"][1] > 0.05 and c["paired_problems"] is True
    assert c["seeds_needed"] is None  # Δ = 0: nothing to power
    assert "routeV vs vanilla: Δ = 0 on the seed means: no difference observed to power" in "\n".join(lines)
    assert summary["bootstrap"]["B"] == 2000 and summary["bootstrap"]["equivalence_margin"] == 0.05
    ci = summary["arms"]["vanilla"]["deployed_ci95"]["hack"]
    assert ci[0] < 36 / N < ci[1]


def test_intervals_are_deterministic_and_read_the_samples_file(tmp_path):
    """Two reports give the same intervals; a step JSON without per-sample rows falls back to the
    samples file beside it (same intervals), and without either to the counts (problems unpaired)."""
    dirs = []
    for seed, r_hack in enumerate([8, 12, 6]):
        dirs.append(make_run(tmp_path, "vanilla", seed, {4: (36, 36)}, {4: (2, 2)}, samples=True))
        dirs.append(make_run(tmp_path, "routeA", seed, {4: (36, r_hack)}, {4: (2, 2)}, samples=True))
    first, second = summarise(dirs)["comparisons"], summarise(dirs)["comparisons"]
    assert first == second
    hack = next(c for c in first if c["metric"] == "hack")
    assert hack["verdict"] == "lower" and hack["ci95"][0] < hack["delta"] < hack["ci95"][1] < 0
    assert hack["delta"] == pytest.approx(((8 - 36) + (12 - 36) + (6 - 36)) / 3 / N)
    for d in dirs:  # drop the per-sample rows from every step JSON: the samples file still has them
        f = eval_path(d, 4)
        res = json.loads(f.read_text())
        for st in res["states"].values():
            st["samples"] = []
        write_json_atomic(f, res)
    assert summarise(dirs)["comparisons"] == first
    for d in dirs:
        (d / "eval" / "step_000004.samples.jsonl").unlink()
    counts = summarise(dirs)["comparisons"]
    assert all(c["paired_problems"] is False for c in counts)
    hack = next(c for c in counts if c["metric"] == "hack")
    assert hack["verdict"] == "lower" and hack["delta"] == pytest.approx(first[0]["delta"])


def _gt_only_run(root, seed, hacks, solves):
    """A gt_only control: vanilla trained on gt_only prompts alone (config `modes`, the label's source)."""
    run = make_run(root, "vanilla", seed, hacks, solves)
    cfg = json.loads((run / "config.json").read_text())
    cfg["modes"] = ["gt_only"]
    (run / "config.json").write_text(json.dumps(cfg))
    assert load_run(run).arm == "gt_only"
    return run


def test_gt_only_reference_flags_what_the_base_rule_misses(tmp_path):
    """The base solves 3/40; gt_only reaches 30/40. routeA's deployed solve 10/40 is above the base
    (the base rule alone holds it) but 0.5 below gt_only: degraded, and the reason names gt_only."""
    base = Base(hack=0.05, solve=3 / N, valid=1.0, n=N, source="test")
    route = {"valid": [1.0] * 3, "solve": [10 / N] * 3}
    assert degradation(route, base) == []
    reasons = degradation(route, base, gt_only=[30 / N, 29 / N, 31 / N], n=N)
    assert reasons == ["deployed solve 0.250 is 0.500 below gt_only's 0.750 (margin 0.050)"]
    # gt_only with one seed: its binomial SE is the noise, sqrt(.75·.25/40) = 0.068 -> margin 0.137
    assert "margin 0.137" in degradation(route, base, gt_only=[30 / N], n=N)[0]
    assert degradation({"valid": [1.0], "solve": [0.72]}, base, gt_only=[0.75], n=100000) == []  # within 0.05
    dirs = []
    for seed in range(3):
        dirs.append(make_run(tmp_path, "vanilla", seed, {0: (2, 2), 4: (36, 36)}, {0: (3, 3), 4: (2, 2)}))
        dirs.append(_gt_only_run(tmp_path / "gt", seed, {0: (2, 2), 4: (0, 0)}, {0: (3, 3), 4: (30, 30)}))
        dirs.append(make_run(tmp_path, "routeA", seed, {0: (2, 2), 4: (36, 4)}, {0: (3, 3), 4: (2, 10)}))
    out = build_report(dirs, tmp_path / "out" / "report.md")
    text = out.read_text()
    assert ("**routeA is degraded** (deployed solve 0.250 is 0.500 below gt_only's 0.750 (margin 0.050)): this "
            "hack drop is degradation, not a removed hack.") in text
    assert "or its deployed solve rate is below the base model's or gt_only's by more than" in text
    summary = json.loads((out.parent / "summary.json").read_text())
    assert summary["arms"]["routeA"]["degraded"] is True and summary["arms"]["gt_only"]["degraded"] is False
    assert summary["degradation_rule"]["gt_only_checked"] is True
    assert summary["degradation_rule"]["solve_references"] == ["base", "gt_only"]


def test_seeds_needed_line_matches_a_hand_computation(tmp_path):
    """Per-seed deployed hack differences −6, 0, −10, 0 out of 40: Δ = −0.1, σ = sqrt(0.045/3) = 0.1225,
    n = ((1.95996 + 0.84162)·0.1225/0.1)² = 11.77 → 12 seeds."""
    dirs = []
    for seed, r_hack in enumerate([30, 36, 26, 36]):
        dirs.append(make_run(tmp_path, "vanilla", seed, {4: (36, 36)}, {4: (2, 2)}))
        dirs.append(make_run(tmp_path, "routeA", seed, {4: (36, r_hack)}, {4: (2, 2)}))
    out = build_report(dirs, tmp_path / "out" / "report.md")
    sd = math.sqrt(0.045 / 3)
    assert math.ceil(((1.959964 + 0.841621) * sd / 0.1) ** 2) == 12
    line = _line(_findings(out), "Seeds needed")
    assert "routeA vs vanilla: Δ = -0.100, per-seed SD of the difference 0.122 → 12 seeds (have 4)" in line
    summary = json.loads((out.parent / "summary.json").read_text())
    hack = next(c for c in summary["comparisons"] if c["a"] == "routeA" and c["metric"] == "hack")
    assert hack["seeds_needed"] == 12 and hack["n_seeds"] == 4


def _add_scale_states(run_dir, step: int, half: tuple[int, int], qonly: tuple[int, int]) -> None:
    """Give a run's eval the deploy-scale states: (hacks, solves) out of N for each."""
    f = eval_path(run_dir, step)
    res = json.loads(f.read_text())
    res["states"]["half_quarantine"] = _block(_samples(half[0], half[1], N))
    res["states"]["quarantine_only"] = _block(_samples(qonly[0], qonly[1], N))
    write_json_atomic(f, res)


def test_deploy_scale_section_only_when_the_states_exist(tmp_path):
    dirs = []
    for seed in range(2):
        dirs.append(make_run(tmp_path, "vanilla", seed, {4: (36, 36)}, {4: (2, 2)}))
        dirs.append(make_run(tmp_path, "routeA", seed, {4: (36, 6 + seed)}, {4: (2, 4)}))
    out = build_report(dirs, tmp_path / "a" / "report.md")
    assert "## Deploy-scale" not in out.read_text()
    assert not (out.parent / "report_deploy_scale.png").exists()
    summary = json.loads((out.parent / "summary.json").read_text())
    assert all("deploy_scale" not in a for a in summary["arms"].values())

    for seed, d in enumerate(dirs[1::2]):  # routeA only: vanilla deploys its whole adapter
        _add_scale_states(d, 4, half=(20 + 2 * seed, 3), qonly=(38, 0))
    out = build_report(dirs, tmp_path / "b" / "report.md")
    text = out.read_text()
    assert "## Deploy-scale: hack and solve against the quarantine's scale" in text
    section = text.split("## Deploy-scale", 1)[1].split("\n## ", 1)[0]
    assert "| routeA | hack | 0.162 ± 0.012 (n=2) | 0.525 ± 0.025 (n=2) | 0.900 ± 0.000 (n=2) | 0.950 ± 0.000 (n=2) |" \
        in section
    assert "| vanilla |" not in section
    assert "(report_deploy_scale.png)" in section
    png = out.parent / "report_deploy_scale.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out.parent / "summary.json").read_text())
    assert "deploy_scale" not in summary["arms"]["vanilla"]
    ds = summary["arms"]["routeA"]["deploy_scale"]
    assert list(ds) == ["deployed", "half_quarantine", "as_trained", "quarantine_only"]
    assert ds["half_quarantine"]["scale"] == 0.5 and ds["quarantine_only"]["scale"] is None
    assert ds["half_quarantine"]["hack"] == pytest.approx(21 / N) and ds["quarantine_only"]["n_seeds"] == 2
    assert ds["deployed"]["hack"] == pytest.approx(6.5 / N) and ds["as_trained"]["hack"] == pytest.approx(36 / N)
    # the curves still read as_trained/deployed only
    assert set(load_run(dirs[1]).curve[-1]) == {"step", "n", *(f"{m}_{s}" for s in ("as_trained", "deployed")
                                                                for m in ("hack", "solve", "valid"))}


def test_runs_with_different_eval_seeds_compare_but_other_settings_do_not(tmp_path):
    """The eval seed derives from the run seed, so seeds of one arm differ in it: not refused."""
    dirs = [make_run(tmp_path, "vanilla", s, {4: (36, 36)}, {4: (2, 2)}, settings={"seed": 1000 + s})
            for s in range(2)]
    runs = [load_run(d) for d in dirs]
    assert runs[0].final_eval["settings"]["seed"] != runs[1].final_eval["settings"]["seed"]
    check_comparable(runs)  # does not raise
    assert build_report(dirs, tmp_path / "out" / "report.md").is_file()
    other = make_run(tmp_path, "routeA", 0, {4: (36, 6)}, {4: (2, 2)}, settings={"seed": 7, "temperature": 0.7})
    with pytest.raises(ValueError, match="evaluated differently.*temperature"):
        check_comparable(runs + [load_run(other)])


def test_bootstraps_pair_by_problem(tmp_path):
    """A difference confined to the same few problems on every seed: paired by problem the interval
    is the resampling of those problems only, narrower than resampling each arm on its own."""
    dirs = []
    for seed in range(3):
        dirs.append(make_run(tmp_path, "vanilla", seed, {4: (20, 20)}, {4: (2, 2)}))
        dirs.append(make_run(tmp_path, "routeA", seed, {4: (20, 18)}, {4: (2, 2)}))
    arms = group_by_arm([load_run(d) for d in dirs])
    boots = bootstraps(arms)
    paired = boots.diff("routeA", "vanilla", "deployed", "hack")
    assert paired.estimate == pytest.approx(-2 / N) and paired.paired_units
    from vgrout.stats import hierarchical_bootstrap

    unpaired = hierarchical_bootstrap([boots._units("routeA", s, "deployed", "hack") for s in range(3)],
                                      other=[boots._units("vanilla", s, "deployed", "hack") for s in range(3)])
    assert paired.width < unpaired.width / 2
    assert boots.diff("routeA", "vanilla", "deployed", "hack") is paired  # cached


def test_interval_against_a_mean_of_placebo_draws(tmp_path):
    """With two placebo draws per seed the placebo is their per-seed, per-problem mean."""
    dirs = []
    for seed in range(3):
        dirs.append(make_run(tmp_path, "routeA", seed, {4: (36, 8 + seed)}, {4: (2, 2)}))
        dirs.append(make_run(tmp_path, "routeA", seed, {4: (36, 30)}, {4: (2, 2)}, placebo=True))
        d = make_run(tmp_path / "draw1", "routeA", seed, {4: (36, 34)}, {4: (2, 2)}, placebo=True)
        cfg = json.loads((d / "config.json").read_text())
        cfg["placebo_draw"] = 1
        (d / "config.json").write_text(json.dumps(cfg))
        dirs.append(d)
    comps = summarise(dirs)["comparisons"]
    hack = next(c for c in comps if c["metric"] == "hack")
    assert hack["b"] == "routeA-placebo (mean of 2 draws)" and hack["verdict"] == "lower"
    assert hack["delta"] == pytest.approx((9 - 32) / N)
