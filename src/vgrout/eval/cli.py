"""`vgrout eval RUN_DIR`: evaluate a run's checkpoints offline, writing RUN_DIR/eval/.

Wiring only: rebuild the run's model from its config.json, attach the adapter from its first
checkpoint, pick the held-out problems, open a grader, and call `evaluate_run`.
`eval_run_dir` is the same as a function, for `vgrout demo`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vgrout.env.modes import SYSTEM_PROMPT


def eval_run_dir(
    run_dir: str | Path, *, checkpoints: str = "all", problems: str = "heldout", n_problems: int = 0,
    n_samples: int = 1, seed: int = 12345, markers: str = "eval", max_new_tokens: int | None = None,
    batch_prompts: int = 32, overwrite: bool = False, device: str | None = None,
) -> list[dict]:
    """Evaluate a run directory's checkpoints with the sampling settings of its config
    (max_new_tokens overridable); returns the results in step order."""
    from vgrout.adapter import load_adapter
    from vgrout.env import Grader
    from vgrout.eval.run import evaluate_run, list_checkpoints
    from vgrout.eval.settings import read_run
    from vgrout.models import load_model, toy_name
    from vgrout.problemsets import heldout_modes, heldout_problems

    run_dir = Path(run_dir)
    read_run(run_dir)  # config.json first: its error names the fix
    found = list_checkpoints(run_dir)
    if not found:
        raise FileNotFoundError(f"{run_dir} has no complete checkpoint yet (checkpoints/step_NNNNNN/adapter.safetensors)")
    cfg = read_run(run_dir, found[0][1])
    model, tok = load_model(cfg.model, cfg.dtype, device or cfg.device, cfg.random_init)
    adapter = load_adapter(model, found[0][1] / "adapter.safetensors")
    probs = heldout_problems(problems, toy_name(cfg.model), n_problems)
    modes = heldout_modes(probs, cfg.modes)
    run_info = {"arm": cfg.arm, "seed": cfg.seed, "placebo_seed": cfg.placebo_seed, "adapter_init": cfg.adapter_init,
                "problems": problems}
    with Grader(sandbox=cfg.sandbox, workers=cfg.grader_workers) as grader:
        return evaluate_run(
            run_dir, model, tok, adapter, probs, modes, grader=grader, checkpoints=checkpoints, overwrite=overwrite,
            run_info=run_info, n_samples=n_samples, max_new_tokens=max_new_tokens or cfg.max_new_tokens, seed=seed,
            markers=markers, system_prompt=cfg.system_prompt or SYSTEM_PROMPT,
            deployed_is_full=cfg.deployed_is_full, temperature=cfg.eval.temperature, top_p=cfg.eval.top_p,
            top_k=cfg.eval.top_k, batch_prompts=batch_prompts)


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


__all__ = ["eval_run_dir", "register"]
