"""Rollouts: chat prompts -> batched, seeded samples (merged-weight fast path) -> `Rollouts`."""

from vgrout.rollout.generate import Rollouts, completion_mask_from_ids, generate, sample_tokens
from vgrout.rollout.logps import per_token_logps, position_ids_from_mask
from vgrout.rollout.tokens import eos_token_ids, left_pad, pad_token_id, render_prompt_text, render_prompts, right_pad

__all__ = [
    "Rollouts", "completion_mask_from_ids", "eos_token_ids", "generate", "left_pad", "pad_token_id",
    "per_token_logps", "position_ids_from_mask", "render_prompt_text", "render_prompts", "right_pad", "sample_tokens",
]
