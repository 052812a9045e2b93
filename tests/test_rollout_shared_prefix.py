"""Shared-prompt log-probs: the prompt run once per (group, zone) equals the plain forward.

A tiny random Qwen3 with a block adapter whose blocks are moved off their init (so both
blocks change the forward), left-padded prompts of different lengths, right-padded
completions of different lengths: log-probs, adapter gradients and gate features of the
shared path must match the plain path, and zones must route gradients exactly.
"""

from __future__ import annotations

import pytest
import torch

from vgrout.adapter import ABSORB, KEEP, ROUTE, AdapterConfig, attach
from vgrout.rollout import Rollouts
from vgrout.rollout.logps import completion_logps, prefix_units
from vgrout.train.direction import act_features, adapter_context

V, P, G, T = 48, 3, 4, 7


def tiny_adapted(seed: int = 0):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen3Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                      intermediate_size=64, vocab_size=V, max_position_embeddings=256)
    model = Qwen3ForCausalLM(cfg).eval()
    adapter = attach(model, AdapterConfig(r=2))
    with torch.no_grad():  # move both blocks off init so D and Q are non-zero
        for p in adapter.parameters("all"):
            p.add_(0.3 * torch.randn_like(p))
    return model, adapter


def batch(seed: int = 1) -> Rollouts:
    """P groups of G rows; prompts of lengths 5, 9, 12 left-padded to 12; completions 1..T tokens."""
    g = torch.Generator().manual_seed(seed)
    lens = [5, 9, 12]
    Lp = max(lens)
    pid, pm = torch.zeros(P, Lp, dtype=torch.long), torch.zeros(P, Lp, dtype=torch.long)
    for i, n in enumerate(lens):
        pid[i, Lp - n:] = torch.randint(1, V, (n,), generator=g)
        pm[i, Lp - n:] = 1
    n = P * G
    cid = torch.randint(1, V, (n, T), generator=g)
    clen = torch.randint(1, T + 1, (n,), generator=g)
    clen[0] = T
    cm = (torch.arange(T)[None] < clen[:, None]).long()
    cid = torch.where(cm.bool(), cid, torch.zeros_like(cid))
    return Rollouts(prompt_ids=pid.repeat_interleave(G, 0), prompt_mask=pm.repeat_interleave(G, 0), completion_ids=cid,
                    completion_mask=cm, texts=[""] * n, prompt_index=torch.arange(P).repeat_interleave(G),
                    deployed=torch.ones(n, dtype=torch.bool))


def logps(model, adapter, r: Rollouts, share: bool, zones=None, mode: str = "full"):
    return completion_logps(model, r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask, key=zones,
                            share_prompt=share, context=adapter_context(adapter, mode, zones))


def grads_of(model, adapter, r: Rollouts, share: bool, zones=None):
    """Adapter grads of a masked weighted log-prob sum (every row and token weighs differently)."""
    for p in adapter.parameters("all"):
        p.grad = None
    lp, _ = logps(model, adapter, r, share, zones)
    w = torch.linspace(-1.0, 2.0, lp.numel()).view_as(lp)
    (lp * w * r.completion_mask).sum().backward()
    return lp.detach(), [None if p.grad is None else p.grad.clone() for p in adapter.parameters("all")]


def test_prefix_units_split_by_prompt_and_key():
    r = batch()
    first, unit = prefix_units(r.prompt_ids, r.prompt_mask)
    assert first.tolist() == [0, 4, 8] and unit.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    key = torch.tensor([KEEP, ROUTE, KEEP, ABSORB] + [ABSORB] * 4 + [ROUTE] * 4)
    first, unit = prefix_units(r.prompt_ids, r.prompt_mask, key)
    assert first.tolist() == [0, 1, 3, 4, 8]
    assert unit.tolist() == [0, 1, 0, 2, 3, 3, 3, 3, 4, 4, 4, 4]


@pytest.mark.parametrize("mode", ["full", "deployed", "base"])
def test_shared_logps_equal_plain_in_every_mode(mode):
    model, adapter = tiny_adapted()
    r = batch()
    with torch.no_grad():
        plain, n_plain = logps(model, adapter, r, False, mode=mode)
        shared, n_shared = logps(model, adapter, r, True, mode=mode)
    assert (n_plain, n_shared) == (P * G, P)
    m = r.completion_mask.bool()
    assert torch.allclose(shared[m], plain[m], atol=1e-5, rtol=0)
    assert torch.allclose(shared, plain, atol=1e-5, rtol=0)  # padded positions too: same positions and masks


@pytest.mark.parametrize("zoned", [False, True], ids=["vanilla", "mixed_zones"])
def test_shared_gradients_equal_plain(zoned):
    model, adapter = tiny_adapted()
    r = batch()
    z = torch.tensor([KEEP, ABSORB, ROUTE, KEEP, ROUTE, ROUTE, ROUTE, ROUTE, ABSORB, KEEP, ABSORB, ABSORB]) if zoned else None
    lp0, g0 = grads_of(model, adapter, r, False, z)
    lp1, g1 = grads_of(model, adapter, r, True, z)
    assert torch.allclose(lp1, lp0, atol=1e-5, rtol=0)
    for a, b in zip(g0, g1, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert (b - a).norm() <= 1e-4 * a.norm() + 1e-8


@pytest.mark.parametrize("zone,moves,still", [(ROUTE, "quarantine", "deployed"), (KEEP, "deployed", "quarantine")])
def test_shared_prompt_routes_gradients_exactly(zone, moves, still):
    model, adapter = tiny_adapted()
    r = batch()
    z = torch.full((len(r),), zone)
    for p in adapter.parameters("all"):
        p.grad = None
    lp, run = logps(model, adapter, r, True, z)
    assert run == P
    (lp * r.completion_mask).sum().backward()
    assert all(p.grad is None or bool((p.grad == 0).all()) for p in adapter.parameters(still))
    assert any(p.grad is not None and bool((p.grad != 0).any()) for p in adapter.parameters(moves))


def test_act_features_shared_equal_plain():
    model, adapter = tiny_adapted()
    r = batch()
    stats_p, stats_s = {}, {}
    f0, l0 = act_features(adapter, model, r, 0, share_prompt=False, stats=stats_p)
    f1, l1 = act_features(adapter, model, r, 5, share_prompt=True, stats=stats_s)  # chunks of 5 split groups
    assert torch.allclose(f1, f0, atol=1e-5, rtol=1e-5) and torch.allclose(l1, l0, atol=1e-5, rtol=0)
    assert stats_p == {"rows_plain": P * G, "prompt_rows_run": P * G}
    assert stats_s == {"rows_shared_prompt": P * G, "prompt_rows_run": 5}  # units per chunk: 2 + 2 + 1
