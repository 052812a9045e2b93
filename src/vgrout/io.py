"""Crash-safe writes: every file and directory a run writes goes through here (torch-free).

A writer fills a temporary sibling and `os.replace`s it over the final name, so a reader (or a
resumed run) sees the old complete file or the new complete file, never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


def umask_mode(kind: str = "file") -> int:
    """The permissions a plain `open()` / `mkdir()` gets under the current umask (0o644 / 0o755
    under the usual 022); mkstemp and mkdtemp create 0600 / 0700, which readers of a shared run
    directory would not expect."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if kind == "dir" else 0o666) & ~mask


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on a clean exit it replaces `path`, on an error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, umask_mode("file"))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory beside `path`; on a clean exit it replaces `path` whole
    (an existing `path` is deleted first), on an error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".tmp-{path.name}-"))
    try:
        yield tmp
        os.chmod(tmp, umask_mode("dir"))
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (utf-8) to `path` atomically."""
    with atomic_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def write_json_atomic(path: str | os.PathLike, obj: object, indent: int = 1) -> Path:
    """Write `obj` as JSON (NaN allowed, trailing newline) atomically."""
    return write_text_atomic(path, json.dumps(obj, indent=indent, allow_nan=True) + "\n")


def write_jsonl_atomic(path: str | os.PathLike, rows: Iterable[object]) -> Path:
    """Write one JSON value per line atomically (a str row is written as is: an already-encoded line)."""
    return write_text_atomic(path, "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n"
                                           for r in rows))


__all__ = ["atomic_dir", "atomic_file", "umask_mode", "write_json_atomic", "write_jsonl_atomic", "write_text_atomic"]
