"""What a GPU run needs when memory is tight: gradient checkpointing of the training forward, and
an out-of-memory error that says which settings to lower.

Gradient checkpointing here is our own wrapper around each decoder layer, not Hugging Face's
(`gradient_checkpointing_enable` acts only in train mode, and the trainer keeps the model in
eval mode so sampling, scoring and training see one function). A layer's activations are
dropped after the forward and recomputed in the backward, under the adapter state (mode,
zones) the forward saw, so routing is exactly what the plain forward does. It acts only on
grad-enabled forwards without a KV cache: the cached shared-prompt forward appends to its
cache in the layer, which a recompute would do twice, so a checkpointed run trains with the
plain forward (`optimise(..., share_prompt=False)`). Gate feature forwards (no grad, or
routeV's probe) are left alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

OOM_SETTINGS = ("micro_batch", "max_new_tokens", "group_size")


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks of a Hugging Face causal LM (model.model.layers)."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
        raise ValueError(f"gradient checkpointing needs a Hugging Face decoder with model.model.layers; "
                         f"{type(model).__name__} has none")
    return layers


@contextmanager
def _restored(ctl, snap: tuple) -> Iterator[None]:
    """Set the adapter control to the forward's state for the recompute, then put it back."""
    names = ("mode", "merged", "keep_rows", "route_rows")
    before = tuple(getattr(ctl, n) for n in names)
    for n, v in zip(names, snap):
        setattr(ctl, n, v)
    try:
        yield
    finally:
        for n, v in zip(names, before):
            setattr(ctl, n, v)


class GradientCheckpointing:
    """Checkpoint every decoder layer's grad-enabled forward. `enable()` / `disable()`, or a context."""

    def __init__(self, model: nn.Module, adapter) -> None:
        self.layers = decoder_layers(model)
        self.ctl = adapter._control
        self._originals: list | None = None
        self.recomputed = 0  # layer forwards recomputed in a backward (tests read it)

    def _wrap(self, layer: nn.Module):
        orig = layer.forward
        ctl = self.ctl

        def forward(*args, **kwargs):
            if not torch.is_grad_enabled() or ctl.probe is not None or ctl.capture is not None:
                return orig(*args, **kwargs)
            if kwargs.get("cache") is not None or kwargs.get("past_key_values") is not None or kwargs.get("use_cache"):
                raise RuntimeError("gradient checkpointing recomputes each layer in the backward, which would append "
                                   "to the KV cache twice; run the training forward plain "
                                   "(optimise(..., share_prompt=False)) when gradient_checkpointing is on")
            snap = (ctl.mode, ctl.merged, ctl.keep_rows, ctl.route_rows)

            def contexts():
                self.recomputed += 1
                return nullcontext(), _restored(ctl, snap)

            return checkpoint(orig, *args, use_reentrant=False, context_fn=contexts, **kwargs)

        return orig, forward

    def enable(self) -> GradientCheckpointing:
        if self._originals is not None:
            raise RuntimeError("gradient checkpointing is already enabled on this model")
        self._originals = []
        for layer in self.layers:
            orig, fwd = self._wrap(layer)
            self._originals.append(orig)
            layer.forward = fwd
        return self

    def disable(self) -> None:
        if self._originals is None:
            return
        for layer, _ in zip(self.layers, self._originals):
            del layer.forward  # back to the class's forward (the instance attribute shadowed it)
        self._originals = None

    def __enter__(self) -> GradientCheckpointing:
        return self.enable()

    def __exit__(self, *exc) -> None:
        self.disable()


def is_oom(exc: BaseException) -> bool:
    """A CUDA (or other accelerator) out-of-memory error."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def oom_message(cfg, where: str = "this step") -> str:
    """The settings to lower, with their current values and what each one scales."""
    cur = ", ".join(f"{k}={getattr(cfg, k)}" for k in OOM_SETTINGS)
    hint = "" if getattr(cfg, "gradient_checkpointing", True) else "; or set gradient_checkpointing=true"
    return (f"out of GPU memory in {where} ({cur}). Lower micro_batch (rows per forward/backward; 0 means the "
            "whole batch at once), max_new_tokens (the completion budget T) or group_size (rollouts per prompt), "
            f"e.g. --set micro_batch=2{hint}.")


class OutOfMemory(RuntimeError):
    """Raised in place of torch's OOM error, naming the settings to lower."""


@contextmanager
def oom_guard(cfg, where: str = "this step") -> Iterator[None]:
    """Re-raise an out-of-memory error as `OutOfMemory` naming micro_batch, max_new_tokens and
    group_size with their values. Other errors pass through untouched."""
    try:
        yield
    except Exception as exc:
        if not is_oom(exc):
            raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise OutOfMemory(oom_message(cfg, where)) from exc


__all__ = ["GradientCheckpointing", "OOM_SETTINGS", "OutOfMemory", "decoder_layers", "is_oom", "oom_guard",
           "oom_message"]
