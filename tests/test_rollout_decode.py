"""Generation's fast paths equal its plain path: shared prompt prefill, the lean decode step, eos bans, no warnings.

The plain path prefills every row's prompt and runs transformers' own forward for every
token. The shared path prefills each group's prompt once; the lean path decodes with static
buffers and shared prompt keys. For the same seed all four must sample the same tokens, on a
tiny random Qwen3 with grouped-query attention and left-padded prompts of different lengths.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from test_rollout_generate import PROMPTS, tiny_model, tiny_tokenizer
from transformers import DynamicCache

from vgrout.rollout import generate
from vgrout.rollout.decode import LeanDecoder, lean_unsupported
from vgrout.rollout.logps import completion_logps, position_ids_from_mask

PATHS = {"plain": dict(share_prompt=False, lean=False), "shared": dict(share_prompt=True, lean=False),
         "lean_plain": dict(share_prompt=False, lean=True), "lean_shared": dict(share_prompt=True, lean=True)}
THREE = PROMPTS + [[{"role": "user", "content": "a much longer request that pads the others on the left"}]]


@pytest.fixture(scope="module")
def lm():
    tok = tiny_tokenizer()
    model = tiny_model(len(tok), seed=3)
    assert model.config.num_key_value_heads < model.config.num_attention_heads  # grouped-query attention
    return model, tok


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, 0, 1.0), (0.7, 5, 0.9), (0.0, 0, 1.0)],
                         ids=["t1", "topk_topp", "greedy"])
def test_every_path_samples_the_same_tokens(lm, temperature, top_k, top_p):
    model, tok = lm
    out = {name: generate(model, tok, THREE, n_per_prompt=4, max_new_tokens=20, temperature=temperature, top_k=top_k,
                          top_p=top_p, seed=11, **kw) for name, kw in PATHS.items()}
    ref = out["plain"]
    assert ref.completion_mask.sum(1).float().mean() > 3  # real completions, not instant eos
    for name, r in out.items():
        assert torch.equal(r.completion_ids, ref.completion_ids), name
        assert torch.equal(r.completion_mask, ref.completion_mask) and r.texts == ref.texts, name
        assert torch.equal(r.prompt_ids, ref.prompt_ids) and torch.equal(r.prompt_mask, ref.prompt_mask), name


def test_lean_step_logits_equal_the_full_forward(lm):
    """Each lean decode step's logits are the full forward's logits at that position (left padding included)."""
    model, tok = lm
    G, T = 3, 6
    r = generate(model, tok, THREE, n_per_prompt=G, max_new_tokens=T, min_new_tokens=T, seed=2, lean=False)
    P = len(THREE)
    ids, mask = r.input_ids, r.attention_mask  # (N, Lp + T), no eos so every completion token is real
    assert r.completion_mask.all()
    Lp = r.prompt_ids.shape[1]
    with torch.inference_mode():
        full = model(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask)).logits.float()
        cache = DynamicCache()
        pm = r.prompt_mask[::G]  # (P, Lp) one row per group
        model(input_ids=r.prompt_ids[::G], attention_mask=pm, position_ids=position_ids_from_mask(pm), cache=cache,
              use_cache=True, logits_to_keep=1)
        dec = LeanDecoder(model, cache, G, pm, T)
        pos = position_ids_from_mask(r.prompt_mask)[:, -1]
        for t in range(T - 1):
            pos = pos + 1
            logits = dec.step(r.completion_ids[:, t], pos)  # (N, V) predicts completion token t + 1
            torch.testing.assert_close(logits, full[:, Lp + t], rtol=1e-4, atol=1e-4)
    assert dec.capacity == T and P * G == ids.shape[0]


def test_min_new_tokens_bans_eos_then_allows_it(lm):
    model, tok = lm
    eos = tok.eos_token_id
    free = generate(model, tok, THREE, n_per_prompt=4, max_new_tokens=30, seed=5)
    assert (free.completion_mask.sum(1) < 20).any()  # without the ban some rows stop early
    banned = generate(model, tok, THREE, n_per_prompt=4, max_new_tokens=30, min_new_tokens=20, seed=5)
    assert (banned.completion_mask.sum(1) >= 20).all()
    assert not (banned.completion_ids[:, :20] == eos).any()
    assert (banned.completion_mask.sum(1) < 30).any()  # and eos is allowed after the ban
    model.generation_config.min_new_tokens = 30  # the model's own generation config is honoured by default
    try:
        full = generate(model, tok, THREE, n_per_prompt=2, max_new_tokens=30, seed=5)
    finally:
        model.generation_config.min_new_tokens = None
    assert full.completion_ids.shape[1] == 30 and full.completion_mask.all()


def test_lean_refuses_what_it_does_not_implement(lm):
    model, tok = lm
    model.train()
    try:
        assert "eval-mode" in lean_unsupported(model)
    finally:
        model.eval()
    from transformers import LlamaConfig, LlamaForCausalLM

    llama = LlamaForCausalLM(LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, vocab_size=len(tok))).eval()
    assert "Qwen3 only" in lean_unsupported(llama)
    with pytest.raises(ValueError, match="lean=True but"):
        generate(llama, tok, PROMPTS, 1, 4, lean=True)
    r = generate(llama, tok, PROMPTS, 2, 4, seed=1)  # the default falls back to transformers' forward, by design
    assert r.completion_ids.shape[0] == 4


def test_generation_and_shared_logps_emit_no_deprecation_warnings(lm):
    """Our own calls into transformers (KV cache argument names, outputs) raise no Future/DeprecationWarning."""
    model, tok = lm
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for lean in (True, False):
            r = generate(model, tok, THREE, n_per_prompt=3, max_new_tokens=8, seed=1, lean=lean)
        with torch.no_grad():
            completion_logps(model, r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask)
    bad = [w for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))]
    assert not bad, [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in bad]


def test_draw_matches_the_distribution_and_never_draws_a_zero():
    """Inverse-CDF sampling: frequencies within 4 sigma of the probabilities, zero-mass tokens never drawn."""
    from vgrout.rollout.generate import draw

    probs = torch.tensor([[0.0, 0.1, 0.0, 0.5, 0.4, 0.0], [0.25, 0.0, 0.25, 0.0, 0.0, 0.5]])
    n = 40_000
    rows = probs.repeat_interleave(n, 0)  # two groups of n rows
    gens = [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)]
    t = draw(rows, gens).view(2, n)
    for p in range(2):
        freq = torch.bincount(t[p], minlength=6).double() / n
        sigma = (probs[p].double() * (1 - probs[p].double()) / n).sqrt()
        assert ((freq - probs[p].double()).abs() <= 4 * sigma + 1e-12).all(), (p, freq)
        assert (freq[probs[p] == 0] == 0).all()
    again = draw(rows, [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)]).view(2, n)
    assert torch.equal(t, again)  # a pure function of the generators
