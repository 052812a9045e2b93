"""The module map: which vgrout unit may import which, checked on every import statement.

A unit is a top-level module (`types`, `io`, ...) or a package (`train`, `eval`, ...). The
table below is the one docs/architecture.md shows (the test checks they match), and it is
a DAG: lower units never import higher ones, so `train` can change without touching
`eval`, `adapter`, `gates` or `rollout`. Imports inside functions and under TYPE_CHECKING
count too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "vgrout"

ALLOWED: dict[str, set[str]] = {
    "types": set(),
    "io": set(),
    "chat": set(),
    "localqwen": set(),
    "stats": set(),
    "jobs": set(),
    "pairs": {"io", "types"},
    "rundir": {"io", "types"},
    "env": {"types"},
    "data": {"env", "pairs", "types"},
    "toy": {"env", "io", "pairs", "types"},
    "models": {"toy"},
    "problemsets": {"env", "toy", "types"},
    "adapter": {"chat", "io", "types"},
    "gates": {"stats", "types"},
    "rollout": {"adapter", "chat", "types"},
    "eval": {"adapter", "env", "io", "models", "problemsets", "rollout", "rundir", "stats", "types"},
    "report": {"eval", "io", "rundir", "stats", "types"},
    "interop": {"env", "types"},
    "train": {"adapter", "env", "eval", "gates", "io", "models", "pairs", "problemsets", "rollout", "rundir", "toy",
              "types"},
    "twin": {"eval", "io", "rundir", "train"},
    "demo": {"report", "rundir", "study", "toy", "train"},
    "export_cli": {"adapter", "eval", "io", "models", "rundir", "toy"},
    "relearn": {"eval", "io", "rundir", "train", "types"},
    "study": {"env", "eval", "io", "jobs", "models", "relearn", "report", "rundir", "toy", "train", "twin"},
    "cli": {"*"},
    "__main__": {"cli"},
    "__init__": set(),
}


def unit_of(path: Path) -> str:
    rel = path.relative_to(SRC).parts
    return rel[0][:-3] if len(rel) == 1 else rel[0]


def imported_units(tree: ast.AST) -> set[str]:
    """The vgrout units a module's import statements name (`from vgrout import stats` names `stats`)."""
    out = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] if node.module != "vgrout" else [f"vgrout.{a.name}" for a in node.names]
        out |= {n.split(".")[1] for n in names if n.startswith("vgrout.")}
    return out


def edges() -> dict[tuple[str, str], list[str]]:
    """(unit, imported unit) -> the files with that import."""
    found: dict[tuple[str, str], list[str]] = {}
    for f in sorted(SRC.rglob("*.py")):
        unit = unit_of(f)
        for target in imported_units(ast.parse(f.read_text(), str(f))):
            if target != unit:
                found.setdefault((unit, target), []).append(str(f.relative_to(ROOT)))
    return found


def test_every_import_follows_the_module_map():
    bad = {f"{u} -> {t}": files for (u, t), files in edges().items()
           if u not in ALLOWED or not ({t, "*"} & ALLOWED[u])}
    assert not bad, f"imports outside the module map (tests/test_architecture.py, docs/architecture.md): {bad}"


def test_every_unit_is_in_the_map():
    units = {unit_of(f) for f in SRC.rglob("*.py")}
    assert units <= set(ALLOWED), f"new unit(s) {sorted(units - set(ALLOWED))}: add a row to the module map"


def test_the_map_has_no_cycles():
    graph = {u: {t for t in ts if t != "*"} for u, ts in ALLOWED.items() if "*" not in ts}
    done: set[str] = set()

    def visit(u: str, path: tuple[str, ...]) -> None:
        assert u not in path, f"cycle in the module map: {' -> '.join(path + (u,))}"
        if u in done:
            return
        for t in graph.get(u, ()):
            visit(t, path + (u,))
        done.add(u)

    for u in graph:
        visit(u, ())


def test_nothing_below_train_imports_train():
    lower = {"eval", "report", "env", "adapter", "gates", "rollout", "models", "problemsets", "io", "types", "pairs",
             "rundir"}
    assert not [k for k in edges() if k[1] == "train" and k[0] in lower]


def test_docs_show_the_same_table():
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Import rules", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([\w_]+)` \| (.*?) \|$", section, flags=re.M)
    shown = {u: {t.strip("` ") for t in deps.split(",") if t.strip("` ") not in ("", "nothing")} for u, deps in rows}
    assert shown == ALLOWED, "docs/architecture.md's import table differs from tests/test_architecture.py's ALLOWED"


def test_docs_module_map_lists_every_module():
    """The module map's row for a package names each of its modules (`name.py`) and no other: a module
    added, merged or moved edits docs/architecture.md in the same commit."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Module map", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `vgrout/([\w_]+)/` \| (.*?) \|$", section, flags=re.M))
    packages = sorted(p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").is_file())
    assert set(packages) <= set(rows), f"packages without a row in the module map: {sorted(set(packages) - set(rows))}"
    for pkg in packages:
        owns = rows[pkg]
        named = set(re.findall(r"`([\w_]+\.py)`", owns))
        have = {f.name for f in (SRC / pkg).glob("*.py") if f.name != "__init__.py"}
        assert named == have, f"docs/architecture.md's vgrout/{pkg}/ row: missing {sorted(have - named)}, " \
                              f"stale {sorted(named - have)}"
    tops = sorted(f.name for f in SRC.glob("*.py") if f.name not in ("__init__.py", "__main__.py"))
    shown = set(re.findall(r"^\| `vgrout/([\w_]+\.py)` \|", section, flags=re.M))
    assert shown == set(tops), f"top-level modules missing from the map {sorted(set(tops) - shown)}, stale {sorted(shown - set(tops))}"


def test_train_stays_small():
    """The trainer reads top to bottom in a few files: at most ten modules in train/, `__init__` included."""
    assert len(list((SRC / "train").glob("*.py"))) <= 10
