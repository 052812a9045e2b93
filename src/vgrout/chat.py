"""How a prompt becomes text and ids: one renderer shared by rollouts and adapter calibration.

Kept apart from `vgrout.rollout` so the adapter's calibration (which must see the exact token
layout training sees) can use it without importing the sampler. Tokenizer-only, torch-free.
"""

from __future__ import annotations


def render_prompt_text(tokenizer, messages: list[dict]) -> str:
    """The chat template with the generation prompt (thinking disabled for templates that support it)."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the tokenizer has no chat template; rollouts are rendered with tokenizer.apply_chat_template")
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True, enable_thinking=False)


def encode_text(tokenizer, text: str) -> list[int]:
    """Token ids of already-rendered text (special tokens are in the text, none added)."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


__all__ = ["encode_text", "render_prompt_text"]
