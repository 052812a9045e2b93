"""One GRPO step for any number of processes: advantages -> zones -> logp_old -> masked loss -> update.

Read `optimise` (at "the step") top to bottom: it is the method. The stages it calls come
before it, the advantage and the loss after it.

`optimise` is the oracle-free half of a step: it is handed the rollouts and their rewards
(floats) and nothing that carries an oracle label. The loop (`vgrout.train.loop`) does the
sampling and grading and sends the `Grade` objects to the diagnostics sink only.

Departures from textbook GRPO (Shao et al. 2024), all deliberate:
1. Dr.GRPO advantage A = r - mean(group): no division by the group std, and a constant loss
   normaliser P * G * T_max instead of per-sequence length normalisation. With
   `per_block_baseline`, a group's keep and absorb rows are centred on their own mean once zones
   are known, when the group has a routed row (`deployed_block_advantages`, below).
2. Zero-variance groups are dropped from the update (they carry A = 0) and counted.
3. One optimizer update per batch, so on-policy rows have rho = 1 and need no logp_old
   forward (old = detached current). A separate no-grad logp_old forward runs only for rows
   whose sampling adapter mode differs from their loss forward (sampled with the quarantine
   ablated but trained in absorb/route, or the reverse), and teacher rows use their cached
   behaviour log-probs, so rho is a true importance ratio everywhere.
   Dual clip: PPO's clip leaves rho A unbounded when A < 0, and those off-policy rows can have
   rho far above 1 (a keep row the full adapter liked but the deployed block alone does not),
   so rho is capped at `dual_clip_c` (default 3) on tokens with A < 0 (`grpo_token_loss`, below);
   `dual_clip_frac` / `dual_clip_row_frac` log how often the cap binds. On-policy rows
   (rho = 1) are untouched, bit for bit.
4. KL to the adapter-free base with the k3 estimator, added per token (beta may be 0).
5. Routing: per-row zones select which adapter block a row's gradient reaches (see gates/).
6. AdamW with no built-in decay; weight decay pulls the adapter toward its init instead.
The model stays in eval mode (no dropout) so sampling, scoring and training see one function.

Every forward except routeV's gradient probe runs each prompt once per (group, zone) and
the G completions against its repeated KV cache (`completion_logps`): same numbers as the
plain forward to float rounding, 2-3x less compute. `rows_shared_prompt` / `rows_plain`
count the rows of each kind in the step.

Data parallelism (`vgrout.train.distributed.DataParallel`; with one process every collective
is the identity): each process holds whole prompt groups, so advantages and the zero-variance
drop are local; the gate features are all-gathered in rank order and every rank cuts the same
band; the gradients are summed before the update; live rows and metrics are counted over the
gathered batch. The metrics keys are the same for every world size.

Every forward here runs on the live rows, which are known only once the rewards are. (Running
the reward-independent forwards beside the grader was measured a wash on 2 vCPUs and is gone:
docs/results/performance-history.md, "Overlapped grading".)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor

from vgrout.gates import ScoreBuffer, band_gate
from vgrout.rollout import Rollouts
from vgrout.rollout.batch import chunks, select_rows
from vgrout.rollout.logps import completion_logps, position_ids_from_mask
from vgrout.train.arms import Arm, arm_for
from vgrout.train.config import Config
from vgrout.train.direction import act_features, adapter_context, count_rows, grad_features
from vgrout.train.distributed import DataParallel
from vgrout.types import ABSORB, KEEP, ROUTE, ZONE_NAMES


@dataclass
class GateState:
    """The direction (M, r) the gate scores against, the run-spanning buffer, and refresh age."""

    direction: Tensor | None = None
    buffer: ScoreBuffer | None = None
    steps_since_refresh: int = 0


@dataclass
class StepRecord:
    """What the step decided for each batch row (N,), for the diagnostics sink (never read back)."""

    live: Tensor  # (N,) bool: the row's group had reward variance, so the row took part in the update
    advantages: Tensor  # (N,) float
    zones: Tensor  # (N,) long: the row's zone; ABSORB outside the update
    scores: Tensor  # (N,) float: the gate's score; NaN where no gate scored the row

    def gathered(self, dp: DataParallel) -> StepRecord:
        """The whole batch's record on every rank (rank order = the single-process row order)."""
        return StepRecord(live=dp.gather_rows(self.live), advantages=dp.gather_rows(self.advantages),
                          zones=dp.gather_rows(self.zones), scores=dp.gather_rows(self.scores))


