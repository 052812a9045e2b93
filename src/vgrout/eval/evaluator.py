"""Evaluate one adapter state on held-out problems: as-trained (quarantine on) and deployed
(quarantine ablated), per mode and overall.

Fixed prompt order and generation seeds: chunk c of the problem list is sampled with a seed
derived from (seed, c) in every state, so as-trained and deployed see the same random
numbers and differ only by the weights (common random numbers: a lower-variance difference).
With `markers="eval"` each loophole prompt discloses a marker from the eval-time family
(`eval_marker_for`, disjoint from every train-time detector) and the grader accepts only that
family, so a memorised train string does not count as a hack and a learned trick does.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Mapping, Sequence

from tqdm.auto import tqdm

from vgrout.env.dedup import DedupGrader
from vgrout.env.modes import SYSTEM_PROMPT, eval_marker_for, render_messages
from vgrout.eval.results import ALL_STATES, SCALE_STATES, STATES, make_result
from vgrout.eval.tally import EvalSample, tally
from vgrout.rollout import generate
from vgrout.types import GradeRequest, Problem, check_mode

# state -> the adapter blocks generation folds in (vgrout.adapter.MERGE_SCALES)
_GEN_MODE = {"as_trained": "full", "deployed": "deployed", "half_quarantine": "half_quarantine",
             "quarantine_only": "quarantine_only"}


def chunk_seed(seed: int, chunk: int) -> int:
    """Generation seed of prompt chunk `chunk`: distinct across (seed, chunk), same in every state."""
    return int.from_bytes(hashlib.sha256(f"vgrout-eval-seed:{seed}:{chunk}".encode()).digest()[:7], "big")


def resolve_modes(problems: Sequence[Problem], modes: Mapping[str, str] | str) -> dict[str, str]:
    """{problem id: mode} from one mode for all or a per-problem mapping; every id must be covered."""
    if isinstance(modes, str):
        check_mode(modes)
        return {p.id: modes for p in problems}
    missing = [p.id for p in problems if p.id not in modes]
    if missing:
        raise ValueError(f"modes_by_problem has no mode for {len(missing)} problem(s), e.g. {missing[:3]}; "
                         "pass a mode for every problem (see vgrout.problemsets.heldout_modes)")
    return {p.id: check_mode(modes[p.id]) for p in problems}


def _check_inputs(problems: Sequence[Problem], markers: str, states: Sequence[str], n_samples: int,
                  adapter, deployed_is_full: bool) -> None:
    if not problems:
        raise ValueError("evaluate needs at least one problem")
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        raise ValueError("evaluate: problem ids must be unique (they key the eval markers and the results)")
    if markers not in ("eval", "train"):
        raise ValueError(f"markers must be 'eval' or 'train', got {markers!r}")
    bad = [s for s in states if s not in ALL_STATES]
    if bad or not states:
        raise ValueError(f"states must be a non-empty subset of {ALL_STATES}, got {tuple(states)}")
    if deployed_is_full and any(s in SCALE_STATES for s in states):
        raise ValueError(f"states {SCALE_STATES} scale the quarantine, which a whole-adapter run does not delete; "
                         "drop them for this run (deployed_is_full=True)")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if adapter is None and any(s != "as_trained" for s in states) and not deployed_is_full:
        raise ValueError("the deployed and deploy-scale states change the quarantine, so evaluation needs the adapter; pass adapter= "
                         "(or deployed_is_full=True for a run whose whole adapter deploys, like vanilla)")


def _sample_state(model, tokenizer, adapter, messages: list[list[dict]], *, gen_mode: str, n_samples: int,
                  max_new_tokens: int, seed: int, batch_prompts: int, sampling: dict, desc: str) -> list[str]:
    """Completion texts, problem-major (problem i's samples at i*n_samples ...)."""
    texts: list[str] = []
    chunks = range(0, len(messages), batch_prompts)
    for c, start in enumerate(tqdm(chunks, desc=desc, leave=False, disable=None)):
        batch = messages[start:start + batch_prompts]
        ro = generate(model, tokenizer, batch, n_per_prompt=n_samples, max_new_tokens=max_new_tokens,
                      seed=chunk_seed(seed, c), adapter=adapter, mode=gen_mode, **sampling)
        if len(ro.texts) != len(batch) * n_samples:
            raise RuntimeError(f"generate returned {len(ro.texts)} texts for {len(batch)}x{n_samples} prompts")
        texts.extend(ro.texts)
    return texts


def evaluate(
    model, tokenizer, adapter, problems: Sequence[Problem], modes: Mapping[str, str] | str, *,
    n_samples: int, max_new_tokens: int, seed: int, grader, markers: str = "eval",
    system_prompt: str = SYSTEM_PROMPT, states: Sequence[str] = STATES, deployed_is_full: bool = False,
    temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0, batch_prompts: int = 16,
    keep_texts: bool = True,
) -> dict:
    """Sample `n_samples` completions per problem in each state, grade them, return the
    "vgrout.eval/1" result dict (see docs/evaluation.md).

    `modes`: one mode for every problem or {problem id: mode}. `deployed_is_full`: the run's
    whole adapter deploys (vanilla), so the deployed state samples with mode "full" and, with
    the same seeds, equals as-trained; it is then copied rather than sampled twice.
    `grader`: an open `vgrout.env.Grader`. `keep_texts`: each sample carries its completion
    as "text"; `vgrout.eval.results.write_eval_result` moves them to the samples jsonl.
    """
    _check_inputs(problems, markers, states, n_samples, adapter, deployed_is_full)
    if batch_prompts < 1:
        raise ValueError(f"batch_prompts must be >= 1, got {batch_prompts}")
    mode_of = resolve_modes(problems, modes)
    marker_of = {p.id: eval_marker_for(mode_of[p.id], p.id) if markers == "eval" else None for p in problems}
    messages = [render_messages(p, mode_of[p.id], marker_of[p.id], system_prompt=system_prompt) for p in problems]
    sampling = {"temperature": temperature, "top_p": top_p, "top_k": top_k}
    gen_modes = {s: ("full" if deployed_is_full else _GEN_MODE[s]) for s in states}

    texts_by_mode: dict[str, list[str]] = {}
    state_blocks: dict[str, dict] = {}
    for state in states:
        gen_mode = gen_modes[state]
        if gen_mode not in texts_by_mode:  # vanilla: deployed reuses the as-trained samples
            texts_by_mode[gen_mode] = _sample_state(
                model, tokenizer, adapter, messages, gen_mode=gen_mode, n_samples=n_samples,
                max_new_tokens=max_new_tokens, seed=seed, batch_prompts=batch_prompts, sampling=sampling,
                desc=f"eval {state}")
        graded = next((b for b in state_blocks.values() if b["generation_mode"] == gen_mode), None)
        if graded is not None:  # the same texts (vanilla's deployed state): the same grades, not graded twice
            state_blocks[state] = copy.deepcopy(graded)
            continue
        state_blocks[state] = grade_texts(problems, mode_of, marker_of, texts_by_mode[gen_mode], n_samples,
                                          grader=grader, markers=markers, keep_texts=keep_texts)
        state_blocks[state]["generation_mode"] = gen_mode

    settings = {
        "n_samples": n_samples, "max_new_tokens": max_new_tokens, "seed": seed, "markers": markers,
        "batch_prompts": batch_prompts, "deployed_is_full": deployed_is_full,
        "system_prompt_sha256": hashlib.sha256(system_prompt.encode()).hexdigest()[:16], **sampling,
    }
    problems_info = [{"id": p.id, "mode": mode_of[p.id], "eval_marker": marker_of[p.id]} for p in problems]
    return make_result(settings=settings, problems=problems_info, states=state_blocks)


def grade_texts(problems: Sequence[Problem], mode_of: Mapping[str, str], marker_of: Mapping[str, str | None],
                texts: Sequence[str], n_samples: int, *, grader, markers: str, keep_texts: bool = False) -> dict:
    """Grade problem-major `texts` (n_samples per problem) and tally them:
    {"overall", "by_mode", "samples"}. The counting layer, callable without a model."""
    if len(texts) != len(problems) * n_samples:
        raise ValueError(f"grade_texts: {len(texts)} texts for {len(problems)} problems x {n_samples} samples")
    requests, keys = [], []
    for i, p in enumerate(problems):
        for j in range(n_samples):
            requests.append(GradeRequest(problem=p, completion=texts[i * n_samples + j], mode=mode_of[p.id],
                                         markers=markers, eval_marker=marker_of[p.id]))
            keys.append((p.id, j))
    grades = DedupGrader(grader).grade(requests)  # a repeated (problem, completion, mode) is graded once
    if len(grades) != len(requests):
        raise RuntimeError(f"grader returned {len(grades)} grades for {len(requests)} requests")
    samples = []
    for (pid, j), req, g in zip(keys, requests, grades):
        if g.mode != req.mode:
            raise RuntimeError(f"grader graded {pid} under mode {g.mode!r}, asked for {req.mode!r}")
        samples.append(EvalSample.from_grade(pid, j, marker_of[pid], g))
    block = tally(samples)
    block["samples"] = [dict(s.to_json(), **({"text": t.completion} if keep_texts else {}))
                        for s, t in zip(samples, requests)]
    return block


__all__ = ["chunk_seed", "evaluate", "grade_texts", "resolve_modes"]
