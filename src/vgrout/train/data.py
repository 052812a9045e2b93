"""What a step trains on: problems, their mode partition, the step's prompts, and teacher rows.

Prompt order is a fresh seeded permutation of the problems each epoch, so a resumed run draws
exactly the prompts the uninterrupted run would, with no RNG state to carry.

Teacher pool: cached completions that carry the log-probs of the policy that sampled them.
Teacher rows are off-policy. Their importance ratio must compare the current policy with the
policy that produced them, so each row stores its behaviour log-probs and the step uses them
as logp_old (rho = pi_theta / pi_behaviour, PPO-clipped like every other row). Recomputing
logp_old from the current model (rho = 1) would silently drop that correction.

File format (jsonl, one completion per line):

    {"problem_id": "toy-add_k-0012", "mode": "run_tests",
     "completion_ids": [17, 203, ...], "logps": [-0.41, -2.3, ...], "source": "free text"}

`logps[t]` is log pi_b(completion_ids[t] | prompt, completion_ids[:t]) where the prompt is the
problem rendered under `mode` with the run's system prompt and the tokenizer's chat template
(exactly how the trainer renders it), and pi_b is the sampling model's untempered softmax
(the distribution the trainer's log-probs measure). A row is used only on a prompt with the
same problem id and mode. Teacher rows are graded live like every rollout.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from vgrout.env.modes import SYSTEM_PROMPT, render_messages
from vgrout.io import write_jsonl_atomic
from vgrout.rollout import Rollouts, generate, left_pad, per_token_logps, render_prompt_text, right_pad
from vgrout.rollout.batch import chunks
from vgrout.rollout.tokens import encode_text
from vgrout.types import Problem, check_mode

# ---- problems and prompts ------------------------------------------------------------------

@dataclass(frozen=True)
class PromptSpec:
    """One prompt group of a step: the problem, the grading mode, and the rendered chat messages."""

    problem: Problem
    mode: str  # the mode it is graded under (gt_only for the unhackable share)
    messages: tuple[dict, ...]
    hackable: bool  # False: shown hint-free and graded gt_only


def seed_for(*parts: object) -> int:
    """A 63-bit seed from any parts (stable across processes, unlike hash())."""
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big") >> 1


def load_problems(source: str, toy_world_name: str | None, n_problems: int, seed: int,
                  difficulties: tuple[str, ...] = ()) -> list[Problem]:
    """`toy` (the toy world's train split), a LeetCode source (`vgrout.env.problems.load_problem_source`:
    leetcode-train, leetcode-test) or a jsonl path; only the given difficulty labels (empty: all);
    seeded shuffle, then the first n_problems (0: all)."""
    if source == "toy":
        if toy_world_name is None:
            raise ValueError("problems='toy' needs a toy model (model='toy:NAME'); set problems to a jsonl path instead")
        from vgrout.toy import toy_world

        problems = toy_world(toy_world_name, progress=False).problems("train")
    else:  # leetcode-train (HF, cached), leetcode-test / leetcode ($VGROUT_LEETCODE_JSONL) or a jsonl path
        from vgrout.env.problems import load_problem_source

        problems = load_problem_source(source)
    if not problems:
        raise ValueError(f"no training problems found in {source!r}")
    if difficulties:
        have = sorted({p.difficulty for p in problems})
        problems = [p for p in problems if p.difficulty in difficulties]
        if not problems:
            raise ValueError(f"no training problems in {source!r} have difficulty {', '.join(difficulties)} "
                             f"(it has: {', '.join(have)}); set difficulties to some of those, or empty for all")
    problems = sorted(problems, key=lambda p: p.id)
    random.Random(seed_for("problems", seed)).shuffle(problems)
    return problems[:n_problems] if n_problems else problems


def partition_modes(problems: list[Problem], modes: tuple[str, ...], seed: int) -> dict[str, str]:
    """Problem id -> mode: round-robin over a seeded order, so each mode gets an equal share."""
    order = list(range(len(problems)))
    random.Random(seed_for("modes", seed)).shuffle(order)
    return {problems[i].id: modes[k % len(modes)] for k, i in enumerate(order)}


def unhackable_slots(step: int, prompts_per_step: int, frac: float) -> set[int]:
    """Slots shown hint-free this step: round(P * frac) of them, rotating with the step."""
    k = round(prompts_per_step * frac)
    return {(step * k + i) % prompts_per_step for i in range(k)}


def sample_prompts(problems: list[Problem], mode_of: dict[str, str], step: int, prompts_per_step: int, seed: int,
                   unhackable_frac: float, system_prompt: str) -> list[PromptSpec]:
    """The P prompts of `step`."""
    n = len(problems)
    out = []
    hint_free = unhackable_slots(step, prompts_per_step, unhackable_frac)
    for j in range(prompts_per_step):
        idx = step * prompts_per_step + j
        epoch = idx // n
        perm = list(range(n))
        random.Random(seed_for("order", seed, epoch)).shuffle(perm)
        p = problems[perm[idx % n]]
        mode = "gt_only" if j in hint_free else mode_of[p.id]
        msgs = render_messages(p, mode, system_prompt=system_prompt or SYSTEM_PROMPT)
        out.append(PromptSpec(problem=p, mode=mode, messages=tuple(msgs), hackable=mode != "gt_only"))
    return out


# ---- the teacher pool ----------------------------------------------------------------------

@dataclass(frozen=True)
class TeacherRow:
    """One cached completion and its behaviour log-probs (one per completion token)."""

    problem_id: str
    mode: str
    completion_ids: tuple[int, ...]
    logps: tuple[float, ...]
    source: str = ""


def _parse(obj: object, where: str) -> TeacherRow:
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a JSON object")
    missing = [k for k in ("problem_id", "mode", "completion_ids", "logps") if k not in obj]
    if missing:
        raise ValueError(f"{where}: missing field(s) {missing}; see vgrout.train.data for the format")
    ids, lps = list(obj["completion_ids"]), [float(x) for x in obj["logps"]]
    if not ids or len(ids) != len(lps):
        raise ValueError(f"{where}: completion_ids ({len(ids)}) and logps ({len(lps)}) must be non-empty and the same length")
    if not all(math.isfinite(x) and x <= 0.0 for x in lps):
        raise ValueError(f"{where}: logps must be finite log-probabilities (<= 0)")
    return TeacherRow(problem_id=str(obj["problem_id"]), mode=check_mode(obj["mode"]),
                      completion_ids=tuple(int(i) for i in ids), logps=tuple(lps), source=str(obj.get("source", "")))


def load_teacher_pool(path: str | os.PathLike) -> dict[tuple[str, str], list[TeacherRow]]:
    """(problem id, mode) -> rows, in file order. Raises on a malformed line or an empty file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"teacher_pool {path} does not exist; write one with vgrout.train.data.write_teacher_pool")
    pool: dict[tuple[str, str], list[TeacherRow]] = {}
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{i}: not valid JSON ({exc.msg})") from exc
                row = _parse(obj, f"{path}:{i}")
                pool.setdefault((row.problem_id, row.mode), []).append(row)
    if not pool:
        raise ValueError(f"teacher_pool {path} has no rows")
    return pool


