"""A Qwen3-architecture model and tokenizer built locally, nothing downloaded.

The real-model path (Hugging Face Qwen3 + LeetCode prompts) is exercised on CPU in CI and
timed on GPU in `benchmarks/bench_gpu.py` without fetching weights: the model is random-init
from a `Qwen3Config` (tiny, or Qwen3-4B's published shape from `QWEN3_4B_CONFIG`), the
tokenizer is a byte-level BPE trained on the texts given, wrapped with a chat template that
reproduces Qwen3's generation prompt, thinking block included:

    enable_thinking=False  -> <|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n
    otherwise              -> <|im_start|>assistant\\n

so code that renders prompts one way and calibration another shows up as different token ids.
The model is saved with `save_pretrained`, so `--set model=DIR` loads it like any checkpoint.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import torch

PAD, IM_START, IM_END, THINK, END_THINK = "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"
SPECIAL_TOKENS = (PAD, IM_START, IM_END, THINK, END_THINK)

# Qwen3's generation-prompt logic (its template's last lines), without tool calls.
QWEN3_STYLE_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
)

QWEN3_4B_CONFIG = Path(__file__).parent / "data" / "qwen3_4b_config.json"
"""Qwen3-4B's published shape (hidden 2560, 36 layers, 32 q / 8 kv heads, head_dim 128, FFN 9728,
vocab 151,936), written in the repo so the benchmark needs no download."""

TINY_QWEN3 = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                  intermediate_size=128, max_position_embeddings=8192, tie_word_embeddings=True,
                  rope_theta=1_000_000.0, rms_norm_eps=1e-6)
"""A Qwen3 small enough for CPU tests whose context holds a whole LeetCode prompt and its completion."""


def qwen3_style_tokenizer(texts: Iterable[str], vocab_size: int = 2048):
    """A byte-level BPE trained on `texts` (deterministic), with Qwen3's special tokens and
    generation-prompt template; eos = <|im_end|>, pad = <|endoftext|>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(texts), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=IM_END, pad_token=PAD,
                                   additional_special_tokens=[IM_START, THINK, END_THINK],
                                   chat_template=QWEN3_STYLE_TEMPLATE, padding_side="left",
                                   clean_up_tokenization_spaces=False)


def qwen3_config(tokenizer, shape: dict | str | os.PathLike = "tiny", vocab_size: int | None = None):
    """A Qwen3Config of `shape` ("tiny", "4b", a dict of fields, or a json path) whose special ids
    match `tokenizer`. vocab_size defaults to the shape's (4B: 151,936) or the tokenizer's length."""
    from transformers import Qwen3Config

    if shape == "tiny":
        fields = dict(TINY_QWEN3)
    elif shape == "4b":
        fields = json.loads(QWEN3_4B_CONFIG.read_text())
    elif isinstance(shape, dict):
        fields = dict(shape)
    else:
        fields = json.loads(Path(shape).read_text())
    fields = {k: v for k, v in fields.items() if not k.startswith("_")}
    fields["vocab_size"] = vocab_size or fields.get("vocab_size") or len(tokenizer)
    if fields["vocab_size"] < len(tokenizer):
        raise ValueError(f"vocab_size {fields['vocab_size']} < the tokenizer's {len(tokenizer)} tokens")
    fields.update(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                  bos_token_id=tokenizer.pad_token_id)
    return Qwen3Config(**fields)


def build_local_qwen3(out_dir: str | os.PathLike, texts: Iterable[str], shape: dict | str = "tiny",
                      vocab_size: int = 2048, seed: int = 0, dtype: torch.dtype = torch.float32) -> Path:
    """Write a random-init Qwen3 (model + tokenizer + generation config) to `out_dir`; returns it."""
    from transformers import GenerationConfig, Qwen3ForCausalLM

    out = Path(out_dir)
    tok = qwen3_style_tokenizer(texts, vocab_size)
    cfg = qwen3_config(tok, shape)
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(cfg).to(dtype).eval()
    model.generation_config = GenerationConfig(eos_token_id=[tok.eos_token_id], pad_token_id=tok.pad_token_id)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


__all__ = ["QWEN3_4B_CONFIG", "QWEN3_STYLE_TEMPLATE", "SPECIAL_TOKENS", "TINY_QWEN3", "build_local_qwen3",
           "qwen3_config", "qwen3_style_tokenizer"]
