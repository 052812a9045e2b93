"""One GRPO step, top to bottom: advantage -> gate -> logp_old -> masked loss -> update.

`optimise` is the oracle-free half of a step: it is handed the rollouts and their rewards
(floats) and nothing that carries an oracle label. The loop (`vgrout.train.loop`) does the
sampling and grading and sends the `Grade` objects to the diagnostics sink only.

Departures from textbook GRPO (Shao et al. 2024), all deliberate:
1. Dr.GRPO advantage A = r - mean(group): no division by the group std, and a constant loss
   normaliser P * G * T_max instead of per-sequence length normalisation.
2. Zero-variance groups are dropped from the update (they carry A = 0) and counted.
3. One optimizer update per batch, so on-policy rows have rho = 1 and need no logp_old
   forward (old = detached current). A separate no-grad logp_old forward runs only for rows
   whose sampling adapter mode differs from their loss forward (sampled with the quarantine
   ablated but trained in absorb/route, or the reverse), and teacher rows use their cached
   behaviour log-probs, so rho is a true importance ratio everywhere.
4. KL to the adapter-free base with the k3 estimator, added per token (beta may be 0).
5. Routing: per-row zones select which adapter block a row's gradient reaches (see gates/).
6. AdamW with no built-in decay; weight decay pulls the adapter toward its init instead.
The model stays in eval mode (no dropout) so sampling, scoring and training see one function.

Every forward except routeV's gradient probe runs each prompt once per (group, zone) and
the G completions against its repeated KV cache (`completion_logps`): same numbers as the
plain forward to float rounding, 2-3x less compute. `rows_shared_prompt` / `rows_plain`
count the rows of each kind in the step.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor

from vgrout.gates import ABSORB, KEEP, ROUTE, ScoreBuffer, band_gate, project_scores
from vgrout.rollout import Rollouts
from vgrout.rollout.logps import completion_logps
from vgrout.train.advantage import group_advantages
from vgrout.train.batch import chunks, select_rows
from vgrout.train.config import Config
from vgrout.train.features import act_features, adapter_context, count_rows, grad_features
from vgrout.train.loss import grpo_token_loss

ZONE_NAMES = {KEEP: "keep", ABSORB: "absorb", ROUTE: "route"}


@dataclass
class GateState:
    """The direction (M, r) the gate scores against, the run-spanning buffer, and refresh age."""

    direction: Tensor | None = None
    buffer: ScoreBuffer | None = None
    steps_since_refresh: int = 0


@dataclass
class GateView:
    """What the gate decided for the batch rows (N,); NaN scores for rows it did not score."""

    live: Tensor  # (N,) bool: row took part in the update
    zones: Tensor  # (N,) long, ABSORB for rows outside the update or ungated arms
    scores: Tensor  # (N,) float
    advantages: Tensor  # (N,)


# ---- stages ------------------------------------------------------------------------------
def choose_zones(arm: str, adapter, model, r: Rollouts, gate: GateState, cfg: Config, share_prompt: bool = True,
                 stats: dict | None = None) -> tuple[Tensor | None, Tensor, dict]:
    """Zones (K,) for the update rows (None: no zones, vanilla), scores (K,), and cached deployed logps.

    routeA reads pooled activations from a deployed-mode forward (whose log-probs are kept as
    logp_old for deployed-sampled rows); routeV reads per-row bottleneck gradients.
    """
    k = len(r)
    nan = torch.full((k,), math.nan)
    if arm == "vanilla":
        return None, nan, {}
    if arm == "absorb":
        return torch.full((k,), ABSORB, dtype=torch.long), nan, {}
    if arm == "erase":  # quarantine out of the forward: the whole (projected) update lands in the deployed block
        return torch.full((k,), KEEP, dtype=torch.long), nan, {}
    cache = {}
    if arm == "routeA":
        feats, cache["deployed"] = act_features(adapter, model, r, cfg.micro_batch, share_prompt, stats)  # (K, M, r), (K, T)
    else:
        feats = grad_features(adapter, model, r, cfg.micro_batch, stats)  # (K, M, r)
    assert gate.buffer is not None and gate.direction is not None
    zones, scores, t_lo, t_hi = band_gate(gate.buffer, feats, gate.direction, tail_q=cfg.tail_q,
                                          half_life=cfg.half_life or None, warmup=cfg.gate_warmup)
    cache["t_lo"], cache["t_hi"] = t_lo, t_hi
    return zones, scores, cache


@torch.no_grad()
def old_logps(adapter, model, r: Rollouts, loss_modes: list[str], cache: dict, micro_batch: int,
              share_prompt: bool = True, stats: dict | None = None) -> tuple[Tensor, Tensor]:
    """logp_old (K, T) for off-policy rows; `need` (K,) bool marks them.

    Teacher rows take their stored behaviour log-probs (the policy that sampled them); live rows
    whose sampling mode differs from their loss forward get a no-grad forward in the sampling
    mode. Rows with need=False are on-policy: the caller uses the detached current logp instead.
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
        if mode in cache:
            old[rows] = cache[mode][rows]
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
    total, stats = 0.0, {"ratio": [], "clipped": [], "kl": []}
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
                                   kl_beta=cfg.kl_beta)
        loss.backward()
        total += float(loss.detach())
        for k in stats:
            stats[k].append(st[k].cpu())
    return total, {k: torch.cat(v) for k, v in stats.items()}


