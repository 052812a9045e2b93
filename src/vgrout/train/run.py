"""A run: everything a step touches, built from a Config; its checkpoints, restore and start.

    run = build_run(cfg, run_dir, dp)   # model, adapter, optimizer + schedule, arm, gate, problems, direction
    save_checkpoint(run_dir, step, ...) / restore(run, latest_checkpoint(run_dir))   # exact resume
    start_from(run, StartFrom(...))     # a study branch or a relearning attack starts from another run

With several ranks, rank 0 loads first (it may build the toy-world cache) and writes the
motivate pairs the others then read; the direction is broadcast from rank 0. Checkpoints are
atomic: a step directory is written under a temporary name and renamed whole, so a kill at any
moment leaves the previous complete checkpoints or a `.tmp-*` directory that `clean_partial`
removes. The files' names and places are `vgrout.rundir`'s. Also here: the learning-rate
schedule (built with the optimizer) and the retain-heal pass after training.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from vgrout.gates import ScoreBuffer, haar_unit_rows, mean_difference_direction, paired_accuracy, project_scores
from vgrout.io import atomic_dir, write_json_atomic
from vgrout.models import load_model, toy_name
from vgrout.rollout import per_token_logps
from vgrout.rollout.batch import chunks, select_rows
from vgrout.rundir import (
    ADAPTER,
    CHECKPOINT_FILES,
    STATE,
    TRAINER_STATE,
    checkpoints_dir,
    config_path,
    is_complete,
    motivate_pairs_path,
    step_dir,
    write_config,
    write_start,
)
from vgrout.rundir import read_start as read_start_dict
from vgrout.train.arms import Arm, arm_for
from vgrout.train.config import Config, check_rank_fits
from vgrout.train.data import load_problems, partition_modes
from vgrout.train.direction import pair_features, pair_rollouts
from vgrout.train.distributed import DataParallel
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
        from vgrout.train.distributed import GradientCheckpointing

        GradientCheckpointing(model, adapter).enable()  # grad forwards only; see vgrout.train.distributed
    params = (adapter.parameters("all") if cfg.quarantine_lr_scale == 1.0 else  # one group: bit for bit as before
              [{"params": adapter.parameters("deployed"), "lr": cfg.lr},
               {"params": adapter.parameters("quarantine"), "lr": cfg.lr * cfg.quarantine_lr_scale}])
    opt, sched = build_optimizer(params, cfg.lr, cfg.steps, cfg.warmup_steps, cfg.cosine)
    problems = load_problems(cfg.problems, toy_name(cfg.model), cfg.n_problems, cfg.seed, cfg.difficulties)
    teacher_pool = None
    if cfg.teacher_pool:
        from vgrout.train.data import load_teacher_pool

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
    from vgrout.train.direction import generate_motivate_pairs, load_motivate_pairs, save_motivate_pairs

    cfg = run.cfg
    path = motivate_pairs_path(run.run_dir)
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
    pairs (`vgrout.train.direction`), recorded under "transfer".
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
        from vgrout.train.direction import transfer_check

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


# ---- restore and start -----------------------------------------------------------------------
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

    if start.checkpoint is None:  # the run's own init: nothing to load
        return
    ckpt = Path(start.checkpoint)
    if not is_complete(ckpt):
        raise FileNotFoundError(f"cannot start from {ckpt}: not a complete checkpoint "
                                f"(needs {', '.join(CHECKPOINT_FILES)})")
    if start.trainer_state:
        step, st = load_checkpoint(ckpt, run.adapter, map_location="cpu")
        if step >= run.cfg.steps:
            raise ValueError(f"cannot fork at step {step} from {ckpt}: the run has only steps={run.cfg.steps}")
        run.optimizer.load_state_dict(st["optimizer"])
        run.scheduler.load_state_dict(st["scheduler"])
        run.step = step
    else:
        run.adapter.load(ckpt / ADAPTER)
    if start.ablate_quarantine:
        run.adapter.ablate_quarantine()
    if run.arm.needs_direction:
        refresh_direction(run, initial=True)


# ---- checkpoint files ----------------------------------------------------------------------
def save_checkpoint(run_dir: Path, step: int, adapter, trainer_state: dict, info: dict | None = None) -> Path:
    """Write checkpoint `step` (the number of completed steps) atomically; returns its directory.
    `info` (JSON-able, e.g. {"arm": ...}) is recorded in state.json beside the step."""
    final = step_dir(run_dir, step)
    with atomic_dir(final) as tmp:  # re-saving the same step (e.g. after a resume) replaces it whole
        adapter.save(tmp / ADAPTER)
        state = dict(trainer_state)
        state["rng"] = {"torch": torch.get_rng_state(), "python": random.getstate(),
                        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
        torch.save(state, tmp / TRAINER_STATE)
        write_json_atomic(tmp / STATE, {"step": step, **(info or {})})
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The complete checkpoint with the highest step, or None."""
    root = checkpoints_dir(run_dir)
    if not root.is_dir():
        return None
    done = sorted(d for d in root.iterdir() if d.is_dir() and is_complete(d))
    return done[-1] if done else None


