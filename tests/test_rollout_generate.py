"""Rollout: seeded batched sampling, masks, positions, and per-token log-probs on a tiny real model."""

from __future__ import annotations

import string

import pytest
import torch

from vgrout.rollout import completion_mask_from_ids, generate, per_token_logps, render_prompts

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def tiny_tokenizer():
    """A character-level fast tokenizer with a chat template (built locally, nothing downloaded)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
    chars = list(string.printable)
    vocab = {t: i for i, t in enumerate(specials + chars)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="?"))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    from tokenizers import decoders
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<|end|>", unk_token="?",
                                   additional_special_tokens=specials[2:])
    fast.chat_template = CHAT_TEMPLATE
    return fast


def tiny_model(vocab_size: int, seed: int = 0):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen3Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                      intermediate_size=64, vocab_size=vocab_size, max_position_embeddings=512, tie_word_embeddings=True)
    return Qwen3ForCausalLM(cfg).eval()


@pytest.fixture(scope="module")
def lm():
    tok = tiny_tokenizer()
    return tiny_model(len(tok)), tok


PROMPTS = [
    [{"role": "system", "content": "sys"}, {"role": "user", "content": "add 2 and 3"}],
    [{"role": "user", "content": "hi"}],
]


def test_generate_shapes_masks_and_index(lm):
    model, tok = lm
    r = generate(model, tok, PROMPTS, n_per_prompt=3, max_new_tokens=12, seed=1)
    assert r.prompt_ids.shape[0] == 6 and r.completion_ids.shape[0] == 6
    assert r.prompt_index.tolist() == [0, 0, 0, 1, 1, 1]
    assert r.prompt_mask[3:, 0].eq(0).all()  # shorter prompt is left-padded
    assert len(r.texts) == 6 and not r.deployed.any()
    eos = tok.eos_token_id
    for ids, m in zip(r.completion_ids, r.completion_mask):
        n = int(m.sum())
        assert m[:n].eq(1).all() and m[n:].eq(0).all()
        hits = (ids[:n] == eos).nonzero().flatten().tolist()
        assert hits in ([], [n - 1])  # at most one eos, and it is the last masked token


def test_generate_is_seeded_and_leaves_global_rng_alone(lm):
    model, tok = lm
    state = torch.random.get_rng_state()
    a = generate(model, tok, PROMPTS, n_per_prompt=2, max_new_tokens=10, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = generate(model, tok, PROMPTS, n_per_prompt=2, max_new_tokens=10, seed=7)
    c = generate(model, tok, PROMPTS, n_per_prompt=2, max_new_tokens=10, seed=8)
    assert torch.equal(a.completion_ids, b.completion_ids) and a.texts == b.texts
    assert not torch.equal(a.completion_ids, c.completion_ids)


def test_completion_mask_stops_at_first_eos():
    ids = torch.tensor([[5, 1, 7, 1], [5, 6, 7, 8]])
    assert completion_mask_from_ids(ids, [1]).tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]


def test_per_token_logps_matches_full_log_softmax_and_unpadded_rows(lm):
    """Left padding with position_ids = cumsum - 1 scores a row exactly as its unpadded self."""
    model, tok = lm
    r = generate(model, tok, PROMPTS, n_per_prompt=1, max_new_tokens=8, seed=3)
    T = r.completion_ids.shape[1]
    lp = per_token_logps(model, r.input_ids, r.attention_mask, T)  # (2, T)
    full = torch.log_softmax(model(input_ids=r.input_ids, attention_mask=r.attention_mask,
                                   position_ids=(r.attention_mask.cumsum(-1) - 1).clamp(min=0)).logits.float(), -1)
    ref = full[:, -T - 1:-1].gather(-1, r.completion_ids[..., None]).squeeze(-1)
    torch.testing.assert_close(lp, ref, rtol=1e-5, atol=1e-5)
    row = 1  # the left-padded one
    keep = r.prompt_mask[row].bool()
    ids1 = torch.cat([r.prompt_ids[row][keep], r.completion_ids[row]])[None]
    lp1 = per_token_logps(model, ids1, torch.ones_like(ids1), T)
    m = r.completion_mask[row].bool()
    torch.testing.assert_close(lp1[0][m], lp[row][m], rtol=1e-4, atol=1e-5)


def test_sampling_matches_scoring_distribution_at_temperature_zero(lm):
    """Greedy tokens are the argmax of the training forward at every completion position."""
    model, tok = lm
    r = generate(model, tok, PROMPTS, n_per_prompt=1, max_new_tokens=6, temperature=0.0)
    T = r.completion_ids.shape[1]
    pos = (r.attention_mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=r.input_ids, attention_mask=r.attention_mask, position_ids=pos).logits[:, -T - 1:-1]
    m = r.completion_mask.bool()
    assert torch.equal(logits.argmax(-1)[m], r.completion_ids[m])


def test_bad_arguments_raise(lm):
    model, tok = lm
    with pytest.raises(ValueError, match="needs the adapter"):
        generate(model, tok, PROMPTS, 1, 4, mode="deployed")
    with pytest.raises(ValueError, match="mode"):
        generate(model, tok, PROMPTS, 1, 4, mode="quarantine")
    with pytest.raises(ValueError, match="no prompts"):
        render_prompts(tok, [])
