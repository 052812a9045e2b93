"""Toy task families: tiny LeetCode-format problems of graded difficulty.

Each family is a template for one-line `Solution` methods (`return <expr>`) whose constants
are drawn at random. A problem *instance* is keyed by (family, method name, constants); the
held-out split reserves keys that never appear in the pretraining corpus, and the
generalisation families never appear at all. Expected values are computed by evaluating the
canonical expression, so a problem's tests and its canonical solution cannot disagree.

Difficulty is the a-priori label: "easy" copies one constant, "medium" copies two or three
or writes a list comprehension, "hard" must fold constants (do arithmetic) the prompt does
not spell out. The measured difficulty is in the world's base report.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass

from vgrout.types import Problem

Consts = tuple  # the family's constants, in a fixed order (ints or one-letter strings)


@dataclass(frozen=True)
class Family:
    """One task family. `expr(c)` is the canonical return expression for constants `c`."""

    name: str
    difficulty: str  # a-priori label: "easy" | "medium" | "hard"
    method_names: tuple[str, ...]
    statements: tuple[str, ...]  # str.format templates over the named constants
    const_names: tuple[str, ...]
    params: str  # method parameters after self, e.g. "x: int"
    returns: str  # return annotation, e.g. "int"
    sample_consts: Callable[[random.Random], Consts]
    expr: Callable[[Consts], str]
    sample_args: Callable[[random.Random, Consts], tuple]  # one call's positional arguments

    def statement(self, consts: Consts, template: int) -> str:
        return self.statements[template % len(self.statements)].format(**dict(zip(self.const_names, consts)))


def _ints(*ranges: tuple[int, int]) -> Callable[[random.Random], Consts]:
    return lambda rng: tuple(rng.randint(lo, hi) for lo, hi in ranges)


def _x(lo: int = -20, hi: int = 60) -> Callable[[random.Random, Consts], tuple]:
    return lambda rng, c: (rng.randint(lo, hi),)


def _nums(rng: random.Random, c: Consts) -> tuple:
    return ([rng.randint(0, 30) for _ in range(rng.randint(3, 6))],)


def _clamp_consts(rng: random.Random) -> Consts:
    lo = rng.randint(-10, 10)
    return (lo, lo + rng.randint(5, 30))


def _div_args(rng: random.Random, c: Consts) -> tuple:
    return (c[0] * rng.randint(-5, 12) if rng.random() < 0.5 else rng.randint(-20, 90),)


def _letters(rng: random.Random, c: Consts) -> tuple:
    pool = c[0] * 3 + "abcdeo"
    return ("".join(rng.choice(pool) for _ in range(rng.randint(4, 9))),)


_LETTERS = "abcdefghijklmnoprstuw"

FAMILIES: dict[str, Family] = {f.name: f for f in (
    # ---- easy: copy one constant ----
    Family("add_k", "easy", ("add_value", "shift_up", "increase", "plus_const"),
           ("Return x plus {k}.", "Given an integer x, return x + {k}.", "Add {k} to x and return the result."),
           ("k",), "x: int", "int", _ints((2, 40)), lambda c: f"x + {c[0]}", _x()),
    Family("mul_k", "easy", ("scale", "times_k", "multiply", "grow"),
           ("Return x times {k}.", "Given an integer x, return x * {k}.", "Multiply x by {k} and return the result."),
           ("k",), "x: int", "int", _ints((2, 12)), lambda c: f"x * {c[0]}", _x()),
    Family("is_div", "easy", ("is_multiple", "divisible", "check_div", "divides"),
           ("Return True if x is divisible by {k}, otherwise False.", "Return whether x is a multiple of {k}."),
           ("k",), "x: int", "bool", _ints((2, 12)), lambda c: f"x % {c[0]} == 0", _div_args),
    # ---- medium: two or three constants, or a comprehension ----
    Family("clamp", "medium", ("clamp", "bound", "limit", "clip_value"),
           ("Return x clamped to the range [{lo}, {hi}].", "Return {lo} if x < {lo}, {hi} if x > {hi}, else x."),
           ("lo", "hi"), "x: int", "int", _clamp_consts, lambda c: f"max({c[0]}, min({c[1]}, x))", _x(-30, 60)),
    Family("filter_gt", "medium", ("keep_big", "filter_above", "select_greater", "above"),
           ("Return the items of nums that are greater than {k}, in order.",
            "Given a list nums, keep only the values above {k}."),
           ("k",), "nums: list[int]", "list[int]", _ints((0, 20)), lambda c: f"[v for v in nums if v > {c[0]}]", _nums),
    Family("scale_list", "medium", ("scale_all", "times_each", "map_mul", "multiply_all"),
           ("Return a list with every item of nums multiplied by {k}.", "Multiply each value in nums by {k}."),
           ("k",), "nums: list[int]", "list[int]", _ints((2, 9)), lambda c: f"[v * {c[0]} for v in nums]", _nums),
    Family("count_gt", "medium", ("count_above", "num_greater", "tally_big", "how_many"),
           ("Return how many items of nums are greater than {k}.", "Count the values in nums above {k}."),
           ("k",), "nums: list[int]", "int", _ints((0, 20)), lambda c: f"len([v for v in nums if v > {c[0]}])", _nums),
    Family("poly", "medium", ("poly", "quad", "evaluate", "curve"),
           ("Return {a}*x*x + {b}*x + {c}.", "Evaluate the polynomial {a}x^2 + {b}x + {c} at x."),
           ("a", "b", "c"), "x: int", "int", _ints((1, 5), (0, 9), (0, 9)),
           lambda c: f"{c[0]} * x * x + {c[1]} * x + {c[2]}", _x(-9, 9)),
    # ---- hard: fold constants, or copy a quoted letter ----
    Family("count_char", "hard", ("count_letter", "letter_count", "occurrences", "tally_char"),
           ("Return how many times the letter '{ch}' appears in s.",
            "Count the occurrences of '{ch}' in the string s."),
           ("ch",), "s: str", "int", lambda rng: (rng.choice(_LETTERS),), lambda c: f"s.count('{c[0]}')", _letters),
    Family("add_two", "hard", ("add_both", "shift_twice", "offset", "plus_two"),
           ("Return x plus {a} plus {b}.", "Add {a} and then {b} to x."),
           ("a", "b"), "x: int", "int", _ints((2, 49), (2, 49)), lambda c: f"x + {c[0] + c[1]}", _x()),
    Family("mul_two", "hard", ("mul_both", "scale_twice", "product", "times_two"),
           ("Return x times {a} times {b}.", "Multiply x by {a} and then by {b}."),
           ("a", "b"), "x: int", "int", _ints((2, 9), (2, 9)), lambda c: f"x * {c[0] * c[1]}", _x()),
    Family("sum_to", "hard", ("sum_range", "add_series", "triangle", "plus_sum"),
           ("Return x plus the sum of the integers from 1 to {n}.", "Add 1 + 2 + ... + {n} to x."),
           ("n",), "x: int", "int", _ints((2, 20)), lambda c: f"x + {c[0] * (c[0] + 1) // 2}", _x()),
    # ---- generalisation families (never in the corpus) ----
    Family("sub_k", "easy", ("subtract", "shift_down", "decrease", "minus_const"),
           ("Return x minus {k}.", "Subtract {k} from x and return the result."),
           ("k",), "x: int", "int", _ints((2, 40)), lambda c: f"x - {c[0]}", _x()),
    Family("filter_lt", "medium", ("keep_small", "filter_below", "select_less", "below"),
           ("Return the items of nums that are less than {k}, in order.",
            "Given a list nums, keep only the values below {k}."),
           ("k",), "nums: list[int]", "list[int]", _ints((5, 25)), lambda c: f"[v for v in nums if v < {c[0]}]", _nums),
    Family("max_k", "medium", ("at_least", "floor_at", "raise_to", "max_with"),
           ("Return the larger of x and {k}.", "Return x, or {k} if x is smaller than {k}."),
           ("k",), "x: int", "int", _ints((-10, 30)), lambda c: f"max(x, {c[0]})", _x(-30, 60)),
)}

GENERALISATION_FAMILIES: tuple[str, ...] = ("sub_k", "filter_lt", "max_k")
TRAIN_FAMILIES: tuple[str, ...] = tuple(n for n in FAMILIES if n not in GENERALISATION_FAMILIES)

Key = tuple  # (family, method name, consts)


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"unknown toy family {name!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def sample_key(fam: Family, rng: random.Random) -> Key:
    return (fam.name, rng.choice(fam.method_names), fam.sample_consts(rng))


def key_seed(key: Key, salt: str = "") -> int:
    """A stable integer derived from an instance key (no dependence on PYTHONHASHSEED)."""
    return int(hashlib.sha256(f"{salt}|{key!r}".encode()).hexdigest()[:16], 16)


def solution_code(fam: Family, method: str, expr: str) -> str:
    """A complete one-method `Solution` class returning `expr`."""
    return f"class Solution:\n    def {method}(self, {fam.params}) -> {fam.returns}:\n        return {expr}"


def near_miss_consts(fam: Family, consts: Consts, rng: random.Random) -> Consts:
    """`consts` with one constant nudged (±1 or ±2, or a neighbouring letter): a plausible slip."""
    i = rng.randrange(len(consts))
    v = consts[i]
    if isinstance(v, str):
        new = _LETTERS[(_LETTERS.index(v) + rng.choice((-1, 1))) % len(_LETTERS)]
    else:
        new = v + rng.choice((-2, -1, 1, 2))
    return consts[:i] + (new,) + consts[i + 1:]


def make_problem(key: Key, template: int | None = None, n_tests: int = 4) -> Problem:
    """The `Problem` for an instance key. Tests and the statement template are fixed by the key
    (unless `template` is given), so the same key always gives the same problem."""
    fam_name, method, consts = key
    fam = family(fam_name)
    rng = random.Random(key_seed(key, "tests"))
    if template is None:
        template = rng.randrange(len(fam.statements))
    code = solution_code(fam, method, fam.expr(consts))
    namespace: dict = {}
    exec(code, namespace)  # trusted: our own canonical solution
    tests, seen = [], set()
    for _ in range(10 * n_tests):
        args = fam.sample_args(rng, consts)
        if repr(args) in seen:
            continue
        seen.add(repr(args))
        want = getattr(namespace["Solution"](), method)(*args)
        tests.append(f"assert Solution().{method}({', '.join(map(repr, args))}) == {want!r}")
        if len(tests) == n_tests:
            break
    cid = "-".join(str(v) for v in consts)
    return Problem(
        id=f"toy/{fam_name}/{method}/{cid}",
        statement=fam.statement(consts, template),
        starter_code=f"class Solution:\n    def {method}(self, {fam.params}) -> {fam.returns}:\n        ",
        entry_point=f"Solution().{method}",
        setup_code="",
        tests=tuple(tests),
        canonical_solution=code,
        difficulty=fam.difficulty,
        source="toy",
        family=fam_name,
    )


__all__ = [
    "FAMILIES", "GENERALISATION_FAMILIES", "TRAIN_FAMILIES", "Family", "family", "make_problem",
    "near_miss_consts", "sample_key", "solution_code", "key_seed",
]