def clean_partial(run_dir: Path) -> list[Path]:
    """Remove half-written checkpoint directories; returns what was removed."""
    root = checkpoints_dir(run_dir)
    gone = []
    if root.is_dir():
        for d in root.iterdir():
            if d.is_dir() and d.name.startswith(".tmp-"):
                shutil.rmtree(d)
                gone.append(d)
    return gone


def load_checkpoint(d: Path, adapter, map_location: str | torch.device | None = None) -> tuple[int, dict]:
    """Load the adapter in place; return (step, trainer state). Restores the global RNG states.

    `map_location` places the trainer-state tensors (e.g. "cpu", so a checkpoint written by
    rank 0 on one GPU loads on any rank or on a CPU)."""
    if not is_complete(d):
        raise ValueError(f"{d} is not a complete checkpoint (needs {', '.join(CHECKPOINT_FILES)})")
    step = int(json.loads((d / STATE).read_text())["step"])
    adapter.load(d / ADAPTER)
    state = torch.load(d / TRAINER_STATE, weights_only=False, map_location=map_location)
    rng = state.pop("rng")
    torch.set_rng_state(rng["torch"].cpu())
    random.setstate(rng["python"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return step, state


# ---- where a run starts, and its directory -------------------------------------------------
@dataclass(frozen=True)
class StartFrom:
    """Where a new run's adapter starts, instead of its init (`train(..., start=StartFrom(...))`).

    Fork (`vgrout study --fork-at`): another run's checkpoint with its optimizer, schedule, step
    and RNG, so the branch continues that run's training under its own arm. Relearning attack
    (`vgrout eval --relearn-steps`): the weights only (a fresh optimizer at step 0), with the
    quarantine ablated first when the source run deploys the deployed block alone."""

    checkpoint: Path | None  # None: the run's own init (the relearning attack's base reference)
    trainer_state: bool = True  # also optimizer, scheduler, step and RNG (a fork)
    ablate_quarantine: bool = False  # reset the quarantine to its init after loading (the deployed model)

    def to_dict(self) -> dict:
        return {"checkpoint": None if self.checkpoint is None else str(self.checkpoint), "trainer_state": self.trainer_state,
                "ablate_quarantine": self.ablate_quarantine}

    @classmethod
    def from_dict(cls, d: dict) -> StartFrom:
        return cls(checkpoint=None if d["checkpoint"] is None else Path(d["checkpoint"]), trainer_state=bool(d["trainer_state"]),
                   ablate_quarantine=bool(d["ablate_quarantine"]))


def check_run_dir(cfg: Config | None, run_dir: Path, resume: bool, overwrite: bool) -> Config:
    """The config to run (on resume: the directory's config.json), or the error that says why not."""
    run_dir = Path(run_dir)
    cfg_path = config_path(run_dir)
    if resume:
        if not cfg_path.exists():
            raise FileNotFoundError(f"--resume {run_dir}: no {cfg_path.name} there; is it a run directory?")
        try:
            return Config.from_dict(json.loads(cfg_path.read_text()))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"--resume {run_dir}: its {cfg_path.name} does not load with this version of vgrout "
                             f"({exc}); start a new run with `vgrout train --out`") from None
    if cfg is None:
        raise ValueError("train() needs a Config for a new run (cfg=None only with resume=True)")
    if run_dir.exists() and any(run_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"run directory {run_dir} already exists; pass --resume {run_dir} to continue it "
                              "or --overwrite to start over")
    return cfg


def write_run_dir(cfg: Config, run_dir: Path, start: StartFrom | None = None) -> None:
    """Start a fresh run directory holding config.json and, for a run that starts from another
    run's checkpoint, start.json (an existing directory is deleted first)."""
    run_dir = Path(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if start is not None:  # before config.json: a directory with a config always has its start
        write_start(run_dir, start.to_dict())
    write_config(run_dir, cfg.to_json())


def read_start(run_dir: Path) -> StartFrom | None:
    """start.json of a run directory (None: the run started from its init)."""
    d = read_start_dict(run_dir)
    return None if d is None else StartFrom.from_dict(d)


# ---- the learning-rate schedule: linear warmup that starts above zero, then cosine to zero --

def lr_multiplier(step: int, steps: int, warmup_steps: int, cosine: bool) -> float:
    """Multiplier of the peak lr for optimizer update `step` (0-based). Step 0 always updates."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    if not cosine:
        return 1.0
    span = max(steps - warmup_steps, 1)
    progress = (step - warmup_steps) / span  # 0 at the end of warmup, < 1 at the last step
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(params: list, lr: float, steps: int, warmup_steps: int, cosine: bool):
    """AdamW(betas 0.9, 0.99, no built-in decay: decay toward init is applied separately) and its LambdaLR.
    `params`: parameters, or parameter groups each with its own peak "lr" (the schedule scales each)."""
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_multiplier(s, steps, warmup_steps, cosine))
    return opt, sched


# ---- retain-heal ---------------------------------------------------------------------------
# After training, teacher-forced NLL on the clean side of the authored pairs, deployed block only.
# Ablating the quarantine at deployment removes whatever capability it absorbed along with the
# hack; the heal gives the deployed block one cheap supervised pass on honest completions to
# recover some of it. The quarantine is out of the forward (adapter mode "deployed"), only the
# deployed parameters are in the optimizer, and every batch checks that no gradient reached the
# quarantine: a non-zero quarantine gradient would mean the heal is training the block that gets
# deleted, so it raises instead.

def _mean_nll(adapter, model, r, rows: slice, with_grad: bool) -> torch.Tensor:
    sub = select_rows(r, torch.arange(rows.start, rows.stop))
    T = sub.completion_ids.shape[1]
    m = sub.completion_mask.float()  # (n, T)
    with torch.set_grad_enabled(with_grad), adapter.mode("deployed"):
        lp = per_token_logps(model, sub.input_ids, sub.attention_mask, T)  # (n, T)
    return -(lp * m).sum() / m.sum().clamp(min=1.0)


def retain_heal(adapter, model, tokenizer, pairs: list, *, epochs: int, lr: float, batch: int,
                grad_clip: float) -> dict:
    """`epochs` passes over the clean sides in fixed order (batches of `batch` pairs), fresh
    AdamW(0.9, 0.99) on the deployed block. Returns {"nll_before", "nll_after", "updates"}.

    Raises RuntimeError if a quarantine gradient is not exactly zero or a deployed gradient
    is all zero (nothing to heal with).
    """
    if epochs < 1 or batch < 1:
        raise ValueError(f"retain_heal needs epochs >= 1 and batch >= 1, got {epochs}, {batch}")
    r = pair_rollouts(tokenizer, model, pairs, "clean")  # P rows
    dep, quar = adapter.parameters("deployed"), adapter.parameters("quarantine")
    for p in dep + quar:
        p.grad = None
    opt = torch.optim.AdamW(dep, lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    slices = chunks(len(r), batch)

    def full_nll() -> float:
        tot = sum(float(_mean_nll(adapter, model, r, sl, False)) * (sl.stop - sl.start) for sl in slices)
        return tot / len(r)

    before = full_nll()
    updates = 0
    for _ in range(epochs):
        for sl in slices:
            _mean_nll(adapter, model, r, sl, True).backward()
            leaked = [float(p.grad.abs().max()) for p in quar if p.grad is not None and bool((p.grad != 0).any())]
            if leaked:
                raise RuntimeError(f"retain-heal reached the quarantine (max |grad| {max(leaked):.3g}); "
                                   "it must train the deployed block only")
            if not any(p.grad is not None and bool((p.grad != 0).any()) for p in dep):
                raise RuntimeError("retain-heal gave the deployed block a zero gradient; check the pairs' clean sides")
            if grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(dep, grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            for p in quar:
                p.grad = None
            updates += 1
    return {"nll_before": before, "nll_after": full_nll(), "updates": updates, "n_pairs": len(r), "epochs": epochs,
            "lr": lr}



__all__ = ["build_optimizer", "build_run", "check_run_dir", "clean_partial", "latest_checkpoint", "load_checkpoint",
           "lr_multiplier", "motivate_pairs_for", "read_start", "refresh_direction", "refresh_due", "restore",
           "retain_heal", "Run", "save_checkpoint", "start_from", "StartFrom", "trainer_state", "write_run_dir"]
