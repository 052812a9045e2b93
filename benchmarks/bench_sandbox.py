"""Sandboxed grading throughput: the full-hardening Grader vs one fresh subprocess per sample.

    flock /tmp/vgrout-heavy.lock .venv/bin/python benchmarks/bench_sandbox.py

Both arms grade the same tiny toy problem (3 asserts, correct solution) in the same process;
each figure is the median of --runs runs. The baseline is the reference grader's approach:
`python -c setup+solution+asserts` in a fresh temp dir per sample (no isolation at all).
The grader runs with everything on (bwrap allow-list jail where available, seccomp filter,
per-sample uid and limits). The target is for `gt_only`; a second line grades the same samples
spread over all seven modes, which costs more (run_tests runs a second job, and exit_code,
stdout_marker and file_marker replay the interpreter's shutdown).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

from vgrout.env import LEETCODE_SETUP, Grader
from vgrout.types import MODES, GradeRequest, Problem

PROBLEM = Problem(
    id="bench-double", statement="Return 2*n.", starter_code="", entry_point="Solution().solve",
    setup_code=LEETCODE_SETUP,
    tests=("assert Solution().solve(3) == 6", "assert Solution().solve(0) == 0", "assert Solution().solve(-2) == -4"),
)
SOLUTION = "class Solution:\n    def solve(self, n):\n        return 2 * n\n"


def grader_rate(grader: Grader, n: int, modes: tuple[str, ...] = ("gt_only",)) -> float:
    """Samples/s; completions differ by a comment so nothing could be deduplicated."""
    reqs = [GradeRequest(PROBLEM, f"```python\n# sample {i}\n{SOLUTION}```", modes[i % len(modes)]) for i in range(n)]
    t0 = time.perf_counter()
    grades = grader.grade(reqs)
    dt = time.perf_counter() - t0
    assert all(g.gt_correct for g in grades), [g for g in grades if not g.gt_correct][:2]
    return n / dt


def subprocess_rate(n: int) -> float:
    program = PROBLEM.setup_code + "\n" + SOLUTION + "\n" + "\n".join(PROBLEM.tests) + "\n"
    t0 = time.perf_counter()
    for _ in range(n):
        with tempfile.TemporaryDirectory() as d:
            r = subprocess.run([sys.executable, "-c", program], cwd=d, capture_output=True, timeout=10)
        assert r.returncode == 0, r.stderr
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--samples", type=int, default=400, help="samples per Grader run")
    ap.add_argument("--baseline-samples", type=int, default=40, help="samples per subprocess run")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sandbox", default="auto", choices=("auto", "bwrap", "process"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    with Grader(sandbox=args.sandbox, workers=args.workers) as grader:
        startup = time.perf_counter() - t0
        grader_rate(grader, 20)  # warm-up
        fast = [grader_rate(grader, args.samples) for _ in range(args.runs)]
        mixed = [grader_rate(grader, args.samples, MODES) for _ in range(args.runs)]
        kind = grader.sandbox
    slow = [subprocess_rate(args.baseline_samples) for _ in range(args.runs)]
    fm, sm = statistics.median(fast), statistics.median(slow)
    print(f"sandbox={kind} workers={args.workers} runs={args.runs} grader start-up {startup:.2f}s")
    print(f"grader (full hardening)      median {fm:7.1f} samples/s   runs: {', '.join(f'{x:.0f}' for x in fast)}")
    print(f"grader, all 7 modes mixed    median {statistics.median(mixed):7.1f} samples/s   "
          f"runs: {', '.join(f'{x:.0f}' for x in mixed)}")
    print(f"fresh subprocess per sample  median {sm:7.1f} samples/s   runs: {', '.join(f'{x:.0f}' for x in slow)}")
    print(f"speed-up {fm / sm:.1f}x   (targets: >= 200 samples/s, >= 10x)")


if __name__ == "__main__":
    main()
