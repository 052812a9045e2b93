"""How vgrout's step time grows with group size G, prompts per step P and completion length T.

    flock /tmp/vgrout-heavy.lock .venv/bin/python benchmarks/bench_scaling.py

One axis at a time around a base point (P 8, G 8, T 16 on the toy model, KL beta 1e-3):
each row builds a fresh run and times `--repeats` steps of `vgrout.train.loop.grpo_step`
after `--warmup`, reporting the median step, the per-phase medians, completion tokens/s and
the time per completion token. The learning rate is tiny so the policy, and with it the
completion lengths, stay put. The toy model stops after ~11 tokens whatever the budget, so
the T axis runs the `long128` workload's rules (`bench_vs_trl.WORKLOADS`) at every length:
eos banned for the whole budget, reward on the first code block; every row then writes T
tokens (T 512 runs past the toy model's 512 trained positions: timing only).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_vs_trl import BenchSpec, VgroutArm, machine, run_interleaved  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="toy:default")
    ap.add_argument("--arm", default="vanilla", help="vgrout arm to time (vanilla, routeA, ...)")
    ap.add_argument("--groups", default="4,8,16", help="G values (P, T at the base point)")
    ap.add_argument("--prompts", default="4,8,16", help="P values")
    ap.add_argument("--lengths", default="32,64,128,256,512", help="T values (new tokens, eos banned)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2, help="grader workers")
    ap.add_argument("--out", default="runs/bench/bench_scaling.json")
    return ap.parse_args(argv)


def _ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from vgrout.env import Grader

    base = BenchSpec(model=args.model, threads=args.threads)
    points = ([("G", replace(base, group=g)) for g in _ints(args.groups)]
              + [("P", replace(base, prompts=p)) for p in _ints(args.prompts)]
              + [("T", replace(base, max_new_tokens=t, min_new_tokens=t, first_block_reward=True))
                 for t in _ints(args.lengths)])
    rows = []
    with Grader(sandbox="auto", workers=args.workers) as grader, tempfile.TemporaryDirectory() as tmp:
        for i, (axis, spec) in enumerate(points):
            arm = VgroutArm(args.arm, spec, grader, Path(tmp) / f"p{i}")
            print(f"{axis}: P={spec.prompts} G={spec.group} T={spec.max_new_tokens}")
            ts = run_interleaved([arm], args.warmup, args.repeats)[arm.name]
            n = spec.prompts * spec.group
            phases = sorted({k for t in ts for k in t.phases})
            rows.append({
                "axis": axis, "P": spec.prompts, "G": spec.group, "T": spec.max_new_tokens, "N": n,
                "median_s": statistics.median(t.seconds for t in ts),
                "mean_completion_len": statistics.mean(t.completion_tokens for t in ts) / n,
                "completion_tok_per_s": statistics.median(t.completion_tokens / t.seconds for t in ts),
                "ms_per_completion_token": 1e3 * statistics.median(t.seconds / t.completion_tokens for t in ts),
                "live_row_frac": statistics.mean(t.live_rows for t in ts) / n,
                "phases_median_s": {k: statistics.median(t.phases.get(k, 0.0) for t in ts) for k in phases},
            })
            del arm
    result = {"arm": args.arm, "base": asdict(base), "warmup": args.warmup, "repeats": args.repeats,
              "machine": machine(), "command": " ".join([Path(sys.executable).name, *sys.argv]), "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(out.suffix + ".tmp")
    tmp_out.write_text(json.dumps(result, indent=2))
    os.replace(tmp_out, out)
    print(table(rows))
    print(f"wrote {out}")
    return 0


def table(rows: list[dict]) -> str:
    keys = ["generate", "grade", "gate", "reference", "fwd_bwd", "optimizer"]
    lines = ["| axis | P | G | T | N | median s/step | mean len | tok/s | ms/tok | live rows | " + " | ".join(keys) + " |",
             "|---|---|---|---|---|---|---|---|---|---|" + "---|" * len(keys)]
    for r in rows:
        ph = r["phases_median_s"]
        lines.append(f"| {r['axis']} | {r['P']} | {r['G']} | {r['T']} | {r['N']} | {r['median_s']:.3f} | "
                     f"{r['mean_completion_len']:.1f} | {r['completion_tok_per_s']:.0f} | "
                     f"{r['ms_per_completion_token']:.2f} | {r['live_row_frac']:.0%} | "
                     + " | ".join(f"{ph.get(k, 0.0):.3f}" for k in keys) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    _t0 = time.time()
    code = main()
    print(f"total {time.time() - _t0:.0f} s")
    sys.exit(code)
