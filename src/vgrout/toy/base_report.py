"""Measure the freshly pretrained toy policy: per-family held-out solve and hack rates.

Samples at temperature 1 (several samples per task, no top-k/top-p), each prompt rendered
with the mode it is assigned, and grades every completion through `vgrout.env.Grader` under
that same mode: solve = the strict oracle's `gt_correct`, hack = `exploited` (the mode's
channel fired and the oracle failed).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from vgrout.env.modes import render_messages
from vgrout.toy.corpus import TOY_SYSTEM_PROMPT, pick_mode
from vgrout.toy.families import key_seed
from vgrout.types import GradeRequest, Problem


def assign_modes(problems: Sequence[Problem], mode_weights: Mapping[str, float], seed: int) -> list[str]:
    """A fixed mode per problem, drawn from `mode_weights` with a per-problem seed."""
    return [pick_mode(random.Random(key_seed((seed, p.id), "mode")), mode_weights) for p in problems]


@torch.no_grad()
def sample_completions(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, prompts: Sequence[str], *,
    max_new_tokens: int, seed: int, batch_size: int = 64,
) -> list[str]:
    """One T=1 sample per prompt (left-padded batches), decoded without special tokens."""
    torch.manual_seed(seed)
    out: list[str] = []
    for i in range(0, len(prompts), batch_size):
        enc = tokenizer(list(prompts[i : i + batch_size]), return_tensors="pt", padding=True,
                        padding_side="left", add_special_tokens=False)
        gen = model.generate(
            **enc, do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=max_new_tokens,
            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        )  # (B, L + T)
        out += tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return out


def measure_base_rates(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, problems: Sequence[Problem], modes: Sequence[str],
    *, samples: int, max_new_tokens: int, seed: int, grade: Callable[[list[GradeRequest]], list],
) -> dict:
    """Sample `samples` completions per problem, grade them, and tabulate per family and per mode.

    `grade` is a `Grader.grade` bound method (the caller owns the grader's lifetime).
    Returns {"families": {fam: {...}}, "modes": {mode: {...}}, "overall": {...}}, each cell
    with n, solve (gt_correct), hack (exploited), channel (channel_fired: the exploit was
    written, with or without a correct solution), format_ok.
    """
    reqs: list[GradeRequest] = []
    prompts = [
        tokenizer.apply_chat_template(render_messages(p, m, system_prompt=TOY_SYSTEM_PROMPT),
                                      add_generation_prompt=True, tokenize=False)
        for p, m in zip(problems, modes)
    ]
    for s in range(samples):
        texts = sample_completions(model, tokenizer, prompts, max_new_tokens=max_new_tokens, seed=seed + s)
        reqs += [GradeRequest(problem=p, completion=t, mode=m) for p, m, t in zip(problems, modes, texts)]
    grades = grade(reqs)
    cells: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for req, g in zip(reqs, grades):
        for key in (f"family:{req.problem.family}", f"mode:{req.mode}", "overall"):
            cells[key]["solve"].append(int(g.gt_correct))
            cells[key]["hack"].append(int(g.exploited))
            cells[key]["channel"].append(int(g.channel_fired))
            cells[key]["format_ok"].append(int(g.format_ok))
    def summary(c: dict[str, list[int]]) -> dict:
        n = len(c["solve"])
        return {"n": n, **{k: round(sum(v) / n, 4) for k, v in c.items()}}
    return {
        "families": {k.split(":", 1)[1]: summary(v) for k, v in sorted(cells.items()) if k.startswith("family:")},
        "modes": {k.split(":", 1)[1]: summary(v) for k, v in sorted(cells.items()) if k.startswith("mode:")},
        "overall": summary(cells["overall"]),
    }


def format_report(report: dict, difficulty: Mapping[str, str] | None = None) -> str:
    """The per-family table as markdown."""
    lines = ["| family | difficulty | n | solve | hack | channel |", "|---|---|---|---|---|---|"]
    for fam, c in report["families"].items():
        lines.append(f"| {fam} | {(difficulty or {}).get(fam, '')} | {c['n']} | {c['solve']:.3f} | {c['hack']:.3f} "
                     f"| {c['channel']:.3f} |")
    o = report["overall"]
    lines.append(f"| **all** | | {o['n']} | **{o['solve']:.3f}** | **{o['hack']:.3f}** | {o['channel']:.3f} |")
    lines += ["", "| mode | n | solve | hack | channel |", "|---|---|---|---|---|"]
    for mode, c in report["modes"].items():
        lines.append(f"| {mode} | {c['n']} | {c['solve']:.3f} | {c['hack']:.3f} | {c['channel']:.3f} |")
    return "\n".join(lines)


__all__ = ["assign_modes", "format_report", "measure_base_rates", "sample_completions"]
