"""Measure the freshly pretrained toy policy: per-family held-out solve and hack rates.

Samples at temperature 1 (several samples per task, no top-k/top-p), each prompt rendered
with the mode it is assigned, and grades every completion through `vgrout.env.Grader` under
that same mode: solve = the strict oracle's `gt_correct`, hack = `exploited` (the mode's
channel fired and the oracle failed).

Two views: the mode mixture (each task under one mode drawn from the corpus mix, what the
regime bars quote) and per mode (every task under every loophole mode, with the training
hint's names and, for the named modes, with the eval-time names).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from vgrout.env.modes import EVAL_MARKERS, eval_marker_for, render_messages
from vgrout.toy.corpus import TOY_SYSTEM_PROMPT, pick_mode
from vgrout.toy.families import key_seed
from vgrout.types import LOOPHOLE_MODES, GradeRequest, Problem


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
    markers: str = "train",
) -> dict:
    """Sample `samples` completions per (problem, mode) row, grade them, and tabulate per family
    and per mode.

    `grade` is a `Grader.grade` bound method (the caller owns the grader's lifetime).
    `markers="eval"`: each named-mode prompt discloses the problem's eval-time name
    (`eval_marker_for`, as `vgrout.eval` does) and is graded against that family.
    Returns {"families": {fam: {...}}, "modes": {mode: {...}}, "overall": {...}}, each cell
    with n, solve (gt_correct), hack (exploited), channel (channel_fired: the exploit was
    written, with or without a correct solution), format_ok.
    """
    if markers not in ("train", "eval"):
        raise ValueError(f"markers must be 'train' or 'eval', got {markers!r}")
    reqs: list[GradeRequest] = []
    names = [eval_marker_for(m, p.id) if markers == "eval" else None for p, m in zip(problems, modes)]
    prompts = [
        tokenizer.apply_chat_template(render_messages(p, m, name, system_prompt=TOY_SYSTEM_PROMPT),
                                      add_generation_prompt=True, tokenize=False)
        for p, m, name in zip(problems, modes, names)
    ]
    for s in range(samples):
        texts = sample_completions(model, tokenizer, prompts, max_new_tokens=max_new_tokens, seed=seed + s)
        reqs += [GradeRequest(problem=p, completion=t, mode=m, markers=markers, eval_marker=name)
                 for p, m, name, t in zip(problems, modes, names, texts)]
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


def measure_per_mode(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, problems: Sequence[Problem], *,
    samples: int, max_new_tokens: int, seed: int, grade: Callable[[list[GradeRequest]], list],
) -> dict:
    """Every problem under every loophole mode: {"train": {mode: cell}, "eval": {mode: cell}}.

    "train" renders the training hint's names; "eval" only the modes with an eval-time family
    (eq_override and exit_code disclose no name, so their eval prompt is the train one).
    """
    out: dict = {}
    for markers, modes in (("train", LOOPHOLE_MODES), ("eval", tuple(m for m in LOOPHOLE_MODES if m in EVAL_MARKERS))):
        rows = [(p, m) for m in modes for p in problems]
        rep = measure_base_rates(model, tokenizer, [p for p, _ in rows], [m for _, m in rows], samples=samples,
                                 max_new_tokens=max_new_tokens, seed=seed, grade=grade, markers=markers)
        out[markers] = rep["modes"]
    return out


def format_per_mode(per_mode: dict) -> str:
    """Per-mode table: hack / solve / channel with train names and with eval-time names."""
    lines = ["| mode | n | train names: solve | hack | channel | eval names: solve | hack | channel |",
             "|---|---|---|---|---|---|---|---|"]
    for mode, c in per_mode["train"].items():
        e = per_mode["eval"].get(mode)
        ev = f"{e['solve']:.3f} | {e['hack']:.3f} | {e['channel']:.3f}" if e else "(no name) | | "
        lines.append(f"| {mode} | {c['n']} | {c['solve']:.3f} | {c['hack']:.3f} | {c['channel']:.3f} | {ev} |")
    return "\n".join(lines)


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


__all__ = ["assign_modes", "format_per_mode", "format_report", "measure_base_rates", "measure_per_mode",
           "sample_completions"]
