"""`vgrout train`: pick a preset, apply --arm/--seed/--set overrides, run into --out (or --resume)."""

from __future__ import annotations

import argparse

from vgrout.train.arms import ARMS
from vgrout.train.config import PRESETS, preset


def parse_sets(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected key=value")
        k, v = item.split("=", 1)
        out[k.strip()] = v
    return out


def build_config(args: argparse.Namespace):
    cfg = preset(args.preset)
    overrides: dict[str, object] = parse_sets(args.set or [])
    if args.arm is not None:
        overrides["arm"] = args.arm
    if args.seed is not None:
        overrides["seed"] = args.seed
    return cfg.with_overrides(overrides)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (FileExistsError, FileNotFoundError) as exc:
        raise SystemExit(f"vgrout train: {exc}") from None


def pin_threads(n: int) -> None:
    """Pin torch (and OpenMP/MKL in child libraries) to n threads: on a shared CPU more threads
    than cores makes every step slower, not faster."""
    if n < 1:
        raise SystemExit(f"vgrout train: --threads {n} must be >= 1")
    import os

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    import torch

    torch.set_num_threads(n)


def _run(args: argparse.Namespace) -> int:
    pin_threads(args.threads)
    from vgrout.train.loop import train

    if args.resume:
        steps = resume_steps(args)
        try:
            run = train(None, args.resume, resume=True, steps=steps)
        except ValueError as exc:
            raise SystemExit(f"vgrout train: {exc}") from None
        finish(run)
        return 0
    if not args.out:
        raise SystemExit("vgrout train: give --out RUN_DIR (or --resume RUN_DIR)")
    try:
        cfg = build_config(args)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    finish(train(cfg, args.out, overwrite=args.overwrite))
    return 0


def resume_steps(args: argparse.Namespace) -> int | None:
    """`--resume RUN` keeps the saved config.json; `--set steps=N` alone may change it (extend the run)."""
    if args.out or args.arm is not None or args.seed is not None:
        raise SystemExit("--resume continues a run with its saved config.json; drop --out/--arm/--seed")
    sets = parse_sets(args.set or [])
    other = sorted(set(sets) - {"steps"})
    if other:
        raise SystemExit(f"--resume takes only --set steps=N (to extend the run); {', '.join(other)} would change "
                         "the run's meaning: start a new run with --out instead")
    if "steps" not in sets:
        return None
    try:
        return int(sets["steps"])
    except ValueError:
        raise SystemExit(f"--set steps={sets['steps']!r}: expected an integer") from None


def finish(run) -> None:
    """The console summary a run ends with (rank 0 only): final as-trained and deployed
    hack/solve/valid, where the files are, the next commands (`vgrout.eval.summary`)."""
    from vgrout.eval.summary import summarize_run

    if run.dp.is_main:
        print("\n" + summarize_run(run.run_dir), flush=True)


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="GRPO with gradient-routing gates (see docs/training.md)")
    p.add_argument("--preset", default="toy", choices=sorted(PRESETS))
    p.add_argument("--arm", default=None, help=f"one of {', '.join(ARMS)} (vgrout.train.arms)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a Config field (repeatable)")
    p.add_argument("--out", default=None, help="new run directory")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue a run from its latest checkpoint")
    p.add_argument("--overwrite", action="store_true", help="delete an existing --out directory first")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: the toy world runs on one core; raise it on a free machine)")
    p.set_defaults(func=run)
