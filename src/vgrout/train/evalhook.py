"""Periodic held-out evaluation during training, through `vgrout.eval`.

Every `eval.every` steps (and after the last) the live adapter is evaluated on the held-out
problems as-trained (quarantine on) and deployed (quarantine ablated), plus the deploy-scale
states where `eval.deploy_scales` asks (by default at the last eval only), and the result is
written where `vgrout eval` writes it: RUN_DIR/eval/step_NNNNNN.json, then eval/curve.jsonl
is rebuilt. The eval samples with its own seeded generators and the grader the run already
holds, so it changes nothing about training (the oracle-scramble and resume tests cover it).
"""

from __future__ import annotations

from pathlib import Path

from vgrout.env.modes import SYSTEM_PROMPT
from vgrout.models import toy_name
from vgrout.problemsets import heldout_modes, heldout_problems
from vgrout.train.arms import Arm
from vgrout.train.config import Config


class HeldoutEval:
    """The training loop's eval hook: `hook(run)` evaluates and writes one step's result."""

    def __init__(self, cfg: Config, arm: Arm) -> None:
        self.cfg, self.arm = cfg, arm
        self.problems = heldout_problems(cfg.eval.problems, toy_name(cfg.model), cfg.eval.n_problems)
        self.modes = heldout_modes(self.problems, cfg.eval.modes or cfg.modes)
        self.run_info = {"arm": cfg.arm, "seed": cfg.seed, "placebo_seed": cfg.placebo_seed,
                         "adapter_init": cfg.adapter_init, "problems": cfg.eval.problems}

    def evaluate(self, run, grader, last: bool = True) -> dict:
        """One eval of the run's current adapter -> a "vgrout.eval/1" result dict (`last`: the
        run's last eval, which samples the deploy-scale states under eval.deploy_scales="last")."""
        from vgrout.eval.evaluator import evaluate

        from vgrout.eval.settings import eval_states

        cfg, ev = self.cfg, self.cfg.eval
        if ev.seed < 0:
            raise ValueError("eval.seed is -1 (derived from the run seed): evaluate a resolved config "
                             "(Config.resolved()), as train() does")
        whole = not self.arm.has_quarantine_at_deploy
        return evaluate(run.model, run.tokenizer, run.adapter, self.problems, self.modes, n_samples=ev.samples,
                        max_new_tokens=cfg.max_new_tokens, seed=ev.seed, grader=grader, markers=ev.markers,
                        system_prompt=cfg.system_prompt or SYSTEM_PROMPT, states=eval_states(ev, whole, last),
                        deployed_is_full=whole, temperature=ev.temperature,
                        top_p=ev.top_p, top_k=ev.top_k, batch_prompts=64)

    def write(self, run, result: dict, path: Path, step: int | None) -> dict:
        from vgrout.eval.results import rebuild_curve, write_eval_result

        result.update({"run_dir": str(run.run_dir), "step": step, "checkpoint": None, "run": dict(self.run_info)})
        result = write_eval_result(path, result)  # completions go to step_NNNNNN.samples.jsonl
        if step is not None:
            rebuild_curve(run.run_dir)
        return result

    def __call__(self, run, last: bool = True) -> dict:
        from vgrout.eval.results import eval_path

        if run.grader is None:
            raise RuntimeError("HeldoutEval needs the run's open grader (run.grader); call it from the training loop")
        return self.write(run, self.evaluate(run, run.grader, last), eval_path(run.run_dir, run.step), run.step)


__all__ = ["HeldoutEval"]
