"""Where a training forward's time goes: completion log-probs with the adapter off, on, and with backward.

    flock /tmp/vgrout-heavy.lock .venv/bin/python benchmarks/bench_logps.py                  # long128 shape
    flock /tmp/vgrout-heavy.lock .venv/bin/python benchmarks/bench_logps.py --workload default

One batch of the benchmark's workload (`bench_vs_trl.WORKLOADS`, toy model, 8 x 8) is
sampled, then `--rows` rows are scored with `vgrout.rollout.logps.completion_logps` (shared
prompt) three ways: the base model (adapter off: the KL reference's cost), the full adapter
without grad, and the full adapter with backward (the policy update's cost), each adapter row
on the fused path (the default) and the per-block reference (`adapter.unfused()`). Reports the
min CPU time of `--repeats` (steadier than wall time on a shared machine).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_vs_trl import WORKLOADS, BenchSpec, vgrout_config  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="long128", choices=sorted(WORKLOADS))
    ap.add_argument("--rows", type=int, default=40, help="rows scored (the update sees the live rows, ~60%% of 64)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from vgrout.rollout.logps import completion_logps
    from vgrout.train.direction import adapter_context
    from vgrout.train.loop import build_run, generate_batch, sample_prompts

    spec = replace(BenchSpec(threads=args.threads), **WORKLOADS[args.workload])
    with tempfile.TemporaryDirectory() as tmp:
        run = build_run(vgrout_config(spec, "vanilla"), Path(tmp) / "run")
    if spec.min_new_tokens:
        run.model.generation_config.min_new_tokens = spec.min_new_tokens
    cfg = run.cfg
    specs = sample_prompts(run.problems, run.mode_of, 0, cfg.prompts_per_step, cfg.seed, cfg.unhackable_frac,
                           cfg.system_prompt)
    r = generate_batch(run, specs, 0)
    sl = slice(0, args.rows)
    params = list(run.adapter.parameters("all"))

    def score(mode: str, backward: bool, fused: bool) -> None:
        for p in params:
            p.grad = None
        with (torch.enable_grad() if backward else torch.no_grad()), \
                (nullcontext() if fused else run.adapter.unfused()):
            lp, _ = completion_logps(run.model, r.prompt_ids[sl], r.prompt_mask[sl], r.completion_ids[sl],
                                     r.completion_mask[sl], context=adapter_context(run.adapter, mode, None))
            if backward:
                (lp * r.completion_mask[sl]).sum().backward()

    print(f"workload {args.workload}: {args.rows} rows x T {r.completion_ids.shape[1]}, prompt {r.prompt_ids.shape[1]}, "
          f"{args.threads} thread(s), min CPU seconds of {args.repeats}")
    for name, mode, bwd, fused in [("forward, adapter off (reference)", "base", False, True),
                                   ("forward, full adapter, per block", "full", False, False),
                                   ("forward, full adapter, fused", "full", False, True),
                                   ("forward + backward, per block", "full", True, False),
                                   ("forward + backward, fused (update)", "full", True, True)]:
        score(mode, bwd, fused)
        best = float("inf")
        for _ in range(args.repeats):
            t = time.process_time()
            score(mode, bwd, fused)
            best = min(best, time.process_time() - t)
        print(f"  {name:42s} {best:.3f} s")


if __name__ == "__main__":
    main()
