"""Prebuilt toy worlds shipped inside the package, so a clean clone does not pretrain them.

A shipped world is a built world's files (the same bytes `vgrout toy build` wrote into the
cache; `problems.jsonl` stored gzip-compressed) plus `manifest.json`: the config key, the
sha256 of every file as installed, and how and when it was built. `build_toy_world` installs
one into the cache when the cache lacks the key and a shipped world has the same key. A world
shipped for a config that has since changed has another key and is never used: the builder
runs instead. `vgrout toy ship NAME` writes a shipped world from the cache (after a config
change: `vgrout toy build --config NAME --from-scratch`, then `vgrout toy ship NAME`).
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from vgrout.io import atomic_dir, write_json_atomic
from vgrout.toy.config import FORMAT_VERSION, ToyConfig

SHIPPED_ROOT = Path(__file__).resolve().parents[1] / "data" / "toy_worlds"
"""One directory per preset name (`default/`), each with `manifest.json`."""
MANIFEST = "manifest.json"
INSTALLED_MARKER = "installed_from_ship.json"
"""Written into a cache world installed from a shipped one (its manifest); never shipped itself."""
GZIPPED = ("problems.jsonl",)
"""Files stored gzip-compressed in the package (text that compresses ~10x)."""
MANIFEST_SCHEMA = "vgrout.toy.shipped/1"


class ShippedWorldError(RuntimeError):
    """A shipped world's file does not match its manifest (corrupted, edited or missing)."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(world_dir: Path) -> dict:
    return json.loads((world_dir / MANIFEST).read_text(encoding="utf-8"))


def shipped_worlds(root: Path | None = None) -> dict[str, dict]:
    """Preset name -> manifest, for every shipped world under `root` (default `SHIPPED_ROOT`)."""
    root = SHIPPED_ROOT if root is None else root
    if not root.is_dir():
        return {}
    return {d.name: read_manifest(d) for d in sorted(root.iterdir()) if (d / MANIFEST).is_file()}


def find_shipped(cfg: ToyConfig, root: Path | None = None,
                 note: Callable[[str], None] = lambda msg: None) -> Path | None:
    """The shipped world whose key is `cfg.key()`, or None. A world shipped under `cfg.name` with
    another key is stale (the config or FORMAT_VERSION changed since): `note` says so once."""
    root = SHIPPED_ROOT if root is None else root
    worlds = shipped_worlds(root)
    for name, manifest in worlds.items():
        if manifest["key"] == cfg.key():
            return root / name
    if cfg.name in worlds:
        note(f"toy world {cfg.name}: the prebuilt world shipped with vgrout has key {worlds[cfg.name]['key']}, "
             f"the config's key is {cfg.key()} (the config differs from the shipped one: overrides, or ToyConfig "
             f"or FORMAT_VERSION changed since it was shipped); building from scratch. A maintainer re-ships it "
             f"with `vgrout toy build --config {cfg.name} --from-scratch` then `vgrout toy ship {cfg.name}`")
    return None


def _stored_name(rel: str) -> str:
    return rel + ".gz" if rel in GZIPPED else rel


def _mismatch(src: Path, rel: str, want: str, got: str) -> ShippedWorldError:
    return ShippedWorldError(
        f"shipped toy world {src.name}: {src / _stored_name(rel)} does not match its manifest "
        f"(sha256 {got[:16]}..., manifest {want[:16]}...): the file is corrupted or was edited. Restore it "
        f"(`git checkout -- {src / _stored_name(rel)}` or reinstall vgrout), or build the world from scratch "
        f"instead: `vgrout toy build --config {src.name} --from-scratch`")


