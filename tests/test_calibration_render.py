"""scorda/corda calibration reads the token layout rollouts produce, on a Qwen3-style template
with a thinking block (built locally: `vgrout.localqwen`, nothing downloaded)."""

from __future__ import annotations

import pytest

from vgrout.adapter.calibration import pair_token_ids
from vgrout.localqwen import qwen3_style_tokenizer
from vgrout.pairs import load_pairs
from vgrout.rollout.tokens import render_prompts


@pytest.fixture(scope="module")
def pairs():
    return load_pairs("leetcode")[:4]


@pytest.fixture(scope="module")
def tok(pairs):
    texts = [m["content"] for p in pairs for m in p.messages] + [p.hack for p in pairs] + [p.clean for p in pairs]
    return qwen3_style_tokenizer(texts, vocab_size=600)


def test_calibration_prompt_ids_equal_rollout_prompt_ids(tok, pairs):
    think_off = tok("<think>\n\n</think>\n\n", add_special_tokens=False)["input_ids"]
    for p in pairs:
        ids, start = pair_token_ids(tok, p.messages, p.hack)
        p_ids, p_mask = render_prompts(tok, [list(p.messages)])  # what rollout.generate feeds the model
        rollout_prompt = p_ids[0][p_mask[0].bool()].tolist()
        assert ids[:start] == rollout_prompt
        assert rollout_prompt[-len(think_off):] == think_off  # the empty thinking block is in both
        assert ids[start:] == tok(p.hack, add_special_tokens=False)["input_ids"]


def test_the_template_really_distinguishes_the_two_renderings(tok, pairs):
    """Guard on the fixture: without enable_thinking=False the template renders other ids, so the
    test above would catch calibration rendering the old way."""
    msgs = list(pairs[0].messages)
    default = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    off = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False, enable_thinking=False)
    assert default != off and off == default + "<think>\n\n</think>\n\n"
    _, start = pair_token_ids(tok, pairs[0].messages, pairs[0].clean)
    assert start == len(tok(off, add_special_tokens=False)["input_ids"])
