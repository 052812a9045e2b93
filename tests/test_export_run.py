"""`vgrout export RUN`: what the arm deploys (vanilla: the whole adapter; routeA: the deployed
block), as a PEFT LoRA and as merged weights + tokenizer, each loaded in a fresh interpreter
without vgrout and matched against the logits of the model vgrout evaluates."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest
import torch
from _cli import run_cli

from vgrout.adapter import AdapterConfig, attach
from vgrout.eval.settings import deploys_whole_adapter
from vgrout.export_cli import export_run, load_base

IDS = torch.tensor([[3, 17, 42, 8, 99, 5, 23, 61]])


def _run_dir(tmp_path, arm: str, record_arm: bool):
    """A run directory as `vgrout train --preset smoke` writes it, on the tiny toy world, with a
    checkpoint whose blocks both moved away from their init (so the quarantine matters)."""
    from vgrout.train.config import smoke

    cfg = smoke().with_overrides({"arm": arm}).to_dict()
    run = tmp_path / f"{arm}_s0"
    ckpt = run / "checkpoints" / "step_000004"
    ckpt.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(cfg))
    model, _, _ = load_base(cfg)
    adapter = attach(model, AdapterConfig(r=cfg["adapter_r"], targets=tuple(cfg["adapter_targets"])))
    torch.manual_seed(1)
    with torch.no_grad():
        for p in adapter.parameters("all"):
            p.add_(torch.randn_like(p) * 0.3)
    adapter.save(ckpt / "adapter.safetensors")
    (ckpt / "state.json").write_text(json.dumps({"step": 4, **({"arm": arm} if record_arm else {})}))
    return run, cfg


def _evaluated_logits(run, cfg) -> torch.Tensor:
    """The logits of the model `vgrout eval` samples from as "deployed" for this arm."""
    from vgrout.adapter import load_adapter

    model, _, _ = load_base(cfg)
    adapter = load_adapter(model, run / "checkpoints" / "step_000004" / "adapter.safetensors")
    with torch.no_grad(), adapter.mode("full" if deploys_whole_adapter(run, run / "checkpoints" / "step_000004") else "deployed"):
        want = model(IDS).logits
    with torch.no_grad(), adapter.mode("deployed"):
        deployed_block_only = model(IDS).logits
    return want, deployed_block_only


FRESH = """
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel
d = torch.load(sys.argv[3])
peft_dir, merged_dir = sys.argv[1], sys.argv[2]
cfg = json.load(open(peft_dir + "/adapter_config.json"))
base = AutoModelForCausalLM.from_pretrained(cfg["base_model_name_or_path"]).eval()
m = PeftModel.from_pretrained(base, peft_dir).eval()
merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
tok = AutoTokenizer.from_pretrained(merged_dir)
with torch.no_grad():
    a, b = m(d["ids"]).logits, merged(d["ids"]).logits
assert not any(k.startswith("vgrout") for k in sys.modules), "vgrout was imported"
print(json.dumps({"peft": float((a - d["want"]).abs().max()), "merged": float((b - d["want"]).abs().max()),
                  "vocab": len(tok)}))
"""


@pytest.mark.parametrize("arm,record_arm", [("vanilla", True), ("routeA", False)])
def test_export_matches_the_evaluated_model_in_a_fresh_interpreter(tmp_path, arm, record_arm):
    run, cfg = _run_dir(tmp_path, arm, record_arm)
    want, deployed_only = _evaluated_logits(run, cfg)
    old = os.umask(0o022)
    try:
        info = export_run(run, tmp_path / "peft")
        minfo = export_run(run, tmp_path / "merged", merged=True)
    finally:
        os.umask(old)
    r = cfg["adapter_r"]
    assert info["arm"] == arm and info["step"] == 4 and minfo["format"] == "merged"
    assert info["exported"] == ("full" if arm == "vanilla" else "deployed")
    assert info["lora_rank"] == (4 * r if arm == "vanilla" else 2 * r)  # exact: two (or one) rank-2r block deltas
    peft_cfg = json.loads((tmp_path / "peft" / "adapter_config.json").read_text())
    assert peft_cfg["base_model_name_or_path"] == info["base_model"] and os.path.isdir(info["base_model"])
    assert (tmp_path / "merged" / "tokenizer.json").is_file()
    for d in (tmp_path / "peft", tmp_path / "merged"):  # the umask's permissions, not mkdtemp's 0700
        assert stat.S_IMODE(d.stat().st_mode) == 0o755
        assert all(stat.S_IMODE(f.stat().st_mode) == 0o644 for f in d.iterdir())
    if arm == "vanilla":  # the whole adapter differs from the deployed block alone
        assert float((want - deployed_only).abs().max()) > 1e-2
    torch.save({"ids": IDS, "want": want}, tmp_path / "want.pt")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run([sys.executable, "-c", FRESH, str(tmp_path / "peft"), str(tmp_path / "merged"),
                          str(tmp_path / "want.pt")], capture_output=True, text=True, timeout=300,
                         env={**env, "OMP_NUM_THREADS": "1"}, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["peft"] < 1e-4 and got["merged"] < 1e-4, got


def test_export_refuses_bad_input(tmp_path):
    run, _ = _run_dir(tmp_path, "routeA", True)
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at step 3; it has steps \[4\]"):
        export_run(run, tmp_path / "x", step=3)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(FileExistsError, match="not an empty directory"):
        export_run(run, tmp_path / "full")
    state = run / "checkpoints" / "step_000004" / "state.json"
    state.write_text(json.dumps({"step": 4, "arm": "vanilla"}))
    with pytest.raises(ValueError, match="says arm 'vanilla' but config.json says 'routeA'"):
        export_run(run, tmp_path / "y")
    proc = run_cli(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "z")])
    assert proc.returncode != 0 and "is not a directory" in proc.stderr and "Traceback" not in proc.stderr
