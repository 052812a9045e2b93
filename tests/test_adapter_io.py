"""Adapter save/load, PEFT and merged export, and bad-input errors."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from transformers import Qwen3ForCausalLM

from vgrout.adapter import PAIR_INITS, AdapterConfig, attach, find_targets, load_adapter
from vgrout.adapter.export import export_merged, export_peft

from _tiny import V, tiny_model  # noqa: E402


def trained_adapter(r: int = 4, init: str = "gaussian"):
    model = tiny_model()
    calib = None
    if init in PAIR_INITS:
        gen = torch.Generator().manual_seed(0)
        calib = {n: torch.randn(3, m.in_features, generator=gen) + 0.3
                 for n, m in find_targets(model, AdapterConfig().targets).items()}
    adapter = attach(model, AdapterConfig(r=r, init=init), calibration=calib)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in adapter.parameters("all"):
            p.add_(0.2 * torch.randn(p.shape, generator=gen))
    return model, adapter


IDS = torch.randint(0, V, (2, 8), generator=torch.Generator().manual_seed(4))


@pytest.mark.parametrize("init", ["gaussian", "scorda", "antipasto"])
def test_save_load_round_trip_is_exact(tmp_path, init):
    model, adapter = trained_adapter(init=init)
    adapter.save(tmp_path / "a.safetensors", metadata={"step": "3"})
    with torch.no_grad():
        want = model(IDS).logits
    fresh = tiny_model()
    loaded = load_adapter(fresh, tmp_path / "a.safetensors")
    assert loaded.config == adapter.config
    with torch.no_grad():
        assert torch.equal(fresh(IDS).logits, want)
    if init != "gaussian":
        return
    other = attach(tiny_model(), AdapterConfig(r=4, init_seed=9))
    other.load(tmp_path / "a.safetensors")
    sd, sd2 = adapter.state_dict(), other.state_dict()
    assert sd.keys() == sd2.keys() and all(torch.equal(sd[k], sd2[k]) for k in sd)
    assert not list(tmp_path.glob("*.tmp*"))  # the temp file was renamed into place


def test_bad_checkpoints_are_rejected_with_the_reason(tmp_path):
    _, adapter = trained_adapter()
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ValueError, match="corrupt.safetensors is corrupt"):
        adapter.load(corrupt)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        adapter.load(tmp_path / "missing.safetensors")
    adapter.save(tmp_path / "r4.safetensors")
    small = attach(tiny_model(), AdapterConfig(r=2))
    with pytest.raises(ValueError, match="different adapter config"):
        small.load(tmp_path / "r4.safetensors")
    sd = adapter.state_dict()
    key = next(iter(sd))
    with pytest.raises(ValueError, match="1 missing key"):
        adapter.load_state_dict({k: v for k, v in sd.items() if k != key})
    with pytest.raises(ValueError, match="mismatched shapes"):
        adapter.load_state_dict({**sd, key: torch.zeros(1, 1)})
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(1)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ValueError, match="not a vgrout adapter checkpoint"):
        adapter.load(tmp_path / "foreign.safetensors")


@pytest.mark.parametrize("init", ["gaussian", "antipasto"])
def test_peft_export_round_trip_matches_the_deployed_model(tmp_path, init):
    from peft import PeftModel

    base_state = {k: v.clone() for k, v in tiny_model().state_dict().items()}
    model, adapter = trained_adapter(init=init)
    with torch.no_grad(), adapter.mode("deployed"):
        want = model(IDS).logits
    out = export_peft(adapter, tmp_path / "peft")
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["r"] == (8 if init == "gaussian" else 4) and cfg["lora_alpha"] == cfg["r"]  # exact rank 2r / r
    base = tiny_model(seed=123)
    base.load_state_dict(base_state)
    peft_model = PeftModel.from_pretrained(base, str(out)).eval()
    with torch.no_grad():
        got = peft_model(IDS).logits
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    with torch.no_grad():
        with peft_model.disable_adapter():
            assert not torch.allclose(peft_model(IDS).logits, want, atol=1e-4)  # the adapter matters
    with pytest.raises(FileExistsError, match="not an empty directory"):
        export_peft(adapter, tmp_path / "peft")


def test_merged_export_loads_as_the_deployed_model(tmp_path):
    model, adapter = trained_adapter()
    W_before = {n: layer.base.weight.clone() for n, layer in adapter.layers.items()}
    with torch.no_grad(), adapter.mode("deployed"):
        want = model(IDS).logits
    out = export_merged(adapter, tmp_path / "merged")
    assert (out / "model.safetensors").exists()
    loaded = Qwen3ForCausalLM.from_pretrained(str(out)).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(IDS).logits, want, atol=1e-5, rtol=1e-4)
    assert all(torch.equal(layer.base.weight, W_before[n]) for n, layer in adapter.layers.items())
    assert type(model.model.layers[0].self_attn.q_proj).__name__ == "BlockLinear"  # rewrapped


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="unknown adapter init 'lora'"):
        AdapterConfig(init="lora")
    with pytest.raises(ValueError, match="r must be an int >= 1"):
        AdapterConfig(r=0)
    with pytest.raises(ValueError, match="lm_head is never adapted"):
        AdapterConfig(targets=("q_proj", "lm_head"))
    with pytest.raises(TypeError, match="tuple of module names"):
        AdapterConfig(targets="q_proj")


def test_attach_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"target\(s\) \['qkv_proj'\] matched no nn.Linear"):
        attach(tiny_model(), AdapterConfig(r=2, targets=("q_proj", "qkv_proj")))
    with pytest.raises(ValueError, match=r"r=20 is too large for model\.layers\.0\.self_attn\.k_proj"):
        attach(tiny_model(), AdapterConfig(r=20, targets=("k_proj",)))

    class NoTargets(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)

    with pytest.raises(ValueError, match=r"NoTargets has none of the target modules.*\['fc'\]"):
        attach(NoTargets(), AdapterConfig(r=2))
    model = tiny_model()
    attach(model, AdapterConfig(r=2))
    with pytest.raises(ValueError, match="already has a block adapter"):
        attach(model, AdapterConfig(r=2))


def test_peft_export_loads_in_a_fresh_interpreter_without_vgrout(tmp_path):
    import subprocess
    import sys

    model, adapter = trained_adapter()
    tiny_model().save_pretrained(str(tmp_path / "base"))
    with torch.no_grad(), adapter.mode("deployed"):
        torch.save({"ids": IDS, "want": model(IDS).logits}, tmp_path / "want.pt")
    export_peft(adapter, tmp_path / "peft")
    script = f"""
import sys, torch
from peft import PeftModel
from transformers import AutoModelForCausalLM
base = AutoModelForCausalLM.from_pretrained({str(tmp_path / "base")!r}).eval()
m = PeftModel.from_pretrained(base, {str(tmp_path / "peft")!r}).eval()
d = torch.load({str(tmp_path / "want.pt")!r})
with torch.no_grad():
    got = m(d["ids"]).logits
assert not any(k.startswith("vgrout") for k in sys.modules), "vgrout was imported"
print("maxdiff", float((got - d["want"]).abs().max()))
"""
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-2000:]
    assert float(res.stdout.split("maxdiff")[1]) < 1e-5
