"""The prebuilt default toy world shipped in the package: it matches the current config, its
bytes match its manifest, it installs into an empty cache as a loadable world, a tampered file
fails loudly, and a stale (other-key) shipped world falls back to the builder. No training."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import vgrout.toy.world as world_mod
from vgrout.toy import build_toy_world, toy_config
from vgrout.toy.families import make_problem
from vgrout.toy.shipped import (
    INSTALLED_MARKER, SHIPPED_ROOT, ShippedWorldError, read_manifest, sha256_file, ship_world,
)
from vgrout.toy.world import make_splits

DEFAULT = SHIPPED_ROOT / "default"


def no_build(*a, **k):
    raise AssertionError("the builder ran although a matching shipped world exists")


def test_shipped_default_world_has_the_current_config_key():
    manifest = read_manifest(DEFAULT)
    cfg = toy_config("default")
    assert manifest["key"] == cfg.key(), (
        f"the shipped toy world {DEFAULT} has key {manifest['key']} but toy_config('default') now has key "
        f"{cfg.key()} (ToyConfig or FORMAT_VERSION changed). Rebuild and re-ship it: `flock /tmp/vgrout-heavy.lock "
        f"python -m vgrout toy build --config default --from-scratch`, then `python -m vgrout toy ship default`, "
        f"and commit src/vgrout/data/toy_worlds/default")
    build = json.loads((DEFAULT / "build.json").read_text())
    assert build["key"] == manifest["key"] and build["config"] == json.loads(json.dumps(cfg.to_dict()))
    assert manifest["build_s"] == build["build_s"] and manifest["build_command"] and manifest["built_utc"]


def test_every_shipped_file_matches_its_manifest_sha256():
    manifest = read_manifest(DEFAULT)
    shipped = {p.relative_to(DEFAULT).as_posix() for p in DEFAULT.rglob("*") if p.is_file()} - {"manifest.json"}
    assert shipped == {r + ".gz" if r in manifest["gzipped"] else r for r in manifest["files"]}
    for rel, entry in manifest["files"].items():
        if rel in manifest["gzipped"]:
            data = gzip.decompress((DEFAULT / (rel + ".gz")).read_bytes())
            got = hashlib.sha256(data).hexdigest()
        else:
            got, data = sha256_file(DEFAULT / rel), None
        assert got == entry["sha256"], rel
        assert (len(data) if data is not None else (DEFAULT / rel).stat().st_size) == entry["bytes"], rel


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    mp = pytest.MonkeyPatch()
    mp.setattr(world_mod, "_build_into", no_build)
    notes: list[str] = []
    try:
        world = build_toy_world(toy_config("default"), cache_dir=cache, progress=False, log=notes.append)
    finally:
        mp.undo()
    return world, cache, notes


def test_install_into_an_empty_cache_gives_a_loadable_world(installed):
    world, cache, notes = installed
    cfg = toy_config("default")
    assert world.root == cache / "toy" / cfg.key()
    assert any("installed the prebuilt world shipped with vgrout" in n and cfg.key() in n for n in notes)
    manifest = read_manifest(DEFAULT)
    for rel, entry in manifest["files"].items():  # installed bytes = built bytes (the model is not re-saved)
        assert sha256_file(world.root / rel) == entry["sha256"], rel
    assert json.loads((world.root / INSTALLED_MARKER).read_text())["key"] == cfg.key()
    assert not [p for p in (cache / "toy").iterdir() if p.is_dir() and p.name.startswith(".")]  # no temp dirs
    build = json.loads((world.root / "build.json").read_text())
    splits = make_splits(cfg)
    for split, keys in splits.items():  # the shipped problems are the ones this config draws
        assert world.problems(split) == [make_problem(k) for k in keys], split
    assert world.base_report["heldout"]["overall"]["n"] == len(splits["heldout"]) * cfg.eval_samples
    model = AutoModelForCausalLM.from_pretrained(world.model_dir)
    tok = AutoTokenizer.from_pretrained(world.model_dir)
    assert sum(p.numel() for p in model.parameters()) == build["n_params"]
    assert next(model.parameters()).dtype == torch.float32 and len(tok) == build["vocab"]


def test_second_call_loads_the_installed_world_from_cache(installed, monkeypatch):
    world, cache, _ = installed
    import vgrout.toy.shipped as shipped_mod

    monkeypatch.setattr(world_mod, "_build_into", no_build)
    monkeypatch.setattr(shipped_mod, "install_shipped", lambda *a: pytest.fail("installed twice"))
    again = build_toy_world(toy_config("default"), cache_dir=cache, progress=False)
    assert again.root == world.root and again.base_report == world.base_report


def test_from_scratch_refuses_a_cached_world(installed):
    _, cache, _ = installed
    with pytest.raises(FileExistsError, match="never replaces a cached world"):
        build_toy_world(toy_config("default"), cache_dir=cache, progress=False, from_scratch=True)
    from vgrout.cli import main

    with pytest.raises(SystemExit, match="already in the cache"):
        main(["toy", "build", "--from-scratch", "--cache-dir", str(cache), "--no-progress", "--threads", "1"])


def test_a_tampered_shipped_file_is_a_loud_error(tmp_path, monkeypatch):
    ships = tmp_path / "ships"
    shutil.copytree(DEFAULT, ships / "default")
    tok = ships / "default" / "model" / "tokenizer.json"
    tok.write_bytes(tok.read_bytes().replace(b"<|im_end|>", b"<|im_END|>", 1))
    monkeypatch.setattr(world_mod, "_build_into", no_build)
    cache = tmp_path / "cache"
    with pytest.raises(ShippedWorldError, match=r"model/tokenizer\.json does not match its manifest.*--from-scratch"):
        build_toy_world(toy_config("default"), cache_dir=cache, progress=False, shipped_root=ships)
    assert [p.name for p in (cache / "toy").iterdir() if p.is_dir()] == []  # nothing half-installed


def test_a_shipped_world_with_another_key_falls_back_to_the_builder(tmp_path, monkeypatch):
    cfg = toy_config("tiny")
    ships = tmp_path / "ships"
    (ships / "tiny").mkdir(parents=True)
    (ships / "tiny" / "manifest.json").write_text(json.dumps({"schema": "vgrout.toy.shipped/1", "name": "tiny",
                                                              "key": "0" * 16, "files": {}}))
    calls: list[str] = []

    def fake_build(out: Path, c, progress, log) -> dict:  # the builder itself is tested in test_toy_world
        calls.append(c.key())
        (out / "base_report.json").write_text("{}")
        (out / "build.json").write_text(json.dumps({"key": c.key()}))
        return {}

    monkeypatch.setattr(world_mod, "_build_into", fake_build)
    notes: list[str] = []
    world = build_toy_world(cfg, cache_dir=tmp_path / "cache", progress=False, log=notes.append,
                            shipped_root=ships)
    assert calls == [cfg.key()] and world.root.name == cfg.key()
    assert not (world.root / INSTALLED_MARKER).exists()
    assert any("0" * 16 in n and cfg.key() in n and "building from scratch" in n for n in notes)


def test_ship_then_install_round_trips_the_bytes(tmp_path, monkeypatch):
    """`vgrout toy ship` writes what install verifies; a world installed from a ship is not re-shipped."""
    cfg = toy_config("tiny")
    built = tmp_path / "cache" / "toy" / cfg.key()
    (built / "model").mkdir(parents=True)
    files = {"build.json": json.dumps({"key": cfg.key(), "build_s": 12.5}).encode(), "base_report.json": b"{}\n",
             "problems.jsonl": b'{"split": "train"}\n' * 50, "model/model.safetensors": bytes(range(256)) * 8}
    for rel, data in files.items():
        (built / rel).write_bytes(data)
    from vgrout.cli import main

    ships = tmp_path / "ships"
    assert main(["toy", "ship", "tiny", "--cache-dir", str(tmp_path / "cache"), "--dest", str(ships)]) == 0
    manifest = read_manifest(ships / "tiny")
    assert manifest["key"] == cfg.key() and manifest["build_s"] == 12.5 and set(manifest["files"]) == set(files)
    assert (ships / "tiny" / "problems.jsonl.gz").exists() and not (ships / "tiny" / "problems.jsonl").exists()
    monkeypatch.setattr(world_mod, "_build_into", no_build)
    world = build_toy_world(cfg, cache_dir=tmp_path / "other", progress=False, shipped_root=ships)
    assert {rel: (world.root / rel).read_bytes() for rel in files} == files
    with pytest.raises(ValueError, match="installed from the shipped world"):
        ship_world(world.root, cfg, ships)
