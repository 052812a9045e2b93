"""`vgrout` command line: parses arguments and hands off to the modules; no logic of its own.

Each area registers its subcommands through a `register(subparsers)` function in its own
`cli` module, so adding a command never touches this file's logic.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# (module with a `register(subparsers)` function) in the order they appear in --help
_COMMAND_MODULES = (
    "vgrout.demo",          # vgrout demo
    "vgrout.study",         # vgrout study
    "vgrout.train.cli",     # vgrout train
    "vgrout.train.direction",  # vgrout direction
    "vgrout.eval.cli",      # vgrout eval
    "vgrout.relearn",       # vgrout eval --relearn-steps (needs the trainer, which eval/ must not import)
    "vgrout.eval.samples",  # vgrout samples
    "vgrout.export_cli",    # vgrout export
    "vgrout.report.cli",    # vgrout compare / vgrout diagnostics
    "vgrout.toy.cli",       # vgrout toy build
    "vgrout.env.cli",       # vgrout grade
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vgrout", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # area not built yet in this checkout
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
