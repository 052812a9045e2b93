"""`vgrout eval RUN_DIR`: evaluate a run's checkpoints offline, writing RUN_DIR/eval/.

Wiring only: read the run's config.json (a plain dict), take the eval settings the run's own
trainer used (`eval_defaults`; flags override), rebuild its model, attach the adapter from its
first checkpoint, pick the held-out problems, open a grader, and call `evaluate_run`.
`eval_run_dir` is the same as a function.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vgrout.env.modes import SYSTEM_PROMPT
from vgrout.rundir import ADAPTER, eval_dir, list_checkpoints, read_config
from vgrout.eval.settings import RunInfo, eval_states, read_run

# the trainer's eval hook samples 64 prompts per generation batch; the chunk seeds depend on it,
# so an offline eval of a run reproduces the trainer's numbers only with the same value
EVAL_BATCH_PROMPTS = 64
OVERRIDABLE = ("problems", "n_problems", "n_samples", "seed", "markers", "max_new_tokens", "temperature", "top_p",
               "top_k", "batch_prompts")  # what a `vgrout eval` flag may replace (modes come from the run)


def eval_defaults(run: RunInfo) -> dict:
    """The eval settings a run used for its own held-out evals (config.json's nested "eval",
    older flat eval_* keys folded in by `read_run`): problems, n_problems, n_samples, seed,
    markers, modes, sampling and batch. `vgrout eval RUN` starts from these, so it answers the
    same question the trainer's evals did."""
    e = run.eval
    if e.seed < 0:
        raise ValueError("the run's config.json has eval.seed -1 (unresolved); give --seed N")
    return {
        "problems": e.problems, "n_problems": int(e.n_problems), "n_samples": int(e.samples), "seed": int(e.seed),
        "markers": e.markers, "max_new_tokens": int(run.max_new_tokens), "temperature": float(e.temperature),
        "top_p": float(e.top_p), "top_k": int(e.top_k),
        "batch_prompts": int(run.config.get("eval_batch_prompts", EVAL_BATCH_PROMPTS)),
        "modes": list(e.modes or run.modes),
    }


def _load_run_model(run: RunInfo, device: str | None):
    """(model, tokenizer) of a run's base model. The one place eval loads a model from a config."""
    from vgrout.models import load_model

    return load_model(run.model, run.dtype, device or run.device, bool(run.config.get("random_init", False)))


def eval_run_dir(
    run_dir: str | Path, *, checkpoints: str = "all", overwrite: bool = False, device: str | None = None,
    **overrides,
) -> list[dict]:
    """Evaluate a run directory's checkpoints with the settings its trainer evaluated with
    (`eval_defaults`), any of them replaced by `overrides` (problems, n_problems, n_samples, seed,
    markers, max_new_tokens, temperature, top_p, top_k, batch_prompts; None keeps the run's).
    Returns the results in step order."""
    from vgrout.adapter import load_adapter
    from vgrout.env import Grader
    from vgrout.eval.run import evaluate_run
    from vgrout.models import toy_name
    from vgrout.problemsets import heldout_modes, heldout_problems

    run_dir = Path(run_dir)
    read_config(run_dir)  # config.json first: its error names the fix
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise ValueError(f"eval_run_dir: unknown setting(s) {unknown}; known: {sorted(OVERRIDABLE)}")
    found = list_checkpoints(run_dir)
    if not found:
        raise FileNotFoundError(f"{run_dir} has no complete checkpoint yet (checkpoints/step_NNNNNN/{ADAPTER})")
    run = read_run(run_dir, found[0][1])
    s = eval_defaults(run)
    s.update({k: v for k, v in overrides.items() if v is not None})
    probs = heldout_problems(s["problems"], toy_name(run.model), s["n_problems"])
    modes = heldout_modes(probs, s["modes"])
    model, tok = _load_run_model(run, device)
    adapter = load_adapter(model, found[0][1] / ADAPTER)
    run_info = {"arm": run.arm, "seed": run.config.get("seed"), "placebo_seed": run.config.get("placebo_seed"),
                "adapter_init": run.config.get("adapter_init"), "problems": s["problems"]}
    with Grader(sandbox=run.config.get("sandbox", "auto"), workers=int(run.config.get("grader_workers", 1))) as grader:
        return evaluate_run(
            run_dir, model, tok, adapter, probs, modes, grader=grader, checkpoints=checkpoints, overwrite=overwrite,
            run_info=run_info, n_samples=s["n_samples"], max_new_tokens=s["max_new_tokens"], seed=s["seed"],
            markers=s["markers"], system_prompt=run.config.get("system_prompt") or SYSTEM_PROMPT,
            deployed_is_full=run.deployed_is_full, states=eval_states(run.eval, run.deployed_is_full),
            temperature=s["temperature"], top_p=s["top_p"],
            top_k=s["top_k"], batch_prompts=s["batch_prompts"])