def write_teacher_pool(rows: Sequence[TeacherRow], path: str | os.PathLike) -> Path:
    """Write rows as jsonl, atomically."""
    return write_jsonl_atomic(path, ({"problem_id": r.problem_id, "mode": r.mode, "completion_ids": list(r.completion_ids),
                                      "logps": list(r.logps), "source": r.source} for r in rows))


def pick_teacher_rows(pool: dict[tuple[str, str], list[TeacherRow]], specs: Sequence[PromptSpec], k: int, seed: int,
                      step: int) -> list[list[TeacherRow]]:
    """k rows per covered prompt ([] for an uncovered one): without replacement when the pool
    has k, else with replacement. A pure function of (seed, step, slot), so resume is exact."""
    out = []
    for j, s in enumerate(specs):
        rows = pool.get((s.problem.id, s.mode), [])
        if not rows:
            out.append([])
            continue
        rng = random.Random(seed_for("teacher", seed, step, j))
        out.append(rng.sample(rows, k) if len(rows) >= k else [rng.choice(rows) for _ in range(k)])
    return out


def teacher_rollouts(tokenizer, model, specs: Sequence[PromptSpec], picks: list[list[TeacherRow]],
                     pad_id: int) -> Rollouts:
    """The picked rows as a Rollouts batch on their live prompts (prompt_index = spec index)."""
    device = next(model.parameters()).device
    prompts, comps, lps, pidx = [], [], [], []
    for j, rows in enumerate(picks):
        if rows:
            ids = encode_text(tokenizer, render_prompt_text(tokenizer, list(specs[j].messages)))
        for row in rows:
            prompts.append(ids)
            comps.append(list(row.completion_ids))
            lps.append(list(row.logps))
            pidx.append(j)
    if not comps:
        raise ValueError("no teacher rows picked")
    p_ids, p_mask = left_pad(prompts, pad_id)
    c_ids, c_mask = right_pad(comps, pad_id)
    beh = torch.zeros(c_ids.shape, dtype=torch.float32)
    for i, lp in enumerate(lps):
        beh[i, : len(lp)] = torch.tensor(lp, dtype=torch.float32)
    texts = tokenizer.batch_decode(comps, skip_special_tokens=True)
    n = len(comps)
    return Rollouts(prompt_ids=p_ids.to(device), prompt_mask=p_mask.to(device), completion_ids=c_ids.to(device),
                    completion_mask=c_mask.to(device), texts=texts, prompt_index=torch.tensor(pidx, dtype=torch.long),
                    deployed=torch.zeros(n, dtype=torch.bool), behaviour_logps=beh.to(device))


