"""The training loop: build a run from a Config, then step, log, checkpoint; resume exactly.

    run = build_run(cfg, run_dir)            # model, adapter, optimizer, gate, problems
    for step in ...: grpo_step(run, grader)  # sample -> generate -> grade -> optimise -> diagnostics

Everything random in a step is a pure function of (seed, step) (prompt order, sampling
seeds), so resuming needs only the checkpointed tensors and the step counter. Under a
launcher (torchrun / accelerate launch) each rank takes whole prompt groups and the step is
synchronised by `vgrout.train.distributed`; sampling is seeded per group, so a run resumes on
any number of processes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from vgrout.env.problems import check_disjoint
from vgrout.gates import ScoreBuffer, haar_unit_rows, mean_difference_direction, paired_accuracy, project_scores
from vgrout.rollout import Rollouts, generate, pad_token_id
from vgrout.train.batch import concat_rollouts, group_by_prompt, join_groups
from vgrout.train.checkpoint import clean_partial, latest_checkpoint, load_checkpoint, save_checkpoint
from vgrout.train.config import DIRECTION_ARMS, Config, check_rank_fits
from vgrout.train.data import PromptSpec, assign_modes, load_problems, sample_prompts, seed_for
from vgrout.train.distributed import DataParallel, gather_view, optimise_sharded
from vgrout.train.features import pair_features
from vgrout.train.metrics import JsonlSink, oracle_diagnostics, truncate_from
from vgrout.train.memory import GradientCheckpointing, oom_guard
from vgrout.train.model import load_model, toy_name
from vgrout.train.schedule import build_optimizer
from vgrout.train.step import GateState, optimise
from vgrout.train.tensorboard import with_tensorboard
from vgrout.types import Grade, GradeRequest


@dataclass
class Run:
    """Everything a step touches."""

    cfg: Config
    run_dir: Path
    model: object
    tokenizer: object
    adapter: object
    optimizer: torch.optim.Optimizer
    scheduler: object
    gate: GateState
    problems: list
    mode_of: dict[str, str]
    pairs: list  # the direction's pairs (authored, or routeV motivate pairs)
    heal_pairs: list = dataclasses.field(default_factory=list)  # authored pairs for retain-heal
    teacher_pool: dict | None = None  # (problem id, mode) -> [TeacherRow]
    grader: object = None  # the open grader while train() runs (the eval hook reuses it)
    step: int = 0  # completed steps
    direction_info: dict = dataclasses.field(default_factory=dict)
    dp: DataParallel = dataclasses.field(default_factory=DataParallel)  # this process's rank (world 1: alone)


# ---- setup -------------------------------------------------------------------------------
def build_run(cfg: Config, run_dir: Path, dp: DataParallel | None = None) -> Run:
    """Load the model, attach the adapter, extract the direction, build the optimizer.

    With several ranks, rank 0 loads first (it may build the toy-world cache) and writes the
    motivate pairs the others then read; the direction is broadcast from rank 0."""
    from vgrout.adapter import AdapterConfig, attach, contrastive_input_deltas
    from vgrout.adapter.attach import find_targets
    from vgrout.pairs import load_pairs

    dp = dp if dp is not None else DataParallel(cfg.device)
    torch.manual_seed(cfg.seed)
    with dp.main_first():
        model, tok = load_model(cfg.model, cfg.dtype, dp.device_for(cfg.device), cfg.random_init)
    wrapped = find_targets(model, cfg.adapter_targets)
    check_rank_fits(cfg.adapter_r, min(min(m.in_features, m.out_features) for m in wrapped.values()))
    acfg = AdapterConfig(r=cfg.adapter_r, targets=cfg.adapter_targets, init=cfg.adapter_init,
                         init_seed=cfg.adapter_init_seed)
    needs_pairs = cfg.arm in DIRECTION_ARMS or acfg.needs_calibration or cfg.retain_heal_epochs > 0
    pairs = load_pairs(cfg.pairs, modes=cfg.pair_modes or None) if needs_pairs else []
    calib = contrastive_input_deltas(model, tok, pairs, acfg.targets) if acfg.needs_calibration else None
    adapter = attach(model, acfg, calibration=calib)
    if cfg.gradient_checkpointing:
        GradientCheckpointing(model, adapter).enable()  # grad forwards only; see vgrout.train.memory
    opt, sched = build_optimizer(adapter.parameters("all"), cfg.lr, cfg.steps, cfg.warmup_steps, cfg.cosine)
    problems = load_problems(cfg.problems, toy_name(cfg.model), cfg.n_problems, cfg.seed)
    teacher_pool = None
    if cfg.teacher_pool:
        from vgrout.train.teacher import load_teacher_pool

        teacher_pool = load_teacher_pool(cfg.teacher_pool)
    run = Run(cfg=cfg, run_dir=Path(run_dir), model=model, tokenizer=tok, adapter=adapter, optimizer=opt,
              scheduler=sched, gate=GateState(), problems=problems, mode_of=assign_modes(problems, cfg.modes, cfg.seed),
              pairs=pairs, heal_pairs=pairs, teacher_pool=teacher_pool, dp=dp)
    if cfg.motivate_pairs:
        with dp.main_first():
            run.pairs = motivate_pairs_for(run)
    if cfg.arm in DIRECTION_ARMS:
        refresh_direction(run, initial=True)
        if cfg.arm in ("routeA", "routeV"):
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
    run.run_dir.mkdir(parents=True, exist_ok=True)
    save_motivate_pairs(pairs, path)
    return pairs


def refresh_direction(run: Run, initial: bool = False) -> None:
    """(Re-)extract the direction from the authored pairs with the quarantine ablated.

    A placebo replaces the extracted direction by Haar rows of the same shape and never refreshes.
    """
    cfg = run.cfg
    kind = "grad" if cfg.arm == "routeV" else "act"
    hack, clean = pair_features(kind, run.adapter, run.model, run.tokenizer, run.pairs, cfg.micro_batch)  # (P, M, r)
    v = mean_difference_direction(hack, clean)  # (M, r)
    info = {"kind": kind, "n_pairs": len(run.pairs), "step": run.step,
            "paired_accuracy": paired_accuracy(project_scores(hack, v), project_scores(clean, v))}
    if cfg.placebo_seed >= 0:
        v = haar_unit_rows(tuple(v.shape), cfg.placebo_seed)
        info["placebo_seed"] = cfg.placebo_seed
        info["placebo_paired_accuracy"] = paired_accuracy(project_scores(hack, v), project_scores(clean, v))
    run.gate.direction = run.dp.broadcast(v)  # rank 0's direction everywhere, so gates cannot drift
    run.gate.steps_since_refresh = 0
    run.direction_info = info


# ---- the step's stages -------------------------------------------------------------------
def sample_groups(run: Run, specs: list[PromptSpec], step: int, group: int, tag: str = "",
                  index: list[int] | None = None) -> Rollouts:
    """`group` live rollouts per prompt, round(group * gen_deploy_frac) sampled with the quarantine ablated.

    `index` (P,) gives each spec's global group index in the step (default 0..P-1): the
    sampling seed of a group depends on it, not on its position in `specs`."""
    cfg = run.cfg
    g_dep = round(group * cfg.gen_deploy_frac)
    parts = []
    for mode, k in (("full", group - g_dep), ("deployed", g_dep)):
        if k == 0:
            continue
        r = generate(run.model, run.tokenizer, [list(s.messages) for s in specs], n_per_prompt=k,
                     max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                     seed=seed_for("generate", cfg.seed, step, mode, *([tag] if tag else [])), adapter=run.adapter,
                     mode=mode, group_index=index)
        parts.append((r, k))
    if len(parts) == 1:
        return parts[0][0]
    return join_groups(parts, len(specs), pad_token_id(run.tokenizer))


def generate_batch(run: Run, specs: list[PromptSpec], step: int, groups: range | None = None) -> Rollouts:
    """G rows per prompt in contiguous groups. While teachers are on, a prompt the pool covers
    gets teacher_per_prompt cached rows in place of that many live rollouts.

    `specs` is the step's global prompt list; `groups` the global indices this process samples
    (default all). prompt_index in the result indexes `[specs[j] for j in groups]`."""
    cfg = run.cfg
    groups = range(len(specs)) if groups is None else groups
    index = list(groups)
    local = [specs[j] for j in index]
    if run.teacher_pool is None or step >= cfg.teacher_off_step:
        return sample_groups(run, local, step, cfg.group_size, index=index)
    from vgrout.train.teacher import pick_teacher_rows, teacher_rollouts

    t = cfg.teacher_per_prompt
    picks = pick_teacher_rows(run.teacher_pool, specs, t, cfg.seed, step)  # global slots, then this shard's
    picks = [picks[j] for j in index]
    if not any(picks):
        return sample_groups(run, local, step, cfg.group_size, index=index)
    pad = pad_token_id(run.tokenizer)
    parts = [sample_groups(run, local, step, cfg.group_size - t, index=index)]
    uncovered = [j for j, rows in enumerate(picks) if not rows]
    if uncovered:  # top uncovered groups up with live rollouts
        extra = sample_groups(run, [local[j] for j in uncovered], step, t, tag="extra",
                              index=[index[j] for j in uncovered])
        extra.prompt_index = torch.tensor(uncovered, dtype=torch.long)[extra.prompt_index]
        parts.append(extra)
    parts.append(teacher_rollouts(run.tokenizer, run.model, local, picks, pad))
    return group_by_prompt(concat_rollouts(parts, pad), len(local), cfg.group_size)


def grade_batch(grader, specs: list[PromptSpec], rollouts: Rollouts) -> list[Grade]:
    """All rollouts of the step in one parallel grader call."""
    reqs = [GradeRequest(problem=specs[int(p)].problem, completion=t, mode=specs[int(p)].mode)
            for p, t in zip(rollouts.prompt_index.tolist(), rollouts.texts)]
    return grader.grade(reqs)


def grpo_step(run: Run, grader) -> tuple[dict, dict]:
    """One step: sample prompts -> generate -> grade -> optimise (rewards only) -> diagnostics.

    With several ranks each generates and grades its own groups; metrics and diagnostics
    describe the whole global batch (identical on every rank; rank 0 writes them)."""
    cfg, step, dp = run.cfg, run.step, run.dp
    t0 = time.perf_counter()
    specs = sample_prompts(run.problems, run.mode_of, step, cfg.prompts_per_step, cfg.seed, cfg.unhackable_frac,
                           cfg.system_prompt)
    groups = dp.shard(len(specs))
    local = [specs[j] for j in groups]
    rollouts = generate_batch(run, specs, step, groups)  # N_k = (P / W) * G
    t1 = time.perf_counter()
    grades = grade_batch(grader, local, rollouts)  # oracle labels stay here
    t2 = time.perf_counter()
    rewards = [float(g.reward) for g in grades]
    if dp.world == 1:
        metrics, view = optimise(run.adapter, run.model, run.optimizer, run.scheduler, run.gate, rollouts, rewards,
                                 cfg, share_prompt=not cfg.gradient_checkpointing)
    else:
        metrics, view = optimise_sharded(run.adapter, run.model, run.optimizer, run.scheduler, run.gate, rollouts,
                                         rewards, cfg, dp)
    run.gate.steps_since_refresh += 1
    if (cfg.arm in DIRECTION_ARMS and cfg.placebo_seed < 0 and cfg.refresh_every
            and (step + 1) % cfg.refresh_every == 0):
        refresh_direction(run)
    t3 = time.perf_counter()
    hackable = [local[int(p)].hackable for p in rollouts.prompt_index.tolist()]
    if dp.world > 1:  # the whole batch, in single-process row order
        grades, hackable = dp.gather_objects(grades), dp.gather_objects(hackable)
        deployed, view = dp.gather_rows(rollouts.deployed.cpu()), gather_view(view, dp)
        lens = dp.gather_rows(rollouts.completion_mask.sum(1).float())
    else:
        deployed, lens = rollouts.deployed.cpu(), rollouts.completion_mask.sum(1).float()
    diag = oracle_diagnostics(grades, hackable, deployed, view.live, view.zones, view.scores, view.advantages)
    metrics.update({"step": step, "time_generate": t1 - t0, "time_grade": t2 - t1, "time_optimise": t3 - t2,
                    "completion_len": float(lens.mean())})
    if run.gate.direction is not None:
        metrics["direction_age"] = run.gate.steps_since_refresh
    diag["step"] = step
    return metrics, diag


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
    d = st["direction"]
    run.gate.direction = None if d is None else d.cpu()  # the gate's device contract: CPU float32 (gates.band)
    run.gate.steps_since_refresh = st["steps_since_refresh"]
    if st["buffer"] is not None:
        run.gate.buffer = ScoreBuffer(1)
        run.gate.buffer.load_state_dict(st["buffer"])
    run.direction_info = st["direction_info"]
    run.step = step


# ---- entry point -------------------------------------------------------------------------
def check_run_dir(cfg: Config | None, run_dir: Path, resume: bool, overwrite: bool) -> Config:
    """Read-only half of `prepare_run_dir` (every rank runs it): the config to run, or the error."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if resume:
        if not cfg_path.exists():
            raise FileNotFoundError(f"--resume {run_dir}: no config.json there; is it a run directory?")
        return Config.from_dict(json.loads(cfg_path.read_text()))
    if cfg is None:
        raise ValueError("train() needs a Config for a new run (cfg=None only with resume=True)")
    if run_dir.exists() and any(run_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"run directory {run_dir} already exists; pass --resume {run_dir} to continue it "
                              "or --overwrite to start over")
    return cfg


