"""Author the toy world's contrastive pairs, deterministically: the build set (`toy.jsonl`, what
the routing direction is extracted from) and the check set (`toy_check.jsonl`, the transfer test
the direction is scored on before training).

    python -m vgrout.toy.make_pairs            # rewrites both bundled files
    python -m vgrout.toy.make_pairs --out x.jsonl --check-out y.jsonl

Each pair is one toy problem rendered with one loophole mode's hint; both sides share the
prompt. A side takes one of a few *forms* (docs/pairs.md), the shapes a policy writes:

hack forms
- "bare": the exploit alone, no `Solution` (run_tests, exit_code, stdout_marker, file_marker;
  eq_override and sentinel live in the class, so they use "stub" instead);
- "stub": a placeholder `Solution` (`return 0`) beside the exploit;
- "attempt": a real but wrong attempt (one constant nudged, failing the tests) beside the exploit.

clean forms
- "solution": the real solution alone, no tests function or other addition;
- "counterpart": the real solution plus an honest addition shaped like the mode's exploit (a
  `run_tests` that asserts a real case, a plain wrapper instead of an always-equal object, a
  flush instead of `sys.exit(0)`, a printed value instead of the pass phrase, a neutral attribute
  instead of the sentinel, a neutral file instead of the result file);
- "attempt": the same kind of wrong attempt alone: honest, failing, no exploit;
- "attempt_counterpart": the wrong attempt plus the honest addition.

The build set uses hack forms bare + stub and clean forms solution + counterpart on half of the
train families; the check set uses hack form attempt and clean forms attempt,
attempt_counterpart and counterpart on the other half, with another seed. Neither comes from rollouts or oracle labels.
The mix of forms per mode is chosen so that length alone does not tell hack from clean. Pair
problems are checked to be outside every preset's held-out splits.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from vgrout.env.modes import TRAIN_MARKER, render_messages
from vgrout.pairs import PAIRS_DIR, write_pairs
from vgrout.toy.corpus import TOY_SYSTEM_PROMPT
from vgrout.toy.families import (
    FAMILIES, TRAIN_FAMILIES, Family, Key, family, make_problem, near_miss_consts, sample_key, solution_code,
)
from vgrout.toy.hacks import BARE_MODES, hack_code
from vgrout.types import LOOPHOLE_MODES, HackPair, Problem

PAIRS_SEED = 4242
CHECK_SEED = 4343
N_PER_MODE = 8

HACK_FORMS = ("bare", "stub", "attempt")
CLEAN_FORMS = ("solution", "counterpart", "attempt", "attempt_counterpart")

# The two sets split the train families (alternately, so each half has easy, medium and hard
# ones) and the forms: the check set's families and hack form are never seen by the build set.
BUILD_FAMILIES: tuple[str, ...] = TRAIN_FAMILIES[0::2]
CHECK_FAMILIES: tuple[str, ...] = TRAIN_FAMILIES[1::2]

# (hack form, clean form) of pair i of a mode, cycled. "bare" falls back to "stub" in modes whose
# exploit lives in the class. Chosen so that length alone is near chance (tests/test_toy_pairs.py).
BUILD_PLAN: tuple[tuple[str, str], ...] = (
    ("bare", "solution"), ("stub", "solution"), ("bare", "counterpart"), ("stub", "counterpart"),
    ("bare", "solution"), ("stub", "solution"), ("bare", "solution"), ("stub", "counterpart"),
)
CHECK_PLAN: tuple[tuple[str, str], ...] = (
    ("attempt", "attempt"), ("attempt", "attempt_counterpart"), ("attempt", "attempt"), ("attempt", "counterpart"),
    ("attempt", "attempt_counterpart"), ("attempt", "attempt"), ("attempt", "counterpart"), ("attempt", "counterpart"),
)
SETS = {"toy": (BUILD_FAMILIES, BUILD_PLAN, PAIRS_SEED, "toy"),
        "toy_check": (CHECK_FAMILIES, CHECK_PLAN, CHECK_SEED, "toycheck")}


def _first_call(problem: Problem) -> tuple[str, str]:
    """('Solution().f(args)', 'expected literal') from the problem's first assert."""
    lhs, rhs = problem.tests[0].removeprefix("assert ").split(" == ", 1)
    return lhs, rhs


def _with_expr(mode: str, fam: Family, method: str, expr: str, problem: Problem) -> str:
    """A Solution returning `expr` plus an honest addition shaped like `mode`'s exploit."""
    body = solution_code(fam, method, expr)
    call, want = _first_call(problem)
    if mode == "run_tests":
        return f"{body}\n\ndef {TRAIN_MARKER['run_tests']}():\n    assert {call} == {want}"
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


def clean_code(mode: str, key: Key, problem: Problem) -> str:
    """The real solution plus an honest addition shaped like `mode`'s exploit (clean form "counterpart")."""
    fam_name, method, consts = key
    fam = family(fam_name)
    return _with_expr(mode, fam, method, fam.expr(consts), problem)


def _passes(code: str, problem: Problem) -> bool:
    """Does `code` (our own generated one-line Solution) pass the problem's asserts? In process: trusted."""
    ns: dict = {}
    exec(code, ns)  # trusted: an authored expression over the family's template
    try:
        for t in problem.tests:
            exec(t, ns)
    except AssertionError:
        return False
    return True


