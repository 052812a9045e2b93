"""Load the policy's base model and tokenizer from a `model` spec (train, eval and the CLIs share it)."""

from __future__ import annotations

import torch


def resolve_device(device: str) -> torch.device:
    """auto -> cuda if available else cpu; asking for cuda without one is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but no CUDA device is available; use device=cpu or auto")
    return torch.device(device)


def toy_name(model: str) -> str | None:
    """'toy:NAME' -> NAME, else None."""
    return model.split(":", 1)[1] if model.startswith("toy:") else None


def load_model(model: str, dtype: str, device: str, random_init: bool = False):
    """(model in eval mode on its device, tokenizer). `toy:NAME` builds/loads the toy world's model."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    name = toy_name(model)
    if name is not None:
        from vgrout.toy import toy_world

        path = str(toy_world(name, progress=False).model_dir)
    else:
        path = model
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    tok = AutoTokenizer.from_pretrained(path)
    if random_init:
        cfg = AutoConfig.from_pretrained(path)
        m = AutoModelForCausalLM.from_config(cfg, dtype=torch_dtype)
    elif name is not None:  # a toy model loads in milliseconds: its per-tensor bar only clutters the demo's log
        from transformers.utils import logging as hf_logging

        shown = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            m = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
        finally:
            if shown:
                hf_logging.enable_progress_bar()
    else:
        m = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    m.to(resolve_device(device)).eval()
    m.config.use_cache = False
    return m, tok


__all__ = ["load_model", "resolve_device", "toy_name"]