def write_run_dir(cfg: Config, run_dir: Path) -> None:
    """Start a fresh run directory holding config.json (an existing one is deleted first)."""
    run_dir = Path(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = run_dir / "config.json"
    tmp = cfg_path.with_name("config.json.tmp")
    tmp.write_text(cfg.to_json())
    os.replace(tmp, cfg_path)


def prepare_run_dir(cfg: Config, run_dir: Path, resume: bool, overwrite: bool) -> Config:
    """Create (or check, on resume) the run directory; returns the config to run."""
    cfg = check_run_dir(cfg, run_dir, resume, overwrite)
    if not resume:
        write_run_dir(cfg, run_dir)
    return cfg


def train(cfg: Config | None, run_dir: str | os.PathLike, *, resume: bool = False, overwrite: bool = False,
          grader_factory: Callable[[], object] | None = None, eval_callback: Callable[[Run], None] | None = None,
          stop_after: int | None = None, progress: bool = True) -> Run:
    """Run (or resume) training into `run_dir`. `stop_after` ends after that many steps (tests).

    With eval_every > 0 and no `eval_callback`, the held-out eval (vgrout.train.evalhook) runs
    every eval_every steps and after the last. With retain_heal_epochs > 0 the heal runs once
    after the last step (see `finish_retain_heal`).

    Under torchrun / accelerate launch (WORLD_SIZE > 1) every rank calls this; rank 0 alone
    writes the run directory, metrics, diagnostics and checkpoints, and runs the eval hook and
    the retain-heal (the other ranks' returned Run is not healed).
    """
    run_dir = Path(run_dir)
    cfg = check_run_dir(cfg, run_dir, resume, overwrite)
    dp = DataParallel(cfg.device)
    dp.shard(cfg.prompts_per_step)  # fail early when P does not split over the ranks
    dp.barrier()  # every rank has checked the directory before rank 0 rewrites it
    if not resume and dp.is_main:
        write_run_dir(cfg, run_dir)
    dp.barrier()
    run = build_run(cfg, run_dir, dp)
    if eval_callback is None and cfg.eval_every and dp.is_main:
        from vgrout.train.evalhook import HeldoutEval

        eval_callback = HeldoutEval(cfg)
        check_disjoint(run.problems, eval_callback.problems, cfg.problems, cfg.eval_problems)  # train vs eval ids
    if not dp.is_main:
        eval_callback = None
    if resume:
        if dp.is_main:
            clean_partial(run_dir)
        dp.barrier()
        ckpt = latest_checkpoint(run_dir)
        if ckpt is not None:  # none: killed before the first checkpoint, so start over from step 0
            restore(run, ckpt)
    metrics = diags = bar = None
    if dp.is_main:
        for name in ("metrics.jsonl", "diagnostics.jsonl"):
            truncate_from(run_dir / name, run.step)  # drop rows logged after the checkpoint
        if not resume:
            (run_dir / "direction.json").write_text(json.dumps(run.direction_info, indent=2))
        metrics = with_tensorboard(JsonlSink(run_dir / "metrics.jsonl"), run_dir, cfg.tensorboard, "train")
        diags = with_tensorboard(JsonlSink(run_dir / "diagnostics.jsonl"), run_dir, cfg.tensorboard, "diagnostics")
    if grader_factory is None:
        from vgrout.env import Grader

        def grader_factory():
            return Grader(sandbox=cfg.sandbox, workers=cfg.grader_workers)
    if progress and dp.is_main:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=run.step, desc=f"{cfg.arm}", dynamic_ncols=True)
    try:
        with grader_factory() as grader:
            run.grader = grader
            while run.step < cfg.steps and (stop_after is None or run.step < stop_after):
                with oom_guard(cfg, f"step {run.step}"):  # an OOM names micro_batch, max_new_tokens, group_size
                    row, diag = grpo_step(run, grader)
                run.step += 1
                if not dp.is_main:
                    continue
                metrics.write(row)
                diags.write(diag)
                last = run.step == cfg.steps
                if (cfg.checkpoint_every and run.step % cfg.checkpoint_every == 0) or last:
                    save_checkpoint(run_dir, run.step, run.adapter, trainer_state(run))
                if eval_callback is not None and cfg.eval_every and (run.step % cfg.eval_every == 0 or last):
                    eval_callback(run)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(rew=f"{row['reward_mean']:.2f}", hack=f"{diag['hack_rate']:.2f}",
                                    solve=f"{diag['solve_rate']:.2f}", route=f"{row.get('zone_route', 0):.2f}",
                                    kl=f"{row.get('kl', 0):.3f}")
            if run.step == cfg.steps and cfg.retain_heal_epochs and dp.is_main:
                finish_retain_heal(run, eval_callback)
    finally:
        run.grader = None
        for sink in (metrics, diags, bar):
            if sink is not None:
                sink.close()
    dp.barrier()  # rank 0's last checkpoint is complete before any rank returns
    return run


