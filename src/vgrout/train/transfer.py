"""The direction's transfer check, and `vgrout direction`: score an authored *check* set, pairs in
forms and on problems the direction was not built from, with the direction before training.

    vgrout direction demo                       # a preset: extract v_act from its pairs, score its check set
    vgrout direction runs/routeA_s0 --checkpoint final   # a run: its config, optionally its trained adapter

A run writes the same numbers to direction.json under "transfer" (`refresh_direction` with
`initial=True`). The check set is `cfg.check_pairs` ("toy_check" by default, "" for none);
docs/pairs.md describes the two bundled toy sets and how they split forms and families.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from torch import Tensor

from vgrout.gates import auroc, paired_accuracy, project_scores


def direction_quality(hack: Tensor, clean: Tensor, v: Tensor, modes: list[str] | None = None) -> dict:
    """How `v` (M, r) separates pair features hack, clean (P, M, r): AUROC of the projection
    (hack sides positive, every side pooled), paired accuracy, and the AUROC per loophole mode."""
    h, c = project_scores(hack, v), project_scores(clean, v)  # (P,), (P,)
    scores = [float(x) for x in h.tolist() + c.tolist()]
    labels = [True] * len(h) + [False] * len(c)
    out = {"auroc": auroc_list(scores, labels), "paired_accuracy": paired_accuracy(h, c)}
    if modes is not None:
        by: dict[str, float] = {}
        for m in sorted(set(modes)):
            idx = [i for i, mm in enumerate(modes) if mm == m]
            by[m] = auroc_list([scores[i] for i in idx] + [scores[len(h) + i] for i in idx],
                               [True] * len(idx) + [False] * len(idx))
        out["auroc_by_mode"] = by
    return out


def auroc_list(scores: list[float], labels: list[bool]) -> float:
    import torch

    return auroc(torch.tensor(scores, dtype=torch.float64), torch.tensor(labels))


def transfer_check(run, v: Tensor, placebo: Tensor | None = None) -> dict | None:
    """Score the run's check set with the extracted direction `v` (and the placebo's, when given),
    in the arm's feature space with the quarantine ablated, as the direction was extracted.
    None when the run names no check set."""
    from vgrout.pairs import load_pairs
    from vgrout.train.features import pair_features

    name = run.cfg.check_pairs  # "" = none; configs written before the field load with its default
    if not name:
        return None
    pairs = load_pairs(name)
    hack, clean = pair_features(run.arm.features, run.adapter, run.model, run.tokenizer, pairs, run.cfg.micro_batch)
    modes = [p.mode for p in pairs]
    out = {"pairs": name, "n_pairs": len(pairs), **direction_quality(hack, clean, v, modes)}
    if placebo is not None:
        q = direction_quality(hack, clean, placebo, modes)
        out.update({f"placebo_{k}": val for k, val in q.items()})
    return out


# ---- vgrout direction ----------------------------------------------------------------------
def register(sub) -> None:
    p = sub.add_parser("direction", help="extract a run's or preset's direction and score it on the check pairs",
                       description=__doc__.splitlines()[0])
    p.add_argument("target", help="a preset name (demo, toy, ...) or a run directory (its config.json)")
    p.add_argument("--arm", default=None, help="direction arm (default: the run's, or routeA for a preset "
                                               "whose arm extracts none)")
    p.add_argument("--checkpoint", default=None,
                   help="with a run directory: 'final' (its latest checkpoint) or a checkpoint path; "
                        "default: the run's initial adapter")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a Config field, e.g. --set pairs=my.jsonl --set check_pairs=toy_check")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    from vgrout.train.cli import parse_sets, pin_threads

    pin_threads(args.threads)
    from vgrout.train.arms import arm_for
    from vgrout.train.checkpoint import latest_checkpoint
    from vgrout.train.config import Config
    from vgrout.train.presets import preset
    from vgrout.train.setup import build_run, refresh_direction

    target = Path(args.target)
    is_run = (target / "config.json").exists()
    if is_run:
        cfg = Config.from_dict(json.loads((target / "config.json").read_text()))
    else:
        if args.checkpoint:
            raise SystemExit(f"vgrout direction: --checkpoint needs a run directory; {args.target!r} has no config.json")
        try:
            cfg = preset(args.target)
        except (KeyError, ValueError) as exc:
            raise SystemExit(f"vgrout direction: {args.target!r} is neither a run directory nor a preset ({exc})") from None
    overrides: dict[str, object] = dict(parse_sets(args.set))
    if args.arm is not None:
        overrides["arm"] = args.arm
    elif not arm_for(cfg.arm).needs_direction:
        overrides["arm"] = "routeA"
    cfg = cfg.with_overrides(overrides)
    if not arm_for(cfg.arm).needs_direction:
        raise SystemExit(f"vgrout direction: arm {cfg.arm!r} extracts no direction; pass --arm routeA (or routeV, erase)")
    with tempfile.TemporaryDirectory() as tmp:
        run = build_run(cfg, Path(tmp))  # extracts the direction (and scores the check set) from the initial adapter
        if args.checkpoint:
            ckpt = latest_checkpoint(target) if args.checkpoint == "final" else Path(args.checkpoint)
            if ckpt is None:
                raise SystemExit(f"vgrout direction: {target} has no complete checkpoint yet; train it first "
                                 "(vgrout train --resume RUN) or drop --checkpoint to score the initial adapter")
            run.adapter.load(Path(ckpt) / "adapter.safetensors")
            refresh_direction(run, initial=True)
    print(json.dumps(run.direction_info, indent=2))
    return 0


__all__ = ["direction_quality", "register", "transfer_check"]
