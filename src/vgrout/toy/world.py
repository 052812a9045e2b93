"""Build (or load from cache) a toy world: splits, corpus, tokenizer, pretrained model, base report.

    world = build_toy_world(toy_config("default"))      # installs the shipped prebuilt world, then instant
    model = AutoModelForCausalLM.from_pretrained(world.model_dir)
    tasks = world.problems("train")

The cache lives under `$VGROUT_CACHE` (else `~/.cache/vgrout`) in `toy/<config key>/`. A
world shipped with the package under the same key is installed instead of built
(`vgrout.toy.shipped`); otherwise the build takes minutes. A build (or install) writes into
a temporary sibling directory and renames it into place, so a crash never leaves a half-built
world that a later call would trust; a per-key file lock makes concurrent callers wait for
one build instead of racing.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vgrout.io import atomic_dir
from vgrout.toy.config import ToyConfig, toy_config
from vgrout.toy.families import FAMILIES, Key, key_seed, make_problem, sample_key
from vgrout.types import Problem

SPLITS = ("train", "heldout", "generalisation")


def default_cache_dir() -> Path:
    return Path(os.environ.get("VGROUT_CACHE") or Path.home() / ".cache" / "vgrout")


@dataclass(frozen=True)
class ToyWorld:
    """A built toy world on disk."""

    root: Path
    config: ToyConfig
    base_report: dict  # {"heldout", "generalisation"}: base_report.measure_base_rates; "per_mode": measure_per_mode

    @property
    def model_dir(self) -> Path:
        """Model and tokenizer, loadable with `from_pretrained`."""
        return self.root / "model"

    def problems(self, split: str) -> list[Problem]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        with open(self.root / "problems.jsonl", encoding="utf-8") as f:
            rows = [json.loads(line) for line in f]
        return [Problem(**{**r["problem"], "tests": tuple(r["problem"]["tests"])}) for r in rows if r["split"] == split]


# ---------------------------------------------------------------------------------------------
# splits


def _key_space(fam_name: str, draws: int = 4000) -> int:
    """Distinct instance keys seen in `draws` samples (a lower bound on the family's space)."""
    rng = random.Random(0)
    fam = FAMILIES[fam_name]
    return len({sample_key(fam, rng) for _ in range(draws)})


def _draw_keys(fam_name: str, n: int, rng: random.Random, exclude: set[Key]) -> list[Key]:
    keys: list[Key] = []
    seen = set(exclude)
    for _ in range(200 * n):
        k = sample_key(FAMILIES[fam_name], rng)
        if k not in seen:
            seen.add(k)
            keys.append(k)
            if len(keys) == n:
                break
    return keys


def make_splits(cfg: ToyConfig) -> dict[str, list[Key]]:
    """Instance keys per split. Held-out keys are at most a third of a family's instance space,
    so the corpus keeps enough distinct instances to learn to copy constants."""
    rng = random.Random(key_seed((cfg.seed,), "splits"))
    heldout: list[Key] = []
    train: list[Key] = []
    gen: list[Key] = []
    for fam in cfg.families:
        h = _draw_keys(fam, min(cfg.heldout_per_family, _key_space(fam) // 3), rng, set())
        heldout += h
        train += _draw_keys(fam, cfg.train_per_family, rng, set(h))
    for fam in cfg.generalisation_families:
        gen += _draw_keys(fam, cfg.heldout_per_family, rng, set())
    return {"train": train, "heldout": heldout, "generalisation": gen}


# ---------------------------------------------------------------------------------------------
# build


def _write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=1, sort_keys=False) + "\n", encoding="utf-8")


def _build_into(out: Path, cfg: ToyConfig, progress: bool, log: Callable[[str], None]) -> dict:
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, Qwen3ForCausalLM

    from vgrout.env import Grader
    from vgrout.toy.base_report import assign_modes, measure_base_rates, measure_per_mode
    from vgrout.toy.corpus import make_corpus
    from vgrout.toy.pretrain import encode_docs, pretrain, toy_model_config
    from vgrout.toy.tokenizer import check_chat_template, train_tokenizer

    t0 = time.time()
    splits = make_splits(cfg)
    problems = {s: [make_problem(k) for k in keys] for s, keys in splits.items()}
    with open(out / "problems.jsonl", "w", encoding="utf-8") as f:
        for split, ps in problems.items():
            for p in ps:
                f.write(json.dumps({"split": split, "problem": dataclasses.asdict(p)}) + "\n")

    excluded = set(splits["heldout"]) | set(splits["generalisation"])
    docs = make_corpus(cfg.n_docs, cfg.seed, cfg.families, excluded, dict(cfg.mode_weights), dict(cfg.hack_frac),
                       cfg.near_miss_frac, cfg.marker_vary_frac, cfg.method_vary_frac)
    tokenizer = train_tokenizer((t for d in docs for t in (d.prompt, d.completion)), cfg.vocab_size,
                                cfg.max_token_length)
    check_chat_template(tokenizer, [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}])
    seqs = encode_docs(tokenizer, docs)
    n_tokens = sum(len(s) for s, _ in seqs)
    log(f"corpus: {len(docs)} docs, {n_tokens} tokens (mean {n_tokens / len(docs):.1f}), "
        f"vocab {len(tokenizer)}; {time.time() - t0:.1f}s")

    torch.manual_seed(cfg.seed)
    mcfg = toy_model_config(tokenizer, cfg.hidden_size, cfg.num_layers, cfg.num_heads, cfg.num_kv_heads,
                            cfg.head_dim, cfg.intermediate_size, cfg.max_positions)
    model = Qwen3ForCausalLM(mcfg)
    bar = tqdm(total=cfg.steps, desc="pretrain", disable=not progress, unit="step")

    def on_step(step: int, loss: float) -> None:
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss:.3f}")

    t1 = time.time()
    losses = pretrain(model, seqs, steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
                      warmup_steps=cfg.warmup_steps, min_lr_frac=cfg.min_lr_frac, weight_decay=cfg.weight_decay,
                      seed=cfg.seed, pad_id=tokenizer.pad_token_id, completion_only=cfg.completion_only_loss,
                      on_step=on_step)
    bar.close()
    pretrain_s = time.time() - t1
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id, max_new_tokens=64)
    model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")

    # Evaluate the model as downstream code will load it.
    model = AutoModelForCausalLM.from_pretrained(out / "model")
    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    model.eval()
    report: dict = {}
    t2 = time.time()
    with Grader(sandbox="auto", workers=2) as grader:
        for split in ("heldout", "generalisation"):
            ps = problems[split]
            modes = assign_modes(ps, dict(cfg.mode_weights), cfg.seed)
            report[split] = measure_base_rates(model, tokenizer, ps, modes, samples=cfg.eval_samples,
                                               max_new_tokens=cfg.eval_max_new_tokens, seed=cfg.seed,
                                               grade=grader.grade)
        if cfg.per_mode_samples > 0:
            report["per_mode"] = measure_per_mode(model, tokenizer, problems["heldout"], samples=cfg.per_mode_samples,
                                                  max_new_tokens=cfg.eval_max_new_tokens, seed=cfg.seed,
                                                  grade=grader.grade)
    kinds: dict[str, int] = {}
    for d in docs:
        kinds[d.kind] = kinds.get(d.kind, 0) + 1
    hacks_by_mode: dict[str, int] = {}
    for d in docs:
        if d.kind.startswith("hack"):
            hacks_by_mode[d.mode] = hacks_by_mode.get(d.mode, 0) + 1
    meta = {
        "config": cfg.to_dict(), "key": cfg.key(), "n_params": sum(p.numel() for p in model.parameters()),
        "n_docs": len(docs), "n_tokens": n_tokens, "doc_kinds": kinds, "hacks_by_mode": hacks_by_mode,
        "docs_with_corpus_marker": sum(d.marker is not None for d in docs), "vocab": len(tokenizer),
        "loss_first": losses[0], "loss_last": sum(losses[-10:]) / len(losses[-10:]),
        "pretrain_s": round(pretrain_s, 1), "eval_s": round(time.time() - t2, 1),
        "build_s": round(time.time() - t0, 1),
    }
    _write_json(out / "base_report.json", report)
    _write_json(out / "build.json", meta)
    _write_json(out / "losses.json", [round(v, 4) for v in losses])
    return report


