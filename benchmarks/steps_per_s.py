"""Steps per second of finished training runs, from their metrics.jsonl step clocks.

    .venv/bin/python benchmarks/steps_per_s.py runs/a runs/b ...

A step's time is time_generate + time_grade + time_optimise (what `grpo_step` clocks: start-
up, evaluation and checkpoint writes are left out). With overlap_grading the grading phase's
wall time is time_overlapped + time_grade_wait (the forwards beside the grader, then the wait)
instead of time_grade, which is the grader's own time until the grades exist. steps/s = steps /
the sum of step times.
Also prints the per-phase medians and the mean number of live rows (the update's size: a
run whose groups all earn equal rewards skips its update, so steps/s depends on the
trajectory as well as on the code).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

PHASES = ("time_generate", "time_grade", "time_optimise")
OVERLAP = ("time_overlapped", "time_grade_wait")  # overlap_grading runs only


def step_seconds(row: dict) -> float:
    """The step's wall time from its phase clocks."""
    grading = row["time_overlapped"] + row["time_grade_wait"] if "time_overlapped" in row else row["time_grade"]
    return row["time_generate"] + grading + row["time_optimise"]


def summary(run_dir: Path) -> dict:
    files = sorted(run_dir.rglob("metrics.jsonl"))
    if not files:
        raise SystemExit(f"{run_dir}: no metrics.jsonl under it; pass a finished run directory")
    rows = [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]
    rows = [r for r in rows if all(k in r for k in PHASES)]
    step_s = [step_seconds(r) for r in rows]
    return {"run": str(run_dir), "steps": len(rows), "steps_per_s": len(rows) / sum(step_s),
            **{k.removeprefix("time_"): statistics.median(r.get(k, 0.0) for r in rows) for k in PHASES + OVERLAP},
            "rows_live_mean": statistics.mean(r.get("rows_live", 0) for r in rows)}


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    print("| run | steps | steps/s | generate | grade | overlapped | grade wait | optimise | live rows (mean) |\n"
          "|---|---|---|---|---|---|---|---|---|")
    for d in argv:
        s = summary(Path(d))
        print(f"| {s['run']} | {s['steps']} | {s['steps_per_s']:.2f} | {s['generate']:.3f} | {s['grade']:.3f} | "
              f"{s['overlapped']:.3f} | {s['grade_wait']:.3f} | {s['optimise']:.3f} | {s['rows_live_mean']:.1f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
