"""The CPU toy world: task families, corpus, tokenizer, a tiny pretrained Qwen3, and its cache.

    from vgrout.toy import toy_world
    world = toy_world("default")          # built on first use (~4 min), then loaded from cache
    world.model_dir, world.problems("heldout"), world.base_report

Heavy dependencies (torch, transformers) are imported only when a world is built.
"""

from vgrout.toy.config import PRESETS, ToyConfig, toy_config
from vgrout.toy.corpus import TOY_SYSTEM_PROMPT
from vgrout.toy.families import FAMILIES, GENERALISATION_FAMILIES, TRAIN_FAMILIES
from vgrout.toy.world import SPLITS, ToyWorld, build_toy_world, default_cache_dir, toy_world

__all__ = [
    "FAMILIES", "GENERALISATION_FAMILIES", "PRESETS", "SPLITS", "TOY_SYSTEM_PROMPT", "TRAIN_FAMILIES",
    "ToyConfig", "ToyWorld", "build_toy_world", "default_cache_dir", "toy_config", "toy_world",
]