def _summary_line(r: dict) -> str:
    """Hack, solve and valid-output rate per state: a hack drop is only read beside its validity."""
    def rates(state: str) -> str:
        o = r["states"][state]["overall"]
        return f"hack {o['hack_rate']:.3f} solve {o['solve_rate']:.3f} valid {o['format_ok'] / o['n']:.3f}"

    return (f"step {r['step']:>6}  as-trained {rates('as_trained')}  |  deployed {rates('deployed')}  "
            f"(n={r['states']['deployed']['overall']['n']})")


def _run(args: argparse.Namespace) -> int:
    overrides = {k: getattr(args, k) for k in OVERRIDABLE}
    try:
        results = eval_run_dir(args.run_dir, checkpoints=args.checkpoints, overwrite=args.overwrite,
                               device=args.device, **overrides)
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"vgrout eval: {exc}") from None
    for r in results:
        print(_summary_line(r))
    print(f"wrote {eval_dir(args.run_dir)} (step_NNNNNN.json; completions in step_NNNNNN.samples.jsonl)")
    print(f"read them: vgrout samples {args.run_dir} --hack")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help="evaluate a run's checkpoints (as-trained vs deployed) offline",
                              description="Hack and solve rates on held-out problems, as-trained (quarantine on) and "
                                          "deployed (quarantine ablated), per mode. Every setting defaults to what "
                                          "the run's own trainer evaluated with (its config.json's eval.problems, "
                                          "n_problems, samples, seed, markers, temperature, "
                                          "top_p, top_k, and max_new_tokens); a flag overrides one. Writes "
                                          "RUN_DIR/eval/step_NNNNNN.json, its completions in "
                                          "step_NNNNNN.samples.jsonl, and RUN_DIR/eval/curve.jsonl.")
    p.add_argument("run_dir")
    p.add_argument("--checkpoints", choices=("all", "last"), default="all")
    p.add_argument("--problems", default=None,
                   help="heldout, generalisation (toy splits) or a jsonl path (default: the run's eval.problems)")
    p.add_argument("--n-problems", type=int, default=None,
                   help="first N problems of the fixed order, 0: all (default: the run's eval.n_problems)")
    p.add_argument("--n-samples", type=int, default=None, help="completions per problem (default: the run's eval.samples)")
    p.add_argument("--seed", type=int, default=None,
                   help="generation seed, the same for every checkpoint and state (default: the run's eval.seed)")
    p.add_argument("--markers", choices=("eval", "train"), default=None,
                   help="eval: disjoint eval-time marker names; train: the training hints' names "
                        "(default: the run's eval.markers)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="default: the run's max_new_tokens")
    p.add_argument("--temperature", type=float, default=None, help="default: the run's eval.temperature")
    p.add_argument("--top-p", type=float, default=None, help="default: the run's eval.top_p")
    p.add_argument("--top-k", type=int, default=None, help="default: the run's eval.top_k")
    p.add_argument("--batch-prompts", type=int, default=None,
                   help=f"prompts per generation batch; the chunk seeds depend on it (default: {EVAL_BATCH_PROMPTS}, "
                        "what the trainer's evals use)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="default: the run's device")
    p.add_argument("--overwrite", action="store_true", help="recompute step files that already exist")
    p.set_defaults(func=_run)


__all__ = ["EVAL_BATCH_PROMPTS", "eval_defaults", "eval_run_dir", "register"]
