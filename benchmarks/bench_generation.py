"""Generation speed: merged-weight adapter vs the wrapped (per-module adapter) path.

Same model, same run, same prompts. Greedy decoding, no EOS, so every row makes exactly
--new-tokens tokens. Reports tokens/s for the base model (adapter off: the floor), the
wrapped path (adapter computed in every module at every step) and the merged path (blocks
folded into W for the pass), and checks that merged and wrapped agree on tokens and logits.

    flock /tmp/vgrout-heavy.lock .venv/bin/python benchmarks/bench_generation.py
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time

import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

from vgrout.adapter import AdapterConfig, attach


def build(args: argparse.Namespace) -> Qwen3ForCausalLM:
    torch.manual_seed(0)
    cfg = Qwen3Config(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                      head_dim=32, intermediate_size=384, vocab_size=1024, max_position_embeddings=512)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    return Qwen3ForCausalLM(cfg).to(device=args.device, dtype=dtype).eval()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed_generate(model, ids, new_tokens: int, repeats: int, device: str, ctx=contextlib.nullcontext):
    """Median wall time of `repeats` generations; `ctx()` is entered around each (merge cost included)."""
    kw = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=0,
              eos_token_id=None, output_logits=True, return_dict_in_generate=True)
    with torch.no_grad():
        with ctx():
            model.generate(ids, **{**kw, "max_new_tokens": 4, "min_new_tokens": 4})  # warm-up
        times, out = [], None
        for _ in range(repeats):
            sync(device)
            t0 = time.perf_counter()
            with ctx():
                out = model.generate(ids, **kw)
            sync(device)
            times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--r", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model = build(args)
    n_params = sum(p.numel() for p in model.parameters())
    adapter = attach(model, AdapterConfig(r=args.r))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # a "trained" adapter, so merged and wrapped really differ from base
        for p in adapter.parameters("all"):
            p.add_(0.02 * torch.randn(p.shape, generator=gen).to(p.device))
    ids = torch.randint(1, 1024, (args.batch, args.prompt_len), generator=gen).to(args.device)
    n_tok = args.batch * args.new_tokens

    with adapter.mode("base"):
        t_base, out_base = timed_generate(model, ids, args.new_tokens, args.repeats, args.device)
    t_hook, out_hook = timed_generate(model, ids, args.new_tokens, args.repeats, args.device)
    t_merged, out_merged = timed_generate(model, ids, args.new_tokens, args.repeats, args.device,
                                          ctx=lambda: adapter.merged("full"))

    same = bool(torch.equal(out_hook.sequences, out_merged.sequences))
    logit_diff = max(float((a.float() - b.float()).abs().max()) for a, b in zip(out_hook.logits, out_merged.logits))
    differs_from_base = not torch.equal(out_base.sequences, out_hook.sequences)
    rows = [("base (adapter off)", t_base), ("wrapped (hook path)", t_hook), ("merged (incl. merge+restore)", t_merged)]
    print(f"Qwen3 {n_params / 1e6:.2f}M params, r={args.r}, {len(adapter.module_names)} wrapped modules, "
          f"batch {args.batch} x {args.new_tokens} new tokens, prompt {args.prompt_len}, "
          f"{args.device}/{args.dtype}, {args.threads} thread(s), median of {args.repeats}")
    for name, t in rows:
        print(f"  {name:30s} {n_tok / t:10.1f} tok/s   ({t:.3f} s)")
    print(f"  merged speed-up over wrapped: {t_hook / t_merged:.2f}x")
    print(f"  greedy tokens merged == wrapped: {same}; max |logit diff| = {logit_diff:.2e}; "
          f"adapter changes the tokens vs base: {differs_from_base}")
    print(json.dumps({"tok_s_base": n_tok / t_base, "tok_s_wrapped": n_tok / t_hook, "tok_s_merged": n_tok / t_merged,
                      "tokens_equal": same, "max_logit_diff": logit_diff, "params": n_params, **vars(args)}))
    if not same:
        raise SystemExit("merged and wrapped greedy tokens differ")


if __name__ == "__main__":
    main()
