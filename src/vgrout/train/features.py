"""Gate features from the model: pooled deployed-bottleneck activations and bottleneck gradients.

Both are read with the quarantine ablated (adapter mode "deployed"), the state the pair
directions are extracted in, so live scores and directions share one feature space. The
authored pairs are turned into the same (prompt ids, completion ids) layout as live rollouts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager

import torch
from torch import Tensor

from vgrout.rollout import Rollouts, left_pad, pad_token_id, per_token_logps, render_prompt_text, right_pad
from vgrout.rollout.logps import ForwardContext, completion_logps
from vgrout.rollout.tokens import encode_text, eos_token_ids
from vgrout.train.batch import chunks, concat_rollouts, select_rows
from vgrout.train.motivate import MotivatePair
from vgrout.types import HackPair


def completion_positions(r: Rollouts) -> Tensor:
    """(N, Lp + T) bool: the completion tokens of each row in the full sequence."""
    return torch.cat([torch.zeros_like(r.prompt_mask), r.completion_mask], 1).bool()


def adapter_context(adapter, mode: str = "full", zones: Tensor | None = None,
                    around_completion: Callable[[str, Tensor], AbstractContextManager] | None = None) -> ForwardContext:
    """A `completion_logps` context: adapter mode, per-row zones (n,) (sliced to the forward's
    rows, so a unit's prompt runs in its rows' zone), and an extra context on the forward(s)
    that see the completion tokens ("whole" or "completion", never "prompt")."""
    @contextmanager
    def ctx(part: str, rows: Tensor) -> Iterator[None]:
        with ExitStack() as stack:
            if mode != "full":
                stack.enter_context(adapter.mode(mode))
            if zones is not None:
                stack.enter_context(adapter.zones(zones[rows.to(zones.device)]))
            if around_completion is not None and part != "prompt":
                stack.enter_context(around_completion(part, rows))
            yield
    return ctx


def count_rows(stats: dict | None, n: int, prompt_rows: int) -> None:
    """Tally one forward's rows: `rows_shared_prompt` (prompt run once per unit) or `rows_plain`,
    and `prompt_rows_run` (prompt rows actually computed)."""
    if stats is None:
        return
    key = "rows_shared_prompt" if prompt_rows < n else "rows_plain"
    stats[key] = stats.get(key, 0) + n
    stats["prompt_rows_run"] = stats.get("prompt_rows_run", 0) + prompt_rows


@torch.no_grad()
def act_features(adapter, model, r: Rollouts, micro_batch: int, share_prompt: bool = True,
                 stats: dict | None = None, logps_for: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Deployed-mode forward: pooled bottlenecks (N, M, r) and deployed log-probs (N, T), no grad.

    Pooling covers completion tokens only, so with a shared prompt the capture sits on the
    completion forward alone (mask (n, T)); the plain forward pools over (n, Lp + T).
    `logps_for` (N,) bool marks the rows whose log-probs the caller reads (None: all). A
    micro-batch with none of them skips the lm_head and log-softmax (the features are the same
    bit for bit: they are read before the head) and its log-probs are NaN, so a stray read shows.
    """
    feats, logps = [], []
    whole = completion_positions(r)  # (N, Lp + T)
    want = torch.ones(len(r), dtype=torch.bool) if logps_for is None else logps_for.cpu().bool()
    for sl in chunks(len(r), micro_batch):
        caps = []

        @contextmanager
        def capture(part: str, rows: Tensor, sl=sl) -> Iterator[None]:
            mask = whole[sl] if part == "whole" else r.completion_mask[sl].bool()
            with adapter.capture_bottleneck(mask) as cap:
                caps.append(cap)
                yield

        need = bool(want[sl].any())
        lp, run = completion_logps(model, r.prompt_ids[sl], r.prompt_mask[sl], r.completion_ids[sl],
                                   r.completion_mask[sl], share_prompt=share_prompt,
                                   context=adapter_context(adapter, "deployed", around_completion=capture), logps=need)
        if lp is None:
            lp = torch.full(r.completion_ids[sl].shape, math.nan, dtype=torch.float32, device=r.completion_ids.device)
        count_rows(stats, lp.shape[0], run)
        logps.append(lp)
        feats.append(caps[0].pooled)
    return torch.cat(feats), torch.cat(logps)


