"""Batched sampling with a KV cache: chat messages -> `Rollouts` (ids, masks, texts).

Each prompt is prefilled once and its KV cache copied to its G rows; then one forward per new
token for the whole batch (every prompt x every sample), through `LeanDecoder` (static KV
buffers, no per-token mask rebuild) when the model is a Qwen3. Each prompt
group draws from its own `torch.Generator`, seeded from (seed, the group's global index), so
sampling never touches the global RNG and a group's completions do not depend on which other
groups share the batch: a data-parallel rank that samples groups [a, b) of a step gets the
rows a single process gets for them. When an
adapter is given, its active blocks are folded into the base weights for the whole call
(`adapter.merged(mode)`), so generation costs what the bare model costs.

Position ids are `cumsum(mask) - 1` on the left-padded prompt, the same rule
`per_token_logps` uses in training forwards, so sampled and scored tokens see identical
positions.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from vgrout.adapter.attach import MERGE_SCALES
from vgrout.rollout.decode import LeanDecoder, cache_kwarg, lean_unsupported
from vgrout.rollout.tokens import eos_token_ids, pad_token_id, render_prompts

GEN_MODES: tuple[str, ...] = tuple(MERGE_SCALES)  # full, deployed, half_quarantine, quarantine_only


@dataclass
class Rollouts:
    """N = P*G sampled completions. Rows of one prompt are contiguous (row i came from prompt_index[i])."""

    prompt_ids: Tensor  # (N, Lp) left-padded
    prompt_mask: Tensor  # (N, Lp) 1 on prompt tokens
    completion_ids: Tensor  # (N, T) right-padded
    completion_mask: Tensor  # (N, T) 1 up to and including the first eos
    texts: list[str]  # decoded completions without special tokens
    prompt_index: Tensor  # (N,) long
    deployed: Tensor  # (N,) bool: sampled with the quarantine ablated
    behaviour_logps: Tensor | None = None  # (N, T) float32 log-probs of the policy that sampled each
    # off-policy (teacher) row; NaN rows are live samples. None: every row is live.

    def __len__(self) -> int:
        return int(self.completion_ids.shape[0])

    @property
    def teacher(self) -> Tensor:
        """(N,) bool: rows that carry behaviour log-probs (cached off-policy completions)."""
        if self.behaviour_logps is None:
            return torch.zeros(len(self), dtype=torch.bool)
        return ~torch.isnan(self.behaviour_logps[:, 0]).cpu()

    @property
    def input_ids(self) -> Tensor:
        """(N, Lp + T) prompt then completion."""
        return torch.cat([self.prompt_ids, self.completion_ids], 1)

    @property
    def attention_mask(self) -> Tensor:
        """(N, Lp + T)."""
        return torch.cat([self.prompt_mask, self.completion_mask], 1)


def _filter_logits(logits: Tensor, temperature: float, top_k: int, top_p: float) -> Tensor:
    """Temperature, then top-k, then nucleus filtering. logits (N, V) float32."""
    logits = logits / temperature
    if top_k > 0 and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (N, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, idx = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, -1)
        drop = torch.cumsum(probs, -1) - probs > top_p  # keep the smallest prefix reaching top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, idx, sorted_logits)
    return logits


def group_seed(seed: int, group_index: int) -> int:
    """The sampling seed of one prompt group: a 63-bit hash of (seed, global group index)."""
    digest = hashlib.sha256(f"group:{int(seed)}:{int(group_index)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def group_generators(seed: int, group_index: Sequence[int], device) -> list[torch.Generator]:
    """One generator per prompt group, each a pure function of (seed, group_index[p])."""
    return [torch.Generator(device=device).manual_seed(group_seed(seed, g)) for g in group_index]


def draw(probs: Tensor, generators: Sequence[torch.Generator]) -> Tensor:
    """One token per row from probs (N, V) by inverse CDF; group p (rows [p*g, (p+1)*g)) uses generators[p] only.

    What `torch.multinomial` does for one sample, minus its per-call cost (~0.15 ms per group
    on CPU, a fifth of a toy decode step). The CDF is summed in float64 so the last tokens
    of a large vocabulary keep their mass; a zero-probability token is never drawn (the
    search returns the first index whose CDF exceeds u * total).
    """
    g = probs.shape[0] // len(generators)
    u = torch.cat([torch.rand(g, 1, generator=gen, device=probs.device, dtype=torch.float64) for gen in generators])
    cdf = probs.double().cumsum(-1)  # (N, V)
    total = cdf[:, -1:].contiguous()  # (N, 1)
    idx = torch.searchsorted(cdf, u * total, right=True)  # (N, 1)
    last = torch.searchsorted(cdf, total, right=False)  # the last token with mass, for u * total rounding up to total
    return torch.minimum(idx, last).squeeze(-1)


def _next_tokens(logits: Tensor, temperature: float, top_k: int, top_p: float,
                 generators: Sequence[torch.Generator], ban: Tensor | None) -> Tensor:
    """logits (N, V) float32 -> (N,) tokens; group p (rows [p*g, (p+1)*g)) draws from generators[p] only."""
    if ban is not None:
        logits = logits.index_fill(-1, ban, float("-inf"))
    if temperature == 0.0:
        return logits.argmax(-1)
    return draw(torch.softmax(_filter_logits(logits, temperature, top_k, top_p), -1), generators)


@torch.inference_mode()
def sample_tokens(
    model, prompt_ids: Tensor, prompt_mask: Tensor, n_per_prompt: int, max_new_tokens: int, eos_ids: list[int],
    pad_id: int, *, temperature: float, top_p: float, top_k: int, generators: Sequence[torch.Generator],
    min_new_tokens: int = 0, share_prompt: bool = True, lean: bool | None = None,
) -> Tensor:
    """Sample (N = P * n_per_prompt, T <= max_new_tokens) completion ids; rows stop at their first eos.

    prompt_ids/prompt_mask (P, Lp) left-padded, one row per group; rows p*G .. (p+1)*G - 1
    continue prompt p and draw from generators[p] only. `share_prompt` prefills each prompt
    once and copies its KV cache to the G rows (the plain path prefills all N rows: same
    tokens, G times the prefill). `lean` decodes with `LeanDecoder` (None: whenever the model
    supports it, True: required, False: the transformers forward each token). No eos is
    sampled before `min_new_tokens` tokens.
    """
    from transformers import DynamicCache

    from vgrout.rollout.logps import _expand_cache, position_ids_from_mask

    device = prompt_ids.device
    P, g = prompt_ids.shape[0], n_per_prompt
    if len(generators) != P:
        raise ValueError(f"{P} prompts need {P} generators (one per group), got {len(generators)}")
    if g < 1 or max_new_tokens < 1 or min_new_tokens < 0:
        raise ValueError(f"need n_per_prompt >= 1, max_new_tokens >= 1, min_new_tokens >= 0; got {g}, "
                         f"{max_new_tokens}, {min_new_tokens}")
    why = lean_unsupported(model)
    if lean and why is not None:
        raise ValueError(f"lean=True but {why}; pass lean=None or False")
    lean = why is None if lean is None else lean
    n = P * g
    group_of_row = torch.arange(n, device=device) // g  # (N,)
    unit = group_of_row if share_prompt else torch.arange(n, device=device)  # prefill row of each row
    pre_ids = prompt_ids if share_prompt else prompt_ids.index_select(0, group_of_row)  # (U, Lp)
    pre_mask = prompt_mask if share_prompt else prompt_mask.index_select(0, group_of_row)
    pre_pos = position_ids_from_mask(pre_mask)  # (U, Lp)
    cache = DynamicCache()
    logits = model(input_ids=pre_ids, attention_mask=pre_mask, position_ids=pre_pos, use_cache=True, logits_to_keep=1,
                   **{cache_kwarg(model): cache}).logits[:, -1].float().index_select(0, unit)  # (N, V)
    pos = pre_pos[:, -1].index_select(0, unit)  # (N,) position of the last prompt token
    if lean:
        decoder = LeanDecoder(model, cache, g if share_prompt else 1, pre_mask, max_new_tokens)
    elif share_prompt:
        _expand_cache(cache, unit)
    eos = torch.tensor(eos_ids, device=device)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    out: list[Tensor] = []
    mask = prompt_mask.index_select(0, group_of_row)  # (N, Lp), grows on the transformers path
    for t in range(max_new_tokens):
        nxt = _next_tokens(logits, temperature, top_k, top_p, generators, eos if t < min_new_tokens else None)
        nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
        out.append(nxt)
        done = done | torch.isin(nxt, eos)
        if t == max_new_tokens - 1 or bool(done.all()):
            break
        pos = pos + 1
        if lean:
            logits = decoder.step(nxt, pos)
        else:
            mask = torch.cat([mask, torch.ones(n, 1, dtype=mask.dtype, device=device)], 1)
            logits = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=pos[:, None], use_cache=True,
                           logits_to_keep=1, **{cache_kwarg(model): cache}).logits[:, -1].float()
    return torch.stack(out, 1)  # (N, T)


def completion_mask_from_ids(completion_ids: Tensor, eos_ids: list[int]) -> Tensor:
    """(N, T) long mask: 1 up to and including the first eos (all ones when no eos was emitted)."""
    is_eos = torch.isin(completion_ids, torch.tensor(eos_ids, device=completion_ids.device)).long()  # (N, T)
    before = torch.cumsum(is_eos, 1) - is_eos  # eos tokens strictly before each position
    return (before == 0).long()


def generate(
    model, tokenizer, prompts: list[list[dict]], n_per_prompt: int, max_new_tokens: int,
    temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0, seed: int = 0, adapter=None, mode: str = "full",
    group_index: Sequence[int] | None = None, min_new_tokens: int | None = None, share_prompt: bool = True,
    lean: bool | None = None,
) -> Rollouts:
    """Sample `n_per_prompt` completions for each chat prompt -> Rollouts with N = len(prompts) * n_per_prompt.

    `mode` ("full" | "deployed" | "half_quarantine" | "quarantine_only") picks the adapter blocks
    folded in for sampling (`vgrout.adapter.MERGE_SCALES`); every mode but "full" needs an adapter. `group_index` (P,) names each prompt's global group (default
    0..P-1): prompt p samples from a generator seeded by (seed, group_index[p]), so the same
    (seed, index) gives the same completions whatever else is in the batch (up to float
    differences of the batched forward). Deterministic for a given seed on CPU.

    Each prompt is prefilled once and its KV cache copied to its `n_per_prompt` rows
    (`share_prompt=False` prefills every row: same tokens, more work). `min_new_tokens`
    (default: the model's `generation_config.min_new_tokens`, else 0) bans eos before that
    many tokens. `lean` picks the decode step (see `sample_tokens`).
    """
    if mode not in GEN_MODES:
        raise ValueError(f"mode must be one of {', '.join(GEN_MODES)}, got {mode!r}")
    if mode != "full" and adapter is None:
        raise ValueError(f"mode={mode!r} samples with the quarantine ablated or scaled and needs the adapter; "
                         "pass adapter=")
    if n_per_prompt < 1 or max_new_tokens < 1:
        raise ValueError(f"n_per_prompt and max_new_tokens must be >= 1, got {n_per_prompt}, {max_new_tokens}")
    if temperature < 0 or not 0.0 < top_p <= 1.0 or top_k < 0:
        raise ValueError(f"bad sampling settings temperature={temperature}, top_p={top_p}, top_k={top_k}")
    if group_index is None:
        group_index = range(len(prompts))
    group_index = [int(i) for i in group_index]
    if len(group_index) != len(prompts):
        raise ValueError(f"group_index has {len(group_index)} entries for {len(prompts)} prompts; give one per prompt")
    device = next(model.parameters()).device
    if min_new_tokens is None:
        min_new_tokens = int(getattr(getattr(model, "generation_config", None), "min_new_tokens", None) or 0)
    p_ids, p_mask = render_prompts(tokenizer, prompts)  # (P, Lp)
    p_ids, p_mask = p_ids.to(device), p_mask.to(device)
    eos_ids = eos_token_ids(tokenizer, model)
    pad_id = pad_token_id(tokenizer)
    gens = group_generators(seed, group_index, device)
    merged = adapter.merged(mode) if adapter is not None else contextlib.nullcontext()
    was_training = model.training
    model.eval()
    try:
        with merged:
            completion_ids = sample_tokens(model, p_ids, p_mask, n_per_prompt, max_new_tokens, eos_ids, pad_id,
                                           temperature=temperature, top_p=top_p, top_k=top_k, generators=gens,
                                           min_new_tokens=min_new_tokens, share_prompt=share_prompt, lean=lean)
    finally:
        model.train(was_training)
    completion_mask = completion_mask_from_ids(completion_ids, eos_ids)  # (N, T)
    completion_ids = completion_ids.masked_fill(completion_mask == 0, pad_id)
    texts = tokenizer.batch_decode([ids[m.bool()].tolist() for ids, m in zip(completion_ids.cpu(), completion_mask.cpu())],
                                   skip_special_tokens=True)
    prompt_ids = p_ids.repeat_interleave(n_per_prompt, 0)  # (N, Lp)
    prompt_mask = p_mask.repeat_interleave(n_per_prompt, 0)
    n = prompt_ids.shape[0]
    return Rollouts(
        prompt_ids=prompt_ids, prompt_mask=prompt_mask, completion_ids=completion_ids, completion_mask=completion_mask,
        texts=texts, prompt_index=torch.arange(len(prompts)).repeat_interleave(n_per_prompt),
        deployed=torch.full((n,), mode == "deployed", dtype=torch.bool),
    )
