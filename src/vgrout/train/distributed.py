"""Data-parallel training on `accelerate` (torch.distributed underneath): W ranks, one step.

    accelerate launch --multi_gpu --num_processes 2 -m vgrout train ...   # CPU: gloo, GPU: NCCL
    torchrun --nproc_per_node 2 -m vgrout train ...

What each rank does in a step (rank k of W, P prompt groups, P % W == 0):
1. prompts: the step's global prompt list is a pure function of (seed, step); rank k takes the
   whole groups [k P/W, (k+1) P/W), so group baselines and the zero-variance drop stay exact;
2. sampling: each group draws from its own generator seeded by (seed, step, global group
   index) (`vgrout.rollout.generate`), so the rows do not depend on W;
3. grading: each rank grades its own rows with its own grader;
4. gate: the (K_k, M, r) features of the live rows are all-gathered in rank order, the band
   gate cuts the thresholds and adds the batch on every rank (identical buffers everywhere),
   and each rank keeps its slice of the zones;
5. gradients: after the local backward (loss normalised by the global P G T), the adapter
   gradients are summed across ranks in one flat all-reduce (a rank with no live rows sends
   zeros) before erase/clip/AdamW, so every rank applies the same update;
6. rank 0 writes metrics, diagnostics and checkpoints; every rank loads a checkpoint.

The model is not wrapped in DDP: a step runs several forwards (gate, logp_old, reference,
routeV's probe backward) that DDP's reducer would try to sync. With W = 1 nothing here runs
and the trainer takes `vgrout.train.step.optimise` unchanged.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator

import torch
from torch import Tensor

from vgrout.gates import ABSORB, KEEP, band_gate
from vgrout.train.advantage import group_advantages
from vgrout.train.batch import select_rows
from vgrout.train.config import GATED_ARMS, Config
from vgrout.train.step import (GateState, GateView, apply_update, choose_zones, loss_backward,
                               old_logps, reference_logps, update_metrics)


def env_world() -> tuple[int, int, int]:
    """(world size, rank, local rank) from the launcher's environment (torchrun / accelerate launch)."""
    return (int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")),
            int(os.environ.get("LOCAL_RANK", "0")))