@dataclass
class ZoneDecision:
    """The zones of the K live rows and what the decision left for later stages."""

    zones: Tensor | None  # (K,) long; None: the zone-free forward (vanilla)
    scores: Tensor  # (K,) float, NaN for rows no gate scored
    t_lo: float = math.nan  # the band's thresholds (NaN: no cut this step)
    t_hi: float = math.nan
    deployed_logps: Tensor | None = None  # (K, T) from routeA's deployed-mode feature forward: logp_old of deployed-sampled rows


# ---- stages ------------------------------------------------------------------------------
def choose_zones(arm: Arm, adapter, model, live_rows: Rollouts | None, gate: GateState, cfg: Config,
                 dp: DataParallel, share_prompt: bool = True, counts: dict | None = None) -> ZoneDecision:
    """Zones for this process's live rows (None: it has none this step; it still joins the gather).

    A gated arm reads its features (routeA: pooled activations of a deployed-mode forward, whose
    log-probs are kept as logp_old for deployed-sampled rows; routeV: per-row bottleneck
    gradients); every rank runs `band_gate` on the same all-gathered (K, M, r) features, so the
    buffer and thresholds stay identical across ranks, and keeps its own slice of the zones.
    """
    k = 0 if live_rows is None else len(live_rows)
    if not arm.gated:
        return ZoneDecision(zones=arm.fixed_zones(k), scores=torch.full((k,), math.nan))
    if gate.buffer is None or gate.direction is None:
        raise RuntimeError(f"arm {arm.name} gates on a direction, but the run has none; build the run with build_run")
    deployed = None
    if live_rows is None:
        feats = torch.zeros((0, *gate.direction.shape), dtype=torch.float32)
    elif arm.features == "act":
        # log-probs only where old_logps can read them: deployed-sampled rows (none unless gen_deploy_frac > 0)
        feats, deployed = act_features(adapter, model, live_rows, cfg.micro_batch, share_prompt, counts,
                                       logps_for=live_rows.deployed)  # (K, M, r), (K, T)
    else:
        feats = grad_features(adapter, model, live_rows, cfg.micro_batch, counts)  # (K, M, r)
    per_rank = [int(c) for c in dp.gather_objects([k])]
    feats_all = dp.gather_rows(feats.to(torch.float32))  # (K_all, M, r); scores are float32 either way
    zones, scores, t_lo, t_hi = band_gate(gate.buffer, feats_all, gate.direction.to(feats_all.device),
                                          tail_q=cfg.tail_q, half_life=cfg.half_life or None, warmup=cfg.gate_warmup)
    lo = sum(per_rank[:dp.rank])
    return ZoneDecision(zones=zones[lo:lo + k], scores=scores[lo:lo + k], t_lo=t_lo, t_hi=t_hi, deployed_logps=deployed)


