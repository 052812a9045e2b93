"""Export what an arm deploys: a standard PEFT LoRA directory, or merged weights.

`which` picks the blocks: "deployed" (the quarantine arms: absorb, routeA, routeV deploy the
deployed block only) or "full" (vanilla, erase and inoculation deploy their whole adapter, both blocks).

PEFT export is exact, which fixes its rank. A low-rank block's net change
    dW = B A - B0 A0
is a difference of two rank-r products, so its rank is up to 2r. A rank-r PEFT adapter
could only approximate it (truncated SVD); instead we write the factors side by side:
    lora_A = [A_d; A0_d]  (2r, d_in)      lora_B = [B_d, -B0_d]  (d_out, 2r)
and lora_alpha = rank (scaling 1), so lora_B @ lora_A == dW exactly. "full" stacks both
blocks' factors the same way: rank 4r, lora_B @ lora_A == dW_d + dW_q. antipasto's blocks
are rank r each (U diag(S tanh g) R Vh): rank r deployed, 2r full.

The directory loads with `peft.PeftModel.from_pretrained(base, dir)`, no vgrout import.
Directories are created with the umask's usual permissions (mkdtemp alone would give 0700).
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
    os.chmod(tmp, _umask_mode(0o777))
    return out, tmp


def _umask_mode(full: int) -> int:
    mask = os.umask(0)
    os.umask(mask)
    return full & ~mask


def _fix_file_modes(d: Path) -> None:
    """Files written by save_pretrained/safetensors get open()'s umask mode already; make sure."""
    for f in d.rglob("*"):
        os.chmod(f, _umask_mode(0o777 if f.is_dir() else 0o666))


def _check_which(which: str) -> None:
    if which not in ("deployed", "full"):
        raise ValueError(f"which must be 'deployed' (the deployed block) or 'full' (both blocks), got {which!r}")


def _publish(tmp: Path, out: Path) -> Path:
    if out.exists():
        out.rmdir()  # empty, checked in _fresh_dir
    os.replace(tmp, out)
    return out


def peft_factors(layer, which: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact (A (k, d_in), B (d_out, k)) of one wrapped module: B @ A is the net weight change of
    the deployed block ("deployed") or of both blocks ("full")."""
    _check_which(which)
    A, B = layer.deployed.peft_factors()
    if which == "full":
        Aq, Bq = layer.quarantine.peft_factors()
        A, B = torch.cat([A, Aq], dim=0), torch.cat([B, Bq], dim=1)
    return A, B


def export_peft(adapter: BlockAdapter, out_dir: str | os.PathLike, base_model_name_or_path: str | None = None,
                which: str = "deployed") -> Path:
    """Write adapter_config.json + adapter_model.safetensors for the deployed block ("deployed")
    or the whole adapter ("full"); see the module docstring for the exact rank."""
    from peft import LoraConfig
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    ranks = set()
    for name, layer in adapter.layers.items():
        A, B = peft_factors(layer, which)  # (k, d_in), (d_out, k)
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
        _fix_file_modes(tmp)
        return _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def export_merged(adapter: BlockAdapter, out_dir: str | os.PathLike, which: str = "deployed",
                  tokenizer=None) -> Path:
    """save_pretrained of the base model with the deployed delta ("deployed": quarantine dropped)
    or both blocks' deltas ("full") merged into W, plus the tokenizer when given, so the
    directory loads with AutoModelForCausalLM / AutoTokenizer alone."""
    _check_which(which)
    if not hasattr(adapter.model, "save_pretrained"):
        raise TypeError(f"{type(adapter.model).__name__} has no save_pretrained; export_merged needs a HF model")
    out, tmp = _fresh_dir(out_dir)
    try:
        with adapter.merged(which), adapter.unwrapped() as model:
            model.save_pretrained(str(tmp), safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        _fix_file_modes(tmp)
        return _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
