"""GRPO trainer with gradient-routing gates: config, presets, the step, the loop, checkpoints."""

from vgrout.train.config import ARMS, Config
from vgrout.train.presets import PRESETS, preset

__all__ = ["ARMS", "Config", "PRESETS", "preset"]
