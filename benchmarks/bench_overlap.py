"""What overlapping grading with the step's forwards would save, measured on the vgrout step's own pieces.

    flock /tmp/vgrout-heavy.lock .venv/bin/python benchmarks/bench_overlap.py

Grading runs in the sandbox's worker processes; the trainer waits for it. Forwards that do
not need the rewards (the KL reference on every row; the gate's feature forward) could run
while it works. This times, on the benchmark's default workload (toy model, 8 x 8, T 16,
`bench_vs_trl.BenchSpec`), each step's batch: grading alone, the reference forward over all
rows alone, and both at once (grading in a thread: the thread only waits on the workers'
pipes). Saving = grade + reference - both. It also times grading through
`vgrout.env.dedup.DedupGrader` (each distinct completion once) and the distinct share. It
does not change the trainer: wiring either into `vgrout.train` is separate work, and this
says what each is worth here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_vs_trl import BenchSpec, machine, vgrout_config  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="runs/bench/bench_overlap.json")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from vgrout.env import Grader
    from vgrout.train.loop import build_run, generate_batch, grade_batch, sample_prompts
    from vgrout.train.step import reference_logps

    spec = BenchSpec(threads=args.threads)
    import tempfile

    from vgrout.env.dedup import DedupGrader

    res: dict[str, list[float]] = {"generate": [], "grade": [], "reference_all_rows": [], "grade_with_reference": [],
                                   "grade_dedup": [], "distinct_frac": []}
    with Grader(sandbox="auto", workers=args.workers) as grader, tempfile.TemporaryDirectory() as tmp:
        run = build_run(vgrout_config(spec, "vanilla"), Path(tmp) / "run")
        cfg = run.cfg
        for step in range(args.steps + 1):
            specs = sample_prompts(run.problems, run.mode_of, step, cfg.prompts_per_step, cfg.seed, cfg.unhackable_frac,
                                   cfg.system_prompt)
            t = time.perf_counter()
            r = generate_batch(run, specs, step)
            t_gen = time.perf_counter() - t
            t = time.perf_counter()
            grade_batch(grader, specs, r)
            t_grade = time.perf_counter() - t
            t = time.perf_counter()
            reference_logps(run.adapter, run.model, r, cfg.micro_batch, True, {})
            t_ref = time.perf_counter() - t
            t = time.perf_counter()
            th = threading.Thread(target=grade_batch, args=(grader, specs, r))
            th.start()
            reference_logps(run.adapter, run.model, r, cfg.micro_batch, True, {})
            th.join()
            t_both = time.perf_counter() - t
            dedup = DedupGrader(grader)
            t = time.perf_counter()
            grade_batch(dedup, specs, r)
            t_dedup = time.perf_counter() - t
            if step:  # step 0 warms up
                for k, v in zip(res, (t_gen, t_grade, t_ref, t_both, t_dedup, dedup.graded / dedup.requests)):
                    res[k].append(v)
    med = {k: statistics.median(v) for k, v in res.items()}
    med["saving"] = med["grade"] + med["reference_all_rows"] - med["grade_with_reference"]
    for k, v in med.items():
        print(f"  {k:22s} {v:.4f}" + ("" if k == "distinct_frac" else " s"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"median_s": med, "steps": res, "machine": machine(), "args": vars(args)}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