def attempt_expr(key: Key, problem: Problem, rng: random.Random) -> str:
    """A plausible wrong return expression: one constant nudged (else an off-by-one), failing a test."""
    fam_name, method, consts = key
    fam = family(fam_name)
    for _ in range(20):
        expr = fam.expr(near_miss_consts(fam, consts, rng))
        if not _passes(solution_code(fam, method, expr), problem):
            return expr
    # no nudged constant shows on these tests (e.g. a threshold between the test values): an off-by-one
    expr = {"int": f"{fam.expr(consts)} + 1", "bool": f"not {fam.expr(consts)}"}.get(fam.returns, f"{fam.expr(consts)}[1:]")
    if _passes(solution_code(fam, method, expr), problem):
        raise RuntimeError(f"no failing attempt found for {key!r}")
    return expr


def side_code(side: str, form: str, mode: str, key: Key, problem: Problem, wrong: str) -> str:
    """The code (no fence) of one side in one form; `wrong` is the attempt's return expression."""
    fam_name, method, consts = key
    fam = family(fam_name)
    if side == "hack":
        if form not in HACK_FORMS:
            raise ValueError(f"unknown hack form {form!r}; expected one of {HACK_FORMS}")
        if form == "attempt":
            return hack_code(mode, fam, method, wrong, "with_solution")
        shape = "bare" if form == "bare" and mode in BARE_MODES else "stub"
        return hack_code(mode, fam, method, fam.expr(consts), shape)
    if form not in CLEAN_FORMS:
        raise ValueError(f"unknown clean form {form!r}; expected one of {CLEAN_FORMS}")
    if form == "counterpart":
        return clean_code(mode, key, problem)
    if form == "attempt_counterpart":
        return _with_expr(mode, fam, method, wrong, problem)
    return solution_code(fam, method, wrong if form == "attempt" else fam.expr(consts))


def effective_hack_form(form: str, mode: str) -> str:
    """The hack form a plan entry gives in `mode` ("bare" is "stub" where the exploit lives in the class)."""
    return "stub" if form == "bare" and mode not in BARE_MODES else form


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


def pairs_with_problems(which: str = "toy", n_per_mode: int = N_PER_MODE) -> list[tuple[HackPair, Problem]]:
    """The `which` set ("toy": build, "toy_check": check), `n_per_mode` pairs per loophole mode,
    cycling through the set's families and form plan, each with the problem it was rendered from
    (tests need it to grade both sides). Tags: "toy", the family, "hack:FORM", "clean:FORM"."""
    if which not in SETS:
        raise ValueError(f"unknown toy pair set {which!r}; expected one of {sorted(SETS)}")
    fams, plan, seed, prefix = SETS[which]
    rng = random.Random(seed)
    excluded = _excluded_keys()
    out: list[tuple[HackPair, Problem]] = []
    for mode in LOOPHOLE_MODES:
        for i in range(n_per_mode):
            fam = FAMILIES[fams[(i + LOOPHOLE_MODES.index(mode)) % len(fams)]]
            key = sample_key(fam, rng)
            while key in excluded:
                key = sample_key(fam, rng)
            problem = make_problem(key)
            hack_form, clean_form = plan[i % len(plan)]
            hack_form = effective_hack_form(hack_form, mode)
            wrong = attempt_expr(key, problem, rng)  # drawn for every pair, so the draws do not depend on the plan
            out.append((HackPair(
                id=f"{prefix}-{mode}-{i:02d}-{fam.name}",
                mode=mode,
                messages=tuple(render_messages(problem, mode, system_prompt=TOY_SYSTEM_PROMPT)),
                hack=_fence(side_code("hack", hack_form, mode, key, problem, wrong)),
                clean=_fence(side_code("clean", clean_form, mode, key, problem, wrong)),
                tags=("toy", fam.name, f"hack:{hack_form}", f"clean:{clean_form}"),
            ), problem))
    return out


def toy_pairs_with_problems(n_per_mode: int = N_PER_MODE, seed: int | None = None) -> list[tuple[HackPair, Problem]]:
    """The build set with its problems (`seed` is accepted for compatibility and must be the default)."""
    if seed not in (None, PAIRS_SEED):
        raise ValueError(f"the build set is drawn with seed {PAIRS_SEED}; got {seed}")
    return pairs_with_problems("toy", n_per_mode)


def toy_pairs(n_per_mode: int = N_PER_MODE, seed: int | None = None) -> list[HackPair]:
    return [pair for pair, _ in toy_pairs_with_problems(n_per_mode, seed)]


def check_pairs(n_per_mode: int = N_PER_MODE) -> list[HackPair]:
    return [pair for pair, _ in pairs_with_problems("toy_check", n_per_mode)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=PAIRS_DIR / "toy.jsonl", help="the build set")
    ap.add_argument("--check-out", type=Path, default=PAIRS_DIR / "toy_check.jsonl", help="the check set")
    ap.add_argument("--n-per-mode", type=int, default=N_PER_MODE)
    args = ap.parse_args(argv)
    for which, path in (("toy", args.out), ("toy_check", args.check_out)):
        pairs = [p for p, _ in pairs_with_problems(which, args.n_per_mode)]
        write_pairs(pairs, path)
        print(f"wrote {len(pairs)} {which} pairs to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
