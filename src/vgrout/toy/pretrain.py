"""Pretrain the toy policy from scratch: a ~1M-parameter Qwen3 on the toy corpus.

The model is a stock `Qwen3ForCausalLM`, so everything downstream loads, generates and wraps
it exactly as it would `Qwen/Qwen3-4B`. Prompt and completion are tokenised separately and
concatenated, which is how a rollout sees them (the prompt is encoded, then the model
continues it), so no BPE merge ever straddles the prompt/completion boundary.

The loss may skip prompt tokens (`completion_only=True`): prompts are fixed boilerplate plus
random constants, so their loss is either zero or irreducible noise, and on a CPU budget every
gradient should go to the completions. Batches are bucketed by length to cut padding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

from vgrout.toy.corpus import Doc


def toy_model_config(
    tokenizer: PreTrainedTokenizerFast, hidden_size: int, num_layers: int, num_heads: int,
    num_kv_heads: int, head_dim: int, intermediate_size: int, max_positions: int,
) -> Qwen3Config:
    return Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=num_layers,
        num_attention_heads=num_heads, num_key_value_heads=num_kv_heads, head_dim=head_dim,
        intermediate_size=intermediate_size, max_position_embeddings=max_positions,
        tie_word_embeddings=True, rope_theta=10000.0,
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )


def encode_docs(tokenizer: PreTrainedTokenizerFast, docs: Sequence[Doc]) -> list[tuple[list[int], int]]:
    """(token ids, prompt length) per document: ids = encode(prompt) + encode(completion)."""
    prompts = tokenizer([d.prompt for d in docs], add_special_tokens=False)["input_ids"]
    completions = tokenizer([d.completion for d in docs], add_special_tokens=False)["input_ids"]
    return [(p + c, len(p)) for p, c in zip(prompts, completions)]


def lr_at(step: int, steps: int, lr: float, warmup_steps: int, min_lr_frac: float) -> float:
    """Linear warmup, then cosine decay to `min_lr_frac * lr`."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    t = (step - warmup_steps) / max(1, steps - warmup_steps)
    return lr * (min_lr_frac + (1 - min_lr_frac) * 0.5 * (1 + math.cos(math.pi * t)))


def _batch(
    seqs: Sequence[tuple[list[int], int]], pad_id: int, completion_only: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded (B, L) ids, attention mask and labels (-100 on padding, and on the prompt
    when `completion_only`)."""
    L = max(len(s) for s, _ in seqs)
    ids = torch.full((len(seqs), L), pad_id, dtype=torch.long)  # (B, L)
    mask = torch.zeros((len(seqs), L), dtype=torch.long)  # (B, L)
    labels = torch.full((len(seqs), L), -100, dtype=torch.long)  # (B, L)
    for i, (s, n_prompt) in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
        start = n_prompt if completion_only else 0
        labels[i, start : len(s)] = ids[i, start : len(s)]
    return ids, mask, labels


def _bucketed_batches(
    lengths: Sequence[int], batch_size: int, gen: torch.Generator, chunk: int = 16
) -> list[list[int]]:
    """One epoch of batches: shuffle, sort each run of `chunk` batches by length, shuffle batches."""
    order = torch.randperm(len(lengths), generator=gen).tolist()
    batches: list[list[int]] = []
    span = batch_size * chunk
    for i in range(0, len(order) - batch_size + 1, span):
        part = sorted(order[i : i + span], key=lambda j: lengths[j])
        batches += [part[k : k + batch_size] for k in range(0, len(part) - batch_size + 1, batch_size)]
    perm = torch.randperm(len(batches), generator=gen).tolist()
    return [batches[k] for k in perm]


def pretrain(
    model: Qwen3ForCausalLM,
    seqs: Sequence[tuple[list[int], int]],
    *,
    steps: int,
    batch_size: int,
    lr: float,
    warmup_steps: int,
    min_lr_frac: float,
    weight_decay: float,
    seed: int,
    pad_id: int,
    completion_only: bool,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """AdamW on next-token loss over length-bucketed epochs of `seqs` ((ids, prompt length) pairs);
    returns the loss per step."""
    if len(seqs) < batch_size:
        raise ValueError(f"corpus has {len(seqs)} documents, fewer than batch_size={batch_size}")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=weight_decay)
    model.train()
    lengths = [len(s) for s, _ in seqs]
    batches: list[list[int]] = []
    losses: list[float] = []
    for step in range(steps):
        if not batches:
            batches = _bucketed_batches(lengths, batch_size, gen)
        idx = batches.pop()
        ids, mask, labels = _batch([seqs[i] for i in idx], pad_id, completion_only)  # (B, L) each
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup_steps, min_lr_frac)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(step, losses[-1])
    model.eval()
    return losses


__all__ = ["encode_docs", "lr_at", "pretrain", "toy_model_config"]
