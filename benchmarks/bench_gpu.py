"""The real-model path on a GPU: Qwen3-4B's published shape, random init, bf16, nothing downloaded.

    python benchmarks/bench_gpu.py                                 # CUDA: 3 GRPO steps each of vanilla and routeA,
                                                                   # 8 prompts x 4 samples x 1024 forced new tokens
    python benchmarks/bench_gpu.py --device cpu --tiny             # the same code on a tiny Qwen3 (CI, < 2 min)

The model is `Qwen3ForCausalLM` built from `src/vgrout/data/qwen3_4b_config.json` (hidden 2560,
36 layers, 32 query / 8 KV heads, head_dim 128, FFN 9728, vocab 151,936) with random weights, the
tokenizer a byte-level BPE trained locally with Qwen3's chat template (`vgrout.localqwen`). Every
step runs the trainer's own `grpo_step` from the `leetcode-4b` preset. Generation is forced to its
full length by a logit mask on the eos ids (every row makes exactly max_new_tokens tokens).

Rewards: a random model never solves a LeetCode problem, so the real grader would pay 0 to every
row and every group would be skipped (no update to time). The benchmark pays a fixed rule on the
completion text instead (same as the trainer tests' stand-in), so `time_grade` here is not the
sandbox's cost: `benchmarks/bench_sandbox.py` times that.

Reported per arm and step: wall time and its phase split (the step's own timing metrics),
generation tokens/s, and peak GPU memory (peak process RSS on CPU). Then the same generation
(the arm's last-step prompts, G samples each, same length) through plain `transformers`
`model.generate` with the adapter as per-module wrapped Linears: the reference's path.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from vgrout.env.problems import load_medhard_jsonl
from vgrout.localqwen import QWEN3_4B_CONFIG, TINY_QWEN3, qwen3_config, qwen3_style_tokenizer
from vgrout.pairs import load_pairs
from vgrout.rollout import eos_token_ids, render_prompts
from vgrout.train.data import sample_prompts
from vgrout.train.loop import build_run, grpo_step
from vgrout.train.distributed import oom_guard
from vgrout.train.config import preset
from vgrout.types import Grade, Problem

PHASES = ("time_generate", "time_grade", "time_gate", "time_old_logps", "time_reference", "time_fwd_bwd",
          "time_optimizer")


class RuleReward:
    """Fixed rule on the text -> reward (groups get variance); not the sandbox (see the docstring)."""

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

    def grade(self, requests):
        out = []
        for req in requests:
            h = sum(map(ord, req.completion))
            out.append(Grade(reward=[0.0, 0.5, 3.5][h % 3], format_ok=True, gt_correct=False, channel_fired=False,
                             exploited=False, mode=req.mode))
        return out


def pair_problems() -> list[Problem]:
    """LeetCode-length problems when no $VGROUT_LEETCODE_JSONL is set: parsed back from the
    bundled LeetCode pairs' rendered prompts (statement, method name, starter code)."""
    pat = re.compile(r"PROBLEM:\n(?P<st>.*?)\n\nYour solution to the problem should be a method of the class Solution "
                     r"called (?P<fn>\w+) .*?starter code:\n```python\n(?P<starter>.*?)\n```", re.S)
    out, seen = [], set()
    for p in load_pairs("leetcode"):
        user = next(m["content"] for m in p.messages if m["role"] == "user")
        m = pat.search(user)
        if m is None:
            raise ValueError(f"pair {p.id}: prompt does not have the LeetCode layout")
        if m["fn"] in seen:
            continue
        seen.add(m["fn"])
        out.append(Problem(id=f"pair-{m['fn']}", statement=m["st"], starter_code=m["starter"],
                           entry_point=f"Solution().{m['fn']}", setup_code="", tests=("assert True",)))
    return out


def write_model_dir(root: Path, texts: list[str], shape, vocab: int) -> Path:
    """config.json + tokenizer + generation config, no weights (the run uses random_init)."""
    from transformers import GenerationConfig

    tok = qwen3_style_tokenizer(texts, vocab)
    cfg = qwen3_config(tok, shape)
    cfg.save_pretrained(root)
    tok.save_pretrained(root)
    GenerationConfig(eos_token_id=[tok.eos_token_id], pad_token_id=tok.pad_token_id).save_pretrained(root)
    return root


