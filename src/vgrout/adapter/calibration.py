"""Hack-clean input deltas at every target Linear, from authored pairs (for pair-based inits).

For each pair and side (hack, clean) we run one forward of prompt + completion, exactly as a
rollout is laid out: the prompt rendered by the rollouts' own `render_prompt_text` (chat
template, generation prompt, thinking disabled on templates that support it), then the
completion tokens. We mean-pool each target Linear's input over the completion positions. The delta is
pooled_hack - pooled_clean per pair: (P, d_in) per module.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vgrout.adapter.attach import find_targets
from vgrout.chat import encode_text, render_prompt_text
from vgrout.types import HackPair


def pair_token_ids(tokenizer, messages: Sequence[dict], completion: str) -> tuple[list[int], int]:
    """Prompt ids + completion ids, and the prompt length (the first completion position).

    Prompt and completion are tokenised separately and concatenated so the boundary is exact;
    the prompt is the very ids a rollout of these messages starts from (same renderer), so the
    signed axis of scorda/corda comes from the layout training sees.
    """
    prompt_ids = encode_text(tokenizer, render_prompt_text(tokenizer, list(messages)))
    completion_ids = encode_text(tokenizer, completion)
    if not completion_ids:
        raise ValueError(f"completion {completion[:40]!r} tokenises to nothing")
    return list(prompt_ids) + list(completion_ids), len(prompt_ids)


@torch.no_grad()
def contrastive_input_deltas(model: nn.Module, tokenizer, pairs: Sequence[HackPair],
                             targets: Sequence[str]) -> dict[str, Tensor]:
    """{module name: (P, d_in) fp32 CPU} of mean-pooled input(hack) - input(clean) per pair.

    Run on the model before `attach` (the base model: the init reads what W sees).
    """
    if not pairs:
        raise ValueError("contrastive_input_deltas needs at least one authored pair")
    linears = find_targets(model, tuple(targets))
    pooled: dict[str, Tensor] = {}
    current = {"start": 0}  # first completion position of the sequence being run

    def hook_for(name: str):
        def hook(_mod, args):
            x = args[0]  # (1, L, d_in)
            pooled[name] = x[0, current["start"]:].float().mean(0).cpu()  # (d_in,)
        return hook

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    handles = [mod.register_forward_pre_hook(hook_for(name)) for name, mod in linears.items()]
    sides: dict[str, list[list[Tensor]]] = {name: [[], []] for name in linears}
    try:
        for pair in pairs:
            for s, text in enumerate((pair.hack, pair.clean)):
                ids, current["start"] = pair_token_ids(tokenizer, pair.messages, text)
                pooled.clear()
                model(input_ids=torch.tensor([ids], device=device), logits_to_keep=1)
                for name in linears:
                    sides[name][s].append(pooled[name])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {name: torch.stack(h) - torch.stack(c) for name, (h, c) in sides.items()}  # (P, d_in)
