"""benchmarks/bench_gpu.py on CPU: the same code as the GPU run on a tiny Qwen3, and the committed
Qwen3-4B shape checked without allocating it (meta device)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "benchmarks" / "bench_gpu.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_qwen3_4b_config_has_the_published_shape():
    from transformers import Qwen3ForCausalLM

    from vgrout.localqwen import qwen3_config, qwen3_style_tokenizer

    cfg = qwen3_config(qwen3_style_tokenizer(["def f(x):\n    return x\n"], 300), "4b")
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim,
            cfg.intermediate_size, cfg.vocab_size) == (2560, 36, 32, 8, 128, 9728, 151936)
    with torch.device("meta"):
        model = Qwen3ForCausalLM(cfg)
    n = sum(p.numel() for p in model.parameters())
    assert 4.0e9 < n < 4.1e9  # Qwen3-4B: 4.02B parameters (tied embeddings)


def test_bench_gpu_cpu_tiny_runs_both_arms_and_the_hf_generate_path(tmp_path, monkeypatch):
    monkeypatch.delenv("VGROUT_LEETCODE_JSONL", raising=False)  # the bundled pairs' problems
    bench = load_bench()
    out = tmp_path / "gpu.json"
    summary = bench.main(["--device", "cpu", "--tiny", "--steps", "2", "--out", str(out)])
    assert json.loads(out.read_text())["tiny"] is True
    arms = [r["arm"] for r in summary["results"]]
    assert arms == ["vanilla", "routeA"]
    for r in summary["results"]:
        assert len(r["steps"]) == 2
        for m in r["steps"]:
            assert m["completion_len"] == 32 and m["gen_tok_s"] > 0  # forced full length
            assert all(m[p] >= 0 for p in bench.PHASES if p in m)
    hf = summary["results"][0]["hf"]
    assert hf["rows"] == 2 * 4 and hf["new_tokens"] == 32 and hf["tok_s"] > 0
