"""Run setup and restore: build everything a step touches from a Config, and load a checkpoint into it.

    run = build_run(cfg, run_dir, dp)   # model, adapter, optimizer, arm, gate, problems, direction
    restore(run, latest_checkpoint(run_dir))

With several ranks, rank 0 loads first (it may build the toy-world cache) and writes the
motivate pairs the others then read; the direction is broadcast from rank 0.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from vgrout.gates import ScoreBuffer, haar_unit_rows, mean_difference_direction, paired_accuracy, project_scores
from vgrout.models import load_model, toy_name
from vgrout.train.arms import Arm, arm_for
from vgrout.train.checkpoint import load_checkpoint
from vgrout.train.config import Config, check_rank_fits
from vgrout.train.data import load_problems, partition_modes
from vgrout.train.distributed import DataParallel
from vgrout.train.rundir import StartFrom
from vgrout.train.features import pair_features
from vgrout.train.schedule import build_optimizer, lr_multiplier
from vgrout.train.step import GateState, first_token_sets


@dataclass
class Run:
    """Everything a step touches."""

    cfg: Config
    arm: Arm  # chosen once from cfg.arm
    run_dir: Path
    model: object
    tokenizer: object
    adapter: object
    optimizer: torch.optim.Optimizer
    scheduler: object
    gate: GateState
    problems: list
    mode_of: dict[str, str]
    pairs: list  # the direction's pairs (authored, or routeV's self-generated motivate pairs)
    heal_pairs: list = dataclasses.field(default_factory=list)  # authored pairs for retain-heal
    teacher_pool: dict | None = None  # (problem id, mode) -> [TeacherRow]
    grader: object = None  # the open grader while train() runs (the eval hook reuses it)
    step: int = 0  # completed steps
    direction_info: dict = dataclasses.field(default_factory=dict)
    dp: DataParallel = dataclasses.field(default_factory=DataParallel.single)  # this process's rank
    token_sets: tuple | None = None  # (fence ids, eos ids): the deployed block's first-token metrics (step.first_token_sets)

    def checkpoint_info(self) -> dict:
        """What state.json records beside the step: the arm and what it deploys."""
        return {"arm": self.arm.name, "deploys": self.arm.deploys}


def build_run(cfg: Config, run_dir: Path, dp: DataParallel | None = None) -> Run:
    """Load the model, attach the adapter, extract the direction, build the optimizer.

    `cfg` is resolved first (`Config.resolved`: the init and placebo seeds derived from the run
    seed), and `run.cfg` is the resolved config."""
    from vgrout.adapter import AdapterConfig, attach, contrastive_input_deltas
    from vgrout.adapter.attach import find_targets
    from vgrout.pairs import load_pairs

    cfg = cfg.resolved()
    dp = dp if dp is not None else DataParallel(cfg.device)
    arm = arm_for(cfg.arm)
    torch.manual_seed(cfg.seed)
    with dp.main_first():
        model, tok = load_model(cfg.model, cfg.dtype, dp.device_for(cfg.device), cfg.random_init)
    wrapped = find_targets(model, cfg.adapter_targets)
    check_rank_fits(cfg.adapter_r, min(min(m.in_features, m.out_features) for m in wrapped.values()))
    acfg = AdapterConfig(r=cfg.adapter_r, targets=cfg.adapter_targets, init=cfg.adapter_init,
                         init_seed=cfg.adapter_init_seed)
    needs_pairs = arm.needs_direction or acfg.needs_calibration or cfg.retain_heal_epochs > 0
    pairs = load_pairs(cfg.pairs, modes=cfg.pair_modes or None) if needs_pairs else []
    calib = contrastive_input_deltas(model, tok, pairs, acfg.targets) if acfg.needs_calibration else None
    adapter = attach(model, acfg, calibration=calib)
    if cfg.gradient_checkpointing:
        from vgrout.train.memory import GradientCheckpointing

        GradientCheckpointing(model, adapter).enable()  # grad forwards only; see vgrout.train.memory
    opt, sched = build_optimizer(adapter.parameters("all"), cfg.lr, cfg.steps, cfg.warmup_steps, cfg.cosine)
    problems = load_problems(cfg.problems, toy_name(cfg.model), cfg.n_problems, cfg.seed, cfg.difficulties)
    teacher_pool = None
    if cfg.teacher_pool:
        from vgrout.train.teacher import load_teacher_pool

        teacher_pool = load_teacher_pool(cfg.teacher_pool)
    run = Run(cfg=cfg, arm=arm, run_dir=Path(run_dir), model=model, tokenizer=tok, adapter=adapter, optimizer=opt,
              scheduler=sched, gate=GateState(), problems=problems,
              mode_of=partition_modes(problems, cfg.modes, cfg.seed), pairs=pairs, heal_pairs=pairs,
              teacher_pool=teacher_pool, dp=dp, token_sets=first_token_sets(tok, model))
    if cfg.motivate_pairs:
        with dp.main_first():
            run.pairs = motivate_pairs_for(run)
    if arm.needs_direction:
        refresh_direction(run, initial=True)
        if arm.gated:
            run.gate.buffer = ScoreBuffer(cfg.buffer_size)
    return run


def motivate_pairs_for(run: Run) -> list:
    """routeV's self-generated pairs: loaded from the run directory if a previous start wrote
    them, else generated from the initial model (quarantine ablated) and saved."""
    from vgrout.train.motivate import generate_motivate_pairs, load_motivate_pairs, save_motivate_pairs

    cfg = run.cfg
    path = run.run_dir / "motivate_pairs.jsonl"
    if path.exists():
        return load_motivate_pairs(path)
    pairs = generate_motivate_pairs(run.model, run.tokenizer, run.adapter, run.problems, n_pairs=cfg.motivate_pairs,
                                    pool=cfg.motivate_pool, modes=cfg.pair_modes or cfg.modes,
                                    max_new_tokens=cfg.max_new_tokens, seed=cfg.seed, system_prompt=cfg.system_prompt,
                                    require_marker=cfg.motivate_require_marker)
    save_motivate_pairs(pairs, path)
    return pairs


def refresh_direction(run: Run, initial: bool = False) -> None:
    """(Re-)extract the direction from the run's pairs with the quarantine ablated, in the arm's feature space.

    A placebo replaces the extracted direction by Haar rows of the same shape and never refreshes.
    With `initial`, the extracted direction (and the placebo's) is also scored on the run's check
    pairs (`vgrout.train.transfer`), recorded under "transfer".
    """
    cfg = run.cfg
    kind = run.arm.features
    hack, clean = pair_features(kind, run.adapter, run.model, run.tokenizer, run.pairs, cfg.micro_batch)  # (P, M, r)
    v = mean_difference_direction(hack, clean)  # (M, r)
    extracted = v
    info = {"kind": kind, "n_pairs": len(run.pairs), "step": run.step,
            "paired_accuracy": paired_accuracy(project_scores(hack, v), project_scores(clean, v))}
    if cfg.placebo:
        v = haar_unit_rows(tuple(v.shape), cfg.placebo_seed)
        info["placebo_seed"] = cfg.placebo_seed
        info["placebo_paired_accuracy"] = paired_accuracy(project_scores(hack, v), project_scores(clean, v))
    if initial:
        from vgrout.train.transfer import transfer_check

        transfer = transfer_check(run, extracted, v if cfg.placebo else None)
        if transfer is not None:
            info["transfer"] = transfer
    run.gate.direction = run.dp.broadcast(v)  # rank 0's direction everywhere, so gates cannot drift
    run.gate.steps_since_refresh = 0
    run.direction_info = info


def refresh_due(run: Run) -> bool:
    """At the end of step `run.step` (not yet counted): re-extract the direction? Placebos never refresh."""
    cfg = run.cfg
    return (run.arm.needs_direction and not cfg.placebo and cfg.refresh_every > 0
            and (run.step + 1) % cfg.refresh_every == 0)


# ---- checkpoints -------------------------------------------------------------------------
def trainer_state(run: Run) -> dict:
    return {"optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
            "direction": run.gate.direction, "steps_since_refresh": run.gate.steps_since_refresh,
            "buffer": None if run.gate.buffer is None else run.gate.buffer.state_dict(),
            "direction_info": run.direction_info}


def restore(run: Run, ckpt: Path) -> None:
    """Load a checkpoint into the run (every rank loads the same one; any world size)."""
    step, st = load_checkpoint(ckpt, run.adapter, map_location="cpu")  # the optimizer moves its state to the params
    run.optimizer.load_state_dict(st["optimizer"])
    run.scheduler.load_state_dict(st["scheduler"])
    cfg = run.cfg
    for group, base in zip(run.optimizer.param_groups, run.scheduler.base_lrs):  # the lr of update `step` under
        group["lr"] = base * lr_multiplier(step, cfg.steps, cfg.warmup_steps, cfg.cosine)  # this run's total (extended)
    d = st["direction"]
    run.gate.direction = None if d is None else d.cpu()  # the gate's device contract: CPU float32 (gates.band)
    run.gate.steps_since_refresh = st["steps_since_refresh"]
    if st["buffer"] is not None:
        run.gate.buffer = ScoreBuffer(1)
        run.gate.buffer.load_state_dict(st["buffer"])
    run.direction_info = st["direction_info"]
    run.step = step


def start_from(run: Run, start: StartFrom) -> None:
    """Load `start` into a freshly built run. The direction (gated arms) is re-extracted from the
    loaded adapter, as at any run's start; the score buffer starts empty."""
    from vgrout.train.checkpoint import is_complete

    if start.checkpoint is None:  # the run's own init: nothing to load
        return
    ckpt = Path(start.checkpoint)
    if not is_complete(ckpt):
        raise FileNotFoundError(f"cannot start from {ckpt}: not a complete checkpoint "
                                "(needs adapter.safetensors, trainer_state.pt, state.json)")
    if start.trainer_state:
        step, st = load_checkpoint(ckpt, run.adapter, map_location="cpu")
        if step >= run.cfg.steps:
            raise ValueError(f"cannot fork at step {step} from {ckpt}: the run has only steps={run.cfg.steps}")
        run.optimizer.load_state_dict(st["optimizer"])
        run.scheduler.load_state_dict(st["scheduler"])
        run.step = step
    else:
        run.adapter.load(ckpt / "adapter.safetensors")
    if start.ablate_quarantine:
        run.adapter.ablate_quarantine()
    if run.arm.needs_direction:
        refresh_direction(run, initial=True)


__all__ = ["Run", "StartFrom", "build_run", "motivate_pairs_for", "refresh_direction", "refresh_due", "restore",
           "start_from", "trainer_state"]
