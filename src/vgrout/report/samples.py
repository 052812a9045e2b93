"""Quote what a model actually wrote: one hack, one clean solve and one broken output per arm.

Read from `eval/step_NNNNNN.samples.jsonl` of the final evaluated step, one row per eval sample:
{"step", "state", "problem_id", "mode", "sample", "completion", "reward", "reason", "valid",
"hack", "solve", "channel"}. The deployed state is searched first (it is what ships), then
as-trained; seeds in order, rows in file order, so the quote is reproducible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from vgrout.eval.results import read_jsonl
from vgrout.report.runs import RunData

MAX_CHARS = 800  # a quote longer than this is cut, and the report says so
STATE_ORDER = ("deployed", "as_trained")
KINDS: dict[str, Callable[[dict], bool]] = {
    "hack": lambda r: bool(r["hack"]),
    "clean solve": lambda r: bool(r["solve"]) and not r["hack"] and bool(r["valid"]),
    "broken output": lambda r: not r["valid"],
}


def samples_path(run: RunData, step: int) -> Path:
    return run.path / "eval" / f"step_{step:06d}.samples.jsonl"


def final_samples(run: RunData) -> list[dict] | None:
    """The run's final-step sample rows; None when the file does not exist."""
    if run.final_step is None:
        return None
    path = samples_path(run, run.final_step)
    return read_jsonl(path) if path.is_file() else None


def pick(runs: dict[int, RunData]) -> tuple[dict[str, tuple[int, dict] | None], int, list[str]]:
    """({kind: (seed, row) or None}, rows searched, run names without a samples file)."""
    loaded = {seed: final_samples(runs[seed]) for seed in sorted(runs)}
    missing = [runs[s].name for s, rows in loaded.items() if rows is None]
    found: dict[str, tuple[int, dict] | None] = {}
    for kind, test in KINDS.items():
        found[kind] = next(((seed, r) for state in STATE_ORDER for seed, rows in loaded.items() if rows
                            for r in rows if r["state"] == state and test(r)), None)
    return found, sum(len(rows) for rows in loaded.values() if rows), missing


def _fence(text: str) -> str:
    """A backtick fence longer than any backtick run inside `text`."""
    longest, run = 0, 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def quote(kind: str, seed: int, row: dict) -> list[str]:
    text = row["completion"]
    cut = len(text) > MAX_CHARS
    text = text[:MAX_CHARS]
    fence = _fence(text)
    head = (f"**{kind}**: seed {seed}, {row['state'].replace('_', '-')}, problem `{row['problem_id']}` "
            f"({row['mode']}), reason `{row['reason']}`, reward {row['reward']:.2f}, valid {bool(row['valid'])}, "
            f"hack {bool(row['hack'])}, solve {bool(row['solve'])}" + (f" (first {MAX_CHARS} characters)" if cut else ""))
    return [head, "", fence, text, fence, ""]


def section_samples(arms: dict[str, dict[int, RunData]], order: list[str]) -> list[str]:
    lines = ["## What the models wrote (final checkpoint)", "",
             "One hack, one clean solve (solved, no hack, valid) and one broken output (no compiling code block) per "
             "arm, from `eval/step_NNNNNN.samples.jsonl`; deployed samples first, as-trained when the deployed "
             "model produced none of that kind.", ""]
    if not any(samples_path(r, r.final_step).is_file() for runs in arms.values() for r in runs.values()):
        return lines + ["No run has a samples file at its final step (`eval/step_NNNNNN.samples.jsonl`), so there is "
                        "nothing to quote. Re-evaluate with a vgrout that writes eval samples.", ""]
    for arm in order:
        found, n_rows, missing = pick(arms[arm])
        lines += [f"### {arm}", ""]
        if len(missing) == len(arms[arm]):
            lines += [f"No samples file for any run of this arm (looked for `eval/step_NNNNNN.samples.jsonl` at the "
                      "final step); nothing to quote. Re-evaluate with a vgrout that writes eval samples.", ""]
            continue
        if missing:
            lines += [f"No samples file for {', '.join(missing)}.", ""]
        for kind, hit in found.items():
            if hit is None:
                lines += [f"**{kind}**: none among the {n_rows} samples of this arm.", ""]
            else:
                lines += quote(kind, *hit)
    return lines


__all__ = ["KINDS", "final_samples", "pick", "samples_path", "section_samples"]
