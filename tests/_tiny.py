"""Tiny randomly initialised Qwen3 models shared by the adapter tests (CPU, milliseconds)."""

import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

V = 101  # vocabulary of the tiny models


def tiny_model(seed: int = 0) -> Qwen3ForCausalLM:
    torch.manual_seed(seed)
    cfg = Qwen3Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      head_dim=8, intermediate_size=64, vocab_size=V, max_position_embeddings=128)
    return Qwen3ForCausalLM(cfg).eval()