@torch.no_grad()
def old_logps(adapter, model, r: Rollouts, loss_modes: list[str], deployed_logps: Tensor | None, micro_batch: int,
              share_prompt: bool = True, stats: dict | None = None) -> tuple[Tensor, Tensor]:
    """logp_old (K, T) for off-policy rows; `need` (K,) bool marks them.

    Teacher rows take their stored behaviour log-probs (the policy that sampled them); live rows
    whose sampling mode differs from their loss forward get a no-grad forward in the sampling
    mode (`deployed_logps` (K, T), when the gate's forward already computed them, is reused).
    Rows with need=False are on-policy: the caller uses the detached current logp instead.
    """
    old = torch.zeros(r.completion_ids.shape, dtype=torch.float32, device=r.completion_ids.device)
    teacher = r.teacher
    if bool(teacher.any()):
        assert r.behaviour_logps is not None
        m = r.completion_mask.bool()
        beh = torch.where(m, r.behaviour_logps, torch.zeros((), device=old.device))  # NaN padding -> 0 (masked)
        if not bool(torch.isfinite(beh[teacher.to(old.device)]).all()):
            raise ValueError("a teacher row has no behaviour log-prob for one of its completion tokens")
        old[teacher.to(old.device)] = beh[teacher.to(old.device)].float()
    sample_modes = ["deployed" if d else "full" for d in r.deployed.tolist()]
    need = torch.tensor([bool(t) or s != m for t, s, m in zip(teacher.tolist(), sample_modes, loss_modes)],
                        dtype=torch.bool)
    for mode in ("full", "deployed"):
        rows = torch.tensor([i for i in range(len(r)) if need[i] and not teacher[i] and sample_modes[i] == mode],
                            dtype=torch.long)
        if rows.numel() == 0:
            continue
        if mode == "deployed" and deployed_logps is not None:
            old[rows] = deployed_logps[rows]
            continue
        for sl in chunks(len(rows), micro_batch):
            idx = rows[sl].to(r.prompt_ids.device)
            old[idx], run = completion_logps(model, r.prompt_ids[idx], r.prompt_mask[idx], r.completion_ids[idx],
                                             r.completion_mask[idx], share_prompt=share_prompt,
                                             context=adapter_context(adapter, mode))
            count_rows(stats, len(idx), run)
    return old, need


@torch.no_grad()
def reference_logps(adapter, model, r: Rollouts, micro_batch: int, share_prompt: bool = True,
                    stats: dict | None = None) -> Tensor:
    """Log-probs (K, T) under the adapter-free base model (the KL anchor)."""
    out = []
    for sl in chunks(len(r), micro_batch):
        lp, run = completion_logps(model, r.prompt_ids[sl], r.prompt_mask[sl], r.completion_ids[sl],
                                   r.completion_mask[sl], share_prompt=share_prompt,
                                   context=adapter_context(adapter, "base"))
        count_rows(stats, lp.shape[0], run)
        out.append(lp)
    return torch.cat(out)


def loss_backward(adapter, model, r: Rollouts, adv: Tensor, zones: Tensor | None, old: Tensor, need: Tensor,
                  ref: Tensor | None, cfg: Config, normaliser: float, share_prompt: bool = True,
                  counts: dict | None = None) -> tuple[float, dict[str, Tensor]]:
    """Masked forward + backward in micro-batches (gradients accumulate). Returns loss and per-row stats.

    With zones, a prompt is shared only by rows of one group in one zone (the zone is part of
    the unit key), so its prompt forward applies exactly the zone's masks and every row's
    gradient reaches only its zone's blocks, prompt positions included.
    """
    total, stats = 0.0, {"ratio": [], "clipped": [], "dual_clipped": [], "kl": []}
    need = need.to(old.device)
    for sl in chunks(len(r), cfg.micro_batch):
        z = None if zones is None else zones[sl]
        logp, run = completion_logps(model, r.prompt_ids[sl], r.prompt_mask[sl], r.completion_ids[sl],
                                     r.completion_mask[sl], key=z, share_prompt=share_prompt,
                                     context=adapter_context(adapter, zones=z))  # (n, T)
        count_rows(counts, logp.shape[0], run)
        old_sl = torch.where(need[sl, None], old[sl], logp.detach())
        loss, st = grpo_token_loss(logp, old_sl, adv[sl], r.completion_mask[sl], clip=cfg.ppo_clip,
                                   normaliser=normaliser, logp_ref=None if ref is None else ref[sl],
                                   kl_beta=cfg.kl_beta, dual_clip=cfg.dual_clip_c)
        loss.backward()
        total += float(loss.detach())
        for k in stats:
            stats[k].append(st[k].cpu())
    return total, {k: torch.cat(v) for k, v in stats.items()}


FENCE = "```"  # how a valid completion opens: the grader's format check wants a fenced ```python block
FENCE_PROMPTS = 1  # the step's first prompts the first-token log-probs are read on (0: none)
FENCE_EVERY = 5  # the loop reads them on every 5th step (step 0, 5, ...): a diagnostic curve, not the update