def erase_direction(adapter, direction: Tensor) -> None:
    """Project the direction out of the deployed block's gradient: A.grad <- (I - v v^T) A.grad,
    B.grad <- B.grad (I - v v^T), per module, so the update cannot move the bottleneck along v."""
    for m, layer in enumerate(adapter.layers.values()):
        blk = layer.deployed
        if not hasattr(blk, "A"):
            raise ValueError("the erase arm needs a low-rank adapter (A, B factors); antipasto has none")
        v = direction[m].to(blk.A.device, blk.A.dtype)[:, None]  # (r, 1)
        if blk.A.grad is not None:
            blk.A.grad -= v @ (v.T @ blk.A.grad)
        if blk.B.grad is not None:
            blk.B.grad -= (blk.B.grad @ v) @ v.T


def apply_update(adapter, optimizer, scheduler, cfg: Config, direction: Tensor | None) -> dict[str, float]:
    """(erase: project) -> block norms -> clip -> AdamW step -> decay toward init -> schedule."""
    if cfg.arm == "erase":
        assert direction is not None
        erase_direction(adapter, direction)
    g_dep, g_quar = adapter.block_grad_norms()
    params = adapter.parameters("all")
    gn = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else float("inf")))
    lr = optimizer.param_groups[0]["lr"]
    optimizer.step()
    if cfg.weight_decay > 0:
        adapter.decay_toward_init(lr * cfg.weight_decay)
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    qmass = g_quar / (g_dep + g_quar) if g_dep + g_quar > 0 else 0.0
    return {"grad_norm": gn, "grad_norm_deployed": g_dep, "grad_norm_quarantine": g_quar, "qmass": qmass, "lr": lr}


def update_metrics(zones: Tensor, stats: dict[str, Tensor], teacher: Tensor, scores: Tensor, loss: float,
                   n_offpolicy: int, cache: dict) -> dict:
    """Per-step metrics from the update's per-row statistics (K,): zone shares, ratio per zone,
    KL, clip fraction, teacher ratio, gate thresholds. The sharded step passes gathered rows."""
    ratio = stats["ratio"]
    out = {"loss": loss, "kl": float(stats["kl"].float().mean()), "clip_frac": float(stats["clipped"].float().mean()),
           "rho_offpolicy_rows": n_offpolicy, "teacher_rows": int(teacher.sum()),
           "rho_teacher": float(ratio[teacher].mean()) if bool(teacher.any()) else math.nan,
           "gate_t_lo": cache.get("t_lo", math.nan), "gate_t_hi": cache.get("t_hi", math.nan)}
    for code, name in ZONE_NAMES.items():
        sel = zones == code
        out[f"zone_{name}"] = float(sel.float().mean())
        out[f"rho_{name}"] = float(ratio[sel].mean()) if bool(sel.any()) else math.nan
    if not torch.isnan(scores).all():
        out["score_mean"] = float(scores.mean())
    return out


