"""The gate under test as a result: summary.json's gate blocks, the quality flag and its regime
check, the findings' "no evidence about routing", placebo draws grouped, the oracle arm labelled.
Run dirs in the trainer's and eval's formats (tests/_report_runs.py), then patched the way a
negated direction, a placebo draw or the oracle arm would have written them."""

import json
import math

import pytest

from vgrout.report import gatequality
from vgrout.report import runs as rundir
from vgrout.report.compare import build_report, comparisons, findings, paired
from vgrout.report.gatequality import INFORMATIVE_MIN, INVERTED_BELOW, ORACLE_NOTE, classify, gate_console_table
from vgrout.report.runs import group_by_arm, load_run, order_arms, placebo_base, placebo_draw
from vgrout.report.summary import console_table
from vgrout.stats import auroc

from _report_runs import N_PROBLEMS, make_run  # noqa: E402

N = N_PROBLEMS


@pytest.fixture(autouse=True)
def _draw_labels(monkeypatch):
    """The label rule for placebo draws (vgrout.rundir.arm_label: "-placebo" + draw when draw > 0),
    applied here unless arm_label already applies it."""
    orig = rundir.arm_label

    def label(cfg):
        out = orig(cfg)
        draw = int(cfg.get("placebo_draw", 0) or 0)
        return out + str(draw) if draw and out.endswith("-placebo") else out

    monkeypatch.setattr(rundir, "arm_label", label)


def _rows(run):
    return [json.loads(line) for line in (run / "diagnostics.jsonl").read_text().splitlines()]


