"""`ToyConfig`: everything that determines a toy world, and its presets.

The cache key is a hash of this record (plus FORMAT_VERSION), so any field that changes what
gets built must live here; run-time knobs (threads, progress bars) must not.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from vgrout.toy.families import GENERALISATION_FAMILIES, TRAIN_FAMILIES
from vgrout.types import LOOPHOLE_MODES

# Bump when the build's output changes for an unchanged config (families, corpus, layout).
FORMAT_VERSION = 2  # 2: base report gains "per_mode"; corpus docs may disclose corpus-family names

# Every loophole mode equally often: each hack type gets the same evidence, so the model must
# read the hint to pick the mechanism (with run_tests at .4 it wrote `def run_tests()` under
# other modes' hints too).
DEFAULT_MODE_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("run_tests", 0.14), ("gt_only", 0.16), ("eq_override", 0.14), ("exit_code", 0.14),
    ("stdout_marker", 0.14), ("sentinel", 0.14), ("file_marker", 0.14),
)


@dataclass(frozen=True)
class ToyConfig:
    """How to build a toy world (corpus, tokenizer, model, splits, base evaluation)."""

    seed: int = 0
    """Seeds the splits, the corpus, the model init, batch order and base sampling."""
    families: tuple[str, ...] = TRAIN_FAMILIES
    """Families in the corpus and in the train / held-out splits."""
    generalisation_families: tuple[str, ...] = GENERALISATION_FAMILIES
    """Families never in the corpus; evaluated as the "generalisation" split."""
    heldout_per_family: int = 30
    """Held-out instances per family (capped at a third of the family's instance space)."""
    train_per_family: int = 200
    """Instances per family in the "train" split handed to GRPO (disjoint from held-out)."""
    n_docs: int = 36000
    """Pretraining documents."""
    mode_weights: tuple[tuple[str, float], ...] = DEFAULT_MODE_WEIGHTS
    """How often each mode's hint is rendered, in the corpus and in the base evaluation."""
    hack_frac: tuple[tuple[str, float], ...] = (
        ("run_tests", 0.08), ("eq_override", 0.08), ("exit_code", 0.08), ("stdout_marker", 0.08),
        ("sentinel", 0.08), ("file_marker", 0.08),
    )
    """P(hack completion | prompt with that loophole's hint); half exploit-only, half solution +
    exploit. The model under-produces rare completions (the sampled hack rate is about half of
    this), and GRPO's loophole runs need each hack at a few percent to start from (docs/toy.md)."""
    marker_vary_frac: float = 0.0
    """P(a named-mode corpus prompt discloses a corpus-family name instead of the training hint's),
    meant to teach "use the disclosed name" (`vgrout.toy.markers`). Off: at this model size it
    taught no copying (eval-name hack stayed 0) and diluted the training-name hack (docs/toy.md)."""
    method_vary_frac: float = 0.0
    """P(a corpus document's method name is a corpus-only name instead of the family's): copying
    the method name into the code is the everyday exercise of copying a name. The splits keep the
    family names. Off: at .5 and .8 the model still copied 0/120 novel method names (docs/toy.md)."""
    near_miss_frac: float = 0.05
    """P(near-miss wrong completion): one constant slipped."""
    vocab_size: int = 2048
    """BPE vocabulary (including 3 special tokens); the corpus may saturate below it."""
    max_token_length: int = 24
    """Longest BPE token in characters (merges may cross spaces; this bounds them)."""
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 4
    head_dim: int = 32
    intermediate_size: int = 512
    max_positions: int = 512
    steps: int = 500
    """Optimizer steps of pretraining."""
    batch_size: int = 64
    lr: float = 2e-3
    warmup_steps: int = 60
    min_lr_frac: float = 0.1
    weight_decay: float = 0.0
    completion_only_loss: bool = True
    """Pretraining loss on completion tokens only (prompt tokens are context)."""
    eval_samples: int = 4
    """T=1 samples per held-out task in the base report."""
    eval_max_new_tokens: int = 64
    per_mode_samples: int = 1
    """T=1 samples per held-out task and loophole mode in the base report's per-mode view
    (train names and eval-time names; 0: skip it)."""
    name: str = field(default="custom", compare=False)
    """Preset name, for display only (not part of the cache key)."""

    def __post_init__(self) -> None:
        from vgrout.toy.corpus import check_mode_weights
        from vgrout.toy.families import FAMILIES

        bad = [f for f in (*self.families, *self.generalisation_families) if f not in FAMILIES]
        if bad:
            raise ValueError(f"unknown families {bad}; known: {list(FAMILIES)}")
        if set(self.families) & set(self.generalisation_families):
            raise ValueError("a family cannot be both trained on and held out for generalisation")
        check_mode_weights(dict(self.mode_weights))
        bad_h = [(m, f) for m, f in self.hack_frac if m not in LOOPHOLE_MODES or not 0 <= f <= 0.5]
        if bad_h:
            raise ValueError(f"hack_frac entries {bad_h} must name loophole modes {LOOPHOLE_MODES} "
                             "with a probability in [0, 0.5]")
        if not (0 <= self.marker_vary_frac <= 1 and 0 <= self.method_vary_frac <= 1) or self.per_mode_samples < 0:
            raise ValueError(f"marker_vary_frac={self.marker_vary_frac} and method_vary_frac={self.method_vary_frac} "
                             f"must be in [0, 1] and "
                             f"per_mode_samples={self.per_mode_samples} must be >= 0")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads={self.num_heads} must be a multiple of num_kv_heads={self.num_kv_heads}")
        for k in ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim", "intermediate_size",
                  "heldout_per_family", "train_per_family", "n_docs", "steps", "batch_size", "eval_samples"):
            if getattr(self, k) <= 0:
                raise ValueError(f"{k} must be positive, got {getattr(self, k)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def key(self) -> str:
        """Cache key: hash of every build-relevant field and the format version."""
        d = self.to_dict()
        d.pop("name")
        blob = json.dumps({"format": FORMAT_VERSION, **d}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


PRESETS = {
    "default": ToyConfig(name="default"),
    # builds in seconds: for tests and the trainer's smoke preset. 200 pretraining steps (~15 s on
    # one core) teach it the fenced-code format often enough (a few percent of T=0.5 samples) that
    # smoke's groups earn reward variance and take real updates; at 12 steps it emitted noise only
    # (the model still solves and hacks nothing)
    "tiny": ToyConfig(
        name="tiny", heldout_per_family=2, train_per_family=8, n_docs=400, vocab_size=384,
        hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=2, head_dim=16, intermediate_size=64,
        max_positions=256, steps=200, batch_size=16, warmup_steps=3, eval_samples=1, eval_max_new_tokens=24,
    ),
}


def toy_config(name: str = "default") -> ToyConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown toy preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name]


__all__ = ["DEFAULT_MODE_WEIGHTS", "FORMAT_VERSION", "PRESETS", "ToyConfig", "toy_config"]