class DataParallel:
    """The rank's place in the job and the few collectives the trainer needs.

    World size 1 (no launcher) never imports accelerate and every collective is the identity.
    """

    def __init__(self, device: str = "auto") -> None:
        self.world, self.rank, self.local_rank = env_world()
        self.accelerator = None
        if self.world > 1:
            from accelerate import Accelerator

            cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
            self.accelerator = Accelerator(cpu=cpu)
            if self.accelerator.num_processes != self.world:
                raise RuntimeError(f"WORLD_SIZE={self.world} but accelerate started {self.accelerator.num_processes} "
                                   "process(es); on a CPU machine launch with `accelerate launch --multi_gpu "
                                   "--num_processes N` or `torchrun --nproc_per_node N` (--cpu starts only one)")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device_for(self, device: str) -> str:
        """The rank's device: on CUDA each rank takes its local GPU."""
        if self.world > 1 and self.accelerator is not None and self.accelerator.device.type == "cuda":
            return str(self.accelerator.device)
        return device

    def shard(self, n_groups: int) -> range:
        """The global prompt-group indices this rank owns: whole, contiguous, equal shares."""
        if n_groups % self.world:
            raise ValueError(f"prompts_per_step={n_groups} does not split over {self.world} processes; "
                             f"set prompts_per_step to a multiple of {self.world} (or launch {math.gcd(n_groups, self.world)})")
        per = n_groups // self.world
        return range(self.rank * per, (self.rank + 1) * per)

    # ---- collectives (identity with one process) -----------------------------------------
    def barrier(self) -> None:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (builds caches, writes files), the others after it."""
        if self.accelerator is None:
            yield
            return
        with self.accelerator.main_process_first():
            yield

    def gather_objects(self, items: list) -> list:
        """Concatenate a list from every rank, in rank order."""
        if self.accelerator is None:
            return list(items)
        from accelerate.utils import gather_object

        return list(gather_object(list(items)))

    def gather_rows(self, t: Tensor) -> Tensor:
        """Concatenate (n_k, ...) tensors from every rank along dim 0, in rank order (n_k may differ).
        Returned on the CPU; values are bit-exact (pickled)."""
        if self.accelerator is None:
            return t
        parts = self.gather_objects([t.detach().cpu()])
        return torch.cat(parts)

    def sum_float(self, x: float) -> float:
        if self.accelerator is None:
            return float(x)
        return float(sum(self.gather_objects([float(x)])))

    def broadcast(self, t: Tensor) -> Tensor:
        """Rank 0's tensor on every rank (same device as the input)."""
        if self.accelerator is None:
            return t
        return self.gather_objects([t.detach().cpu()])[0].to(t.device)

    def sum_grads(self, params: list[torch.nn.Parameter]) -> None:
        """Sum .grad across ranks in one flat all-reduce. A parameter without a grad sends zeros;
        it gets a grad afterwards only if some rank had one (AdamW skips grad-less parameters,
        so a block nobody trained stays untouched, as in one process)."""
        if self.accelerator is None:
            return
        from accelerate.utils import reduce

        dev = params[0].device
        flat = torch.cat([torch.zeros(p.numel(), device=dev, dtype=torch.float32) if p.grad is None
                          else p.grad.detach().reshape(-1).to(torch.float32) for p in params]
                         + [torch.tensor([float(p.grad is not None) for p in params], device=dev)])
        flat = reduce(flat, reduction="sum")
        off = 0
        for p in params:
            n = p.numel()
            p.grad = flat[off:off + n].view_as(p).to(p.dtype).clone()
            off += n
        had = flat[off:]
        for p, h in zip(params, had.tolist()):
            if h == 0:
                p.grad = None

    def close(self) -> None:
        if self.accelerator is not None and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


# ---- the sharded step ----------------------------------------------------------------------
def _gate_zones(adapter, model, r, gate: GateState, cfg: Config, dp: DataParallel, n_local: int,
                ) -> tuple[Tensor, Tensor, dict]:
    """Band-gate zones (K_k,) and scores for this rank's live rows, cut on the gathered batch.

    Every rank runs `band_gate` on the same all-gathered (K, M, r) features (rank order = the
    single-process row order), so buffer and thresholds stay identical across ranks."""
    from vgrout.train.features import act_features, grad_features

    assert gate.buffer is not None and gate.direction is not None
    cache: dict = {}
    if n_local == 0:
        feats = torch.zeros((0, *gate.direction.shape), dtype=torch.float32)
    elif cfg.arm == "routeA":
        feats, cache["deployed"] = act_features(adapter, model, r, cfg.micro_batch)  # (K_k, M, r), (K_k, T)
    else:
        feats = grad_features(adapter, model, r, cfg.micro_batch)  # (K_k, M, r)
    counts = [int(c) for c in dp.gather_objects([n_local])]
    feats_all = dp.gather_rows(feats.to(torch.float32))  # (K, M, r)
    zones, scores, t_lo, t_hi = band_gate(gate.buffer, feats_all, gate.direction.to(feats_all.device),
                                          tail_q=cfg.tail_q, half_life=cfg.half_life or None, warmup=cfg.gate_warmup)
    lo = sum(counts[:dp.rank])
    cache["t_lo"], cache["t_hi"] = t_lo, t_hi
    return zones[lo:lo + n_local], scores[lo:lo + n_local], cache


