"""`vgrout compare RUN_DIRS... --out report.md` and `vgrout diagnostics RUN_DIR`: argument
parsing only; the work is in vgrout.report.compare and vgrout.report.gate."""

from __future__ import annotations

import argparse

from vgrout.report import gate
from vgrout.report.compare import build_report, fmt
from vgrout.report.rundir import load_run


def _compare(args: argparse.Namespace) -> int:
    try:
        out = build_report(args.run_dirs, args.out, phenomenon=args.phenomenon_threshold)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise SystemExit(f"vgrout compare: {exc}") from None
    print(f"report: {out}")
    for png in sorted(out.parent.glob(f"{out.stem}_*.png")):
        print(f"figure: {png}")
    return 0


def _diagnostics(args: argparse.Namespace) -> int:
    run = load_run(args.run_dir, require_eval=False)
    if not gate.has_gate(run.diagnostics):
        print(f"{run.path}: arm {run.arm} logged no gate scores; nothing to diagnose")
        return 0
    print(f"gate diagnostics for {run.path} (arm {run.arm}, seed {run.seed})")
    print(f"{'step':>6} {'n':>4} {'hacks':>5} {'auroc':>6} {'route_p':>7} {'route_r':>7} {'f0.5':>6} "
          f"{'keep_p':>6} {'keep_r':>6}")
    for step, g in gate.step_table(run.diagnostics):
        print(f"{step:>6} {g.n if g.n is not None else '-':>4} {g.n_hack if g.n_hack is not None else '-':>5} {fmt(g.auroc):>6} {fmt(g.route_precision):>7} "
              f"{fmt(g.route_recall):>7} {fmt(g.route_f05):>6} {fmt(g.keep_precision):>6} {fmt(g.keep_recall):>6}")
    table = gate.step_table(run.diagnostics)
    p = gate.pooled(run.diagnostics)
    if p is not None:
        print(f"pooled: n={p.n} hacks={p.n_hack} auroc={fmt(p.auroc)} route_f0.5={fmt(p.route_f05)}")
    print(f"mean over steps: auroc={fmt(gate.mean_over_steps(table, 'auroc'))} "
          f"route_f0.5={fmt(gate.mean_over_steps(table, 'route_f05'))}")
    return 0


def register(subparsers) -> None:
    c = subparsers.add_parser("compare", help="markdown report + PNGs across arms and seeds",
                              description="Compare evaluated runs: per-arm deployed hack/solve (mean ± SEM over "
                                          "seeds), paired tests against vanilla and placebo, gate classifier table.")
    c.add_argument("run_dirs", nargs="+", help="run directories (each evaluated with `vgrout eval`)")
    c.add_argument("--out", required=True, help="report path, e.g. runs/demo/report.md (PNGs go beside it)")
    c.add_argument("--phenomenon-threshold", type=float, default=0.8,
                   help="vanilla deployed hack rate at or above which the report calls the phenomenon present")
    c.set_defaults(func=_compare)
    d = subparsers.add_parser("diagnostics", help="per-step gate AUROC / precision / recall of one run")
    d.add_argument("run_dir")
    d.set_defaults(func=_diagnostics)


__all__ = ["register"]
