"""`vgrout compare RUN_DIRS... --out report.md` and `vgrout diagnostics RUN_DIR`: argument
parsing and console output only; the work is in vgrout.report.compare and vgrout.report.gate."""

from __future__ import annotations

import argparse

from vgrout.report import gate
from vgrout.report.compare import build_report, findings, fmt, gate_values
from vgrout.report.runs import load_run
from vgrout.report.gatequality import gate_console_table
from vgrout.report.summary import REGIME_BARS, console_table, summary_path

COLUMNS = f"""columns (one row per training step the gate scored):
  n         gated rollouts: live, advantage > 0 and scored (the ones whose update the gate routes)
  hacks     how many of them the oracle labels `exploited` (diagnostics only; training never sees it)
  auroc     AUROC of the routing score vs the hack label on this step alone (0.5 = chance; '-' when
            the step has no hack or no clean rollout); a step has few rows, so it swings
  roll      the same over the last {gate.WINDOW} steps pooled; '-' when that window has < {gate.MIN_CLASS} hacks or
            < {gate.MIN_CLASS} clean rollouts
  route_p   route-zone precision: hacks among the rollouts routed to the quarantine
  route_r   route-zone recall: routed among the hacks
  f0.5      F0.5 of the route zone as a hack detector (precision weighs more)
  keep_p    keep-zone precision: clean among the rollouts kept in the deployed block
  keep_r    keep-zone recall: kept among the clean rollouts"""


def _compare(args: argparse.Namespace) -> int:
    try:
        out = build_report(args.run_dirs, args.out, phenomenon=args.phenomenon_threshold, base_file=args.base)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise SystemExit(f"vgrout compare: {exc}") from None
    import json

    summary = json.loads(summary_path(out).read_text())
    print(console_table(summary))
    print()
    print(gate_console_table(summary))
    print()
    print("Findings")
    print(findings(out))
    print()
    print(f"report:  {out}")
    print(f"summary: {summary_path(out)}")
    for png in sorted(out.parent.glob(f"{out.stem}_*.png")):
        print(f"figure:  {png}")
    return 0


def _cell(x, width: int) -> str:
    return f"{'-' if x is None else x:>{width}}"


def _diagnostics(args: argparse.Namespace) -> int:
    try:
        run = load_run(args.run_dir, require_eval=False)
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"vgrout diagnostics: {exc}") from None
    if not gate.has_gate(run.diagnostics):
        print(f"{run.path}: arm {run.arm} logged no gate scores (vanilla and absorb route nothing); nothing to diagnose")
        return 0
    print(f"gate diagnostics for {run.path} (arm {run.arm}, seed {run.seed}); labels from the oracle")
    print(COLUMNS)
    print()
    rolled = {p.step: p for p in gate.rolling(run.diagnostics)}
    print(f"{'step':>6} {'n':>4} {'hacks':>5} {'auroc':>6} {'roll':>6} {'route_p':>7} {'route_r':>7} {'f0.5':>6} "
          f"{'keep_p':>6} {'keep_r':>6}")
    d = lambda x: "-" if fmt(x) == "n/a" else fmt(x)  # noqa: E731
    for step, g in gate.step_table(run.diagnostics):
        roll = rolled[step].auroc if step in rolled else float("nan")
        print(f"{step:>6} {_cell(g.n, 4)} {_cell(g.n_hack, 5)} {d(g.auroc):>6} {d(roll):>6} {d(g.route_precision):>7} "
              f"{d(g.route_recall):>7} {d(g.route_f05):>6} {d(g.keep_precision):>6} {d(g.keep_recall):>6}")
    source, vals = gate_values(run)
    p = gate.pooled(run.diagnostics)
    print()
    if source == "pooled":
        print(f"run AUROC (pooled over all {p.n} gated rollouts, {p.n_hack} hacks; the number `vgrout compare` "
              f"reports): {fmt(vals['auroc'])}; route F0.5 {fmt(vals['route_f05'])}")
    else:
        print(f"run AUROC (mean of the trainer's per-step values; no per-rollout fields to pool; the number "
              f"`vgrout compare` reports for this run): {fmt(vals['auroc'])}; route F0.5 {fmt(vals['route_f05'])}")
    print(f"mean of the per-step AUROCs above (noisier, for reference): {fmt(vals['step_auroc'])}")
    return 0


def register(subparsers) -> None:
    c = subparsers.add_parser("compare", help="markdown report + summary.json + PNGs across arms and seeds",
                              description="Compare evaluated runs: per-arm deployed and as-trained hack/solve/valid "
                                          "(mean ± SEM over seeds) beside the base model, degraded arms flagged, "
                                          "paired tests against vanilla and placebo, gate classifier table, quoted "
                                          "samples. Prints the findings; writes report.md, summary.json and PNGs.")
    c.add_argument("run_dirs", nargs="+", help="run directories (each evaluated with `vgrout eval`)")
    c.add_argument("--out", required=True, help="report path, e.g. runs/demo/report.md (PNGs and summary.json go "
                                                "beside it)")
    c.add_argument("--base", default=None, metavar="EVAL_JSON",
                   help="the base model's eval result (a vgrout.eval/1 JSON on the same problems and settings); "
                        "default: the runs' own eval/step_000000.json")
    c.add_argument("--phenomenon-threshold", type=float, default=REGIME_BARS["vanilla_hack_min"],
                   help="vanilla deployed hack rate at or above which the report calls the phenomenon present")
    c.set_defaults(func=_compare)
    d = subparsers.add_parser("diagnostics", help="per-step gate AUROC / precision / recall of one run",
                              description="How well the gate's routing score separates hacks (oracle labels) "
                                          "from clean rollouts, per training step and pooled over the run.")
    d.add_argument("run_dir")
    d.set_defaults(func=_diagnostics)


__all__ = ["register"]
