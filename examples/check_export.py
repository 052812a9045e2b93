"""Check a `vgrout export` against the model vgrout evaluates: max |logit| difference on one toy prompt.

    python examples/check_export.py RUN_DIR EXPORT_DIR

Prints the difference between the PEFT export (loaded by PEFT alone) and vgrout's deployed
model for the run's arm (vanilla/erase: both blocks; others: quarantine ablated), and, for
scale, between the deployed block alone and that model (what an export of the deployed block
would miss for vanilla).
"""
import json
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM
from vgrout.adapter import load_adapter
from vgrout.eval.rundir import deploys_whole_adapter, read_config, pick_checkpoint
from vgrout.export_cli import load_base

if len(sys.argv) != 3:
    raise SystemExit("usage: python examples/check_export.py RUN_DIR EXPORT_DIR")
run, out = sys.argv[1], sys.argv[2]
cfg = read_config(run)
_, ckpt = pick_checkpoint(run)
model, tok, _ = load_base(cfg)
adapter = load_adapter(model, ckpt / "adapter.safetensors")
ids = tok.apply_chat_template([{"role": "user", "content": "Given an integer x, return x + 9."}], add_generation_prompt=True,
                              return_tensors="pt")
ids = ids["input_ids"] if hasattr(ids, "keys") else ids
with torch.no_grad():
    with adapter.mode("full" if deploys_whole_adapter(run, ckpt) else "deployed"):
        want = model(ids).logits
    with adapter.mode("deployed"):
        block_only = model(ids).logits
base_name = json.load(open(f"{out}/adapter_config.json"))["base_model_name_or_path"]
peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_name), out).eval()
with torch.no_grad():
    got = peft(ids).logits
print(f"{cfg['arm']}: export vs evaluated {float((got - want).abs().max()):.2e}; "
      f"deployed block alone vs evaluated {float((block_only - want).abs().max()):.2f}")
