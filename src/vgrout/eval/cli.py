"""`vgrout eval RUN_DIR`: evaluate a run's checkpoints offline, writing RUN_DIR/eval/.

Wiring only: read the run's config.json (a plain dict), take the eval settings the run's own
trainer used (`eval_defaults`; flags override), rebuild its model, attach the adapter from its
first checkpoint, pick the held-out problems, open a grader, and call `evaluate_run`.
`eval_run_dir` is the same as a function.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from pathlib import Path

from vgrout.env.modes import SYSTEM_PROMPT
from vgrout.eval.rundir import deploys_whole_adapter, list_checkpoints, need, read_config
from vgrout.types import Problem


def heldout_problems(source: str, toy_name: str | None, n_problems: int) -> list[Problem]:
    """The eval problems: a toy split ("heldout" | "generalisation") or a LeetCode-format jsonl,
    in a fixed order (sorted ids, then a fixed shuffle) so every arm and seed sees the same
    first `n_problems` (0: all)."""
    if source in ("heldout", "generalisation"):
        if toy_name is None:
            raise ValueError(f"--problems {source} is a toy split but this run's model is not a toy model; "
                             "pass --problems PATH to a LeetCode-format jsonl of held-out problems")
        from vgrout.toy.world import toy_world

        problems = toy_world(toy_name, progress=False).problems(source)
    else:
        from vgrout.env.problems import load_medhard_jsonl

        if not Path(source).is_file():
            raise FileNotFoundError(f"--problems {source}: no such file (expected heldout, generalisation or a jsonl path)")
        problems = load_medhard_jsonl(source)
    if not problems:
        raise ValueError(f"no eval problems in {source!r}")
    problems = sorted(problems, key=lambda p: p.id)
    random.Random(int(hashlib.sha256(b"vgrout-eval-problems").hexdigest(), 16)).shuffle(problems)
    if n_problems < 0:
        raise ValueError(f"n_problems must be >= 0 (0: all), got {n_problems}")
    return problems[:n_problems] if n_problems else problems


# the trainer's eval hook samples 64 prompts per generation batch; the chunk seeds depend on it,
# so an offline eval of a run reproduces the trainer's numbers only with the same value
EVAL_BATCH_PROMPTS = 64


def eval_defaults(cfg: dict, run_dir: str | Path = "RUN_DIR") -> dict:
    """The eval settings a run used for its own held-out evals, from its config.json dict:
    problems, n_problems, n_samples, seed, markers, modes, sampling and batch. `vgrout eval
    RUN` starts from these, so it answers the same question the trainer's evals did."""
    c = {k: need(cfg, k, run_dir) for k in ("eval_problems", "eval_n_problems", "eval_samples", "eval_seed",
                                            "eval_markers", "eval_temperature", "eval_top_p", "eval_top_k",
                                            "max_new_tokens", "modes")}
    return {
        "problems": c["eval_problems"], "n_problems": int(c["eval_n_problems"]), "n_samples": int(c["eval_samples"]),
        "seed": int(c["eval_seed"]), "markers": c["eval_markers"], "max_new_tokens": int(c["max_new_tokens"]),
        "temperature": float(c["eval_temperature"]), "top_p": float(c["eval_top_p"]), "top_k": int(c["eval_top_k"]),
        "batch_prompts": int(cfg.get("eval_batch_prompts", EVAL_BATCH_PROMPTS)),
        "modes": list(cfg.get("eval_modes") or c["modes"]),
    }


def _load_run_model(cfg: dict, device: str | None):
    """(model, tokenizer) of a run's base model. The one place eval loads a model from a config."""
    from vgrout.train.model import load_model

    return load_model(cfg["model"], cfg["dtype"], device or cfg["device"], bool(cfg.get("random_init", False)))


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
    from vgrout.eval.run import assign_modes, evaluate_run

    run_dir = Path(run_dir)
    cfg = read_config(run_dir)
    s = eval_defaults(cfg, run_dir)
    unknown = sorted(set(overrides) - (set(s) - {"modes"}))
    if unknown:
        raise ValueError(f"eval_run_dir: unknown setting(s) {unknown}; known: {sorted(set(s) - {'modes'})}")
    s.update({k: v for k, v in overrides.items() if v is not None})
    found = list_checkpoints(run_dir)
    if not found:
        raise FileNotFoundError(f"{run_dir} has no complete checkpoint yet (checkpoints/step_NNNNNN/adapter.safetensors)")
    probs = heldout_problems(s["problems"], _toy_name(cfg["model"]), s["n_problems"])
    modes = assign_modes(probs, s["modes"])
    model, tok = _load_run_model(cfg, device)
    adapter = load_adapter(model, found[0][1] / "adapter.safetensors")
    run_info = {"arm": cfg["arm"], "seed": cfg.get("seed"), "placebo_seed": cfg.get("placebo_seed"),
                "adapter_init": cfg.get("adapter_init"), "problems": s["problems"]}
    with Grader(sandbox=cfg.get("sandbox", "auto"), workers=int(cfg.get("grader_workers", 1))) as grader:
        return evaluate_run(
            run_dir, model, tok, adapter, probs, modes, grader=grader, checkpoints=checkpoints, overwrite=overwrite,
            run_info=run_info, n_samples=s["n_samples"], max_new_tokens=s["max_new_tokens"], seed=s["seed"],
            markers=s["markers"], system_prompt=cfg.get("system_prompt") or SYSTEM_PROMPT,
            deployed_is_full=deploys_whole_adapter(cfg["arm"]), temperature=s["temperature"], top_p=s["top_p"],
            top_k=s["top_k"], batch_prompts=s["batch_prompts"])