def first_token_sets(tokenizer, model=None) -> tuple[Tensor, Tensor] | None:
    """(fence ids, eos ids) under the policy's tokenizer (plus the model's generation-config eos
    ids); None when no token opens a fence. Fence ids: every token whose text opens a ``` fence or
    is a prefix of one (a BPE may merge the fence with what follows: the toy tokenizer's
    completions open with the single token '```python\\nclass Soluti'). Built once per run
    (`vgrout.train.run.build_run`)."""
    from vgrout.rollout.tokens import eos_token_ids

    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    fence = [i for i, t in enumerate(texts) if t.startswith(FENCE) or (t and FENCE.startswith(t))]
    if not fence:
        return None
    return torch.tensor(fence, dtype=torch.long), torch.tensor(sorted(eos_token_ids(tokenizer, model)), dtype=torch.long)


@torch.no_grad()
def first_token_logps(adapter, model, batch: Rollouts, sets: tuple[Tensor, Tensor], n_prompts: int) -> Tensor:
    """(n, 2): log P(first completion token opens a ``` fence), log P(first token is eos), with the
    quarantine ablated, for the batch's first `n_prompts` distinct prompts. How readily the deployed
    block starts a code block, or ends at once (an empty completion), read from the prompts alone
    (no reward, no label). One no-grad prompt forward that keeps only the last position's logits."""
    first: dict[int, int] = {}
    for i, p in enumerate(batch.prompt_index.tolist()):
        first.setdefault(int(p), i)
    dev = batch.prompt_ids.device
    rows = torch.tensor(sorted(first.values())[:n_prompts], dtype=torch.long, device=dev)
    ids, mask = batch.prompt_ids[rows], batch.prompt_mask[rows]
    with adapter.mode("deployed"):
        out = model(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask), use_cache=False,
                    logits_to_keep=1)
    logp = out.logits[:, -1].float().log_softmax(-1)  # (n, V)
    return torch.stack([logp[:, sets[0].to(dev)].logsumexp(1), logp[:, sets[1].to(dev)].logsumexp(1)], 1)


def apply_update(adapter, optimizer, scheduler, cfg: Config, arm: Arm, direction: Tensor | None) -> dict[str, float]:
    """Block norms -> clip -> AdamW step -> decay toward init (inside the arm's `around_update`:
    erase projects the resulting change) -> schedule."""
    g_dep, g_quar = adapter.block_grad_norms()
    params = adapter.parameters("all")
    gn = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else float("inf")))
    lr = optimizer.param_groups[0]["lr"]
    with arm.around_update(adapter, direction):
        optimizer.step()
        if cfg.weight_decay > 0:
            adapter.decay_toward_init(lr * cfg.weight_decay)
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    qmass = g_quar / (g_dep + g_quar) if g_dep + g_quar > 0 else 0.0
    return {"grad_norm": gn, "grad_norm_deployed": g_dep, "grad_norm_quarantine": g_quar, "qmass": qmass, "lr": lr}


def advantage_metrics(zones: Tensor, adv: Tensor, adv_group: Tensor) -> dict:
    """Where the step's advantage went, from the live rows (K,) of the whole batch: per zone the sum
    of the advantages the update used (`adv_sum_keep` / `_absorb` / `_route`) and the row count
    (`adv_n_...`); `adv_sum_deployed` is keep + absorb, what the deployed block is trained on, and
    `adv_sum_deployed_group` the same rows' sum under the group baseline (equal unless
    per_block_baseline moved it). Zone-free arms count every row as absorb."""
    out = {}
    dep = zones != ROUTE
    for code, name in ZONE_NAMES.items():
        sel = zones == code
        out[f"adv_sum_{name}"] = float(adv[sel].sum())
        out[f"adv_n_{name}"] = int(sel.sum())
    out["adv_sum_deployed"] = float(adv[dep].sum())
    out["adv_n_deployed"] = int(dep.sum())
    out["adv_sum_deployed_group"] = float(adv_group[dep].sum())
    return out