@torch.no_grad()
def sample_teacher_pool(model, tokenizer, specs: Sequence[PromptSpec], n_per_prompt: int, max_new_tokens: int,
                        seed: int, *, adapter=None, mode: str = "full", temperature: float = 1.0,
                        micro_batch: int = 0, source: str = "") -> list[TeacherRow]:
    """Sample a pool from a model and record each completion's behaviour log-probs under it.

    The log-probs are scored by a separate forward of the same weights (quarantine ablated
    when mode="deployed"), the same computation the trainer's logp uses.
    """
    r = generate(model, tokenizer, [list(s.messages) for s in specs], n_per_prompt=n_per_prompt,
                 max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, adapter=adapter, mode=mode)
    T = r.completion_ids.shape[1]
    ctx = adapter.mode(mode) if adapter is not None else _Null()
    with ctx:
        lp = torch.cat([per_token_logps(model, r.input_ids[sl], r.attention_mask[sl], T)
                        for sl in chunks(len(r), micro_batch)])  # (N, T)
    rows = []
    for i in range(len(r)):
        n_tok = int(r.completion_mask[i].sum())
        s = specs[int(r.prompt_index[i])]
        rows.append(TeacherRow(problem_id=s.problem.id, mode=s.mode,
                               completion_ids=tuple(r.completion_ids[i, :n_tok].tolist()),
                               logps=tuple(min(float(x), 0.0) for x in lp[i, :n_tok].tolist()), source=source))
    return rows


class _Null:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


__all__ = ["load_problems", "load_teacher_pool", "partition_modes", "pick_teacher_rows", "PromptSpec",
           "sample_prompts", "sample_teacher_pool", "seed_for", "teacher_rollouts", "TeacherRow", "unhackable_slots",
           "write_teacher_pool"]
