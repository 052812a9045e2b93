"""A byte-level BPE tokenizer trained on the toy corpus, wrapped as a Hugging Face fast tokenizer
with a Qwen-style chat template, so downstream code treats it exactly like Qwen3's.

Digits are always split into single tokens (arithmetic families stay learnable). Other
merges may cross spaces: the prompt boilerplate the environment renders is long but fixed,
and letting BPE fold it into a few tokens keeps sequences short, which is what GRPO step time
on a CPU depends on.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

IM_START, IM_END, PAD = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
SPECIAL_TOKENS = (PAD, IM_START, IM_END)  # ids 0, 1, 2

# Qwen's layout without the thinking block: <|im_start|>role\ncontent<|im_end|>\n
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def format_chat(messages: list[dict], add_generation_prompt: bool = True) -> str:
    """The text CHAT_TEMPLATE renders, without a tokenizer (the corpus is written before the
    tokenizer exists; `check_chat_template` asserts the two agree)."""
    text = "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages)
    return text + (f"{IM_START}assistant\n" if add_generation_prompt else "")


def train_tokenizer(texts: Iterable[str], vocab_size: int, max_token_length: int = 24) -> PreTrainedTokenizerFast:
    """Train byte-level BPE on `texts` (deterministic for the same texts in the same order)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        max_token_length=max_token_length,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return wrap_tokenizer(tok)


def wrap_tokenizer(tok: Tokenizer) -> PreTrainedTokenizerFast:
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=IM_END, pad_token=PAD, chat_template=CHAT_TEMPLATE,
        padding_side="left", clean_up_tokenization_spaces=False,
    )
    if fast.pad_token_id == fast.eos_token_id:
        raise AssertionError("pad and eos must differ (pad = eos drops eos from completion masks)")
    return fast


def check_chat_template(tokenizer: PreTrainedTokenizerFast, messages: list[dict]) -> None:
    """Raise if the tokenizer's chat template and `format_chat` render differently."""
    got = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    want = format_chat(messages)
    if got != want:
        raise AssertionError(f"chat template mismatch:\n{got!r}\n!=\n{want!r}")


__all__ = ["CHAT_TEMPLATE", "IM_END", "IM_START", "PAD", "SPECIAL_TOKENS", "check_chat_template",
           "format_chat", "train_tokenizer", "wrap_tokenizer"]