def update_metrics(zones: Tensor, stats: dict[str, Tensor], teacher: Tensor, scores: Tensor, loss: float,
                   n_offpolicy: int, decision: ZoneDecision) -> dict:
    """Per-step metrics from the update's per-row statistics (K,) of the whole (gathered) batch:
    zone shares, ratio per zone, KL, clip fractions (PPO and dual), teacher ratio, gate thresholds."""
    ratio = stats["ratio"]
    out = {"loss": loss, "kl": float(stats["kl"].float().mean()), "clip_frac": float(stats["clipped"].float().mean()),
           "dual_clip_frac": float(stats["dual_clipped"].float().mean()),
           "dual_clip_row_frac": float((stats["dual_clipped"] > 0).float().mean()),
           "rho_offpolicy_rows": n_offpolicy, "teacher_rows": int(teacher.sum()),
           "rho_teacher": float(ratio[teacher].mean()) if bool(teacher.any()) else math.nan,
           "gate_t_lo": decision.t_lo, "gate_t_hi": decision.t_hi}
    for code, name in ZONE_NAMES.items():
        sel = zones == code
        out[f"zone_{name}"] = float(sel.float().mean())
        out[f"rho_{name}"] = float(ratio[sel].mean()) if bool(sel.any()) else math.nan
    if not torch.isnan(scores).all():
        out["score_mean"] = float(scores.mean())
    return out


