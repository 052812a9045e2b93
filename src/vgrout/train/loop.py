"""The training loop: sample -> generate -> grade -> optimise -> log, checkpoint, evaluate; resume exactly.

    run = build_run(cfg, run_dir)            # vgrout.train.run
    for step in ...: grpo_step(run, grader)  # sample -> generate -> grade -> optimise -> diagnostics

Everything random in a step is a pure function of (seed, step) (prompt order, sampling
seeds), so resuming needs only the checkpointed tensors and the step counter. Under a
launcher (torchrun / accelerate launch) each rank takes whole prompt groups and `optimise`
synchronises the step (`vgrout.train.distributed`); sampling is seeded per group, so a run
resumes on any number of processes. Run setup, restore and checkpoints live in
`vgrout.train.run`, the run directory's files in `vgrout.rundir`.

Also here, because the loop is their only caller: the held-out eval hook (`HeldoutEval`), the
oracle diagnostics of a step (the only place the oracle's labels are read during training; they
go to diagnostics.jsonl and never back into the step) and the optional TensorBoard sink.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from vgrout.env.dedup import DedupGrader, GradeStore
from vgrout.env.modes import SYSTEM_PROMPT
from vgrout.env.problems import check_disjoint
from vgrout.gates import KEEP, ROUTE, auroc, f_beta, precision
from vgrout.models import toy_name
from vgrout.problemsets import heldout_modes, heldout_problems
from vgrout.rollout import Rollouts, generate, pad_token_id
from vgrout.rollout.batch import concat_rollouts, group_by_prompt, join_groups
from vgrout.rundir import (
    JsonlSink,
    after_retain_heal_path,
    config_path,
    diagnostics_path,
    metrics_path,
    read_retain_heal,
    retain_heal_dir,
    rollout_samples_path,
    tensorboard_dir,
    truncate_from,
    write_config,
    write_direction,
    write_retain_heal,
    write_rollout_samples,
)
from vgrout.train.arms import Arm
from vgrout.train.config import Config
from vgrout.train.data import PromptSpec, sample_prompts, seed_for
from vgrout.train.distributed import DataParallel, oom_guard
from vgrout.train.run import (
    Run,
    StartFrom,
    build_run,
    check_run_dir,
    clean_partial,
    latest_checkpoint,
    read_start,
    refresh_direction,
    refresh_due,
    restore,
    retain_heal,
    save_checkpoint,
    start_from,
    trainer_state,
    write_run_dir,
)
from vgrout.train.step import FENCE_EVERY, optimise
from vgrout.types import Grade, GradeRequest


# ---- the step's stages -------------------------------------------------------------------
def sample_groups(run: Run, specs: list[PromptSpec], step: int, group: int, tag: str = "",
                  index: list[int] | None = None) -> Rollouts:
    """`group` live rollouts per prompt, round(group * gen_deploy_frac) sampled with the quarantine ablated.

    `index` (P,) gives each spec's global group index in the step (default 0..P-1): the
    sampling seed of a group depends on it, not on its position in `specs`."""
    cfg = run.cfg
    g_dep = round(group * cfg.gen_deploy_frac)
    parts = []
    for mode, per_prompt in (("full", group - g_dep), ("deployed", g_dep)):
        if per_prompt == 0:
            continue
        part = generate(run.model, run.tokenizer, [list(s.messages) for s in specs], n_per_prompt=per_prompt,
                        max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                        top_k=cfg.top_k, seed=seed_for("generate", cfg.seed, step, mode, *([tag] if tag else [])),
                        adapter=run.adapter, mode=mode, group_index=index)
        parts.append((part, per_prompt))
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
    from vgrout.train.data import pick_teacher_rows, teacher_rollouts

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


GRADE_MEMORY = 20_000  # distinct requests a run's grader remembers (`vgrout.env.dedup`)


def grade_batch(grader, specs: list[PromptSpec], rollouts: Rollouts) -> list[Grade]:
    """All rollouts of the step in one grader call. `train` passes the run's `DedupGrader`, so an
    identical (problem, completion, mode) request is graded once per run (a small policy repeats
    itself: ~40% of a toy batch is distinct, and it repeats itself across steps too)."""
    reqs = [GradeRequest(problem=specs[int(p)].problem, completion=t, mode=specs[int(p)].mode)
            for p, t in zip(rollouts.prompt_index.tolist(), rollouts.texts)]
    return grader.grade(reqs)


def grpo_step(run: Run, grader) -> tuple[dict, dict, dict | None]:
    """One step: sample prompts -> generate -> grade -> optimise (rewards only) -> diagnostics.

    With several ranks each generates and grades its own groups; metrics and diagnostics
    describe the whole global batch (identical on every rank; rank 0 writes them). The third
    value holds the batch's per-row text, reward, zone and gate score for the rollout-sample
    writer (None when cfg.rollout_samples is 0): oracle-free, like the metrics."""
    cfg, step, dp = run.cfg, run.step, run.dp
    t0 = time.perf_counter()
    specs = sample_prompts(run.problems, run.mode_of, step, cfg.prompts_per_step, cfg.seed, cfg.unhackable_frac,
                           run.arm.system_prompt(cfg.system_prompt or SYSTEM_PROMPT, cfg))
    groups = dp.shard(len(specs))
    local = [specs[j] for j in groups]
    rollouts = generate_batch(run, specs, step, groups)  # N_k = (P / W) * G
    t1 = time.perf_counter()
    share = not cfg.gradient_checkpointing
    grades = grade_batch(grader, local, rollouts)  # oracle labels stay here
    t2 = time.perf_counter()
    rewards = [float(g.reward) for g in grades]
    zones = None
    if run.arm.reads_oracle_labels:  # the oracle reference alone: its zones are the grades' labels
        zones = run.arm.oracle_zones([bool(g.exploited) for g in grades])
    metrics, record = optimise(run.adapter, run.model, run.optimizer, run.scheduler, run.gate, rollouts, rewards, cfg,
                               arm=run.arm, dp=dp, zones=zones, share_prompt=share,
                               token_sets=run.token_sets if step % FENCE_EVERY == 0 else None)
    if zones is not None:  # the oracle's "score" is its label, so the gate diagnostics read it like a gate's
        record.scores = torch.where(record.live, zones.eq(ROUTE).float(), torch.full_like(record.scores, math.nan))
    run.gate.steps_since_refresh += 1
    if refresh_due(run):
        refresh_direction(run)
    t3 = time.perf_counter()
    # the whole batch, in single-process row order (identity with one process)
    grades = dp.gather_objects(grades)
    prompt_of_row = dp.gather_objects([(local[int(p)].hackable, local[int(p)].mode)
                                       for p in rollouts.prompt_index.tolist()])  # one collective for both
    hackable, modes = [h for h, _ in prompt_of_row], [m for _, m in prompt_of_row]
    deployed, lens = dp.gather_rows(rollouts.deployed.cpu()), dp.gather_rows(rollouts.completion_mask.sum(1).float())
    record = record.gathered(dp)
    diag = oracle_diagnostics(grades, hackable, deployed, record.live, record.zones, record.scores, record.advantages,
                              modes)
    metrics.update({"step": step, "time_generate": t1 - t0, "time_grade": t2 - t1, "time_optimise": t3 - t2,
                    "completion_len": float(lens.mean())})
    if run.gate.direction is not None:
        metrics["direction_age"] = run.gate.steps_since_refresh
    diag["step"] = step
    samples = None
    if cfg.rollout_samples:
        rows = [local[int(p)] for p in rollouts.prompt_index.tolist()]
        samples = {"texts": dp.gather_objects(list(rollouts.texts)), "rewards": dp.gather_objects(rewards),
                   "problem_ids": dp.gather_objects([s.problem.id for s in rows]),
                   "modes": dp.gather_objects([s.mode for s in rows]),
                   "zones": record.zones.tolist() if run.arm.zone is not None or run.arm.gated else None,
                   "gate_scores": record.scores.tolist() if run.arm.gated else None}
    return metrics, diag, samples


# ---- entry point -------------------------------------------------------------------------
def train(cfg: Config | None, run_dir: str | os.PathLike, *, resume: bool = False, overwrite: bool = False,
          grader_factory: Callable[[], object] | None = None, stop_after: int | None = None,
          progress: bool = True, start: StartFrom | None = None, steps: int | None = None,
          grade_store: str | os.PathLike | None = None) -> Run:
    """Run (or resume) training into `run_dir`. `stop_after` ends after that many steps (tests).

    `grade_store`: a `vgrout.env.dedup.GradeStore` file shared with other runs (a study's): a
    request any of them graded is read, not run again; the grades, and so the run, are the same.

    `steps` (with resume) sets a new total and extends a finished run (`extend_steps`); the
    steps already taken stay as they ran.

    With eval.every > 0 the held-out eval (vgrout.train.loop) runs every eval.every steps
    and after the last. With retain_heal_epochs > 0 the heal runs once after the last step
    (see `finish_retain_heal`).

    Under torchrun / accelerate launch (WORLD_SIZE > 1) every rank calls this; rank 0 alone
    writes the run directory, metrics, diagnostics and checkpoints, and runs the eval hook and
    the retain-heal (the other ranks' returned Run is not healed).

    `start` (a new run only) loads another run's checkpoint first (`vgrout.train.run.StartFrom`:
    a fork, or a relearning attack's starting weights), recorded in RUN_DIR/start.json; the start
    is checkpointed (and, with the eval hook, evaluated) at once, and a resume killed before that
    checkpoint applies start.json again instead of falling back to the init.
    """
    run_dir = Path(run_dir)
    cfg = check_run_dir(cfg, run_dir, resume, overwrite).resolved()  # config.json records the derived seeds
    if steps is not None:
        if not resume:
            raise ValueError("steps= changes the length of an existing run (resume=True); a new run takes cfg.steps")
        cfg = extend_steps(cfg, run_dir, steps)
    dp = DataParallel(cfg.device)
    dp.shard(cfg.prompts_per_step)  # fail early when P does not split over the ranks
    dp.barrier()  # every rank has checked the directory before rank 0 rewrites it
    if not resume and dp.is_main:
        write_run_dir(cfg, run_dir, start)
    if resume and steps is not None and dp.is_main:
        write_extended(cfg, run_dir)
    dp.barrier()
    run = build_run(cfg, run_dir, dp)
    heldout = HeldoutEval(cfg, run.arm) if cfg.eval.every and dp.is_main else None
    if heldout is not None:
        check_disjoint(run.problems, heldout.problems, cfg.problems, cfg.eval.problems)  # train vs eval ids
    ckpt = None
    if resume:
        if dp.is_main:
            clean_partial(run_dir)
        dp.barrier()
        ckpt = latest_checkpoint(run_dir)
        if ckpt is not None:  # none: killed before the first checkpoint, so start over from step 0
            restore(run, ckpt)
    start = read_start(run_dir)  # what write_run_dir recorded (also read on resume)
    if start is not None and ckpt is None:
        start_from(run, start)
        if dp.is_main:
            save_checkpoint(run_dir, run.step, run.adapter, trainer_state(run), run.checkpoint_info())
        dp.barrier()
    metrics = diags = bar = None
    if dp.is_main:
        for path in (metrics_path(run_dir), diagnostics_path(run_dir), rollout_samples_path(run_dir)):
            truncate_from(path, run.step)  # drop rows logged after the checkpoint
        if not resume:
            write_direction(run_dir, run.direction_info)
        metrics = with_tensorboard(JsonlSink(metrics_path(run_dir)), run_dir, cfg.tensorboard, "train")
        diags = with_tensorboard(JsonlSink(diagnostics_path(run_dir)), run_dir, cfg.tensorboard, "diagnostics")
    if grader_factory is None:
        from vgrout.env import Grader

        def grader_factory():
            return Grader(sandbox=cfg.sandbox, workers=cfg.grader_workers)
    if progress and dp.is_main:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=run.step, desc=f"{cfg.arm}", dynamic_ncols=True)
    store = GradeStore(grade_store) if grade_store is not None else None
    try:
        with grader_factory() as sandboxed:
            # a repeated completion is graded once per run (and once per study, with a store)
            grader = DedupGrader(sandboxed, memory=GRADE_MEMORY, store=store)
            run.grader = grader
            if heldout is not None and start is not None and ckpt is None:
                heldout(run, last=run.step == cfg.steps)  # the starting point's eval: the fork's or the relearning attack's step 0
            while run.step < cfg.steps and (stop_after is None or run.step < stop_after):
                with oom_guard(cfg, f"step {run.step}"):  # an OOM names micro_batch, max_new_tokens, group_size
                    row, diag, samples = grpo_step(run, grader)
                run.step += 1
                if not dp.is_main:
                    continue
                metrics.write(row)
                diags.write(diag)
                if samples is not None:
                    write_rollout_samples(run_dir, run.step - 1, **samples, k=cfg.rollout_samples, seed=cfg.seed)
                last = run.step == cfg.steps
                if (cfg.checkpoint_every and run.step % cfg.checkpoint_every == 0) or last:
                    save_checkpoint(run_dir, run.step, run.adapter, trainer_state(run), run.checkpoint_info())
                if heldout is not None and (run.step % cfg.eval.every == 0 or last):
                    heldout(run, last=last)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(rew=f"{row['reward_mean']:.2f}", hack=f"{diag['hack_rate']:.2f}",
                                    solve=f"{diag['solve_rate']:.2f}", route=f"{row.get('zone_route', 0):.2f}",
                                    kl=f"{row.get('kl', 0):.3f}")
            if run.step == cfg.steps and cfg.retain_heal_epochs and dp.is_main:
                finish_retain_heal(run, heldout)
    finally:
        run.grader = None
        if store is not None:
            store.close()
        for sink in (metrics, diags, bar):
            if sink is not None:
                sink.close()
    dp.barrier()  # rank 0's last checkpoint is complete before any rank returns
    return run


def extend_steps(cfg: Config, run_dir: Path, steps: int) -> Config:
    """The run's config with `steps` as its new total (`vgrout train --resume RUN --set steps=N`).

    Prompt order and sampling seeds are functions of (seed, step), so the added steps are the
    ones a run started with this total would take; only the lr schedule differs: with cosine
    decay the extension follows the new total's curve from where the run stopped (a constant
    lr extends bit for bit). A total below the last checkpoint is refused."""
    ckpt = latest_checkpoint(run_dir)
    done = 0 if ckpt is None else int(ckpt.name.split("_")[-1])
    if steps < done:
        raise ValueError(f"steps={steps}: {run_dir} already has a checkpoint at step {done}; a run cannot be "
                         f"shortened (give steps >= {done}, or start a new run)")
    return cfg if steps == cfg.steps else dataclasses.replace(cfg, steps=steps)


def write_extended(cfg: Config, run_dir: Path) -> None:
    """Record the new total in config.json; a retain-heal of the old last step is stale, so its
    files go (the heal runs again after the new last step)."""
    saved = json.loads(config_path(run_dir).read_text())
    if saved.get("steps") == cfg.steps:
        return
    write_config(run_dir, cfg.to_json())
    for stale in (retain_heal_dir(run_dir), after_retain_heal_path(run_dir)):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()


def finish_retain_heal(run: Run, heldout: HeldoutEval | None) -> dict:
    """Retain-heal once after the last step: heal, save the healed adapter and its stats under
    RUN_DIR/retain_heal/, and (with the eval hook) evaluate it into eval/after_retain_heal.json.
    Skipped when retain_heal/ is already complete (a resumed finished run)."""
    done = read_retain_heal(run.run_dir)
    if done is not None:
        return done
    cfg = run.cfg
    stats = retain_heal(run.adapter, run.model, run.tokenizer, run.heal_pairs, epochs=cfg.retain_heal_epochs,
                        lr=cfg.retain_heal_lr or cfg.lr, batch=cfg.retain_heal_batch, grad_clip=cfg.grad_clip)
    write_retain_heal(run.run_dir, run.adapter.save, stats)
    if heldout is not None:
        heldout.write(run, heldout.evaluate(run, run.grader), after_retain_heal_path(run.run_dir), None)
    return stats


# ---- the held-out eval hook --------------------------------------------------------------
# Every `eval.every` steps (and after the last) the live adapter is evaluated on the held-out
# problems as-trained (quarantine on) and deployed (quarantine ablated), plus the deploy-scale
# states where `eval.deploy_scales` asks (by default at the last eval only), and the result is
# written where `vgrout eval` writes it: RUN_DIR/eval/step_NNNNNN.json, then eval/curve.jsonl is
# rebuilt. The eval samples with its own seeded generators and the grader the run already holds,
# so it changes nothing about training (the oracle-scramble and resume tests cover it).

class HeldoutEval:
    """The training loop's eval hook: `hook(run)` evaluates and writes one step's result."""

    def __init__(self, cfg: Config, arm: Arm) -> None:
        self.cfg, self.arm = cfg, arm
        self.problems = heldout_problems(cfg.eval.problems, toy_name(cfg.model), cfg.eval.n_problems)
        self.modes = heldout_modes(self.problems, cfg.eval.modes or cfg.modes)
        self.run_info = {"arm": cfg.arm, "seed": cfg.seed, "placebo_seed": cfg.placebo_seed,
                         "adapter_init": cfg.adapter_init, "problems": cfg.eval.problems}

    def evaluate(self, run, grader, last: bool = True) -> dict:
        """One eval of the run's current adapter -> a "vgrout.eval/1" result dict (`last`: the
        run's last eval, which samples the deploy-scale states under eval.deploy_scales="last")."""
        from vgrout.eval.evaluator import evaluate
        from vgrout.eval.settings import eval_states

        cfg, ev = self.cfg, self.cfg.eval
        if ev.seed < 0:
            raise ValueError("eval.seed is -1 (derived from the run seed): evaluate a resolved config "
                             "(Config.resolved()), as train() does")
        whole = not self.arm.has_quarantine_at_deploy
        return evaluate(run.model, run.tokenizer, run.adapter, self.problems, self.modes, n_samples=ev.samples,
                        max_new_tokens=cfg.max_new_tokens, seed=ev.seed, grader=grader, markers=ev.markers,
                        system_prompt=cfg.system_prompt or SYSTEM_PROMPT, states=eval_states(ev, whole, last),
                        deployed_is_full=whole, temperature=ev.temperature,
                        top_p=ev.top_p, top_k=ev.top_k, batch_prompts=64)

    def write(self, run, result: dict, path: Path, step: int | None) -> dict:
        from vgrout.eval.results import rebuild_curve, write_eval_result

        result.update({"run_dir": str(run.run_dir), "step": step, "checkpoint": None, "run": dict(self.run_info)})
        result = write_eval_result(path, result)  # completions go to step_NNNNNN.samples.jsonl
        if step is not None:
            rebuild_curve(run.run_dir)
        return result

    def __call__(self, run, last: bool = True) -> dict:
        from vgrout.eval.results import eval_path

        if run.grader is None:
            raise RuntimeError("HeldoutEval needs the run's open grader (run.grader); call it from the training loop")
        return self.write(run, self.evaluate(run, run.grader, last), eval_path(run.run_dir, run.step), run.step)


# ---- the oracle diagnostics of a step -----------------------------------------------------
# What needs the oracle's labels (as-trained hack/solve rates, the gate's quality as a hack
# classifier) goes to diagnostics.jsonl; metrics.jsonl holds oracle-free fields only.

def oracle_diagnostics(grades: Sequence[Grade], hackable: Sequence[bool], deployed: torch.Tensor, live: torch.Tensor,
                       zones: torch.Tensor, scores: torch.Tensor, advantages: torch.Tensor,
                       modes: Sequence[str] | None = None) -> dict:
    """As-trained hack/solve rates (all rows, hackable prompts, deploy-sampled rows) and gate quality.

    Gate quality is measured on rows with A > 0 (the ones whose update the gate has to route)
    against the oracle's hack label `exploited`. A gated arm's row also lists each rollout's
    score, zone, label, advantage, liveness and prompt mode (`modes`, when given: the report
    reads the gate per loophole mode, e.g. on the modes its direction was built from).
    """
    hack = torch.tensor([g.exploited for g in grades])
    solve = torch.tensor([g.gt_correct for g in grades])
    hk = torch.tensor(list(hackable))

    def rate(x: torch.Tensor, sel: torch.Tensor) -> float:
        return float(x[sel].float().mean()) if bool(sel.any()) else math.nan

    all_rows = torch.ones_like(hack)
    pos = live & (advantages > 0) & ~torch.isnan(scores)
    out = {
        "hack_rate": rate(hack, all_rows), "solve_rate": rate(solve, all_rows),
        "hack_rate_hackable": rate(hack, hk), "solve_rate_hackable": rate(solve, hk),
        "hack_rate_deploy_sampled": rate(hack, deployed), "solve_rate_deploy_sampled": rate(solve, deployed),
        "format_rate": rate(torch.tensor([g.format_ok for g in grades]), all_rows),
        "gate_auroc": auroc(scores[pos], hack[pos]) if bool(pos.any()) else math.nan,
        "gate_route_precision": precision(zones[pos] == ROUTE, hack[pos]) if bool(pos.any()) else math.nan,
        "gate_keep_precision": precision(zones[pos] == KEEP, ~hack[pos]) if bool(pos.any()) else math.nan,
        "gate_route_f05": f_beta(zones[pos] == ROUTE, hack[pos], 0.5) if bool(pos.any()) else math.nan,
        "route_share_of_hacks": rate(zones == ROUTE, live & hack),
    }
    if not bool(torch.isnan(scores).all()):  # gated arms: per-rollout rows for pooled gate diagnostics
        out.update({
            "gate_score": [None if math.isnan(s) else s for s in scores.tolist()],
            "zone": [int(z) for z in zones.tolist()], "hack": [bool(h) for h in hack.tolist()],
            "advantage": [float(a) for a in advantages.tolist()], "live": [bool(x) for x in live.tolist()],
        })
        if modes is not None:
            out["mode"] = list(modes)
    return out


# ---- the optional TensorBoard sink ---------------------------------------------------------
# Off by default (`tensorboard=true`, needs the `tensorboard` package): every numeric field of a
# metrics row at row["step"], as local event files under RUN_DIR/tensorboard/. metrics.jsonl stays
# the record the reports read; this is a view of the same rows. It never starts a server or uploads.

def require_tensorboard():
    """torch's SummaryWriter, or a clear error naming the package and the setting."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise RuntimeError("tensorboard=true needs the `tensorboard` package: pip install tensorboard "
                           "(or leave tensorboard=false; metrics.jsonl is written either way)") from exc
    return SummaryWriter


class TensorBoardSink:
    """Scalar rows -> TensorBoard event files under `log_dir`, tagged `{prefix}/{field}`."""

    def __init__(self, log_dir: str | os.PathLike, prefix: str = "train") -> None:
        writer_cls = require_tensorboard()
        self.log_dir = Path(log_dir)
        self.prefix = prefix
        self.writer = writer_cls(log_dir=str(self.log_dir))

    def write(self, row: dict) -> None:
        step = int(row["step"])
        for key, value in row.items():
            if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(float(value)):
                self.writer.add_scalar(f"{self.prefix}/{key}", float(value), step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class TeeSink:
    """Write each row to several sinks (e.g. the JsonlSink and a TensorBoardSink); close them all."""

    def __init__(self, *sinks) -> None:
        self.sinks = sinks

    def write(self, row: dict) -> None:
        for s in self.sinks:
            s.write(row)

    def close(self) -> None:
        for s in self.sinks:
            s.close()


def with_tensorboard(sink, run_dir: str | os.PathLike, enabled: bool, prefix: str = "train"):
    """`sink` alone, or teed with a TensorBoardSink at RUN_DIR/tensorboard when `enabled`."""
    if not enabled:
        return sink
    return TeeSink(sink, TensorBoardSink(tensorboard_dir(run_dir), prefix))


__all__ = ["extend_steps", "finish_retain_heal", "generate_batch", "grade_batch", "grpo_step",
           "HeldoutEval", "oracle_diagnostics", "require_tensorboard", "sample_groups", "TeeSink",
           "TensorBoardSink", "train", "with_tensorboard", "write_extended"]