def force_length(model, eos_ids: list[int]):
    """Mask the eos logits at the output head, so every sampled row runs to max_new_tokens."""
    head = model.get_output_embeddings()

    def hook(_mod, _inp, out):
        out[..., eos_ids] = torch.finfo(out.dtype).min
        return out

    return head.register_forward_hook(hook)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_memory_gib(device: str) -> tuple[str, float]:
    if device.startswith("cuda"):
        return "peak GPU mem (GiB)", torch.cuda.max_memory_allocated() / 2**30
    return "peak RSS (GiB, process)", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def hf_generate(run, specs, device: str) -> dict:
    """The same prompts through `transformers` generate, adapter wrapped per module (no merge)."""
    cfg, model, tok = run.cfg, run.model, run.tokenizer
    ids, mask = render_prompts(tok, [list(s.messages) for s in specs])
    ids, mask = ids.to(device), mask.to(device)
    kw = dict(do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k or None,
              max_new_tokens=cfg.max_new_tokens, min_new_tokens=cfg.max_new_tokens,
              num_return_sequences=cfg.group_size, use_cache=True, pad_token_id=tok.pad_token_id)
    with torch.no_grad():
        model.generate(input_ids=ids[:1], attention_mask=mask[:1], **{**kw, "max_new_tokens": 4, "min_new_tokens": 4,
                                                                       "num_return_sequences": 1})  # warm-up
        sync(device)
        t0 = time.perf_counter()
        out = model.generate(input_ids=ids, attention_mask=mask, **kw)
        sync(device)
        dt = time.perf_counter() - t0
    new = out.shape[1] - ids.shape[1]
    n_tok = out.shape[0] * new
    return {"rows": int(out.shape[0]), "new_tokens": int(new), "seconds": dt, "tok_s": n_tok / dt}


def bench_arm(arm: str, base_overrides: dict, args, hf: bool) -> dict:
    cfg = preset("leetcode-4b").with_overrides({**base_overrides, "arm": arm})
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run = build_run(cfg, Path(tmp))
        build_s = time.perf_counter() - t0
        handle = force_length(run.model, eos_token_ids(run.tokenizer, run.model))
        steps = []
        grader = RuleReward()
        for _ in range(cfg.steps):
            sync(args.device)
            t = time.perf_counter()
            with oom_guard(cfg, f"{arm} step {run.step}"):
                metrics, _, _ = grpo_step(run, grader)
            sync(args.device)
            metrics["wall"] = time.perf_counter() - t
            n_tok = cfg.rollouts_per_step * cfg.max_new_tokens
            if metrics["completion_len"] != cfg.max_new_tokens:
                raise RuntimeError(f"generation was not forced to full length: mean {metrics['completion_len']}")
            metrics["gen_tok_s"] = n_tok / metrics["time_generate"]
            steps.append(metrics)
            run.step += 1
        mem_name, mem = peak_memory_gib(args.device)
        hf_row = None
        if hf:
            specs = sample_prompts(run.problems, run.mode_of, run.step - 1, cfg.prompts_per_step, cfg.seed,
                                   cfg.unhackable_frac, cfg.system_prompt)
            hf_row = hf_generate(run, specs, args.device)
        handle.remove()
        n_params = sum(p.numel() for p in run.model.parameters())
        del run
    return {"arm": arm, "build_s": build_s, "steps": steps, "mem_name": mem_name, "peak_mem_gib": mem, "hf": hf_row,
            "params": n_params}


