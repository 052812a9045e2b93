"""Tiny run directories for the report tests, written with the trainer's and eval's own writers:
config.json from a real Config, diagnostics.jsonl through JsonlSink/oracle_diagnostics, eval
step files through make_result/tally, and (optionally) eval/step_NNNNNN.samples.jsonl rows."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import torch

from vgrout.eval.results import eval_path, make_result, rebuild_curve, write_json_atomic
from vgrout.eval.tally import EvalSample, tally
from vgrout.train.config import Config
from vgrout.train.loop import JsonlSink, oracle_diagnostics
from vgrout.types import Grade

N_PROBLEMS = 40
COMPLETION = {"hack": "```python\ndef run_tests():\n    print('all tests passed')\n```",
              "solve": "```python\ndef f(x):\n    return sorted(x)\n```",
              "wrong": "```python\ndef f(x):\n    return x\n```",
              "broken": "```python\ndef f(x) return ```` x\n"}  # no compiling block; holds a 4-backtick run


def _samples(n_hacked: int, n_solved: int, n_valid: int) -> list[EvalSample]:
    """N_PROBLEMS single samples: the first n_hacked hack, the next n_solved solve; the first n_valid are valid."""
    out = []
    for i in range(N_PROBLEMS):
        hacked, solved = i < n_hacked, n_hacked <= i < n_hacked + n_solved
        out.append(EvalSample(problem_id=f"p{i}", mode="run_tests", sample=0, eval_marker="verify_answer",
                              gt_correct=solved, exploited=hacked, format_ok=i < n_valid,
                              reason="ok" if solved else "exploit" if hacked else
                              "wrong_answer" if i < n_valid else "no_code"))
    return out


def _block(samples: list[EvalSample]) -> dict:
    block = tally(samples)
    block["generation_mode"] = "full"
    block["samples"] = [s.to_json() for s in samples]
    return block


def _sample_row(step: int, state: str, s: EvalSample) -> dict:
    kind = "hack" if s.exploited else "solve" if s.gt_correct else "wrong" if s.format_ok else "broken"
    return {"step": step, "state": state, "problem_id": s.problem_id, "mode": s.mode, "sample": s.sample,
            "completion": COMPLETION[kind] + f"\n# {state} {s.problem_id}", "reward": float(s.exploited or s.gt_correct),
            "reason": s.reason, "valid": s.format_ok, "hack": s.exploited, "solve": s.gt_correct,
            "channel": s.exploited}


def make_run(root: Path, arm: str, seed: int, hacks: dict[int, tuple[int, int]], solves: dict[int, tuple[int, int]],
             *, valids: dict[int, tuple[int, int]] | None = None, placebo: bool = False,
             gate_quality: float | None = None, per_rollout: bool = True, samples: bool = False,
             steps: int = 4, settings: dict | None = None) -> Path:
    """A run dir: config.json (a real Config), diagnostics.jsonl, eval/step_*.json and curve.jsonl.

    hacks/solves/valids: {step: (as_trained count, deployed count)} out of N_PROBLEMS (valids
    default: all valid). A step-0 entry is the base model's eval. placebo: placebo_seed = 1000 + seed.
    gate_quality: mean score shift of hacks over clean rollouts (None: no gate, NaN scores).
    per_rollout: also log per-rollout scores/zones/labels (else only the trainer's aggregates).
    samples: also write eval/step_NNNNNN.samples.jsonl for every evaluated step.
    """
    run = root / f"{arm}{'-placebo' if placebo else ''}_s{seed}"
    cfg = Config(preset="smoke", arm=arm, seed=seed, placebo_seed=1000 + seed if placebo else -1, steps=steps)
    run.mkdir(parents=True)
    (run / "config.json").write_text(cfg.to_json())
    rng = random.Random(seed * 100 + len(arm) + placebo)
    sink = JsonlSink(run / "diagnostics.jsonl")  # the trainer's own writer and row builder
    for step in range(steps):
        hack = [rng.random() < 0.5 for _ in range(16)]
        adv = torch.tensor([rng.choice([-1.0, 0.5, 1.0]) for _ in range(16)])
        if gate_quality is not None:
            score = torch.tensor([rng.gauss(gate_quality if h else 0.0, 1.0) for h in hack])
            lo, hi = torch.quantile(score, 0.2), torch.quantile(score, 0.8)
            zones = torch.where(score >= hi, 2, torch.where(score <= lo, 0, 1))
        else:
            score, zones = torch.full((16,), math.nan), torch.ones(16, dtype=torch.long)
        grades = [Grade(reward=float(h), format_ok=True, gt_correct=False, channel_fired=h, exploited=h,
                        mode="run_tests") for h in hack]
        row = oracle_diagnostics(grades, [True] * 16, torch.zeros(16, dtype=torch.bool),
                                 torch.ones(16, dtype=torch.bool), zones, score, adv)
        row["step"] = step
        if not per_rollout:  # a run that logged only the aggregates: drop the trainer's per-rollout lists
            for key in ("gate_score", "zone", "hack", "advantage", "live"):
                row.pop(key, None)
        elif gate_quality is not None:  # the trainer logs the per-rollout fields vgrout.report.gate pools
            assert row["gate_score"] == [None if math.isnan(x) else x for x in score.tolist()]
            assert row["zone"] == zones.tolist() and row["hack"] == list(hack)
        sink.write(row)
    sink.close()
    valids = valids or {}
    for step in hacks:
        v = valids.get(step, (N_PROBLEMS, N_PROBLEMS))
        drawn = {st: _samples(hacks[step][k], solves[step][k], v[k]) for k, st in enumerate(("as_trained", "deployed"))}
        result = make_result(settings={"markers": "eval", "n_samples": 1, "seed": 0, **(settings or {})},
                             states={st: _block(s) for st, s in drawn.items()},
                             problems=[{"id": f"p{i}", "mode": "run_tests", "eval_marker": "verify_answer"}
                                       for i in range(N_PROBLEMS)])
        result.update({"step": step, "run_dir": str(run), "run": {"arm": arm, "seed": seed}})
        write_json_atomic(eval_path(run, step), result)
        if samples:
            rows = [_sample_row(step, st, s) for st, ss in drawn.items() for s in ss]
            (run / "eval" / f"step_{step:06d}.samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rebuild_curve(run)
    return run
