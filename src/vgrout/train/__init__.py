"""GRPO trainer with gradient-routing gates: config, presets, arms, the step, the loop, checkpoints."""

from vgrout.train.arms import ARMS, Arm, arm_for
from vgrout.train.config import PRESETS, Config, preset

__all__ = ["ARMS", "Arm", "Config", "PRESETS", "arm_for", "preset"]