def _toy_name(model: str) -> str | None:
    """'toy:NAME' -> NAME, else None."""
    return model.split(":", 1)[1] if model.startswith("toy:") else None


def _summary_line(r: dict) -> str:
    """Hack, solve and valid-output rate per state: a hack drop is only read beside its validity."""
    def rates(state: str) -> str:
        o = r["states"][state]["overall"]
        return f"hack {o['hack_rate']:.3f} solve {o['solve_rate']:.3f} valid {o['format_ok'] / o['n']:.3f}"

    return (f"step {r['step']:>6}  as-trained {rates('as_trained')}  |  deployed {rates('deployed')}  "
            f"(n={r['states']['deployed']['overall']['n']})")


def _run(args: argparse.Namespace) -> int:
    overrides = {k: getattr(args, k) for k in ("problems", "n_problems", "n_samples", "seed", "markers",
                                               "max_new_tokens", "temperature", "top_p", "top_k", "batch_prompts")}
    try:
        results = eval_run_dir(args.run_dir, checkpoints=args.checkpoints, overwrite=args.overwrite,
                               device=args.device, **overrides)
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"vgrout eval: {exc}") from None
    for r in results:
        print(_summary_line(r))
    eval_dir = Path(args.run_dir) / "eval"
    print(f"wrote {eval_dir} (step_NNNNNN.json; completions in step_NNNNNN.samples.jsonl)")
    print(f"read them: vgrout samples {args.run_dir} --hack")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help="evaluate a run's checkpoints (as-trained vs deployed) offline",
                              description="Hack and solve rates on held-out problems, as-trained (quarantine on) and "
                                          "deployed (quarantine ablated), per mode. Every setting defaults to what "
                                          "the run's own trainer evaluated with (its config.json: eval_problems, "
                                          "eval_n_problems, eval_samples, eval_seed, eval_markers, eval_temperature, "
                                          "eval_top_p, eval_top_k, max_new_tokens); a flag overrides one. Writes "
                                          "RUN_DIR/eval/step_NNNNNN.json, its completions in "
                                          "step_NNNNNN.samples.jsonl, and RUN_DIR/eval/curve.jsonl.")
    p.add_argument("run_dir")
    p.add_argument("--checkpoints", choices=("all", "last"), default="all")
    p.add_argument("--problems", default=None,
                   help="heldout, generalisation (toy splits) or a jsonl path (default: the run's eval_problems)")
    p.add_argument("--n-problems", type=int, default=None,
                   help="first N problems of the fixed order, 0: all (default: the run's eval_n_problems)")
    p.add_argument("--n-samples", type=int, default=None, help="completions per problem (default: the run's eval_samples)")
    p.add_argument("--seed", type=int, default=None,
                   help="generation seed, the same for every checkpoint and state (default: the run's eval_seed)")
    p.add_argument("--markers", choices=("eval", "train"), default=None,
                   help="eval: disjoint eval-time marker names; train: the training hints' names "
                        "(default: the run's eval_markers)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="default: the run's max_new_tokens")
    p.add_argument("--temperature", type=float, default=None, help="default: the run's eval_temperature")
    p.add_argument("--top-p", type=float, default=None, help="default: the run's eval_top_p")
    p.add_argument("--top-k", type=int, default=None, help="default: the run's eval_top_k")
    p.add_argument("--batch-prompts", type=int, default=None,
                   help=f"prompts per generation batch; the chunk seeds depend on it (default: {EVAL_BATCH_PROMPTS}, "
                        "what the trainer's evals use)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="default: the run's device")
    p.add_argument("--overwrite", action="store_true", help="recompute step files that already exist")
    p.set_defaults(func=_run)


__all__ = ["EVAL_BATCH_PROMPTS", "eval_defaults", "eval_run_dir", "heldout_problems", "register"]
