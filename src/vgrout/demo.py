"""`vgrout demo`: the whole story on a laptop CPU, one command.

    build the toy world (cached) -> evaluate the base model once (runs/demo/base_eval.json)
    -> for each seed, every arm trained from scratch (`vgrout.study.run_matrix`; with
       --fork-at S the arms that can branch from one vanilla prefix trained to step S; vanilla
       written from absorb's run, which trains bit for bit alike, unless --twins train; --jobs N
       runs at a time in worker processes, the same results as one after another)
    -> held-out eval as-trained and deployed (written by the trainer's eval hook)
    -> runs/demo/report.md, summary.json + PNGs (vgrout.report.compare)
    -> the per-arm table (base row first, hack/solve/valid, degraded arms flagged) and the findings

Arms: vanilla (the phenomenon), routeA (the method), routeA with a Haar-random direction
(the placebo), absorb (the gate pinned to absorb), gt_only (the loophole pays nothing: how
much solving the training itself costs), oracle (hacks routed by the oracle's labels: the upper
bound a perfect gate could reach; a reference, not a method) and, when asked for (--arms), any arm of
`vgrout study`. Every run is resumable: a demo killed half way picks up where it stopped
(finished runs are kept, a half-finished run resumes from its last checkpoint).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

# The demo's arms, from `vgrout.study.STUDY_ARMS` (one registry of arm labels): the phenomenon,
# the method, its placebo, the absorb control, the gt_only control (the loophole pays nothing) and
# the oracle reference (routes exactly the oracle-labelled hacks: an upper bound, not a method).
DEFAULT_ARMS = ("vanilla", "routeA", "routeA-placebo", "absorb", "gt_only", "oracle")
DEFAULT_FORK_AT = 0  # from scratch: vanilla's first hacks come at steps 10-40 by seed, so a prefix saves little


def run_demo(out: Path, arms: tuple[str, ...], seeds: tuple[int, ...], overrides: dict[str, str], fresh: bool,
             threads: int = 1, build_threads: int = 2, fork_at: int = 0, jobs: int | None = None,
             twins: bool = True) -> Path:
    """Run every (arm, seed) (branched from one vanilla prefix per seed at `fork_at`, 0: from
    scratch), `jobs` at a time (None: `vgrout.study.default_jobs`), then write the comparison report;
    returns the report path."""
    import shutil

    from vgrout.report.compare import build_report, findings
    from vgrout.report.gatequality import gate_console_table
    from vgrout.report.summary import console_table, format_checks, summary_path
    from vgrout.study import STUDY_ARMS, default_jobs, evaluate_base, is_study_arm, run_matrix
    from vgrout.toy import toy_world
    from vgrout.train.cli import pin_threads
    from vgrout.train.presets import preset

    unknown = [a for a in arms if not is_study_arm(a)]
    if unknown:
        raise SystemExit(f"vgrout demo: unknown arm(s) {unknown}; choose from {', '.join(STUDY_ARMS)}")
    if jobs is not None and jobs < 1:
        raise SystemExit(f"vgrout demo: --jobs {jobs} must be >= 1")
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    base = preset("demo").with_overrides(overrides)
    print("[1/4] toy world (installed from the prebuilt world shipped with vgrout, or built once; then cached)")
    # pretraining's batch-64 matmuls gain from a second thread; the small GRPO steps do not
    pin_threads(build_threads)
    toy_world(base.model.split(":", 1)[1], progress=True)
    pin_threads(threads)
    print("[2/4] base model eval (held-out problems, before any training)")
    base_eval = evaluate_base(base.with_overrides({"seed": seeds[0]}), out / "base_eval.json")
    jobs = default_jobs(len(arms) * len(seeds)) if jobs is None else jobs
    print(f"[3/4] {len(arms)} arms x {len(seeds)} seeds, {base.steps} steps each"
          + (f", branched from a vanilla prefix at step {fork_at}" if fork_at else "")
          + f", {jobs} at a time (--jobs {jobs}, {threads} torch thread(s) each)", flush=True)
    t_train = time.perf_counter()
    run_dirs = run_matrix(out, base, arms, seeds, fork_at=fork_at, jobs=jobs, threads=threads, twins=twins,
                          log=lambda line: print(f"{line}  [{time.perf_counter() - t_train:.0f} s]", flush=True))
    print("[4/4] report")
    report = build_report(run_dirs, out / "report.md", base_file=base_eval)
    print()
    summary = json.loads(summary_path(report).read_text())
    print(console_table(summary))
    print("\nThe gate under test (does the routing score separate hacks? oracle labels, diagnostics only)")
    print(gate_console_table(summary))
    print("\nIs the regime one where the question can be read? (the regime checks)")
    print(format_checks(summary["regime_checks"]))
    print("\nFindings")
    print(findings(report))
    print(f"\nreport:  {report}\nsummary: {summary_path(report)}\nplots:   "
          f"{', '.join(str(p) for p in sorted(out.glob('*.png')))}")
    print(f"demo wall time: {time.perf_counter() - t0:.0f} s")
    return report


def _run(args: argparse.Namespace) -> int:
    from vgrout.train.cli import parse_sets

    try:
        overrides = parse_sets(args.set or [])
        if args.steps is not None:
            overrides["steps"] = str(args.steps)
            overrides["eval_every"] = str(max(1, args.steps // 3))  # three points on the curves
        run_demo(Path(args.out), tuple(args.arms.split(",")), tuple(int(s) for s in args.seeds.split(",")),
                 overrides, args.fresh, threads=args.threads, build_threads=args.build_threads, fork_at=args.fork_at,
                 jobs=args.jobs, twins=args.twins == "write")
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        raise SystemExit(f"vgrout demo: {exc}") from None
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="the toy-world demo: the chosen arms (--arms) x seeds, evaluated, one report",
                              description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/demo", help="where the runs and report.md go (default runs/demo)")
    from vgrout.study import STUDY_ARMS

    p.add_argument("--arms", default=",".join(DEFAULT_ARMS),
                   help=f"comma-separated, from: {', '.join(STUDY_ARMS)} (default: {','.join(DEFAULT_ARMS)})")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--steps", type=int, default=None, help="GRPO steps per run (default: the demo preset's)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a demo-preset Config field")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for training (default 1)")
    p.add_argument("--build-threads", type=int, default=2, help="torch CPU threads for the toy-world build (default 2)")
    p.add_argument("--fork-at", type=int, default=DEFAULT_FORK_AT, metavar="STEP",
                   help="branch the arms that can from one vanilla prefix per seed trained to STEP (0: every run "
                        f"from scratch; default {DEFAULT_FORK_AT}; see vgrout study)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="runs at a time, each in its own worker process (default: the usable CPUs, at most the "
                        "number of runs; 1: one after another in this process); results do not depend on it")
    from vgrout.study import add_twins_flag

    add_twins_flag(p)
    p.add_argument("--fresh", action="store_true", help="delete --out first instead of resuming")
    p.set_defaults(func=_run)