def optimise_sharded(adapter, model, optimizer, scheduler, gate: GateState, batch, rewards: list[float],
                     cfg: Config, dp: DataParallel) -> tuple[dict, GateView]:
    """`vgrout.train.step.optimise` for one rank's whole groups, synchronised across ranks.

    Returns global metrics (identical on every rank) and this rank's GateView (its rows).
    Every rank joins every collective, including a rank whose groups all have zero variance.
    """
    t0 = time.perf_counter()
    n = len(batch)
    adv_all, live = group_advantages(torch.tensor(rewards, dtype=torch.float32), cfg.group_size)  # (N_k,), (N_k,)
    rows = live.nonzero().flatten()
    k_local = int(rows.numel())
    view = GateView(live=live, zones=torch.full((n,), ABSORB, dtype=torch.long), scores=torch.full((n,), math.nan),
                    advantages=adv_all)
    rewards_all = dp.gather_rows(torch.tensor(rewards, dtype=torch.float32))  # (N,)
    live_all = dp.gather_rows(live)
    metrics: dict = {"reward_mean": float(rewards_all.mean()),
                     "groups_zero_var": int((~live_all).sum()) // cfg.group_size, "rows_live": int(live_all.sum())}
    if metrics["rows_live"] == 0:  # no signal anywhere: the schedule still advances, as in one process
        metrics.update({"lr": optimizer.param_groups[0]["lr"], "skipped": True})
        optimizer.step()
        scheduler.step()
        return metrics, view
    r = select_rows(batch, rows) if k_local else None
    cache: dict = {}
    scores = torch.full((k_local,), math.nan)
    z = None
    if cfg.arm in GATED_ARMS:
        z, scores, cache = _gate_zones(adapter, model, r, gate, cfg, dp, k_local)
    elif k_local:
        z, scores, cache = choose_zones(cfg.arm, adapter, model, r, gate, cfg)
    t_gate = time.perf_counter()
    normaliser = float(cfg.prompts_per_step * cfg.group_size * cfg.max_new_tokens)  # global, so rank losses sum
    loss, n_need, n_teacher = 0.0, 0, 0
    st = {"ratio": torch.zeros(0), "clipped": torch.zeros(0), "kl": torch.zeros(0)}
    teacher = torch.zeros(0, dtype=torch.bool)
    if k_local:
        device = r.completion_ids.device
        adv = adv_all[rows].to(device)
        loss_modes = (["full"] * k_local if z is None
                      else ["deployed" if int(x) == KEEP else "full" for x in z.tolist()])
        old, need = old_logps(adapter, model, r, loss_modes, cache, cfg.micro_batch)
        ref = reference_logps(adapter, model, r, cfg.micro_batch) if cfg.kl_beta > 0 else None
        loss, st = loss_backward(adapter, model, r, adv, z, old, need, ref, cfg, normaliser)
        n_need, teacher = int(need.sum()), r.teacher
    dp.sum_grads(adapter.parameters("all"))
    upd = apply_update(adapter, optimizer, scheduler, cfg, gate.direction)
    t_end = time.perf_counter()
    zz = z.cpu() if z is not None else torch.full((k_local,), ABSORB, dtype=torch.long)
    view.zones[rows] = zz
    view.scores[rows] = scores.cpu().float()
    # global per-row statistics, in single-process row order
    zz_all = dp.gather_rows(zz)
    ratio, clipped, kl = (dp.gather_rows(st[k].float()) for k in ("ratio", "clipped", "kl"))
    teacher_all = dp.gather_rows(teacher.cpu())
    scores_all = dp.gather_rows(scores.cpu().float())
    metrics.update(upd)
    metrics.update({"time_gate": t_gate - t0, "time_update": t_end - t_gate})
    metrics.update(update_metrics(zz_all, {"ratio": ratio, "clipped": clipped, "kl": kl}, teacher_all, scores_all,
                                  dp.sum_float(loss), int(dp.sum_float(n_need)), cache))
    return metrics, view


def gather_view(view: GateView, dp: DataParallel) -> GateView:
    """The whole batch's gate view on every rank (rank order), for rank 0's diagnostics."""
    if dp.world == 1:
        return view
    return GateView(live=dp.gather_rows(view.live), zones=dp.gather_rows(view.zones),
                    scores=dp.gather_rows(view.scores), advantages=dp.gather_rows(view.advantages))


__all__ = ["DataParallel", "env_world", "gather_view", "optimise_sharded"]