# ---- the step ----------------------------------------------------------------------------
def optimise(adapter, model, optimizer, scheduler, gate: GateState, batch: Rollouts, rewards: list[float],
             cfg: Config, *, arm: Arm | None = None, dp: DataParallel | None = None, zones: Tensor | None = None,
             share_prompt: bool = True, token_sets: tuple[Tensor, Tensor] | None = None) -> tuple[dict, StepRecord]:
    """The oracle-free update: rewards (floats) -> advantages -> zones -> loss -> AdamW step.

    `batch` holds this process's whole groups; `dp` (default: one process) synchronises the
    step across processes, and every process joins every collective, including one whose
    groups all have zero variance. `arm` defaults to `arm_for(cfg.arm)`.
    `zones` (N,) fixes the zones instead of the arm's gate (tests and ablations).
    `share_prompt=False` runs every forward plain (prompt once per row): the reference path.
    `fence_logp_deployed` / `eos_logp_deployed` (before the update; ~2% of a demo step on CPU, so
    the loop asks for them every `FENCE_EVERY` steps):
    the mean over the step's first `FENCE_PROMPTS` prompts of log P(the first completion token
    opens a ``` fence) and log P(it is eos), with the quarantine ablated (`first_token_logps`);
    `token_sets` = (fence ids, eos ids) from `first_token_sets` (the loop passes the run's; no metric when None).
    With `cfg.per_block_baseline`, once zones are known the deployed block's rows are re-centred
    on their own group mean (`deployed_block_advantages`); the StepRecord keeps the group
    advantages (what the gate diagnostics read), the adv_sum_* metrics the ones the update used.
    Returns the step's metrics (oracle-free, whole batch, identical on every rank) and this
    process's StepRecord for the diagnostics sink. Timings (this process): time_gate,
    time_old_logps, time_reference, time_fwd_bwd, time_optimizer (time_update: the last four),
    time_fence.
    """
    arm = arm if arm is not None else arm_for(cfg.arm)
    dp = dp if dp is not None else DataParallel.single()
    fence: dict = {}
    sets = token_sets if FENCE_PROMPTS > 0 else None
    if sets is not None:
        tf = time.perf_counter()
        # rank 0 holds the global batch's first groups: the same prompts for any number of processes
        lp = (first_token_logps(adapter, model, batch, sets, FENCE_PROMPTS).cpu() if len(batch) and dp.rank == 0
              else torch.zeros(0, 2))
        count = dp.sum_float(float(lp.shape[0]))
        fence = {f"{name}_logp_deployed": dp.sum_float(float(lp[:, j].sum())) / count if count else math.nan
                 for j, name in enumerate(("fence", "eos"))}
        fence["time_fence"] = time.perf_counter() - tf
    t0 = time.perf_counter()
    n = len(batch)
    rewards_t = torch.tensor(rewards, dtype=torch.float32)  # (N,)
    adv_all, live = group_advantages(rewards_t, cfg.group_size)  # (N,), (N,)
    rows = live.nonzero().flatten()
    k = int(rows.numel())
    record = StepRecord(live=live, advantages=adv_all, zones=torch.full((n,), ABSORB, dtype=torch.long),
                        scores=torch.full((n,), math.nan))
    rewards_all = dp.gather_rows(torch.tensor(rewards, dtype=torch.float32))  # (N_all,)
    live_all = dp.gather_rows(live)
    metrics: dict = {"reward_mean": float(rewards_all.mean()),
                     "groups_zero_var": int((~live_all).sum()) // cfg.group_size, "rows_live": int(live_all.sum()),
                     **fence}
    if metrics["rows_live"] == 0:  # no signal anywhere: no optimizer update, the schedule still advances one step
        metrics.update({"lr": optimizer.param_groups[0]["lr"], "skipped": True})
        optimizer.step()  # no parameter has a grad: a no-op that keeps the optimizer/scheduler order
        scheduler.step()
        return metrics, record
    live_rows = select_rows(batch, rows) if k else None  # K rows, trimmed
    counts = {"rows_shared_prompt": 0, "rows_plain": 0, "prompt_rows_run": 0}
    if zones is not None:
        decision = ZoneDecision(zones=zones[rows].to(torch.long), scores=torch.full((k,), math.nan))
    else:
        decision = choose_zones(arm, adapter, model, live_rows, gate, cfg, dp, share_prompt, counts)
    t_gate = t_old = t_ref = time.perf_counter()
    z = decision.zones
    adv_group = adv_all[rows]  # (K,) r - mean(group)
    adv_used = adv_group
    if cfg.per_block_baseline and z is not None and k:
        adv_used = deployed_block_advantages(rewards_t[rows], adv_group, z.cpu(), cfg.group_size)
    loss, n_need, teacher = 0.0, 0, torch.zeros(0, dtype=torch.bool)
    per_row = {"ratio": torch.zeros(0), "clipped": torch.zeros(0), "dual_clipped": torch.zeros(0), "kl": torch.zeros(0)}
    if live_rows is not None:
        adv = adv_used.to(live_rows.completion_ids.device)  # (K,)
        # gate zones live on the CPU (gates.band); the forwards take them on the model's device
        z = None if z is None else z.to(live_rows.completion_ids.device)
        loss_modes = ["full"] * k if z is None else ["deployed" if int(x) == KEEP else "full" for x in z.tolist()]
        old, need = old_logps(adapter, model, live_rows, loss_modes, decision.deployed_logps, cfg.micro_batch,
                              share_prompt, counts)
        t_old = time.perf_counter()
        ref = (reference_logps(adapter, model, live_rows, cfg.micro_batch, share_prompt, counts)
               if cfg.kl_beta > 0 else None)
        t_ref = time.perf_counter()
        normaliser = float(cfg.prompts_per_step * cfg.group_size * cfg.max_new_tokens)  # global P G T: rank losses sum
        loss, per_row = loss_backward(adapter, model, live_rows, adv, z, old, need, ref, cfg, normaliser, share_prompt,
                                      counts)
        n_need, teacher = int(need.sum()), live_rows.teacher.cpu()
    t_bwd = time.perf_counter()
    dp.sum_grads(adapter.parameters("all"))
    upd = apply_update(adapter, optimizer, scheduler, cfg, arm, gate.direction)
    t_end = time.perf_counter()
    zz = (z if z is not None else torch.full((k,), ABSORB, dtype=torch.long)).cpu()
    record.zones[rows] = zz
    record.scores[rows] = decision.scores.cpu().float()
    metrics.update(upd)
    metrics.update({"time_gate": t_gate - t0, "time_update": t_end - t_gate, "time_old_logps": t_old - t_gate,
                    "time_reference": t_ref - t_old, "time_fwd_bwd": t_bwd - t_ref, "time_optimizer": t_end - t_bwd,
                    **dp.sum_counts(counts)})
    gathered = {key: dp.gather_rows(v.cpu()) for key, v in per_row.items()}  # whole batch, single-process row order
    metrics.update(update_metrics(dp.gather_rows(zz), gathered, dp.gather_rows(teacher),
                                  dp.gather_rows(decision.scores.cpu().float()), dp.sum_float(loss),
                                  int(dp.sum_float(n_need)), decision))
    metrics.update(advantage_metrics(dp.gather_rows(zz), dp.gather_rows(adv_used.cpu()),
                                     dp.gather_rows(adv_group.cpu())))
    return metrics, record


