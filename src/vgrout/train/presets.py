"""Presets: functions that return a Config. They set values, never add code paths."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from vgrout.eval.settings import EvalSettings
from vgrout.train.config import Config


def _toy_system_prompt() -> str:
    from vgrout.toy import TOY_SYSTEM_PROMPT

    return TOY_SYSTEM_PROMPT


def smoke() -> Config:
    """Seconds on one CPU core: the tiny toy world, 2 prompts x 4 rollouts, a few steps. For tests.

    Temperature 0.5: the tiny model writes a compiling fenced block (the format reward) in a few
    percent of its samples there, and in none at 1.0, where every group had zero reward variance
    and all 4 steps were skipped (tests/test_train_controls.py checks one real update)."""
    return Config(
        preset="smoke", model="toy:tiny", problems="toy", system_prompt=_toy_system_prompt(), steps=4,
        prompts_per_step=2, group_size=4, max_new_tokens=24, temperature=0.5, lr=3e-3, warmup_steps=0, adapter_r=2,
        buffer_size=64, half_life=16.0, gate_warmup=0, refresh_every=2, checkpoint_every=2, grader_workers=1,
        kl_beta=1e-3, weight_decay=0.1,
    )


def toy() -> Config:
    """The CPU toy world: minutes to a hacking curve on one core.

    Held-out eval every 50 steps on 64 problems with the training hints' marker names: the toy
    model learns the disclosed name as a string (with eval-time names its hack rate stays 0).
    """
    return Config(
        preset="toy", model="toy:default", problems="toy", system_prompt=_toy_system_prompt(), steps=300,
        prompts_per_step=6, group_size=8, max_new_tokens=32, lr=3e-3, warmup_steps=5, adapter_r=4,
        buffer_size=4096, half_life=96.0, refresh_every=5, checkpoint_every=50, grader_workers=2,
        kl_beta=0.0, weight_decay=0.0, unhackable_frac=0.0, eval=EvalSettings(every=50, n_problems=64, markers="train"),
    )


def demo() -> Config:
    """The toy world on the `vgrout demo` budget: tens of seconds per arm on one core, long
    enough for vanilla's deployed held-out hack rate to pass 0.8 (docs/training.md)."""
    return dataclasses.replace(
        toy(), preset="demo", steps=60, prompts_per_step=4, group_size=6, max_new_tokens=24, lr=5e-3, warmup_steps=2,
        checkpoint_every=0, eval=dataclasses.replace(toy().eval, every=20, n_problems=64),
        # refresh v_act every 10 steps, not 5: each refresh re-reads all 48 toy pairs (~0.75 s on
        # one core), the main cost of routeA over vanilla at this budget (docs/performance.md)
        refresh_every=10,
    )


def heldout_modes() -> Config:
    """The reference's load-bearing question on the toy world: train on all six loophole modes,
    build v_act from the pairs of two of them (`pair_modes`, the "seen" modes), and read deployed
    hack per mode, seen vs held out (the other four). Issue 11's regime: lr 2e-3, half the
    prompts unhackable, 300 steps; evaluation on training marker names (the toy model cannot
    copy an unseen name, docs/toy.md)."""
    return dataclasses.replace(
        toy(), preset="heldout-modes",
        modes=("run_tests", "eq_override", "exit_code", "stdout_marker", "sentinel", "file_marker"),
        pair_modes=("run_tests", "sentinel"), steps=300, lr=2e-3, unhackable_frac=0.5,
        eval=dataclasses.replace(toy().eval, every=100, modes=(), n_problems=0, samples=4, markers="train"),
    )


def leetcode_4b() -> Config:
    """Qwen3-4B on a GPU: the reference's fast-run numbers (8 x 8, 512 new tokens, lr 7e-5, 40 steps).

    Trains on the LeetCode train split (newfacade/LeetCodeDataset, medium + hard, verified, cached
    under $VGROUT_CACHE; `--set problems=PATH` for a local jsonl) and evaluates on the test split
    ($VGROUT_LEETCODE_JSONL) every 20 steps and after the last."""
    return Config(
        preset="leetcode-4b", model="Qwen/Qwen3-4B", dtype="bfloat16", device="cuda", problems="leetcode-train",
        eval=EvalSettings(problems="leetcode-test", every=20),
        system_prompt="", steps=40, prompts_per_step=8, group_size=8, max_new_tokens=512, temperature=0.6,
        top_p=0.95, top_k=20, lr=7e-5, warmup_steps=3, adapter_r=32, kl_beta=1e-3, weight_decay=0.1,
        unhackable_frac=0.5, gen_deploy_frac=0.0, buffer_size=4096, half_life=96.0, refresh_every=5,
        checkpoint_every=20, micro_batch=8, pairs="leetcode", grader_workers=8,
    )


PRESETS: dict[str, Callable[[], Config]] = {"smoke": smoke, "toy": toy, "demo": demo, "heldout-modes": heldout_modes,
                                            "leetcode-4b": leetcode_4b}


def preset(name: str) -> Config:
    """The named preset's Config."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
    return PRESETS[name]()
