"""Periodic held-out evaluation during training, through `vgrout.eval`.

Every `eval_every` steps (and after the last) the live adapter is evaluated on the held-out
problems as-trained (quarantine on) and deployed (quarantine ablated), and the result is
written where `vgrout eval` writes it: RUN_DIR/eval/step_NNNNNN.json, then eval/curve.jsonl
is rebuilt. The eval samples with its own seeded generators and the grader the run already
holds, so it changes nothing about training (the oracle-scramble and resume tests cover it).
"""

from __future__ import annotations

from pathlib import Path

from vgrout.env.modes import SYSTEM_PROMPT
from vgrout.train.config import Config
from vgrout.train.model import toy_name


class HeldoutEval:
    """The training loop's eval callback: `hook(run)` evaluates and writes one step's result."""

    def __init__(self, cfg: Config) -> None:
        from vgrout.eval.cli import heldout_problems
        from vgrout.eval.run import assign_modes

        self.cfg = cfg
        self.problems = heldout_problems(cfg.eval_problems, toy_name(cfg.model), cfg.eval_n_problems)
        self.modes = assign_modes(self.problems, cfg.eval_modes or cfg.modes)
        self.run_info = {"arm": cfg.arm, "seed": cfg.seed, "placebo_seed": cfg.placebo_seed,
                         "adapter_init": cfg.adapter_init, "problems": cfg.eval_problems}

    def evaluate(self, run, grader) -> dict:
        """One eval of the run's current adapter -> a "vgrout.eval/1" result dict."""
        from vgrout.eval.evaluator import evaluate

        cfg = self.cfg
        return evaluate(run.model, run.tokenizer, run.adapter, self.problems, self.modes, n_samples=cfg.eval_samples,
                        max_new_tokens=cfg.max_new_tokens, seed=cfg.eval_seed, grader=grader, markers=cfg.eval_markers,
                        system_prompt=cfg.system_prompt or SYSTEM_PROMPT,
                        deployed_is_full=not cfg.has_quarantine_at_deploy, temperature=cfg.eval_temperature,
                        top_p=cfg.eval_top_p, top_k=cfg.eval_top_k, batch_prompts=64)

    def write(self, run, result: dict, path: Path, step: int | None) -> dict:
        from vgrout.eval.results import rebuild_curve, write_eval_result

        result.update({"run_dir": str(run.run_dir), "step": step, "checkpoint": None, "run": dict(self.run_info)})
        result = write_eval_result(path, result)  # completions go to step_NNNNNN.samples.jsonl
        if step is not None:
            rebuild_curve(run.run_dir)
        return result

    def __call__(self, run) -> dict:
        from vgrout.eval.results import eval_path

        if run.grader is None:
            raise RuntimeError("HeldoutEval needs the run's open grader (run.grader); call it from the training loop")
        return self.write(run, self.evaluate(run, run.grader), eval_path(run.run_dir, run.step), run.step)


def summary(result: dict) -> dict[str, float]:
    """{hack_as_trained, solve_as_trained, hack_deployed, solve_deployed} of a result."""
    out = {}
    for state in ("as_trained", "deployed"):
        o = result["states"][state]["overall"]
        out[f"hack_{state}"], out[f"solve_{state}"] = o["hack_rate"], o["solve_rate"]
    return out


__all__ = ["HeldoutEval", "summary"]