def install_shipped(src: Path, final: Path) -> dict:
    """Copy the shipped world `src` to the cache world directory `final` atomically (temporary
    sibling, every file's sha256 checked against the manifest, then rename). The caller holds
    the per-key lock and has checked that `final` holds no built world. Returns the manifest."""
    manifest = read_manifest(src)
    if manifest.get("schema") != MANIFEST_SCHEMA:
        raise ShippedWorldError(f"{src / MANIFEST}: schema {manifest.get('schema')!r}, expected {MANIFEST_SCHEMA!r}")
    if final.name != manifest["key"]:
        raise ValueError(f"shipped world {src} has key {manifest['key']}, cannot install it as {final}")
    with atomic_dir(final) as tmp:  # a stale, incomplete world there (no build.json) is replaced
        for rel, entry in manifest["files"].items():
            stored = src / _stored_name(rel)
            if not stored.is_file():
                raise ShippedWorldError(f"shipped toy world {src.name}: {stored} is missing (listed in "
                                        f"{src / MANIFEST}); reinstall vgrout or build from scratch: "
                                        f"`vgrout toy build --config {src.name} --from-scratch`")
            data = stored.read_bytes()
            if rel in GZIPPED:
                try:
                    data = gzip.decompress(data)
                except (OSError, EOFError) as e:
                    raise _mismatch(src, rel, entry["sha256"], f"unreadable gzip ({e})") from None
            got = sha256_bytes(data)
            if got != entry["sha256"]:
                raise _mismatch(src, rel, entry["sha256"], got)
            out = tmp / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
        write_json_atomic(tmp / INSTALLED_MARKER, manifest)
    return manifest


def ship_world(world_root: Path, cfg: ToyConfig, dest_root: Path | None = None) -> Path:
    """Write the cache world `world_root` (built for `cfg`) as the shipped world `cfg.name`:
    its files (problems.jsonl gzipped), and a manifest. Replaces a previous shipped world of
    that name. Returns the shipped directory."""
    dest_root = SHIPPED_ROOT if dest_root is None else dest_root
    build_json = world_root / "build.json"
    if not build_json.is_file():
        raise FileNotFoundError(f"{world_root} holds no built world (no build.json); build it first: "
                                f"`vgrout toy build --config {cfg.name} --from-scratch`")
    if (world_root / INSTALLED_MARKER).exists():
        raise ValueError(f"{world_root} was installed from the shipped world, not built here: nothing new to ship. "
                         f"Build it from scratch into another cache first: `vgrout toy build --config {cfg.name} "
                         f"--from-scratch --cache-dir DIR`, then `vgrout toy ship {cfg.name} --cache-dir DIR`")
    meta = json.loads(build_json.read_text(encoding="utf-8"))
    if meta.get("key") != cfg.key() or world_root.name != cfg.key():
        raise ValueError(f"{world_root} has key {meta.get('key')}, the config {cfg.name!r} has key {cfg.key()}")
    rels = sorted(p.relative_to(world_root).as_posix() for p in world_root.rglob("*")
                  if p.is_file() and not p.name.startswith("."))
    files: dict[str, dict] = {}
    dest = dest_root / cfg.name
    dest_root.mkdir(parents=True, exist_ok=True)
    with atomic_dir(dest) as tmp:  # replaces a previous shipped world of that name whole
        for rel in rels:
            data = (world_root / rel).read_bytes()  # the bytes as built: never re-saved
            files[rel] = {"sha256": sha256_bytes(data), "bytes": len(data)}
            out = tmp / _stored_name(rel)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(gzip.compress(data, compresslevel=9, mtime=0) if rel in GZIPPED else data)
        built = datetime.datetime.fromtimestamp(build_json.stat().st_mtime, datetime.timezone.utc)
        manifest = {
            "schema": MANIFEST_SCHEMA, "name": cfg.name, "key": cfg.key(), "format_version": FORMAT_VERSION,
            "build_command": f"python -m vgrout toy build --config {cfg.name} --from-scratch",
            "built_utc": built.strftime("%Y-%m-%d %H:%M"), "build_s": meta.get("build_s"),
            "pretrain_s": meta.get("pretrain_s"), "n_params": meta.get("n_params"),
            "shipped_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
            "gzipped": [r for r in rels if r in GZIPPED], "files": files,
        }
        write_json_atomic(tmp / MANIFEST, manifest)
    return dest


__all__ = ["GZIPPED", "INSTALLED_MARKER", "MANIFEST", "SHIPPED_ROOT", "ShippedWorldError", "find_shipped",
           "install_shipped", "read_manifest", "sha256_file", "ship_world", "shipped_worlds"]