def finish_retain_heal(run: Run, eval_callback: Callable[[Run], object] | None) -> dict:
    """Retain-heal once after the last step: heal, save the healed adapter and its stats under
    RUN_DIR/retain_heal/, and (with the eval hook) evaluate it into eval/after_retain_heal.json.
    Skipped when retain_heal/ is already complete (a resumed finished run)."""
    from vgrout.train.heal import retain_heal

    cfg = run.cfg
    out = run.run_dir / "retain_heal"
    if (out / "heal.json").exists():
        return json.loads((out / "heal.json").read_text())
    stats = retain_heal(run.adapter, run.model, run.tokenizer, run.heal_pairs, epochs=cfg.retain_heal_epochs,
                        lr=cfg.retain_heal_lr or cfg.lr, batch=cfg.retain_heal_batch, grad_clip=cfg.grad_clip)
    tmp = run.run_dir / ".tmp-retain_heal"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    run.adapter.save(tmp / "adapter.safetensors")
    (tmp / "heal.json").write_text(json.dumps(stats, indent=2))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    if eval_callback is not None and hasattr(eval_callback, "evaluate"):
        result = eval_callback.evaluate(run, run.grader)
        eval_callback.write(run, result, run.run_dir / "eval" / "after_retain_heal.json", None)
    return stats