def grad_features(adapter, model, r: Rollouts, micro_batch: int, stats: dict | None = None) -> Tensor:
    """Per-row gradient of the mean completion NLL in the deployed bottleneck (N, M, r).

    One grad-enabled forward and a backward into the probes only; parameter .grad is untouched.
    Always the plain forward (counted as such): the probe's per-row gradient includes the
    row's prompt positions, and a prompt shared by G rows would sum their gradients there.
    """
    out = []
    T = r.completion_ids.shape[1]
    ids, att, m = r.input_ids, r.attention_mask, r.completion_mask.float()
    for sl in chunks(len(r), micro_batch):
        with torch.enable_grad(), adapter.mode("deployed"), adapter.grad_probe() as probe:
            lp = per_token_logps(model, ids[sl], att[sl], T)  # (n, T)
            nll = -(lp * m[sl]).sum(1) / m[sl].sum(1).clamp(min=1.0)  # (n,)
            out.append(probe.per_row(nll).detach())
        count_rows(stats, len(ids[sl]), len(ids[sl]))
    return torch.cat(out)


def side_messages(pair: HackPair | MotivatePair, side: str) -> list[dict]:
    """The prompt of one side: a motivate pair has one prompt per side, an authored HackPair one shared prompt."""
    if isinstance(pair, MotivatePair):
        return list(pair.hack_messages if side == "hack" else pair.clean_messages)
    return list(pair.messages)


def pair_rollouts(tokenizer, model, pairs: list[HackPair | MotivatePair], side: str) -> Rollouts:
    """Pairs as a Rollouts batch: the side's rendered prompt, then the side's completion + eos."""
    if side not in ("hack", "clean"):
        raise ValueError(f"side must be 'hack' or 'clean', got {side!r}")
    if not pairs:
        raise ValueError("no pairs given; check the pair set and pair_modes")
    pad = pad_token_id(tokenizer)
    eos = eos_token_ids(tokenizer, model)[0] if tokenizer.eos_token_id is None else int(tokenizer.eos_token_id)
    prompts = [encode_text(tokenizer, render_prompt_text(tokenizer, side_messages(p, side))) for p in pairs]
    comps = [encode_text(tokenizer, getattr(p, side)) + [eos] for p in pairs]
    p_ids, p_mask = left_pad(prompts, pad)
    c_ids, c_mask = right_pad(comps, pad)
    device = next(model.parameters()).device
    n = len(pairs)
    return Rollouts(prompt_ids=p_ids.to(device), prompt_mask=p_mask.to(device), completion_ids=c_ids.to(device),
                    completion_mask=c_mask.to(device), texts=[getattr(p, side) for p in pairs],
                    prompt_index=torch.arange(n), deployed=torch.ones(n, dtype=torch.bool))


def pair_features(kind: str, adapter, model, tokenizer, pairs: list[HackPair], micro_batch: int) -> tuple[Tensor, Tensor]:
    """(hack (P, M, r), clean (P, M, r)) features of the authored pairs; kind is 'act' or 'grad'.

    'act' reads the pooled captures only, so its forwards skip the lm_head and log-softmax.
    (Padding each side to its own width instead of the longest side's would cut the toy pairs'
    forward by a third, but changes the hack sides' features in the last bit: the attention
    over a shorter key length rounds differently, so it is not done.)
    """
    if kind not in ("act", "grad"):
        raise ValueError(f"feature kind must be 'act' or 'grad', got {kind!r}")
    was_training = model.training
    model.eval()
    try:
        sides = [pair_rollouts(tokenizer, model, pairs, side) for side in ("hack", "clean")]
        if kind == "grad":
            out = [grad_features(adapter, model, r, micro_batch) for r in sides]
        else:  # one batch, hack and clean of a pair side by side: a prompt the two sides share runs once
            n = len(pairs)
            both = concat_rollouts(sides, pad_token_id(tokenizer))
            both = select_rows(both, torch.stack([torch.arange(n), torch.arange(n) + n], 1).flatten())
            feats = act_features(adapter, model, both, micro_batch,  # (2P, M, r): h0, c0, h1, c1, ...
                                 logps_for=torch.zeros(2 * n, dtype=torch.bool))[0]
            out = [feats[0::2], feats[1::2]]
    finally:
        model.train(was_training)
    return out[0], out[1]
