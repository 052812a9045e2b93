"""`vgrout samples RUN...`: print evaluated completions readably, filtered by verdict.

Reads RUN_DIR/eval/step_NNNNNN.samples.jsonl (written beside every eval result; one row per
completion: step, state, problem_id, mode, sample, completion, reward, reason, valid, hack,
solve, channel). `--train` reads RUN_DIR/rollout_samples.jsonl instead (training rollouts:
text, reward, zone, gate score; the oracle's hack label joined from diagnostics.jsonl when the
run wrote per-rollout rows). Torch-free.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from vgrout.eval.results import read_jsonl
from vgrout.rundir import arm_label, diagnostics_path, eval_dir, read_config, rollout_samples_path

_SAMPLES_FILE = re.compile(r"^step_(\d{6,})\.samples\.jsonl$")
FILTERS = ("hack", "broken", "solved", "clean")


def samples_files(run_dir: str | Path) -> dict[int, Path]:
    """{step: eval/step_NNNNNN.samples.jsonl} of a run directory."""
    evals = eval_dir(run_dir)
    out = {}
    if evals.is_dir():
        for f in evals.iterdir():
            m = _SAMPLES_FILE.match(f.name)
            if m:
                out[int(m.group(1))] = f
    return dict(sorted(out.items()))


def keep(row: dict, verdict: str | None) -> bool:
    """hack: the exploit channel paid without a real solve; broken: no valid code block (format
    failed); solved: the strict oracle passed; clean: a valid, non-hacking, unsolved answer."""
    if verdict is None:
        return True
    if verdict == "hack":
        return bool(row["hack"])
    if verdict == "broken":
        return not row["valid"]
    if verdict == "solved":
        return bool(row["solve"])
    if verdict == "clean":
        return bool(row["valid"]) and not row["hack"] and not row["solve"]
    raise ValueError(f"unknown filter {verdict!r}; expected one of {FILTERS}")


def load_eval_samples(run_dir: str | Path, step: int | None = None) -> tuple[int, Path, list[dict]]:
    """(step, file, rows) of the eval samples at `step` (default: the last step that has them)."""
    files = samples_files(run_dir)
    if not files:
        raise FileNotFoundError(f"{run_dir}/eval has no step_NNNNNN.samples.jsonl; evaluate the run first "
                                f"(`vgrout eval {run_dir}`; evals written before samples existed need --overwrite)")
    if step is None:
        step = max(files)
    if step not in files:
        raise FileNotFoundError(f"{run_dir}/eval has no samples for step {step}; steps with samples: {list(files)}")
    return step, files[step], read_jsonl(files[step])


def load_train_samples(run_dir: str | Path, step: int | None = None) -> tuple[int, Path, list[dict]]:
    """(step, file, rows) of the training rollout samples at `step` (default: the last step),
    with the oracle's `hack` joined from diagnostics.jsonl by (step, index) when available."""
    path = rollout_samples_path(run_dir)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; this run wrote no training rollout samples")
    rows = read_jsonl(path)
    if not rows:
        raise ValueError(f"{path} is empty")
    steps = sorted({r["step"] for r in rows})
    step = steps[-1] if step is None else step
    if step not in steps:
        raise FileNotFoundError(f"{path} has no rows for step {step}; steps: {steps[:5]}...{steps[-5:]}")
    rows = [r for r in rows if r["step"] == step]
    diag_file = diagnostics_path(run_dir)
    hack_of: list | None = None
    if diag_file.is_file():
        for d in read_jsonl(diag_file):
            if d.get("step") == step and isinstance(d.get("hack"), list):
                hack_of = d["hack"]
    for r in rows:
        r["hack"] = None if hack_of is None or r["index"] >= len(hack_of) else bool(hack_of[r["index"]])
    return step, path, rows


def _yn(v) -> str:
    return "?" if v is None else ("yes" if v else "no")