def table(results: list[dict]) -> str:
    mem_name = results[0]["mem_name"]
    head = ["arm", "step", "wall s"] + [p.removeprefix("time_") for p in PHASES] + ["gen tok/s", mem_name]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        for i, m in enumerate(r["steps"]):
            cells = [r["arm"], str(i), f"{m['wall']:.2f}"] + [f"{m.get(p, float('nan')):.2f}" for p in PHASES]
            cells += [f"{m['gen_tok_s']:.0f}", f"{r['peak_mem_gib']:.1f}" if i == len(r["steps"]) - 1 else ""]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="tiny Qwen3 and a small batch (CPU CI)")
    ap.add_argument("--config", default=None, help="a Qwen3 config json (default: the repo's Qwen3-4B shape)")
    ap.add_argument("--dtype", default=None, choices=["bfloat16", "float32"], help="default bf16 (float32 with --tiny)")
    ap.add_argument("--arms", default="vanilla,routeA")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=None, help="prompts per step (default 8; 2 with --tiny)")
    ap.add_argument("--group", type=int, default=4)
    ap.add_argument("--new-tokens", type=int, default=None, help="forced completion length (default 1024; 32 with --tiny)")
    ap.add_argument("--micro-batch", type=int, default=8)
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--problems", default=os.environ.get("VGROUT_LEETCODE_JSONL", ""),
                    help="LeetCode medhard jsonl for the prompts (default $VGROUT_LEETCODE_JSONL, else the pairs' problems)")
    ap.add_argument("--no-hf-generate", action="store_true", help="skip the transformers.generate comparison")
    ap.add_argument("--out", default="runs/bench/gpu.json")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda but no CUDA device is available; use --device cpu --tiny for the CPU check")
    shape = TINY_QWEN3 if args.tiny else (args.config or str(QWEN3_4B_CONFIG))
    dtype = args.dtype or ("float32" if args.tiny else "bfloat16")
    prompts = args.prompts or (2 if args.tiny else 8)
    new_tokens = args.new_tokens or (32 if args.tiny else 1024)

    problems = load_medhard_jsonl(args.problems) if args.problems else pair_problems()
    texts = [p.statement + "\n" + p.starter_code for p in problems] + [p.hack + p.clean for p in load_pairs("leetcode")]
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = write_model_dir(Path(tmp) / "model", texts, shape, vocab=1024 if args.tiny else 8192)
        prob_path = Path(tmp) / "problems.jsonl"
        from vgrout.env.problems import write_problems_jsonl

        write_problems_jsonl(problems, prob_path)
        overrides = {"model": str(model_dir), "random_init": True, "dtype": dtype, "device": args.device,
                     "problems": str(prob_path), "steps": args.steps, "warmup_steps": 0, "prompts_per_step": prompts,
                     "group_size": args.group, "max_new_tokens": new_tokens, "micro_batch": args.micro_batch,
                     "eval_every": 0, "checkpoint_every": 0, "pair_modes": ("run_tests",), "refresh_every": 0,
                     "gradient_checkpointing": args.gradient_checkpointing, "unhackable_frac": 0.5}
        if args.tiny:
            overrides["adapter_r"] = 4
        arms = [a for a in args.arms.split(",") if a]
        results = [bench_arm(a, overrides, args, hf=(i == 0 and not args.no_hf_generate)) for i, a in enumerate(arms)]
    total = time.perf_counter() - t_start
    first = results[0]
    dev_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"bench_gpu: {first['params'] / 1e6:,.1f}M params ({'tiny' if args.tiny else 'Qwen3-4B shape'}), {dtype}, "
          f"{dev_name}, {prompts} prompts x {args.group} samples x {new_tokens} forced new tokens, "
          f"micro_batch {args.micro_batch}, gradient checkpointing {args.gradient_checkpointing}, torch {torch.__version__}")
    print(table(results))
    for r in results:
        later = [m["wall"] for m in r["steps"][1:]] or [r["steps"][0]["wall"]]
        print(f"{r['arm']}: build {r['build_s']:.1f} s, median step after the first {statistics.median(later):.2f} s, "
              f"median generation {statistics.median(m['gen_tok_s'] for m in r['steps']):.0f} tok/s")
    if first["hf"] is not None:
        h = first["hf"]
        ours = statistics.median(m["gen_tok_s"] for m in first["steps"])
        print(f"transformers generate, adapter wrapped per module ({first['arm']}, same prompts, {h['rows']} rows x "
              f"{h['new_tokens']} tokens): {h['tok_s']:.0f} tok/s ({h['seconds']:.2f} s); vgrout merged-weight "
              f"generation {ours:.0f} tok/s = {ours / h['tok_s']:.2f}x")
    print(f"total wall {total:.1f} s")
    summary = {"argv": sys.argv, "device": dev_name, "dtype": dtype, "tiny": args.tiny, "prompts": prompts,
               "group": args.group, "new_tokens": new_tokens, "total_s": total,
               "results": [dataclasses.asdict(x) if dataclasses.is_dataclass(x) else x for x in results]}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(out.name + ".tmp")
    tmp_out.write_text(json.dumps(summary, indent=2, default=str))
    os.replace(tmp_out, out)
    return summary


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        main()
