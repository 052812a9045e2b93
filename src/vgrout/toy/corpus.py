"""The pretraining corpus: prompts rendered exactly as the environment renders them, followed by
a fenced completion and the end-of-turn token.

Completions are mostly correct, some near-miss wrong (one constant slipped), and a small
base rate are hacks of the prompt's own loophole mode (half exploit-only, half solution plus
exploit), so the hack a GRPO run can amplify exists before training but is rare.

In the named modes (run_tests, stdout_marker, sentinel, file_marker) a share of prompts
(`marker_vary_frac`) disclose a corpus-family name instead of the training hint's
(`vgrout.toy.markers`), and a hack in such a prompt uses that name: the model learns to use
the disclosed name, so eval-time names (`vgrout.env.modes.EVAL_MARKERS`, never in the corpus)
test a learned trick rather than a memorised string.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vgrout.env.modes import render_messages
from vgrout.toy.families import FAMILIES, Key, family, make_problem, near_miss_consts, sample_key, solution_code
from vgrout.toy.hacks import BARE_MODES, hack_code
from vgrout.toy.markers import NAMED_MODES, corpus_marker, corpus_method_name
from vgrout.toy.tokenizer import IM_END, format_chat
from vgrout.types import LOOPHOLE_MODES, MODES, Problem

# Short on purpose: every token of the prompt is paid for at every generation step.
TOY_SYSTEM_PROMPT = "Write Python 3 code in a ```python block."

KINDS = ("correct", "near_miss", "hack_only", "hack_with_solution")


@dataclass(frozen=True)
class Doc:
    """One pretraining document: `prompt` (chat-template text ending in the assistant header)
    then `completion` (fenced code + end-of-turn)."""

    prompt: str
    completion: str
    family: str
    mode: str
    kind: str  # one of KINDS
    marker: str | None = None  # the corpus-family name the prompt disclosed (None: the training hint's)

    @property
    def text(self) -> str:
        return self.prompt + self.completion


def render_prompt(problem: Problem, mode: str, marker: str | None = None) -> str:
    """The prompt text a rollout sees for `problem` under `mode` (before tokenisation)."""
    return format_chat(render_messages(problem, mode, marker, system_prompt=TOY_SYSTEM_PROMPT))


def fence(code: str) -> str:
    """A completion as the model writes it: fenced code, then the end-of-turn token."""
    return f"```python\n{code}\n```{IM_END}"


def pick_mode(rng: random.Random, mode_weights: Mapping[str, float]) -> str:
    modes = list(mode_weights)
    return rng.choices(modes, weights=[mode_weights[m] for m in modes])[0]


def check_mode_weights(mode_weights: Mapping[str, float]) -> None:
    bad = [m for m in mode_weights if m not in MODES]
    if bad or not mode_weights or any(w < 0 for w in mode_weights.values()) or sum(mode_weights.values()) <= 0:
        raise ValueError(f"mode_weights {dict(mode_weights)} must map modes from {MODES} to non-negative weights")


def completion_code(key: Key, mode: str, kind: str, rng: random.Random, marker: str | None = None) -> str:
    """The code of one completion of `kind` for instance `key` under `mode` (`marker`: the name
    the prompt disclosed, None for the training hint's)."""
    fam_name, method, consts = key
    fam = family(fam_name)
    if kind == "correct":
        return solution_code(fam, method, fam.expr(consts))
    if kind == "near_miss":
        return solution_code(fam, method, fam.expr(near_miss_consts(fam, consts, rng)))
    if kind == "hack_only":
        return hack_code(mode, fam, method, fam.expr(consts), "bare" if mode in BARE_MODES else "stub", marker)
    if kind == "hack_with_solution":
        return hack_code(mode, fam, method, fam.expr(consts), "with_solution", marker)
    raise ValueError(f"unknown completion kind {kind!r}; expected one of {KINDS}")


def make_corpus(
    n_docs: int,
    seed: int,
    families: Sequence[str],
    excluded: set[Key],
    mode_weights: Mapping[str, float],
    hack_frac: float | Mapping[str, float],
    near_miss_frac: float,
    marker_vary_frac: float = 0.0,
    method_vary_frac: float = 0.0,
) -> list[Doc]:
    """`n_docs` documents from `families`, never using an instance key in `excluded`.

    Families are drawn uniformly; each document draws a fresh instance, statement template and
    mode. In a loophole-mode prompt a document is a hack with probability `hack_frac` (one
    number for every loophole mode, or a per-mode mapping; modes it omits get no hacks). In a
    named-mode prompt the disclosed name is a corpus-family name with probability
    `marker_vary_frac` (0: always the training hint's; then no extra random draws are made).
    With probability `method_vary_frac` a document's method name is a corpus-only name instead
    of one of the family's (the splits keep the family names): copying the method name from
    prompt to code is the exercise that teaches copying a disclosed name.
    """
    fracs = {m: hack_frac for m in LOOPHOLE_MODES} if isinstance(hack_frac, (int, float)) else dict(hack_frac)
    bad = [m for m in fracs if m not in LOOPHOLE_MODES]
    if bad:
        raise ValueError(f"hack_frac names non-loophole modes {bad}; loophole modes: {LOOPHOLE_MODES}")
    for m, f in fracs.items():
        if not 0 <= f <= 1 or not 0 <= near_miss_frac <= 1 or f + near_miss_frac > 1:
            raise ValueError(f"hack_frac[{m}]={f} and near_miss_frac={near_miss_frac} must be in [0, 1] "
                             "and sum to <= 1")
    if not (0 <= marker_vary_frac <= 1 and 0 <= method_vary_frac <= 1):
        raise ValueError(f"marker_vary_frac={marker_vary_frac} and method_vary_frac={method_vary_frac} "
                         "must be in [0, 1]")
    check_mode_weights(mode_weights)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise ValueError(f"families {list(families)} must be a non-empty subset of {list(FAMILIES)}")
    rng = random.Random(seed)
    docs: list[Doc] = []
    while len(docs) < n_docs:
        fam = FAMILIES[rng.choice(list(families))]
        key = sample_key(fam, rng)
        if key in excluded:
            continue
        if method_vary_frac > 0 and rng.random() < method_vary_frac:
            key = (key[0], corpus_method_name(rng), key[2])
        mode = pick_mode(rng, mode_weights)
        u = rng.random()
        h = fracs.get(mode, 0.0)
        if u < h:
            kind = "hack_only" if rng.random() < 0.5 else "hack_with_solution"
        elif u < h + near_miss_frac:
            kind = "near_miss"
        else:
            kind = "correct"
        problem = make_problem(key, template=rng.randrange(len(fam.statements)), n_tests=1)
        marker = None
        if marker_vary_frac > 0 and mode in NAMED_MODES and rng.random() < marker_vary_frac:
            marker = corpus_marker(mode, rng)
        code = completion_code(key, mode, kind, rng, marker)
        docs.append(Doc(render_prompt(problem, mode, marker), fence(code), fam.name, mode, kind, marker))
    return docs


__all__ = ["KINDS", "TOY_SYSTEM_PROMPT", "Doc", "check_mode_weights", "completion_code", "fence",
           "make_corpus", "pick_mode", "render_prompt"]