# ---- the advantage ------------------------------------------------------------------------
# Dr.GRPO advantages: A = r - mean(group), no std scaling; zero-variance groups are skipped.
#
# `deployed_block_advantages` is the optional per-block baseline (`Config.per_block_baseline`):
# once zones are known, the rows that train the deployed block (keep, absorb) are centred on
# their own mean reward in their group, so a routed row's reward no longer sets the baseline the
# deployed block is pushed against (docs/training.md, "Per-block baseline").

def group_advantages(rewards: Tensor, group_size: int, tol: float = 1e-6) -> tuple[Tensor, Tensor]:
    """rewards (N,) with contiguous groups of G -> advantages (N,), live rows (N,) bool.

    A row is live when its group's rewards are not all equal (within `tol`); a group with
    zero variance carries no signal under r - mean and is dropped from the update.
    """
    if rewards.ndim != 1 or rewards.numel() % group_size != 0:
        raise ValueError(f"rewards must be (N,) with N a multiple of group_size={group_size}, got {tuple(rewards.shape)}")
    r = rewards.to(torch.float32).view(-1, group_size)  # (P, G)
    adv = r - r.mean(1, keepdim=True)  # (P, G)
    live = (r.max(1).values - r.min(1).values > tol)[:, None].expand_as(r)  # (P, G)
    return adv.reshape(-1), live.reshape(-1)


def deployed_block_advantages(rewards: Tensor, advantages: Tensor, zones: Tensor, group_size: int,
                              tol: float = 1e-6) -> Tensor:
    """The per-block baseline: rewards, advantages, zones (K,) of whole groups of G -> advantages (K,).

    In a group with at least one routed row, each row that trains the deployed block (zone keep
    or absorb) gets r - mean(r over those rows of its group), so within the group the deployed
    block's advantages sum to zero; if those rows' rewards are all equal (within `tol`, or only
    one such row) they get 0. Routed rows keep the group baseline (their `advantages` entry).
    Groups without a routed row are returned unchanged, bit for bit (the two baselines coincide).
    """
    if not (rewards.ndim == advantages.ndim == zones.ndim == 1) or not (
            rewards.numel() == advantages.numel() == zones.numel()) or rewards.numel() % group_size:
        raise ValueError(f"rewards {tuple(rewards.shape)}, advantages {tuple(advantages.shape)}, zones "
                         f"{tuple(zones.shape)} must be (K,) with K a multiple of group_size={group_size}")
    r = rewards.to(torch.float32).reshape(-1, group_size)  # (P, G)
    a = advantages.reshape(-1, group_size)
    dep = zones.to(r.device).reshape(-1, group_size) != ROUTE  # (P, G): rows that train the deployed block
    n_dep = dep.sum(1, keepdim=True)  # (P, 1)
    mean_dep = torch.where(dep, r, torch.zeros_like(r)).sum(1, keepdim=True) / n_dep.clamp(min=1)
    hi = torch.where(dep, r, torch.full_like(r, -torch.inf)).max(1, keepdim=True).values
    lo = torch.where(dep, r, torch.full_like(r, torch.inf)).min(1, keepdim=True).values
    varied = (n_dep >= 2) & (hi - lo > tol)  # (P, 1)
    own = torch.where(varied, r - mean_dep, torch.zeros_like(r)).to(a.dtype)  # (P, G)
    routed = (~dep).any(1, keepdim=True)  # (P, 1)
    return torch.where(dep & routed, own, a).reshape(-1)


