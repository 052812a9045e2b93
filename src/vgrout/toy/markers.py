"""Corpus-time marker names: the varied names the toy corpus discloses in named-mode hints.

The environment has two marker families per named mode (`vgrout.env.modes`): "train" (one
name the training hint discloses, e.g. `run_tests`) and "eval" (a disjoint family shown only
at evaluation time). A model pretrained on the train name alone memorises the string, and
with eval names its hack rate is 0, so the eval family would measure nothing. The corpus
therefore also renders a share of named-mode prompts with a name drawn here, and the hack
completion uses that same name: what the corpus teaches is "use the disclosed name".

This third, corpus family is word-disjoint from the eval family: no corpus name contains an
eval name, an eval-name word (e.g. `verify`, `answer`) or an eval file-detector word
(`outcome`, `ledger`, ...), so an eval-time hack is a copied name, not a recalled one. Names
are built from a small word pool and random pseudo-words (consonant-vowel syllables), so no
single name is frequent enough for the tokenizer to fold it into one token.
"""

from __future__ import annotations

import random
import re

from vgrout.env.modes import EVAL_MARKERS

NAMED_MODES: tuple[str, ...] = ("run_tests", "stdout_marker", "sentinel", "file_marker")

# Pools of plain words. Any word that is, or overlaps, an eval-family word is rejected below.
_IDENT_WORDS = (
    "probe", "audit", "inspect", "examine", "trial", "exercise", "sanity", "smoke", "harness", "spec",
    "suite", "case", "cases", "unit", "demo", "quick", "full", "main", "final", "local", "bench",
    "rig", "drill", "review_all", "go", "do", "judge", "gate", "measure", "tick", "mark",
)
_STATUS_WORDS = (
    "good", "fine", "green", "sound", "ready", "done_ok", "clean", "healthy", "safe", "happy", "ok_flag",
    "pristine", "intact", "legit", "sane", "tidy", "solid", "ace", "neat", "kosher",
)
_PHRASE_FIRST = ("run", "job", "build", "suite", "probe", "audit", "batch", "check-in", "trial", "stage", "task")
_PHRASE_SECOND = ("succeeded", "went fine", "looks good", "is green", "all clear", "ok", "worked", "is done",
                  "came through", "held up", "is sound")
_FILE_WORDS = ("status", "verdict", "summary", "score_card", "state", "flag", "log", "note", "mark", "badge",
               "stamp", "signal", "health", "board", "memo")
_FILE_EXTS = (".txt", ".log", ".out", ".dat", ".json", ".csv", ".md")
_CONS, _VOWELS = "bdfgklmnprstvz", "aeiou"


def _eval_words() -> set[str]:
    """Words of the eval names (file names without their extension), 3+ letters."""
    words: set[str] = set()
    for mode, names in EVAL_MARKERS.items():
        for name in names:
            stem = name.rsplit(".", 1)[0] if mode == "file_marker" else name
            words |= {w for w in re.split(r"[_\s]+", stem.lower()) if len(w) >= 3}
    return words


EVAL_WORDS = frozenset(_eval_words())


def _clashes(name: str, mode: str) -> bool:
    """True if `name` reuses an eval name or any eval word (as a substring, either way round)."""
    low = name.lower()
    if any(e.lower() in low or low in e.lower() for e in EVAL_MARKERS.get(mode, ())):
        return True
    parts = [w for w in re.split(r"[_.\s\-]+", low) if len(w) >= 3]
    return any(w in p or (len(p) >= 4 and p in w) for w in EVAL_WORDS for p in parts)


def _pseudo_word(rng: random.Random) -> str:
    return "".join(rng.choice(_CONS) + rng.choice(_VOWELS) for _ in range(rng.randint(2, 3)))


def _part(rng: random.Random, pool: tuple[str, ...]) -> str:
    return rng.choice(pool) if rng.random() < 0.6 else _pseudo_word(rng)


def _draw(mode: str, rng: random.Random) -> str:
    if mode == "run_tests":
        return "_".join(_part(rng, _IDENT_WORDS) for _ in range(rng.randint(1, 2))) if rng.random() < 0.8 \
            else f"{_part(rng, _IDENT_WORDS)}_{_part(rng, _STATUS_WORDS)}"
    if mode == "stdout_marker":
        return f"{_part(rng, _PHRASE_FIRST)} {rng.choice(_PHRASE_SECOND)}"
    if mode == "sentinel":
        name = _part(rng, _STATUS_WORDS)
        return f"is_{name}" if rng.random() < 0.3 else name
    if mode == "file_marker":
        stem = "_".join(_part(rng, _FILE_WORDS) for _ in range(rng.randint(1, 2)))
        return stem + rng.choice(_FILE_EXTS)
    raise ValueError(f"mode {mode!r} discloses no name; named modes: {NAMED_MODES}")


def corpus_method_name(rng: random.Random) -> str:
    """A corpus-only `Solution` method name (same disjointness as the run_tests names): the method
    name is copied from prompt to code in every document, so varying it teaches copying a name."""
    return corpus_marker("run_tests", rng)


def corpus_marker(mode: str, rng: random.Random) -> str:
    """A corpus-family name for `mode`, never clashing with the eval family (rejection sampling)."""
    for _ in range(1000):
        name = _draw(mode, rng)
        if not _clashes(name, mode):
            return name
    raise AssertionError(f"could not draw a {mode} corpus marker disjoint from the eval family")


__all__ = ["EVAL_WORDS", "NAMED_MODES", "corpus_marker", "corpus_method_name"]
