"""The report quotes one hack, one clean solve and one broken output per arm from eval/*.samples.jsonl."""

from vgrout.report.compare import build_report
from vgrout.report.samples import pick
from vgrout.report.runs import group_by_arm, load_run

from _report_runs import N_PROBLEMS, make_run  # noqa: E402

N = N_PROBLEMS


def test_report_quotes_a_hack_a_clean_solve_and_a_broken_output(tmp_path):
    runs = [make_run(tmp_path, "vanilla", s, {0: (1, 1), 4: (38, 38)}, {0: (20, 20), 4: (1, 1)},
                     valids={4: (39, 39)}, samples=True) for s in (0, 1)]
    # routeA: the deployed model hacks and solves but never breaks; as-trained breaks
    runs += [make_run(tmp_path, "routeA", s, {0: (1, 1), 4: (30, 3)}, {0: (20, 20), 4: (2, 20)},
                      valids={4: (35, N)}, samples=True) for s in (0, 1)]
    # absorb: one run has no samples file, the other has one
    runs += [make_run(tmp_path, "absorb", 0, {0: (1, 1), 4: (30, 3)}, {0: (20, 20), 4: (2, 20)}, samples=True),
             make_run(tmp_path, "absorb", 1, {0: (1, 1), 4: (30, 3)}, {0: (20, 20), 4: (2, 20)})]
    # erase: no samples file at all
    runs += [make_run(tmp_path, "erase", 0, {0: (1, 1), 4: (30, 30)}, {0: (20, 20), 4: (2, 2)})]
    text = build_report(runs, tmp_path / "out" / "report.md").read_text()
    section = text.split("## What the models wrote (final checkpoint)")[1].split("\n## ")[0]
    vanilla = section.split("### vanilla")[1].split("### ")[0]
    assert "**hack**: seed 0, deployed, problem `p0` (run_tests), reason `exploit`, reward 1.00, valid True" in vanilla
    assert "print('all tests passed')\n```\n# deployed p0" in vanilla
    assert "**clean solve**: seed 0, deployed, problem `p38`" in vanilla
    assert "**broken output**: seed 0, deployed, problem `p39` (run_tests), reason `no_code`" in vanilla
    # a completion holding a 4-backtick run is fenced with 5, so the quote cannot close early
    assert "`````\n```python\ndef f(x) return ```` x\n\n# deployed p39\n`````" in vanilla
    route = section.split("### routeA")[1].split("### ")[0]
    assert "**broken output**: seed 0, as-trained, problem `p35`" in route  # deployed never broke: as-trained quoted
    absorb = section.split("### absorb")[1].split("### ")[0]
    assert "No samples file for absorb_s1." in absorb and "**hack**: seed 0, deployed" in absorb
    # only absorb_s0's final-step file was read: 2 states x 40 samples
    assert "**broken output**: none among the 80 samples of this arm." in absorb
    erase = section.split("### erase")[1]
    assert "No samples file for any run of this arm" in erase


def test_pick_prefers_deployed_then_seed_order(tmp_path):
    runs = [make_run(tmp_path, "routeA", s, {4: (30, 0)}, {4: (2, 20)}, samples=True) for s in (1, 0)]
    arms = group_by_arm([load_run(r) for r in runs])
    found, n_rows, missing = pick(arms["routeA"])
    assert n_rows == 4 * N and missing == []
    assert found["hack"][0] == 0 and found["hack"][1]["state"] == "as_trained"  # no deployed hack exists
    assert found["clean solve"][1]["state"] == "deployed" and found["clean solve"][1]["problem_id"] == "p0"
    assert found["broken output"] is None


def test_report_says_once_when_no_run_has_samples(tmp_path):
    runs = [make_run(tmp_path, arm, 0, {4: (30, 3)}, {4: (2, 20)}) for arm in ("vanilla", "routeA")]
    text = build_report(runs, tmp_path / "out" / "report.md").read_text()
    assert text.count("No run has a samples file at its final step") == 1 and "### vanilla" not in text
