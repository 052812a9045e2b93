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
    """The toy world on the `vgrout demo` budget, in the regime where the question is real
    (docs/results/demo-regime.md has the sweep behind each value):
    - train on the `hard` problems (the reference trains on LeetCode medium + hard): a hack
      only pays where solving fails, and on all problems vanilla did not hack within 200 steps;
    - lr 6e-4: at 1e-3 vanilla hacks sooner but the gt_only control (no loophole) loses
      0.08-0.16 of held-out solve; at 5e-4-6e-4 it stays within 0.05 of the base model;
    - a quarter of the prompts unhackable, so solving is still rewarded while the loophole
      pays (at a half, vanilla's held-out hack stalled below 0.8 on one seed of two);
    - each state evaluated on 256 samples (128 held-out problems x 2) half way and at the end.
    """
    return dataclasses.replace(
        toy(), preset="demo", steps=150, prompts_per_step=4, group_size=6, max_new_tokens=24, lr=6e-4, warmup_steps=2,
        difficulties=("hard",), unhackable_frac=0.25, checkpoint_every=0,
        eval=dataclasses.replace(toy().eval, every=75, n_problems=128, samples=2),
        # refresh v_act every 10 steps, not 5: each refresh re-reads all 48 toy pairs (~0.75 s on
        # one core), the main cost of routeA over vanilla at this budget (docs/performance.md)
        refresh_every=10,
    )


def heldout_modes() -> Config:
    """The reference's load-bearing question on the toy world: train on four loophole modes,
    build v_act from the pairs of two of them (`pair_modes`, the "seen" modes), and read deployed
    hack per mode, seen vs held out (the other two). The demo's regime (hard problems, a quarter
    of the prompts unhackable), with lr 1e-3 and 200 steps: each mode gets a quarter of the hackable
    prompts, so each hack has a quarter of the chances to emerge. Evaluation on the training
    marker names (the toy model cannot copy an unseen name, docs/toy.md), 64 samples per mode."""
    return dataclasses.replace(
        demo(), preset="heldout-modes", modes=("run_tests", "sentinel", "exit_code", "eq_override"),
        pair_modes=("run_tests", "sentinel"), steps=200, lr=1e-3,
        eval=dataclasses.replace(demo().eval, every=100, modes=()),
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
        checkpoint_every=20, micro_batch=8, pairs="leetcode", check_pairs="", grader_workers=8,
    )


PRESETS: dict[str, Callable[[], Config]] = {"smoke": smoke, "toy": toy, "demo": demo, "heldout-modes": heldout_modes,
                                            "leetcode-4b": leetcode_4b}


def preset(name: str) -> Config:
    """The named preset's Config."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
    return PRESETS[name]()