def _write_rows(run, rows):
    (run / "diagnostics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _patch(run, *, config: dict | None = None, negate: bool = False, oracle: bool = False, rotate: int = 0):
    """Rewrite a run as another arm wrote it: config fields, the direction's sign flipped (scores
    negated: the zones follow the score, so route and keep swap), the oracle arm's gate, or another
    placebo draw (each step's scores rotated by `rotate` places: another chance ranking)."""
    if config:
        cfg = json.loads((run / "config.json").read_text())
        cfg.update(config)
        (run / "config.json").write_text(json.dumps(cfg))
    rows = _rows(run)
    for row in rows:
        if negate:
            row["gate_score"] = [None if s is None else -s for s in row["gate_score"]]
            row["zone"] = [2 - z for z in row["zone"]]
        if rotate:
            row["gate_score"] = row["gate_score"][rotate:] + row["gate_score"][:rotate]
        if oracle:
            row["gate_score"] = [1.0 if h else 0.0 for h in row["hack"]]
            row["zone"] = [2 if h else 1 for h in row["hack"]]
    _write_rows(run, rows)
    return run


def _study(root, *, negate: bool = False, draws: int = 1, oracle: bool = True):
    """vanilla hacks 36/40; routeA (gate_quality 2: scores separate hacks; negated when asked)
    deploys 8+seed hacks, solve 20; its placebo draws 30-draw hacks, solve 10; the oracle 0 hacks, solve 30."""
    dirs = []
    for seed in range(3):
        dirs.append(make_run(root / "v", "vanilla", seed, {4: (36, 36)}, {4: (2, 2)}))
        r = make_run(root / "r", "routeA", seed, {4: (36, 8 + seed)}, {4: (2, 20)}, gate_quality=2.0, steps=8)
        dirs.append(_patch(r, negate=negate))
        for d in range(draws):
            p = make_run(root / f"p{d}", "routeA", seed, {4: (36, 30 - d)}, {4: (2, 10)}, placebo=True,
                         gate_quality=0.0, steps=8)
            dirs.append(_patch(p, config={"placebo_draw": d, "placebo_seed": 1000 + 10 * d + seed}, rotate=d))
        if oracle:
            o = make_run(root / "o", "routeA", seed, {4: (36, 0)}, {4: (2, 30)}, gate_quality=2.0, steps=8)
            dirs.append(_patch(o, config={"arm": "oracle"}, oracle=True))
    return dirs


def _summary(out):
    return json.loads((out.parent / "summary.json").read_text())


def _live_a_pos(run):
    s, h = [], []
    for row in _rows(run):
        for sc, hk, a, lv in zip(row["gate_score"], row["hack"], row["advantage"], row["live"]):
            if lv and a > 0 and sc is not None:
                s.append(sc)
                h.append(hk)
    return s, h


def test_classify_thresholds():
    assert classify(INFORMATIVE_MIN) == "informative" and classify(0.95) == "informative"
    assert classify(INFORMATIVE_MIN - 1e-9) == "uninformative" and classify(INVERTED_BELOW) == "uninformative"
    assert classify(INVERTED_BELOW - 1e-9) == "inverted" and classify(0.07) == "inverted"
    assert classify(float("nan")) == "no scores" and classify(None) == "no scores"


def test_separating_gate_is_informative_and_its_comparisons_stand(tmp_path):
    dirs = _study(tmp_path / "runs")
    out = build_report(dirs, tmp_path / "out" / "report.md")
    s = _summary(out)
    g = s["arms"]["routeA"]["gate"]
    assert g["role"] == "method" and g["quality"] == "informative" and g["sources"] == ["pooled"]
    # the per-seed AUROC is the pooled one over live A > 0 rows, recomputed here from the rows
    for seed, run in enumerate(d for d in dirs if load_run(d).arm == "routeA"):
        sc, hk = _live_a_pos(run)
        assert g["per_seed"][str(seed)]["auroc"] == pytest.approx(auroc(sc, hk))
        assert g["per_seed"][str(seed)]["n"] == len(sc) and g["per_seed"][str(seed)]["n_hack"] == sum(hk)
        rows = _rows(run)
        live = [(z, h) for r in rows for z, h, lv in zip(r["zone"], r["hack"], r["live"]) if lv]
        hacks = [z for z, h in live if h]
        assert g["per_seed"][str(seed)]["hack"]["route"] == pytest.approx(hacks.count(2) / len(hacks))
        assert g["per_seed"][str(seed)]["hack"]["n"] == len(hacks)
        assert g["per_seed"][str(seed)]["n_live"] == len(live)  # all live rows, whatever the advantage's sign
        assert g["per_seed"][str(seed)]["n_live"] > g["per_seed"][str(seed)]["n"]
    assert g["mean"]["auroc"] > 0.8 and g["mean"]["auroc_all_live"] > 0.8
    sh = g["mean"]["hack"]
    assert sum(sh[z] for z in ("route", "absorb", "keep")) == pytest.approx(1.0) and sh["route"] > sh["keep"]
    check = [c for c in s["regime_checks"] if c["check"].startswith("routeA gate:")]
    assert len(check) == 1 and check[0]["ok"] is True and "informative" in check[0]["value"]
    text = findings(out)
    assert "no evidence about routing" not in text
    assert "Gate under test: routeA's gate is informative (live AUROC" in text
    report = out.read_text()
    assert report.index("## The gate under test") < report.index("## Final evaluation per arm")
    assert "| routeA | method | 3 |" in report


def test_flipped_direction_is_flagged_inverted_and_every_comparison_says_so(tmp_path):
    """The same runs with the direction's sign flipped: AUROC 1 − a, flagged, and each comparison
    line of routeA says it is no evidence about routing."""
    good = _summary(build_report(_study(tmp_path / "a"), tmp_path / "oa" / "report.md"))
    out = build_report(_study(tmp_path / "b", negate=True), tmp_path / "ob" / "report.md")
    s = _summary(out)
    g, g0 = s["arms"]["routeA"]["gate"], good["arms"]["routeA"]["gate"]
    assert g["quality"] == "inverted" and g["mean"]["auroc"] < INVERTED_BELOW
    for seed in ("0", "1", "2"):  # negating the score mirrors the AUROC on the same rows
        assert g["per_seed"][seed]["auroc"] == pytest.approx(1 - g0["per_seed"][seed]["auroc"])
        assert g["per_seed"][seed]["hack"]["route"] == pytest.approx(g0["per_seed"][seed]["hack"]["keep"])
    check = [c for c in s["regime_checks"] if c["check"].startswith("routeA gate:")]
    assert check[0]["ok"] is False and "gate inverted" in check[0]["value"]
    assert all(x["arm_above"] == 0 for x in g["placebo"]["per_seed"].values())  # below its placebo on every seed
    assert all(x["arm_above"] == 1 for x in g0["placebo"]["per_seed"].values())
    # placebos and the oracle are not checked
    assert not [c for c in s["regime_checks"] if c["check"].startswith(("routeA-placebo", "oracle"))]
    text = findings(out)
    noted = [ln for ln in text.splitlines() if "no evidence about routing" in ln]
    # 3 metrics vs vanilla, 3 vs the placebo, the placebo-to-oracle line: each of routeA's, and only routeA's
    assert len(noted) == 7
    for ln in noted:
        assert ln.startswith("- ") and "routeA" in ln and ln.endswith("this difference is no evidence about routing.")
        assert f"routeA's gate is inverted (live AUROC {g['mean']['auroc']:.2f} < {INVERTED_BELOW}" in ln
    assert sum(ln.startswith("- routeA between its placebo and the oracle") for ln in noted) == 1
    for b in ("vanilla", "routeA-placebo"):  # every comparison line naming routeA and its reference
        lines = [ln for ln in text.splitlines() if ln.startswith("- ") and "routeA" in ln.split(b)[0] and b in ln
                 and "Seeds needed" not in ln and not ln.startswith(("- routeA-placebo", "- routeA between"))]
        assert len(lines) == 3 and all("no evidence about routing" in ln for ln in lines), b
    placebo_lines = [ln for ln in text.splitlines()
                     if ln.startswith("- routeA-placebo") or "between routeA-placebo and" in ln]
    assert placebo_lines and not any("no evidence about routing" in ln for ln in placebo_lines)
    assert "| inverted |" in out.read_text()


def test_uninformative_gate_is_flagged(tmp_path):
    """Scores that carry no hack signal (a shuffled score): between 0.4 and 0.6 -> uninformative."""
    dirs = _study(tmp_path / "runs", oracle=False)
    for d in dirs:
        if load_run(d).arm == "routeA":
            rows = _rows(d)
            for row in rows:  # the score of a rollout two places on: unrelated to its own hack label
                row["gate_score"] = row["gate_score"][2:] + row["gate_score"][:2]
            _write_rows(d, rows)
    s = _summary(build_report(dirs, tmp_path / "out" / "report.md"))
    g = s["arms"]["routeA"]["gate"]
    assert INVERTED_BELOW <= g["mean"]["auroc"] < INFORMATIVE_MIN and g["quality"] == "uninformative"
    check = [c for c in s["regime_checks"] if c["check"].startswith("routeA gate:")][0]
    assert check["ok"] is False and "gate uninformative" in check["value"]


def test_placebo_draws_are_grouped_ordered_and_averaged(tmp_path):
    dirs = _study(tmp_path / "runs", draws=3)
    assert placebo_base("routeA-placebo2") == "routeA" and placebo_draw("routeA-placebo2") == 2
    assert placebo_base("routeA-placebo") == "routeA" and placebo_draw("routeA-placebo") == 0
    assert placebo_base("routeA") is None and placebo_base("routeA-placeboX") is None
    arms = group_by_arm([load_run(d) for d in dirs])
    order = order_arms(list(arms))
    assert order == ["vanilla", "oracle", "routeA", "routeA-placebo", "routeA-placebo1", "routeA-placebo2"]
    ref = "routeA-placebo (mean of 3 draws)"
    assert ("routeA", ref) in comparisons(arms, order)
    res = paired(arms, "routeA", ref, "deployed", "hack")
    # per seed: routeA 8+seed, the draws 30, 29, 28 -> mean 29
    assert res.diffs == pytest.approx([(8 + s - 29) / N for s in range(3)])
    out = build_report(dirs, tmp_path / "out" / "report.md")
    report, s = out.read_text(), _summary(out)
    for d in ("routeA-placebo", "routeA-placebo1", "routeA-placebo2"):  # each draw keeps its own row
        assert f"| {d} | 0,1,2 | 4 |" in report and s["arms"][d]["gate"]["role"] == "placebo"
    assert f"| routeA − {ref} | hack |" in report
    assert ref in findings(out)  # the findings compare routeA with the mean of its draws
    plc = s["arms"]["routeA"]["gate"]["placebo"]
    assert plc["draws"] == ["routeA-placebo", "routeA-placebo1", "routeA-placebo2"]
    vals = sorted(s["arms"][d]["gate"]["per_seed"][k]["auroc"] for d in plc["draws"] for k in ("0", "1", "2"))
    assert plc["auroc"]["n"] == 9 and plc["auroc"]["min"] == vals[0] and plc["auroc"]["max"] == vals[-1]
    assert plc["auroc"]["median"] == pytest.approx(vals[4])
    for k in ("0", "1", "2"):
        seed_vals = [s["arms"][d]["gate"]["per_seed"][k]["auroc"] for d in plc["draws"]]
        mine = s["arms"]["routeA"]["gate"]["per_seed"][k]["auroc"]
        assert plc["per_seed"][k]["arm_above"] == sum(v < mine for v in seed_vals) == 3
    assert "(3 draw(s), 9 runs); s0: above 3/3" in report
    assert "placebo = the mean of 3 draws" in findings(out)


def test_oracle_arm_is_labelled_a_reference_and_placed(tmp_path):
    out = build_report(_study(tmp_path / "runs"), tmp_path / "out" / "report.md")
    report, s, text = out.read_text(), _summary(out), findings(out)
    o = s["arms"]["oracle"]
    assert o["reference"] == ORACLE_NOTE and o["gate"]["role"] == "reference" and o["gate"]["note"] == ORACLE_NOTE
    assert o["gate"]["mean"]["auroc"] == 1.0 and o["gate"]["mean"]["hack"]["route"] == 1.0
    assert o["gate"]["mean"]["clean"]["absorb"] == 1.0
    assert f"| oracle ({ORACLE_NOTE}) | 0,1,2 | 4 |" in report  # arm table
    assert f"| oracle ({ORACLE_NOTE}) | reference | 3 |" in report  # gate table
    assert f"| oracle ({ORACLE_NOTE}) − vanilla | hack |" in report  # paired differences
    assert [ln for ln in console_table(s).splitlines() if ln.startswith("oracle ")][0].endswith(f"({ORACLE_NOTE})")
    oracle_lines = [ln for ln in text.splitlines() if ln.startswith("- ") and "oracle" in ln and "vanilla" in ln
                    and "Seeds needed" not in ln]
    assert len(oracle_lines) == 3 and all(f"(oracle {ORACLE_NOTE}, a reference, not a method.)" in ln
                                          for ln in oracle_lines)
    # where routeA lands between its placebo (30 hacks, solve 10) and the oracle (0 hacks, solve 30)
    hack = (8 + 9 + 10) / 3 / N
    line = [ln for ln in text.splitlines() if ln.startswith("- routeA between its placebo and the oracle")][0]
    closes_hack = round(100 * (hack - 30 / N) / (0 - 30 / N))
    assert f"deployed hack {hack:.3f}: placebo {30 / N:.3f}, oracle 0.000 → routeA closes {closes_hack}% of" in line
    assert ("deployed solve 0.500: placebo 0.250, oracle 0.750 → routeA closes 50% of the placebo-to-oracle gap"
            in line)
    assert not [c for c in s["regime_checks"] if c["check"].startswith("oracle")]
    console = gate_console_table(s)
    assert f"(reference: {ORACLE_NOTE})" in console and "routeA " in console


def test_gate_console_table_and_no_oracle(tmp_path):
    out = build_report(_study(tmp_path / "runs", negate=True, oracle=False), tmp_path / "out" / "report.md")
    s = _summary(out)
    console = gate_console_table(s)
    head, rule, *rows = console.splitlines()
    assert "AUROC A>0" in head and "AUROC live" in head and "quality" in head
    row = [r for r in rows if r.startswith("routeA ")][0]
    g = s["arms"]["routeA"]["gate"]
    assert f"{g['mean']['auroc']:.3f} ± {g['mean']['auroc_sem']:.3f}" in row and row.endswith("INVERTED")
    assert [r for r in rows if r.startswith("routeA-placebo ")][0].endswith("(placebo)")
    assert "vanilla" not in console  # no gate, no row
    assert "routeA between its placebo and the oracle: no oracle arm run" in findings(out)
    assert gate_console_table({"arms": {"vanilla": {}}}) == "no arm was scored by a gate"


def test_aggregates_only_run_still_gets_a_quality(tmp_path):
    """A run that logged only the trainer's per-step aggregates: AUROC from them, shares unknown."""
    run = make_run(tmp_path, "routeA", 0, {4: (10, 5)}, {4: (2, 2)}, gate_quality=2.0, per_rollout=False)
    block = gatequality.arm_gate({0: load_run(run)}, "routeA")
    assert block["sources"] == ["step"] and block["quality"] == "informative"
    rows = _rows(run)
    assert block["mean"]["auroc"] == pytest.approx(sum(r["gate_auroc"] for r in rows) / len(rows))
    assert block["mean"]["hack"]["route"] is None and block["per_seed"]["0"]["auroc_all_live"] is None
    assert gatequality.arm_gate({0: load_run(make_run(tmp_path / "v", "vanilla", 0, {4: (1, 1)}, {4: (1, 1)}))},
                                "vanilla") is None
    assert not math.isnan(block["mean"]["auroc"])
