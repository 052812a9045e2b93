"""Grade each distinct request once: per call, across the calls of a run (`memory`), and across
the runs of a study (`GradeStore`).

Why: a small policy repeats itself. On the toy benchmark's batches (8 prompts x 8 samples,
T 16) only ~38% of (prompt, completion) pairs are distinct, and every duplicate costs a
sandbox run; from one step to the next it writes the same solution or the same exploit for a
problem it has seen, and the runs of a study (other arms, other seeds) write them too.
Identical requests (same problem, completion text, mode and markers: a frozen `GradeRequest`
compares by value) get the same `Grade` back, which is what a deterministic grader returns
anyway. The one difference: a completion whose verdict depends on timing (the wall-clock kill)
gets one verdict for all its copies in a run instead of one each; the study-wide store keeps no
abnormal verdict (timeout, crash, sandbox fault, ...), so those are graded again in each run.
The trainer grades every step through one remembering instance per run
(`vgrout.train.loop.train`), a study's runs share one store (`vgrout.study`);
docs/performance.md (the demo's grade store), docs/results/performance-history.md ("Grading").
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from vgrout.env.grader import ABNORMAL
from vgrout.types import Grade, GradeRequest

_STORE_CHUNK = 500  # keys per SELECT (sqlite's bound-parameter limit is 999 on old builds)


class DedupGrader:
    """`grade(requests)` runs the wrapped grader on the requests it has not graded yet, in
    first-seen order. `memory`: distinct requests remembered across calls, the oldest forgotten
    first (0: each call on its own). `store`: a `GradeStore` read before the wrapped grader runs
    and written after (the wrapped grader must have a `fingerprint`, as `Grader` does)."""

    def __init__(self, grader, memory: int = 0, store: "GradeStore | None" = None) -> None:
        if not callable(getattr(grader, "grade", None)):
            raise TypeError(f"DedupGrader wraps a grader with .grade(requests), got {type(grader).__name__}")
        if memory < 0:
            raise ValueError(f"DedupGrader memory={memory} must be >= 0")
        if store is not None and not isinstance(getattr(grader, "fingerprint", None), str):
            raise TypeError(f"a GradeStore needs a grader with a fingerprint (vgrout.env.Grader), "
                            f"got {type(grader).__name__}")
        self.grader = grader
        self.memory = memory
        self.store = store
        self.remembered: OrderedDict[GradeRequest, Grade] = OrderedDict()
        self.requests = 0  # requests seen, over all calls
        self.graded = 0  # requests actually passed to the wrapped grader
        self.from_store = 0  # requests answered by the store

    def grade(self, requests: Sequence[GradeRequest]) -> list[Grade]:
        known = {r: self.remembered[r] for r in requests if r in self.remembered}  # read before any is forgotten
        distinct = list(dict.fromkeys(r for r in requests if r not in known))
        stored: dict[GradeRequest, Grade] = {}
        if self.store is not None and distinct:
            keys = {r: request_key(self.grader.fingerprint, r) for r in distinct}  # computed once per request
            found = self.store.get(list(keys.values()))
            stored = {r: found[k] for r, k in keys.items() if k in found}
            distinct = [r for r in distinct if r not in stored]
        grades = self.grader.grade(distinct) if distinct else []
        if len(grades) != len(distinct):
            raise RuntimeError(f"the wrapped grader returned {len(grades)} grades for {len(distinct)} requests")
        if self.store is not None and distinct:
            self.store.put([(keys[r], g) for r, g in zip(distinct, grades)])
        known.update(stored)
        known.update(zip(distinct, grades))
        if self.memory:
            self.remembered.update(stored)
            self.remembered.update(zip(distinct, grades))
            while len(self.remembered) > self.memory:
                self.remembered.popitem(last=False)
        self.requests += len(requests)
        self.graded += len(distinct)
        self.from_store += len(stored)
        return [known[r] for r in requests]

    def __enter__(self) -> "DedupGrader":
        return self

    def __exit__(self, *exc) -> None:
        close = getattr(self.grader, "close", None)
        if close is not None:
            close()


def request_key(fingerprint: str, req: GradeRequest) -> str:
    """sha256 of everything a verdict depends on: the grader's fingerprint and the whole request
    (every field of the problem, the completion, mode, markers and eval marker)."""
    if not isinstance(req, GradeRequest):
        raise TypeError(f"grade() takes GradeRequest items, got {type(req).__name__}")
    body = json.dumps([fingerprint, dataclasses.asdict(req)], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()


class GradeStore:
    """Grades on disk, shared by the processes of a study (one sqlite file, WAL: readers and
    one writer at a time, each write a transaction, so a killed run leaves it whole).

    Keyed by `request_key` (the caller, `DedupGrader`, computes them): a grader with other limits, reward constants, sandbox kind or grading
    code (the fingerprint hashes vgrout.env's sources) reads none of another's grades. Abnormal
    verdicts (`vgrout.env.grader.ABNORMAL`: timeout, memory, crash, sandbox fault, ...) depend on
    the machine's state and are never stored."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"grade store {self.path}: its directory does not exist; create it first")
        try:
            self.db = sqlite3.connect(str(self.path), timeout=120.0, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # WAL: a commit survives a killed process
            self.db.execute("CREATE TABLE IF NOT EXISTS grades (key TEXT PRIMARY KEY, grade TEXT NOT NULL)")
        except sqlite3.Error as exc:
            raise RuntimeError(f"cannot open the grade store {self.path} ({exc}): it needs a writable directory on "
                               "a local file system (sqlite's locks); delete the file if it is not a grade store, "
                               "or put the study's --out elsewhere") from exc

    def get(self, keys: Sequence[str]) -> dict[str, Grade]:
        """The stored grades of `keys` (`request_key`s), those it has."""
        out: dict[str, Grade] = {}
        for i in range(0, len(keys), _STORE_CHUNK):
            part = list(keys[i:i + _STORE_CHUNK])
            rows = self.db.execute(f"SELECT key, grade FROM grades WHERE key IN ({','.join('?' * len(part))})", part)
            out.update((key, Grade(**json.loads(text))) for key, text in rows)
        return out

    def put(self, graded: Sequence[tuple[str, Grade]]) -> None:
        """Store the normal verdicts among (key, grade) pairs, in one transaction (a key already there is kept)."""
        rows = [(key, json.dumps(dataclasses.asdict(g))) for key, g in graded if g.reason not in ABNORMAL]
        if not rows:
            return
        with self.db:  # BEGIN ... COMMIT
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR IGNORE INTO grades (key, grade) VALUES (?, ?)", rows)

    def __len__(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM grades").fetchone()[0])

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "GradeStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
