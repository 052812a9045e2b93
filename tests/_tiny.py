"""Tiny randomly initialised Qwen3 models shared by the adapter tests (CPU, milliseconds)."""

import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

V = 101  # vocabulary of the tiny models


def tiny_model(seed: int = 0) -> Qwen3ForCausalLM:
    torch.manual_seed(seed)
    cfg = Qwen3Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      head_dim=8, intermediate_size=64, vocab_size=V, max_position_embeddings=128)
    return Qwen3ForCausalLM(cfg).eval()


def perturb(adapter, seed: int = 1, scale: float = 0.05) -> None:
    """Stand-in for training: move every trainable off its init."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in adapter.parameters("all"):
            p.add_(scale * torch.randn(p.shape, generator=gen))


def row_losses(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """(N,) next-token NLL per row. logits (N, L, V), ids (N, L)."""
    import torch.nn.functional as F

    return F.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none").mean(1)  # (N,)
