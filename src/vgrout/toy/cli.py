"""`vgrout toy build`: load, install (shipped) or build a toy world and print its per-family base
table; `vgrout toy ship`: make a cached world the package's prebuilt one."""

from __future__ import annotations

import argparse
import time


def register(subparsers: argparse._SubParsersAction) -> None:
    toy = subparsers.add_parser("toy", help="the CPU toy world (tiny model trained from scratch)")
    toy_sub = toy.add_subparsers(dest="toy_command", metavar="TOY_COMMAND", required=True)
    build = toy_sub.add_parser("build", help="build the toy world (cached by config hash) and print its base rates")
    build.add_argument("--config", default="default", help="preset name: default | tiny (default: default)")
    build.add_argument("--cache-dir", default=None, help="cache root (default: $VGROUT_CACHE or ~/.cache/vgrout)")
    build.add_argument("--threads", type=int, default=2,
                       help="torch CPU threads (default 2; run heavy builds under flock /tmp/vgrout-heavy.lock)")
    build.add_argument("--no-progress", action="store_true", help="no progress bar")
    build.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a ToyConfig field (repeatable); pair fields take mode:value lists, e.g. "
                            "--set hack_frac=run_tests:0.1,sentinel:0.1 (the cache key follows the overrides)")
    build.add_argument("--from-scratch", action="store_true",
                       help="pretrain the world here instead of installing the prebuilt one shipped with vgrout; "
                            "refuses if the cache already holds the world (delete it, or use --cache-dir)")
    build.set_defaults(func=_cmd_build)
    ship = toy_sub.add_parser("ship", help="(maintainers) copy a cached world built here into the package as the "
                                           "prebuilt world, with a sha256 manifest")
    ship.add_argument("name", help="preset name (default | tiny); the cache must hold its current key")
    ship.add_argument("--cache-dir", default=None, help="cache root (default: $VGROUT_CACHE or ~/.cache/vgrout)")
    ship.add_argument("--dest", default=None, help="shipped-worlds root (default: the package's data/toy_worlds)")
    ship.set_defaults(func=_cmd_ship)


def with_overrides(cfg, pairs: list[str]):
    """`cfg` with `KEY=VALUE` overrides applied (typed by the field's current value)."""
    import dataclasses

    from vgrout.toy.config import ToyConfig

    fields = {f.name for f in dataclasses.fields(ToyConfig)} - {"name"}
    changes: dict = {}
    for item in pairs:
        key, sep, raw = item.partition("=")
        if not sep or key not in fields:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(fields))}")
        old = getattr(cfg, key)
        try:
            if isinstance(old, bool):
                value = raw.lower() in ("1", "true", "yes")
            elif isinstance(old, (int, float)):
                value = type(old)(raw)
            elif isinstance(old, tuple) and old and isinstance(old[0], tuple):
                value = tuple((m, float(v)) for m, v in (part.split(":") for part in raw.split(",")))
            elif isinstance(old, tuple):
                value = tuple(s for s in raw.split(",") if s)
            else:
                value = raw
        except ValueError:
            raise SystemExit(f"--set {item!r}: cannot parse {raw!r} like {old!r}") from None
        changes[key] = value
    return dataclasses.replace(cfg, **changes) if changes else cfg


def _cmd_build(args: argparse.Namespace) -> int:
    import torch

    from vgrout.toy.base_report import format_per_mode, format_report
    from vgrout.toy.config import toy_config
    from vgrout.toy.families import FAMILIES
    from vgrout.toy.world import build_toy_world

    if args.threads <= 0:
        raise SystemExit(f"--threads must be positive, got {args.threads}")
    torch.set_num_threads(args.threads)
    cfg = with_overrides(toy_config(args.config), args.set)
    t0 = time.time()
    try:
        world = build_toy_world(cfg, cache_dir=args.cache_dir, progress=not args.no_progress, log=print,
                                from_scratch=args.from_scratch)
    except FileExistsError as e:
        raise SystemExit(str(e)) from None
    difficulty = {name: f.difficulty for name, f in FAMILIES.items()}
    print(f"\ntoy world '{cfg.name}' ({cfg.key()}) at {world.root} [{time.time() - t0:.1f}s]")
    print(f"model: {world.model_dir}")
    for split in ("heldout", "generalisation"):
        print(f"\n## base rates, {split} split (T=1, {cfg.eval_samples} samples per task)\n")
        print(format_report(world.base_report[split], difficulty))
    if "per_mode" in world.base_report:
        print(f"\n## base rates per loophole mode, heldout split (every task under every mode, "
              f"{cfg.per_mode_samples} sample(s) each)\n")
        print(format_per_mode(world.base_report["per_mode"]))
    return 0


def _cmd_ship(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vgrout.toy.config import toy_config
    from vgrout.toy.shipped import read_manifest, ship_world
    from vgrout.toy.world import default_cache_dir

    cfg = toy_config(args.name)
    root = Path(args.cache_dir) if args.cache_dir is not None else default_cache_dir()
    try:
        dest = ship_world(root / "toy" / cfg.key(), cfg, None if args.dest is None else Path(args.dest))
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(str(e)) from None
    m = read_manifest(dest)
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    print(f"shipped toy world {cfg.name} (key {m['key']}, built {m['built_utc']} UTC in {m['build_s']}s) "
          f"to {dest}: {len(m['files'])} files, {size / 1e6:.1f} MB; commit that directory")
    return 0
