"""Export the deployed model: a standard PEFT LoRA directory, or merged weights.

PEFT export is exact, which fixes its rank. The deployed block's net change
    dW = B_d A_d - B0_d A0_d
is a difference of two rank-r products, so its rank is up to 2r. A rank-r PEFT adapter
could only approximate it (truncated SVD); instead we write a rank-2r LoRA with
    lora_A = [A_d; A0_d]  (2r, d_in)      lora_B = [B_d, -B0_d]  (d_out, 2r)
and lora_alpha = 2r (scaling 1), so lora_B @ lora_A == dW exactly. antipasto's deployed block
is already rank r (U diag(S tanh g) Vh). The quarantine is never exported.

The directory loads with `peft.PeftModel.from_pretrained(base, dir)`, no vgrout import.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from vgrout.adapter.attach import BlockAdapter


def _fresh_dir(out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """(final, temp sibling). The final directory must not exist yet or be empty."""
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"export target {out} exists and is not an empty directory; choose a new path")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp", dir=out.parent))
    return out, tmp


def _publish(tmp: Path, out: Path) -> Path:
    if out.exists():
        out.rmdir()  # empty, checked in _fresh_dir
    os.replace(tmp, out)
    return out


def export_peft(adapter: BlockAdapter, out_dir: str | os.PathLike, base_model_name_or_path: str | None = None) -> Path:
    """Write adapter_config.json + adapter_model.safetensors for the deployed block only."""
    from peft import LoraConfig
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    ranks = set()
    for name, layer in adapter.layers.items():
        A, B = layer.deployed.peft_factors()  # (k, d_in), (d_out, k)
        ranks.add(A.shape[0])
        tensors[f"base_model.model.{name}.lora_A.weight"] = A.detach().to("cpu", torch.float32).contiguous()
        tensors[f"base_model.model.{name}.lora_B.weight"] = B.detach().to("cpu", torch.float32).contiguous()
    if len(ranks) != 1:
        raise RuntimeError(f"deployed blocks have mixed ranks {sorted(ranks)}")
    k = ranks.pop()
    if base_model_name_or_path is None:
        base_model_name_or_path = getattr(getattr(adapter.model, "config", None), "_name_or_path", None) or None
    cfg = LoraConfig(
        r=k, lora_alpha=k, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
        target_modules=adapter.module_names, base_model_name_or_path=base_model_name_or_path,
    )
    out, tmp = _fresh_dir(out_dir)
    try:
        cfg.save_pretrained(str(tmp))
        save_file(tensors, str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})
        return _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def export_merged(adapter: BlockAdapter, out_dir: str | os.PathLike) -> Path:
    """save_pretrained of the base model with the deployed delta merged into W (quarantine dropped)."""
    if not hasattr(adapter.model, "save_pretrained"):
        raise TypeError(f"{type(adapter.model).__name__} has no save_pretrained; export_merged needs a HF model")
    out, tmp = _fresh_dir(out_dir)
    try:
        with adapter.merged("deployed"), adapter.unwrapped() as model:
            model.save_pretrained(str(tmp), safe_serialization=True)
        return _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