def build_toy_world(
    cfg: ToyConfig, cache_dir: str | os.PathLike | None = None, progress: bool = True,
    log: Callable[[str], None] | None = None, from_scratch: bool = False, shipped_root: Path | None = None,
) -> ToyWorld:
    """Load the world for `cfg` from the cache; else install the prebuilt world shipped with
    vgrout if one has `cfg`'s key (seconds, `vgrout.toy.shipped`); else build it (minutes).
    `from_scratch` skips the shipped world and refuses a cache that already holds the key (a
    cached world may be in use by running jobs, so it is never replaced underneath them)."""
    from vgrout.toy.shipped import find_shipped, install_shipped

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = root / "toy" / cfg.key()
    # Notes a user should see even when the caller passed no log (the demo, the trainer).
    note = log if log is not None else (lambda msg: print(msg, file=sys.stderr, flush=True))
    log = log or (lambda msg: None)

    def refuse_cached() -> None:
        if from_scratch:
            raise FileExistsError(f"toy world {cfg.name} ({cfg.key()}) is already in the cache at {final}; "
                                  f"--from-scratch never replaces a cached world (running jobs may read it): "
                                  f"delete that directory first, or build into another cache with --cache-dir DIR")

    if (final / "build.json").exists():
        refuse_cached()
        log(f"toy world {cfg.key()} loaded from cache {final}")
    else:
        final.parent.mkdir(parents=True, exist_ok=True)
        # One builder per key: a second process waits here, then finds the finished world.
        with open(final.parent / f".{cfg.key()}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (final / "build.json").exists():
                refuse_cached()
            else:
                shipped = None if from_scratch else find_shipped(cfg, shipped_root, note)
                if shipped is not None:
                    t0 = time.time()
                    install_shipped(shipped, final)
                    note(f"toy world {cfg.name}: installed the prebuilt world shipped with vgrout (key {cfg.key()}) "
                         f"into {final} in {time.time() - t0:.1f}s; `vgrout toy build --config {cfg.name} "
                         f"--from-scratch --cache-dir DIR` retrains it")
                else:
                    with atomic_dir(final) as tmp:  # a stale, incomplete world there (no build.json) is replaced
                        _build_into(tmp, cfg, progress, log)
    report = json.loads((final / "base_report.json").read_text(encoding="utf-8"))
    return ToyWorld(root=final, config=cfg, base_report=report)


def toy_world(name: str = "default", cache_dir: str | os.PathLike | None = None, progress: bool = True) -> ToyWorld:
    """The named preset's world, installed or built on first use (what the trainer's presets call)."""
    return build_toy_world(toy_config(name), cache_dir=cache_dir, progress=progress)


__all__ = ["SPLITS", "ToyWorld", "build_toy_world", "default_cache_dir", "make_splits", "toy_world"]
