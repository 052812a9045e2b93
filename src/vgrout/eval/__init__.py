"""Held-out evaluation: hack and solve rates as-trained (quarantine on) and deployed
(quarantine ablated), per mode and overall, with Wilson intervals.

`vgrout.stats`, `vgrout.eval.tally` and `vgrout.eval.results` are torch-free, so
`vgrout.report` reads them without importing torch. `evaluate` and `evaluate_run` need
torch (generation); they are loaded on first attribute access for that reason.
"""

from __future__ import annotations

from importlib import import_module

_LAZY = {"evaluate": "vgrout.eval.evaluator", "evaluate_run": "vgrout.eval.run"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vgrout.eval' has no attribute {name!r}")


__all__ = ["evaluate", "evaluate_run"]
