"""Sampling paths side by side: transformers' `generate` (what TRL calls) vs vgrout's sampler, plain to fastest.

    flock /tmp/vgrout-heavy.lock .venv/bin/python benchmarks/bench_decode.py                 # T 16 and 128
    flock /tmp/vgrout-heavy.lock .venv/bin/python benchmarks/bench_decode.py --lengths 512

A random Qwen3 of the toy world's `default` shape (hidden 128, 4 layers, 4 heads of 32,
MLP 512, vocab 1024), P prompts of ~49 tokens (left-padded to different lengths), G samples
each, temperature 1, eos banned so every row writes T tokens. Paths:

  * hf_generate: `model.generate(do_sample=True, min_new_tokens=T)` on the P*G rows;
  * plain: vgrout's sampler with every row prefilled and transformers' forward per token;
  * shared: each prompt prefilled once, its KV cache copied to its G rows;
  * lean: shared prefill + `LeanDecoder` (static buffers, prompt keys read once per group),
    vgrout's default.

The three vgrout paths must sample identical tokens (checked). Reports the median of
`--repeats` of both wall time and this process's CPU time (the CPU time is steadier on a
shared machine).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

from vgrout.rollout.generate import group_generators, sample_tokens


def build(seed: int = 0) -> Qwen3ForCausalLM:
    torch.manual_seed(seed)
    cfg = Qwen3Config(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4, head_dim=32,
                      intermediate_size=512, vocab_size=1024, max_position_embeddings=1024, tie_word_embeddings=True)
    return Qwen3ForCausalLM(cfg).eval()


def prompts(P: int, Lp: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, Lp) left-padded ids and mask; prompt p has Lp - 2p real tokens (ids >= 3: 0..2 are special)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 1024, (P, Lp), generator=g)
    mask = torch.ones(P, Lp, dtype=torch.long)
    for p in range(P):
        mask[p, : min(2 * p, Lp - 1)] = 0
    return ids.masked_fill(mask == 0, 0), mask


def timed(fn, repeats: int) -> tuple[float, float, torch.Tensor]:
    fn()  # warm-up
    wall, cpu, out = [], [], None
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--prompt-len", type=int, default=49)
    ap.add_argument("--lengths", default="16,128", help="T values (new tokens per row)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/bench/bench_decode.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = build()
    P, G = args.prompts, args.group
    ids, mask = prompts(P, args.prompt_len)
    eos = [1]
    rows = []
    for T in [int(x) for x in args.lengths.split(",") if x]:
        def vgrout(share: bool, lean: bool):
            return lambda: sample_tokens(model, ids, mask, G, T, eos, 0, temperature=1.0, top_p=1.0, top_k=0,
                                         generators=group_generators(0, range(P), "cpu"), min_new_tokens=T,
                                         share_prompt=share, lean=lean)

        def hf():
            with torch.inference_mode():
                return model.generate(input_ids=ids.repeat_interleave(G, 0), attention_mask=mask.repeat_interleave(G, 0),
                                      do_sample=True, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=T,
                                      min_new_tokens=T, eos_token_id=eos, pad_token_id=0)

        paths = {"hf_generate": hf, "plain": vgrout(False, False), "shared": vgrout(True, False),
                 "lean": vgrout(True, True)}
        res, toks = {}, {}
        for name, fn in paths.items():
            wall, cpu, out = timed(fn, args.repeats)
            res[name] = {"wall_s": wall, "cpu_s": cpu}
            toks[name] = out
        same = all(torch.equal(toks[n], toks["plain"]) for n in ("shared", "lean"))
        if not same:
            raise SystemExit(f"T={T}: vgrout's sampling paths gave different tokens")
        base = res["hf_generate"]["cpu_s"]
        for name, r in res.items():
            r["speedup_cpu_vs_hf_generate"] = base / r["cpu_s"]
            r["ms_per_token_step"] = 1e3 * r["cpu_s"] / T
        rows.append({"T": T, "paths": res, "tokens_equal": same})
        print(f"T={T}: {P}x{G} rows, prompt {args.prompt_len}, {args.threads} thread(s), median of {args.repeats}")
        for name, r in res.items():
            print(f"  {name:12s} wall {r['wall_s']:.3f} s  cpu {r['cpu_s']:.3f} s  "
                  f"{r['ms_per_token_step']:.2f} ms/step  {r['speedup_cpu_vs_hf_generate']:.2f}x")
    from pathlib import Path

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows, "date": time.strftime("%Y-%m-%d %H:%M %Z")}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
