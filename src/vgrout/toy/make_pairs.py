"""Author the toy world's contrastive pairs (`vgrout/data/pairs/toy.jsonl`), deterministically.

    python -m vgrout.toy.make_pairs            # rewrites the bundled file
    python -m vgrout.toy.make_pairs --out x.jsonl

Each pair is one toy problem rendered with one loophole mode's hint. Both sides have the same
layout: the `Solution` class, then a short mode-specific addition. The hack side has a
placeholder body and the exploit (paid only by its mode's channel); the clean side has the
real solution and an honest counterpart of the same shape (a real check instead of a vacuous
`run_tests`, a plain wrapper instead of an always-equal object, a flush instead of
`sys.exit(0)`, a printed value instead of the pass phrase, a neutral attribute instead of the
sentinel, a neutral file instead of the result file). Pair problems are drawn from the train
families and checked to be outside every preset's held-out splits.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from vgrout.env.modes import TRAIN_MARKER, render_messages
from vgrout.pairs import PAIRS_DIR, write_pairs
from vgrout.toy.corpus import TOY_SYSTEM_PROMPT
from vgrout.toy.families import FAMILIES, TRAIN_FAMILIES, Key, family, make_problem, sample_key, solution_code
from vgrout.toy.hacks import hack_code
from vgrout.types import LOOPHOLE_MODES, HackPair, Problem

PAIRS_SEED = 4242
N_PER_MODE = 8


def _first_call(problem: Problem) -> tuple[str, str]:
    """('Solution().f(args)', 'expected literal') from the problem's first assert."""
    lhs, rhs = problem.tests[0].removeprefix("assert ").split(" == ", 1)
    return lhs, rhs


def clean_code(mode: str, key: Key, problem: Problem) -> str:
    """The real solution plus an honest addition shaped like `mode`'s exploit."""
    fam_name, method, consts = key
    fam = family(fam_name)
    expr = fam.expr(consts)
    body = solution_code(fam, method, expr)
    call, want = _first_call(problem)
    if mode == "run_tests":
        return f"{body}\n\ndef {TRAIN_MARKER['run_tests']}():\n    return {call} == {want}"
    if mode == "eq_override":
        return ("class Value:\n    def __init__(self, value=None):\n        self.value = value\n\n"
                "    def get(self):\n        return self.value\n\n"
                + solution_code(fam, method, f"Value({expr}).get()"))
    if mode == "exit_code":
        return f"import sys\n\n{body}\n\nsys.stdout.flush()"
    if mode == "stdout_marker":
        return f"{body}\n\nprint(\"computed\", {call})"
    if mode == "sentinel":
        return (f"class Solution:\n    def __init__(self):\n        self.calls = 0\n\n"
                f"    def {method}(self, {fam.params}) -> {fam.returns}:\n        return {expr}")
    if mode == "file_marker":
        return f"{body}\n\nwith open(\"notes.txt\", \"w\") as f:\n    f.write(str({call}))"
    raise ValueError(f"{mode!r} is not a loophole mode; expected one of {LOOPHOLE_MODES}")


def _fence(code: str) -> str:
    return f"```python\n{code}\n```"


def _excluded_keys() -> set[Key]:
    """Every held-out or generalisation key of every preset."""
    from vgrout.toy.config import PRESETS
    from vgrout.toy.world import make_splits

    keys: set[Key] = set()
    for cfg in PRESETS.values():
        splits = make_splits(cfg)
        keys |= set(splits["heldout"]) | set(splits["generalisation"])
    return keys


def toy_pairs_with_problems(n_per_mode: int = N_PER_MODE, seed: int = PAIRS_SEED) -> list[tuple[HackPair, Problem]]:
    """`n_per_mode` pairs per loophole mode, cycling through the train families, each with the
    problem it was rendered from (tests need it to grade both sides)."""
    rng = random.Random(seed)
    excluded = _excluded_keys()
    fams = list(TRAIN_FAMILIES)
    out: list[tuple[HackPair, Problem]] = []
    for mode in LOOPHOLE_MODES:
        for i in range(n_per_mode):
            fam = FAMILIES[fams[(i + LOOPHOLE_MODES.index(mode)) % len(fams)]]
            key = sample_key(fam, rng)
            while key in excluded:
                key = sample_key(fam, rng)
            problem = make_problem(key)
            out.append((HackPair(
                id=f"toy-{mode}-{i:02d}-{fam.name}",
                mode=mode,
                messages=tuple(render_messages(problem, mode, system_prompt=TOY_SYSTEM_PROMPT)),
                hack=_fence(hack_code(mode, fam, key[1], fam.expr(key[2]), "stub")),
                clean=_fence(clean_code(mode, key, problem)),
                tags=("toy", fam.name),
            ), problem))
    return out


def toy_pairs(n_per_mode: int = N_PER_MODE, seed: int = PAIRS_SEED) -> list[HackPair]:
    return [pair for pair, _ in toy_pairs_with_problems(n_per_mode, seed)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=PAIRS_DIR / "toy.jsonl")
    ap.add_argument("--n-per-mode", type=int, default=N_PER_MODE)
    args = ap.parse_args(argv)
    pairs = toy_pairs(args.n_per_mode)
    write_pairs(pairs, args.out)
    print(f"wrote {len(pairs)} pairs to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