def format_row(row: dict, where: str) -> str:
    """A header line with the verdicts and the completion, indented."""
    reward = "?" if row.get("reward") is None else f"{row['reward']:.2f}"
    if "state" in row:  # an eval sample
        head = (f"--- {where} | {row['state']} | {row['problem_id']} ({row['mode']}) sample {row['sample']}\n"
                f"    hack {_yn(row['hack'])}  solve {_yn(row['solve'])}  valid {_yn(row['valid'])}  "
                f"reward {reward}  reason {row['reason']}  channel {row['channel'] or '-'}")
    else:  # a training rollout
        score = "-" if row.get("gate_score") is None else f"{row['gate_score']:.3f}"
        head = (f"--- {where} | rollout {row['index']} | {row.get('problem_id') or '?'} ({row.get('mode') or '?'})\n"
                f"    reward {reward}  zone {row.get('zone') or '-'}  gate score {score}  "
                f"hack (oracle, from diagnostics) {_yn(row.get('hack'))}")
    body = "\n".join("    | " + line for line in (row["completion"] or "<empty completion>").splitlines())
    return f"{head}\n{body or '    | <empty completion>'}"


def show(run_dirs: list[str], *, state: str = "both", verdict: str | None = None, arm: str | None = None,
         step: int | None = None, n: int = 5, train: bool = False) -> str:
    """The text `vgrout samples` prints."""
    if state not in ("both", "as_trained", "deployed"):
        raise ValueError(f"--state must be as_trained, deployed or both, got {state!r}")
    if n < 0:
        raise ValueError(f"-n must be >= 0, got {n}")
    if train and (state != "both" or verdict not in (None, "hack")):
        raise ValueError("--train shows training rollouts: no --state, and only --hack (from diagnostics) as filter")
    out, matched_runs = [], 0
    for rd in run_dirs:
        cfg = read_config(rd)
        label = arm_label(cfg)
        if arm is not None and arm not in (cfg["arm"], label):
            continue
        matched_runs += 1
        s, path, rows = (load_train_samples if train else load_eval_samples)(rd, step)
        total = len(rows)
        if not train and state != "both":
            rows = [r for r in rows if r["state"] == state]
        rows = [r for r in rows if (r.get("hack") is True if (train and verdict) else keep(r, None if train else verdict))]
        what = f"{verdict or 'all'}" + ("" if train or state == "both" else f", {state}")
        out.append(f"=== {rd} ({label}, seed {cfg.get('seed')}), step {s}: {len(rows)} of {total} "
                   f"{'rollout' if train else 'eval'} samples match ({what}); showing {min(n, len(rows))}  [{path}]")
        out += [format_row(r, f"{label} s{cfg.get('seed')} step {s}") for r in rows[:n]]
    if arm is not None and matched_runs == 0:
        raise ValueError(f"no run directory has arm {arm!r}")
    return "\n".join(out)


def _run(args: argparse.Namespace) -> int:
    verdict = next((v for v in FILTERS if getattr(args, v)), None)
    try:
        print(show(args.run_dirs, state=args.state, verdict=verdict, arm=args.arm, step=args.step, n=args.n,
                   train=args.train))
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"vgrout samples: {exc}") from None
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "samples", help="print evaluated completions (hacks, broken outputs, solves) readably",
        description="Print the completions an eval graded, from RUN_DIR/eval/step_NNNNNN.samples.jsonl (the last "
                    "evaluated step unless --step), with their verdicts: hack (the exploit paid without a real "
                    "solve), solve (strict oracle), valid (a compiling code block), reward, reason, channel. "
                    "--train prints the training rollouts kept in RUN_DIR/rollout_samples.jsonl instead.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--state", choices=("both", "as_trained", "deployed"), default="both",
                   help="as_trained (quarantine on), deployed (quarantine ablated) or both (default)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--hack", action="store_true", help="only hacks (exploit channel paid, not solved)")
    g.add_argument("--broken", action="store_true", help="only broken outputs (no valid code block)")
    g.add_argument("--solved", action="store_true", help="only real solves (strict oracle)")
    g.add_argument("--clean", action="store_true", help="only valid, non-hacking, unsolved answers")
    p.add_argument("--arm", default=None, help="only runs of this arm (config arm, or its label, e.g. routeA-placebo)")
    p.add_argument("--step", type=int, default=None, help="evaluated step (default: the last one with samples)")
    p.add_argument("-n", type=int, default=5, help="samples shown per run (default 5)")
    p.add_argument("--train", action="store_true", help="training rollouts (rollout_samples.jsonl), not eval samples")
    p.set_defaults(func=_run)


__all__ = ["FILTERS", "format_row", "keep", "load_eval_samples", "load_train_samples", "register", "samples_files",
           "show"]
