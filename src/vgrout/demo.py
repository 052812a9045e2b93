"""`vgrout demo`: the whole story on a laptop CPU, one command: `vgrout study` with the demo's defaults.

    build the toy world (cached) -> evaluate the base model once (runs/demo/base_eval.json)
    -> for each seed, every arm trained from scratch (`vgrout.study.run_matrix`; vanilla written
       from absorb's run, which trains bit for bit alike, unless --twins train; --jobs N runs at a
       time in worker processes, the same results as one after another)
    -> held-out eval as-trained and deployed (written by the trainer's eval hook)
    -> runs/demo/report.md, summary.json + PNGs (vgrout.report.compare)
    -> the per-arm table (base row first, hack/solve/valid, degraded arms flagged), the gate
       under test, the regime checks and the findings

The demo and the study are one runner (`vgrout.study.run_study`) and one parser
(`vgrout.study.add_matrix_args`); only the defaults differ (`DEMO_DEFAULTS`): six arms, seeds
0-2, one placebo draw per seed, no relearning attack, out runs/demo. Every flag means the same
in both (`vgrout demo --help`). The preset is the study's (`demo`: the quarantine learns at a
tenth of the deployed block's lr, so absorption alone leaves the hack and a gate has room).

Arms: vanilla (the phenomenon), routeA (the method), routeA with a Haar-random direction
(the placebo), absorb (the gate pinned to absorb), gt_only (the loophole pays nothing: how
much solving the training itself costs), oracle (hacks routed by the oracle's labels: the upper
bound a perfect gate could reach; a reference, not a method) and, when asked for (--arms), any arm of
`vgrout study`. Every run is resumable: a demo killed half way picks up where it stopped
(finished runs are kept, a half-finished run resumes from its last checkpoint).
"""

from __future__ import annotations

from pathlib import Path

from vgrout.study import MatrixDefaults, add_matrix_args, run_study

# The demo's arms, from `vgrout.study.STUDY_ARMS` (one registry of arm labels): the phenomenon,
# the method, its placebo, the absorb control, the gt_only control (the loophole pays nothing) and
# the oracle reference (routes exactly the oracle-labelled hacks: an upper bound, not a method).
DEFAULT_ARMS = ("vanilla", "routeA", "routeA-placebo", "absorb", "gt_only", "oracle")
# The demo evaluates once, after the last step: a curve point half way costs ~45 s of its 10
# minutes on 2 vCPUs and no finding reads it (`--eval-every 75` adds it back). Every run trains
# from scratch: branched at step 25 from a vanilla prefix (2-3% of its rollouts hacking), routeA
# deployed with hack 0.283 against 0.000 from scratch (docs/results/demo-fork25-2026-12-07/):
# in this preset the gate has to be there from the first step.
DEMO_DEFAULTS = MatrixDefaults(out="runs/demo", arms=DEFAULT_ARMS, seeds="0,1,2", placebos=1, relearn_steps=0,
                               eval_last_only=True)


def run_demo(out: Path, arms: tuple[str, ...], seeds: tuple[int, ...], overrides: dict[str, str], fresh: bool,
             threads: int = 1, build_threads: int = 2, fork_at: int = 0, jobs: int | None = None,
             twins: bool = True) -> Path:
    """`run_study` on the demo preset with the demo's defaults (one placebo draw, no relearning
    attack, one eval after the last step unless `overrides` says eval.every); returns the report path."""
    return run_study(Path(out), "demo", arms, seeds, overrides, fork_at=fork_at, relearn_steps=DEMO_DEFAULTS.relearn_steps,
                     fresh=fresh, threads=threads, build_threads=build_threads, jobs=jobs, twins=twins,
                     placebos=DEMO_DEFAULTS.placebos, eval_last_only=DEMO_DEFAULTS.eval_last_only)


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="the toy-world demo: `vgrout study` with the demo's arms (--arms), seeds "
                                           "0-2 and one report", description=__doc__.splitlines()[0])
    add_matrix_args(p, DEMO_DEFAULTS)
