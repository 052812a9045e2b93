"""`vgrout eval RUN_DIR`: evaluate a run's checkpoints offline, writing RUN_DIR/eval/.

Wiring only: rebuild the run's model from its config.json, attach the adapter from its first
checkpoint, pick the held-out problems, open a grader, and call `evaluate_run`.
`eval_run_dir` is the same as a function, for `vgrout demo`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from pathlib import Path

from vgrout.env.modes import SYSTEM_PROMPT
from vgrout.types import Problem


def heldout_problems(source: str, toy_name: str | None, n_problems: int) -> list[Problem]:
    """The eval problems: a toy split ("heldout" | "generalisation"), a LeetCode source
    (leetcode-test: $VGROUT_LEETCODE_JSONL) or a LeetCode-format jsonl,
    in a fixed order (sorted ids, then a fixed shuffle) so every arm and seed sees the same
    first `n_problems` (0: all)."""
    if source in ("heldout", "generalisation"):
        if toy_name is None:
            raise ValueError(f"--problems {source} is a toy split but this run's model is not a toy model; "
                             "pass --problems PATH to a LeetCode-format jsonl of held-out problems")
        from vgrout.toy.world import toy_world

        problems = toy_world(toy_name, progress=False).problems(source)
    else:  # leetcode-test ($VGROUT_LEETCODE_JSONL), leetcode-train or a jsonl path
        from vgrout.env.problems import load_problem_source

        problems = load_problem_source(source)
    if not problems:
        raise ValueError(f"no eval problems in {source!r}")
    problems = sorted(problems, key=lambda p: p.id)
    random.Random(int(hashlib.sha256(b"vgrout-eval-problems").hexdigest(), 16)).shuffle(problems)
    if n_problems < 0:
        raise ValueError(f"n_problems must be >= 0 (0: all), got {n_problems}")
    return problems[:n_problems] if n_problems else problems


def eval_run_dir(
    run_dir: str | Path, *, checkpoints: str = "all", problems: str = "heldout", n_problems: int = 0,
    n_samples: int = 1, seed: int = 12345, markers: str = "eval", max_new_tokens: int | None = None,
    batch_prompts: int = 32, overwrite: bool = False, device: str | None = None,
) -> list[dict]:
    """Evaluate a run directory's checkpoints with the sampling settings of its config
    (max_new_tokens overridable); returns the results in step order."""
    from vgrout.adapter import load_adapter
    from vgrout.env import Grader
    from vgrout.eval.run import assign_modes, evaluate_run, list_checkpoints
    from vgrout.train.config import Config
    from vgrout.train.model import load_model, toy_name

    run_dir = Path(run_dir)
    cfg_file = run_dir / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{cfg_file} not found; pass a run directory written by `vgrout train`")
    cfg = Config.from_dict(json.loads(cfg_file.read_text()))
    found = list_checkpoints(run_dir)
    if not found:
        raise FileNotFoundError(f"{run_dir} has no complete checkpoint yet (checkpoints/step_NNNNNN/adapter.safetensors)")
    model, tok = load_model(cfg.model, cfg.dtype, device or cfg.device, cfg.random_init)
    adapter = load_adapter(model, found[0][1] / "adapter.safetensors")
    probs = heldout_problems(problems, toy_name(cfg.model), n_problems)
    modes = assign_modes(probs, cfg.modes)
    run_info = {"arm": cfg.arm, "seed": cfg.seed, "placebo_seed": cfg.placebo_seed, "adapter_init": cfg.adapter_init,
                "problems": problems}
    with Grader(sandbox=cfg.sandbox, workers=cfg.grader_workers) as grader:
        return evaluate_run(
            run_dir, model, tok, adapter, probs, modes, grader=grader, checkpoints=checkpoints, overwrite=overwrite,
            run_info=run_info, n_samples=n_samples, max_new_tokens=max_new_tokens or cfg.max_new_tokens, seed=seed,
            markers=markers, system_prompt=cfg.system_prompt or SYSTEM_PROMPT,
            deployed_is_full=not cfg.has_quarantine_at_deploy, temperature=cfg.eval_temperature, top_p=cfg.eval_top_p,
            top_k=cfg.eval_top_k, batch_prompts=batch_prompts)


def _summary_line(r: dict) -> str:
    st = r["states"]
    return (f"step {r['step']:>6}  as-trained hack {st['as_trained']['overall']['hack_rate']:.3f} "
            f"solve {st['as_trained']['overall']['solve_rate']:.3f}  |  deployed hack "
            f"{st['deployed']['overall']['hack_rate']:.3f} solve {st['deployed']['overall']['solve_rate']:.3f}  "
            f"(n={st['deployed']['overall']['n']})")


def _run(args: argparse.Namespace) -> int:
    try:
        results = eval_run_dir(args.run_dir, checkpoints=args.checkpoints, problems=args.problems,
                               n_problems=args.n_problems, n_samples=args.n_samples, seed=args.seed,
                               markers=args.markers, max_new_tokens=args.max_new_tokens,
                               batch_prompts=args.batch_prompts, overwrite=args.overwrite, device=args.device)
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"vgrout eval: {exc}") from None
    for r in results:
        print(_summary_line(r))
    print(f"wrote {Path(args.run_dir) / 'eval'}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help="evaluate a run's checkpoints (as-trained vs deployed) offline",
                              description="Hack and solve rates on held-out problems, as-trained (quarantine on) and "
                                          "deployed (quarantine ablated), per mode, with eval-time marker families. "
                                          "Writes RUN_DIR/eval/step_NNNNNN.json and RUN_DIR/eval/curve.jsonl.")
    p.add_argument("run_dir")
    p.add_argument("--checkpoints", choices=("all", "last"), default="all")
    p.add_argument("--problems", default="heldout", help="heldout, generalisation (toy splits) or a jsonl path")
    p.add_argument("--n-problems", type=int, default=0, help="first N problems of the fixed order (0: all)")
    p.add_argument("--n-samples", type=int, default=1, help="completions per problem")
    p.add_argument("--seed", type=int, default=12345, help="generation seed (same for every checkpoint and state)")
    p.add_argument("--markers", choices=("eval", "train"), default="eval",
                   help="eval: disjoint eval-time marker names (default); train: the training hints' names")
    p.add_argument("--max-new-tokens", type=int, default=None, help="default: the run's max_new_tokens")
    p.add_argument("--batch-prompts", type=int, default=32, help="prompts per generation batch")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="default: the run's device")
    p.add_argument("--overwrite", action="store_true", help="recompute step files that already exist")
    p.set_defaults(func=_run)


__all__ = ["eval_run_dir", "heldout_problems", "register"]