# ---- the step ----------------------------------------------------------------------------
def optimise(adapter, model, optimizer, scheduler, gate: GateState, batch: Rollouts, rewards: list[float],
             cfg: Config, zones: Tensor | None = None, share_prompt: bool = True) -> tuple[dict, GateView]:
    """The oracle-free update: rewards (floats) -> advantages -> zones -> loss -> AdamW step.

    `zones` (N,) fixes the zones instead of the arm's gate (tests and ablations).
    `share_prompt=False` runs every forward plain (prompt once per row): the reference path.
    Returns the step's metrics (oracle-free) and the gate's view for the diagnostics sink.
    Timings: time_gate, time_old_logps, time_reference, time_fwd_bwd, time_optimizer
    (time_update is the sum of the last four).
    """
    t0 = time.perf_counter()
    n = len(batch)
    adv_all, live = group_advantages(torch.tensor(rewards, dtype=torch.float32), cfg.group_size)  # (N,), (N,)
    rows = live.nonzero().flatten()
    view = GateView(live=live, zones=torch.full((n,), ABSORB, dtype=torch.long), scores=torch.full((n,), math.nan),
                    advantages=adv_all)
    metrics: dict = {"reward_mean": float(torch.tensor(rewards).mean()), "groups_zero_var": int((~live).sum()) // cfg.group_size,
                     "rows_live": int(rows.numel())}
    if rows.numel() == 0:  # no signal: no optimizer update, the schedule still advances one step
        metrics.update({"lr": optimizer.param_groups[0]["lr"], "skipped": True})
        optimizer.step()  # no parameter has a grad: a no-op that keeps the optimizer/scheduler order
        scheduler.step()
        return metrics, view
    r = select_rows(batch, rows)  # K rows, trimmed
    device = r.completion_ids.device
    adv = adv_all[rows].to(device)  # (K,)
    counts = {"rows_shared_prompt": 0, "rows_plain": 0, "prompt_rows_run": 0}
    if zones is not None:
        z, scores, cache = zones[rows].to(torch.long), torch.full((len(r),), math.nan), {}
    else:
        z, scores, cache = choose_zones(cfg.arm, adapter, model, r, gate, cfg, share_prompt, counts)
    z = None if z is None else z.to(device)  # gate zones live on the CPU (gates.band); the forwards take them here
    t_gate = time.perf_counter()
    loss_modes = ["full"] * len(r) if z is None else ["deployed" if int(x) == KEEP else "full" for x in z.tolist()]
    old, need = old_logps(adapter, model, r, loss_modes, cache, cfg.micro_batch, share_prompt, counts)
    t_old = time.perf_counter()
    ref = reference_logps(adapter, model, r, cfg.micro_batch, share_prompt, counts) if cfg.kl_beta > 0 else None
    t_ref = time.perf_counter()
    normaliser = float(cfg.prompts_per_step * cfg.group_size * cfg.max_new_tokens)
    loss, st = loss_backward(adapter, model, r, adv, z, old, need, ref, cfg, normaliser, share_prompt, counts)
    t_bwd = time.perf_counter()
    upd = apply_update(adapter, optimizer, scheduler, cfg, gate.direction)
    t_end = time.perf_counter()
    zz = z if z is not None else torch.full((len(r),), ABSORB, dtype=torch.long)
    view.zones[rows] = zz.cpu()
    view.scores[rows] = scores.cpu().float()
    metrics.update(upd)
    metrics.update({"time_gate": t_gate - t0, "time_update": t_end - t_gate, "time_old_logps": t_old - t_gate,
                    "time_reference": t_ref - t_old, "time_fwd_bwd": t_bwd - t_ref, "time_optimizer": t_end - t_bwd,
                    **counts})
    metrics.update(update_metrics(zz.cpu(), {k: v.cpu() for k, v in st.items()}, r.teacher.cpu(), scores.cpu().float(),
                                  loss, int(need.sum()), cache))
    return metrics, view


__all__ = ["GateState", "GateView", "apply_update", "choose_zones", "loss_backward", "old_logps", "optimise",
           "project_scores", "reference_logps", "update_metrics"]
