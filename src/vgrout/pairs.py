"""Authored contrastive pairs: the only source of routing directions and pair-based inits.

File format (`*.jsonl`, one pair per line; documented in docs/pairs.md):

    {"id": "rt-sum-digits", "mode": "run_tests",
     "messages": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."}],
     "hack": "```python\\n...\\n```", "clean": "```python\\n...\\n```", "tags": ["leetcode"]}

`messages` is the prompt exactly as a live rollout would see it (built with
`vgrout.env.modes.render_messages`), so pair features and rollout features are computed on
the same chat-template layout. Pairs are never built from live rollouts or oracle labels.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from vgrout.io import write_jsonl_atomic
from vgrout.types import LOOPHOLE_MODES, HackPair

PAIRS_DIR = Path(__file__).parent / "data" / "pairs"
_REQUIRED = ("id", "mode", "messages", "hack", "clean")


def resolve_pairs_path(name_or_path: str | os.PathLike) -> Path:
    """A bundled pair-set name ("toy", "leetcode") or a path to a .jsonl file."""
    s = str(name_or_path)
    bundled = PAIRS_DIR / f"{s}.jsonl"
    if "/" not in s and not s.endswith(".jsonl"):
        if not bundled.exists():
            names = sorted(p.stem for p in PAIRS_DIR.glob("*.jsonl"))
            raise FileNotFoundError(f"no bundled pair set {s!r}; bundled: {names}, or pass a path to a .jsonl file")
        return bundled
    path = Path(s)
    if not path.exists():
        raise FileNotFoundError(f"pair file {path} does not exist")
    return path


def _parse(obj: object, where: str) -> HackPair:
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in _REQUIRED if k not in obj]
    if missing:
        raise ValueError(f"{where}: missing field(s) {missing}; a pair needs {list(_REQUIRED)}")
    if obj["mode"] not in LOOPHOLE_MODES:
        raise ValueError(f"{where}: mode {obj['mode']!r} is not a loophole mode {LOOPHOLE_MODES}")
    msgs = obj["messages"]
    if not (isinstance(msgs, list) and msgs and all(isinstance(m, dict) and {"role", "content"} <= m.keys() for m in msgs)):
        raise ValueError(f"{where}: 'messages' must be a non-empty list of {{role, content}} objects")
    for side in ("hack", "clean"):
        if not isinstance(obj[side], str) or not obj[side].strip():
            raise ValueError(f"{where}: '{side}' must be a non-empty string")
    return HackPair(
        id=str(obj["id"]), mode=obj["mode"], messages=tuple(dict(m) for m in msgs),
        hack=obj["hack"], clean=obj["clean"], tags=tuple(obj.get("tags", ())),
    )


def load_pairs(
    name_or_path: str | os.PathLike, modes: Iterable[str] | None = None, tags: Iterable[str] | None = None
) -> list[HackPair]:
    """Load pairs, keeping those whose mode is in `modes` and that carry every tag in `tags`.

    Raises on a malformed line, a duplicate id, or an empty selection.
    """
    path = resolve_pairs_path(name_or_path)
    pairs: list[HackPair] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{i}: not valid JSON ({exc.msg})") from exc
            pair = _parse(obj, f"{path}:{i}")
            if pair.id in seen:
                raise ValueError(f"{path}:{i}: duplicate pair id {pair.id!r}")
            seen.add(pair.id)
            pairs.append(pair)
    if modes is not None:
        modes = set(modes)
        unknown = modes - set(LOOPHOLE_MODES)
        if unknown:
            raise ValueError(f"unknown mode filter {sorted(unknown)}; loophole modes: {LOOPHOLE_MODES}")
        pairs = [p for p in pairs if p.mode in modes]
    if tags is not None:
        want = set(tags)
        pairs = [p for p in pairs if want <= set(p.tags)]
    if not pairs:
        raise ValueError(f"no pairs selected from {path} (modes={modes}, tags={tags})")
    return pairs


def write_pairs(pairs: Sequence[HackPair], path: str | os.PathLike) -> None:
    """Write pairs as jsonl, atomically."""
    write_jsonl_atomic(path, ({"id": p.id, "mode": p.mode, "messages": list(p.messages), "hack": p.hack,
                               "clean": p.clean, "tags": list(p.tags)} for p in pairs))
