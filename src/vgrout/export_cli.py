"""`vgrout export RUN_DIR --out DIR [--step N] [--merged]`: export the model a run deploys.

What deploys is decided by the arm (recorded in the checkpoint's state.json, else the run's
config.json): vanilla, erase and inoculation deploy their whole adapter (both blocks' net changes folded
into one exact LoRA, rank 4r), absorb / routeA / routeV only the deployed block (rank 2r); the
quarantine of those arms is never exported. The PEFT directory names the base model by its
Hub id when the run loaded one (config "model"), else by its local path (toy worlds: the
cached model directory). `--merged` writes full weights with the adapter folded in, plus the
tokenizer. Loading either needs no vgrout: docs/export.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vgrout.io import write_json_atomic
from vgrout.eval.settings import deploys_whole_adapter
from vgrout.rundir import ADAPTER, checkpoint_arm, pick_checkpoint, read_config

EXPORT_INFO = "vgrout_export.json"


def base_model_source(model: str) -> str:
    """The name a PEFT config should carry: `toy:NAME` -> the toy world's model directory; an
    existing local directory -> its absolute path; anything else is a Hub id, kept as is."""
    if model.startswith("toy:"):
        from vgrout.toy.world import toy_world

        return str(toy_world(model.split(":", 1)[1], progress=False).model_dir)
    if Path(model).exists():
        return str(Path(model).resolve())
    return model


def load_base(cfg: dict, device: str = "cpu"):
    """(model, tokenizer, base name) of a run's base model, from its config dict (no vgrout.train).
    Loaded by `vgrout.models.load_model`, the loader train and eval use."""
    from vgrout.models import load_model

    if cfg.get("random_init", False):
        raise ValueError("this run trained on a randomly initialised model (random_init=true); its base weights "
                         "were never saved, so there is nothing to export the adapter against")
    model, tok = load_model(cfg["model"], cfg.get("dtype", "float32"), device)
    model.config.use_cache = True  # load_model turns the KV cache off for training; an exported model generates
    return model, tok, base_model_source(cfg["model"])


def export_run(run_dir: str | Path, out: str | Path, *, step: int | None = None, merged: bool = False,
               device: str = "cpu") -> dict:
    """Export checkpoint `step` (default: the last) of a run to `out`; returns what was written
    (also saved as `out`/vgrout_export.json)."""
    from vgrout.adapter.attach import load_adapter
    from vgrout.adapter.export import export_merged, export_peft

    run_dir, out = Path(run_dir), Path(out)
    cfg = read_config(run_dir)
    s, ckpt = pick_checkpoint(run_dir, step)
    arm = checkpoint_arm(ckpt, cfg)
    which = "full" if deploys_whole_adapter(run_dir, ckpt) else "deployed"
    model, tok, source = load_base(cfg, device)
    adapter = load_adapter(model, ckpt / ADAPTER)
    if merged:
        path = export_merged(adapter, out, which=which, tokenizer=tok)
        rank = None
    else:
        path = export_peft(adapter, out, base_model_name_or_path=source, which=which)
        rank = json.loads((path / "adapter_config.json").read_text())["r"]
    info = {"run_dir": str(run_dir), "step": s, "checkpoint": str(ckpt), "arm": arm, "exported": which,
            "format": "merged" if merged else "peft", "base_model": source, "lora_rank": rank,
            "adapter_r": adapter.r, "adapter_init": adapter.config.init}
    write_json_atomic(path / EXPORT_INFO, info)
    return info


def _run(args: argparse.Namespace) -> int:
    try:
        info = export_run(args.run_dir, args.out, step=args.step, merged=args.merged, device=args.device)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        raise SystemExit(f"vgrout export: {exc}") from None
    what = "whole adapter (both blocks)" if info["exported"] == "full" else "deployed block (quarantine dropped)"
    print(f"exported step {info['step']} of {args.run_dir} ({info['arm']}: {what}) to {args.out}")
    if info["format"] == "peft":
        print(f"PEFT LoRA, rank {info['lora_rank']} (exact), base model {info['base_model']}")
        print("load: PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), OUT)  (docs/export.md)")
    else:
        print("merged weights + tokenizer; load: AutoModelForCausalLM.from_pretrained(OUT)  (docs/export.md)")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export the model a run deploys (PEFT LoRA or merged weights)",
                              description="Export what the run's arm deploys: vanilla/erase the whole adapter, "
                                          "absorb/routeA/routeV the deployed block (quarantine dropped). Default: "
                                          "a PEFT LoRA directory (exact, rank 2r or 4r) naming the base model; "
                                          "--merged: full weights with the adapter folded in, plus the tokenizer.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", required=True, help="new (or empty) output directory")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: the last)")
    p.add_argument("--merged", action="store_true", help="merged full weights + tokenizer instead of a LoRA")
    p.add_argument("--device", default="cpu", help="where to load the model for the export (default cpu)")
    p.set_defaults(func=_run)


__all__ = ["EXPORT_INFO", "base_model_source", "export_run", "load_base", "register"]