# ---- the loss -----------------------------------------------------------------------------
# The per-token GRPO loss: dual-clipped policy gradient plus a k3 KL to the base, constant normaliser.
#
#     rho_t   = exp(logp_t - logp_old_t)
#     obj_t   = min(rho_t A, clip(rho_t, 1 - eps, 1 + eps) A)          (PPO)
#     obj_t   = max(obj_t, c A)                 where A < 0              (dual clip, Ye et al. 2020)
#     kl_t    = exp(ref_t - logp_t) - (ref_t - logp_t) - 1               (k3, unbiased, >= 0)
#     loss    = sum_t mask_t (-obj_t + beta kl_t) / normaliser
#
# Why the dual clip: PPO's clip bounds the update only from one side. With A < 0 the min picks
# rho A, which grows without bound in rho, and off-policy rows (keep rows sampled with the full
# adapter but trained deployed-only, deploy-sampled absorb/route rows, teacher rows) can have
# rho far above 1. Capping rho at c when A < 0 makes such a token's term the constant c A (no
# gradient), so |obj_t| <= c |A| and its gradient is at most c |A| per token. On-policy rows have
# rho = 1 < c: their loss and gradient are bit for bit the PPO ones.
#
# The normaliser is a constant (P * G * T_max): Dr.GRPO's "no length normalisation", and the
# reason micro-batches can be summed exactly.

def grpo_token_loss(
    logp: Tensor, logp_old: Tensor, adv: Tensor, mask: Tensor, *, clip: float, normaliser: float,
    logp_ref: Tensor | None = None, kl_beta: float = 0.0, dual_clip: float = 0.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """logp, logp_old, mask, logp_ref: (N, T); adv (N,) -> (scalar loss, detached per-row stats).

    `dual_clip` c > 1 caps rho at c on tokens with A < 0 (0: off, plain PPO).
    Stats (each (N,)): `ratio` token-mean rho, `clipped` share of tokens where the PPO clip binds,
    `dual_clipped` share of tokens where the dual clip binds, `kl` token-mean k3 (zeros without
    a reference).
    """
    if logp.shape != logp_old.shape or logp.shape != mask.shape or adv.shape != logp.shape[:1]:
        raise ValueError(f"shape mismatch: logp {tuple(logp.shape)}, old {tuple(logp_old.shape)}, "
                         f"mask {tuple(mask.shape)}, adv {tuple(adv.shape)}")
    if dual_clip != 0.0 and not dual_clip > 1.0:
        raise ValueError(f"dual_clip={dual_clip} must be > 1 (a cap on rho above the PPO band) or 0 (off)")
    m = mask.to(logp.dtype)  # (N, T)
    A = adv.to(logp.dtype)[:, None]  # (N, 1)
    ratio = torch.exp(logp - logp_old)  # (N, T)
    clipped_ratio = torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    obj = torch.minimum(ratio * A, clipped_ratio * A)  # (N, T)
    if dual_clip > 0:
        floor = torch.where(A < 0, dual_clip * A, torch.full_like(A, -torch.inf))  # (N, 1): c A for A < 0
        dual_binds = obj < floor  # (N, T); then rho > c, and the term is the constant c A
        obj = torch.maximum(obj, floor)
    else:
        dual_binds = torch.zeros_like(obj, dtype=torch.bool)
    per_token = -obj
    if logp_ref is not None and kl_beta > 0:
        d = logp_ref - logp  # (N, T)
        kl = torch.exp(d) - d - 1.0
        per_token = per_token + kl_beta * kl
    else:
        kl = torch.zeros_like(logp)
    loss = (per_token * m).sum() / normaliser
    n_tok = m.sum(1).clamp(min=1.0)  # (N,)
    with torch.no_grad():
        binds = ((ratio * A) > (clipped_ratio * A)).to(logp.dtype)  # the clipped branch is the min
        stats = {
            "ratio": (ratio.detach() * m).sum(1) / n_tok,
            "clipped": (binds * m).sum(1) / n_tok,
            "dual_clipped": (dual_binds.to(logp.dtype) * m).sum(1) / n_tok,
            "kl": (kl.detach() * m).sum(1) / n_tok,
        }
    return loss, stats


__all__ = ["advantage_metrics", "apply_update", "choose_zones", "deployed_block_advantages", "FENCE",
           "FENCE_EVERY", "FENCE_PROMPTS", "first_token_logps", "first_token_sets", "GateState", "group_advantages",
           "grpo_token_loss", "loss_backward", "old_logps", "optimise",
           "reference_logps", "StepRecord", "update_metrics", "ZoneDecision"]
