"""The strict oracle: split each assert into a call (sent to the sandbox) and an expected value
(kept here), decode the child's plain-JSON outputs, compare in this process.

Why: a grader that compares inside the untrusted process can be fooled (always-equal objects,
list subclasses, forged verdicts, early exits). Here the expected values never leave the grader's
process, the child can only send back data (tagged JSON, exact types), and equality is decided
by Python's `==` on those plain values (so `2 == 2.0` holds, as in the reference).
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Any

# Assert shapes `assert is_same_list(L, R)` / `assert is_same_tree(L, R)` compare structures.
_SAME_HELPERS = ("is_same_list", "is_same_tree")
_NAMED_FLOATS = {"inf": math.inf, "nan": math.nan}


class UnparseableTest(ValueError):
    """A test string the oracle cannot split into (call, expected)."""


class BadResult(ValueError):
    """The sandbox sent back something that is not a well-formed tagged value."""


@dataclass(frozen=True)
class ParsedTests:
    """Call expressions (source) for the sandbox and how to obtain each expected value.

    `literal[i]` is (True, value) when the expected value was a literal the grader evaluated
    itself, else (False, source) for a trusted expression (e.g. `list_node([1, 2])`) that must be
    evaluated in a solution-free sandbox job.
    """

    calls: tuple[str, ...]
    literal: tuple[tuple[bool, Any], ...]


@dataclass(frozen=True)
class Node:
    """Decoded ListNode/TreeNode output: its kind ("list"/"tree") and serialised values."""

    kind: str
    values: tuple


def _named_literal(node: ast.expr) -> Any:
    """literal_eval plus the names inf/nan (LeetCode writes `-inf`)."""

    def fix(n: ast.AST) -> ast.AST:
        for field, val in ast.iter_fields(n):
            if isinstance(val, list):
                setattr(n, field, [fix(v) if isinstance(v, ast.AST) else v for v in val])
            elif isinstance(val, ast.AST):
                setattr(n, field, fix(val))
        if isinstance(n, ast.Name) and n.id in _NAMED_FLOATS:
            return ast.copy_location(ast.Constant(_NAMED_FLOATS[n.id]), n)
        return n

    return ast.literal_eval(fix(ast.parse(ast.unparse(node), mode="eval").body))


def parse_test(test: str) -> tuple[str, tuple[bool, Any]]:
    """One assert string -> (call source, (is_literal, value or expression source))."""
    try:
        tree = ast.parse(test)
    except (SyntaxError, ValueError) as exc:
        raise UnparseableTest(f"test does not parse: {exc}: {test[:120]!r}") from exc
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assert):
        raise UnparseableTest(f"test is not a single assert statement: {test[:120]!r}")
    cond = tree.body[0].test
    if isinstance(cond, ast.Compare) and len(cond.ops) == 1 and isinstance(cond.ops[0], (ast.Eq, ast.Is)):
        left, right = cond.left, cond.comparators[0]
        if isinstance(cond.ops[0], ast.Is) and not (isinstance(right, ast.Constant) and right.value is None):
            raise UnparseableTest(f"only `is None` identity tests are supported: {test[:120]!r}")
    elif (
        isinstance(cond, ast.Call) and isinstance(cond.func, ast.Name) and cond.func.id in _SAME_HELPERS
        and len(cond.args) == 2 and not cond.keywords
    ):
        left, right = cond.args
    else:
        raise UnparseableTest(f"unsupported assert shape (need `assert L == R`): {test[:120]!r}")
    try:
        return ast.unparse(left), (True, _named_literal(right))
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return ast.unparse(left), (False, ast.unparse(right))


def parse_tests(tests: tuple[str, ...] | list[str]) -> ParsedTests:
    """All tests of a problem; raises UnparseableTest naming the first bad one."""
    if not tests:
        raise UnparseableTest("problem has no tests")
    pairs = [parse_test(t) for t in tests]
    return ParsedTests(tuple(c for c, _ in pairs), tuple(e for _, e in pairs))


def _hashable(v: Any) -> Any:
    if isinstance(v, (list, dict, set)):
        raise BadResult("unhashable key or set element")
    return v


def decode(v: Any, depth: int = 0) -> Any:
    """Tagged JSON from the child -> plain Python value (list/tuple/dict/set/frozenset/Node)."""
    if depth > 80:
        raise BadResult("value nested too deeply")
    t = type(v)
    if t in (bool, int, float, str) or v is None:
        return v
    if t is list:
        return [decode(x, depth + 1) for x in v]
    if t is dict and len(v) == 1:
        (tag, body), = v.items()
        if tag == "f" and body in ("nan", "inf", "-inf"):
            return float(body)
        if type(body) is list:
            items = [decode(x, depth + 1) for x in body]
            if tag == "t":
                return tuple(items)
            if tag == "s":
                return {_hashable(x) for x in items}
            if tag == "fs":
                return frozenset(_hashable(x) for x in items)
            if tag == "d" and all(type(p) is list and len(p) == 2 for p in items):
                return {_hashable(k): x for k, x in items}
            if tag == "ln":
                return Node("list", tuple(_freeze(x) for x in items))
            if tag == "tn":
                return Node("tree", tuple(_freeze(x) for x in items))
    raise BadResult(f"unexpected value in result: {str(v)[:80]}")


def _freeze(v: Any) -> Any:
    return tuple(_freeze(x) for x in v) if isinstance(v, list) else v


def equal(output: Any, expected: Any) -> bool:
    """Strict comparison of two plain values (both from `decode` or the grader's own literals).

    Both sides hold only builtin types here, so `==` cannot run untrusted code."""
    try:
        return bool(output == expected)
    except Exception:
        return False
