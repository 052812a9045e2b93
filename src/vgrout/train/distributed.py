"""Where a step runs: data-parallel ranks on `accelerate` (torch.distributed underneath), and
what a GPU run needs when memory is tight.

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
   zeros) before clip/AdamW, so every rank applies the same update;
6. rank 0 writes metrics, diagnostics and checkpoints; every rank loads a checkpoint.
Steps 4 and 5 are `vgrout.train.step.optimise` calling the collectives below: one step for any
world size, and with W = 1 every collective is the identity.

The model is not wrapped in DDP: a step runs several forwards (gate, logp_old, reference,
routeV's probe backward) that DDP's reducer would try to sync.

Memory: gradient checkpointing of the training forward, and an out-of-memory error that says
which settings to lower. The checkpointing is our own wrapper around each decoder layer, not
Hugging Face's (`gradient_checkpointing_enable` acts only in train mode, and the trainer keeps
the model in eval mode so sampling, scoring and training see one function). A layer's
activations are dropped after the forward and recomputed in the backward, under the adapter
state (mode, zones) the forward saw, so routing is exactly what the plain forward does. It acts
only on grad-enabled forwards without a KV cache: the cached shared-prompt forward appends to
its cache in the layer, which a recompute would do twice, so a checkpointed run trains with the
plain forward (`optimise(..., share_prompt=False)`). Gate feature forwards (no grad, or
routeV's probe) are left alone.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

# ---- data parallel -------------------------------------------------------------------------

def env_world() -> tuple[int, int, int]:
    """(world size, rank, local rank) from the launcher's environment (torchrun / accelerate launch)."""
    return (int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")),
            int(os.environ.get("LOCAL_RANK", "0")))


class DataParallel:
    """The rank's place in the job and the few collectives the trainer needs.

    World size 1 (no launcher) never imports accelerate and every collective is the identity.
    """

    def __init__(self, device: str = "auto", world: tuple[int, int, int] | None = None) -> None:
        """The launcher's world (`env_world()`), or `world` = (size, rank, local rank) given."""
        self.world, self.rank, self.local_rank = world if world is not None else env_world()
        self.accelerator = None
        if self.world > 1:
            from accelerate import Accelerator

            cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
            self.accelerator = Accelerator(cpu=cpu)
            if self.accelerator.num_processes != self.world:
                raise RuntimeError(f"WORLD_SIZE={self.world} but accelerate started {self.accelerator.num_processes} "
                                   "process(es); on a CPU machine launch with `accelerate launch --multi_gpu "
                                   "--num_processes N` or `torchrun --nproc_per_node N` (--cpu starts only one)")

    @classmethod
    def single(cls) -> DataParallel:
        """One process, whatever the environment says: every collective is the identity."""
        return cls(world=(1, 0, 0))

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

    def sum_counts(self, counts: dict[str, int]) -> dict[str, int]:
        """Key-wise sum of an int dict over ranks (every rank passes the same keys)."""
        if self.accelerator is None:
            return dict(counts)
        parts = self.gather_objects([counts])
        return {k: int(sum(p[k] for p in parts)) for k in counts}

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


# ---- memory: gradient checkpointing, out-of-memory errors -----------------------------------

OOM_SETTINGS = ("micro_batch", "max_new_tokens", "group_size")


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks of a Hugging Face causal LM (model.model.layers)."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
        raise ValueError(f"gradient checkpointing needs a Hugging Face decoder with model.model.layers; "
                         f"{type(model).__name__} has none")
    return layers


@contextmanager
def _restored(ctl, snap: tuple) -> Iterator[None]:
    """Set the adapter control to the forward's state for the recompute, then put it back."""
    names = ("mode", "merged", "keep_rows", "route_rows")
    before = tuple(getattr(ctl, n) for n in names)
    for n, v in zip(names, snap):
        setattr(ctl, n, v)
    try:
        yield
    finally:
        for n, v in zip(names, before):
            setattr(ctl, n, v)


class GradientCheckpointing:
    """Checkpoint every decoder layer's grad-enabled forward. `enable()` / `disable()`, or a context."""

    def __init__(self, model: nn.Module, adapter) -> None:
        self.layers = decoder_layers(model)
        self.ctl = adapter._control
        self._originals: list | None = None
        self.recomputed = 0  # layer forwards recomputed in a backward (tests read it)

    def _wrap(self, layer: nn.Module):
        orig = layer.forward
        ctl = self.ctl

        def forward(*args, **kwargs):
            if not torch.is_grad_enabled() or ctl.probe is not None or ctl.capture is not None:
                return orig(*args, **kwargs)
            if kwargs.get("cache") is not None or kwargs.get("past_key_values") is not None or kwargs.get("use_cache"):
                raise RuntimeError("gradient checkpointing recomputes each layer in the backward, which would append "
                                   "to the KV cache twice; run the training forward plain "
                                   "(optimise(..., share_prompt=False)) when gradient_checkpointing is on")
            snap = (ctl.mode, ctl.merged, ctl.keep_rows, ctl.route_rows)

            def contexts():
                self.recomputed += 1
                return nullcontext(), _restored(ctl, snap)

            return checkpoint(orig, *args, use_reentrant=False, context_fn=contexts, **kwargs)

        return orig, forward

    def enable(self) -> GradientCheckpointing:
        if self._originals is not None:
            raise RuntimeError("gradient checkpointing is already enabled on this model")
        self._originals = []
        for layer in self.layers:
            orig, fwd = self._wrap(layer)
            self._originals.append(orig)
            layer.forward = fwd
        return self

    def disable(self) -> None:
        if self._originals is None:
            return
        for layer, _ in zip(self.layers, self._originals):
            del layer.forward  # back to the class's forward (the instance attribute shadowed it)
        self._originals = None

    def __enter__(self) -> GradientCheckpointing:
        return self.enable()

    def __exit__(self, *exc) -> None:
        self.disable()


def is_oom(exc: BaseException) -> bool:
    """A CUDA (or other accelerator) out-of-memory error."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def oom_message(cfg, where: str = "this step") -> str:
    """The settings to lower, with their current values and what each one scales."""
    cur = ", ".join(f"{k}={getattr(cfg, k)}" for k in OOM_SETTINGS)
    hint = "" if getattr(cfg, "gradient_checkpointing", True) else "; or set gradient_checkpointing=true"
    return (f"out of GPU memory in {where} ({cur}). Lower micro_batch (rows per forward/backward; 0 means the "
            "whole batch at once), max_new_tokens (the completion budget T) or group_size (rollouts per prompt), "
            f"e.g. --set micro_batch=2{hint}.")


class OutOfMemory(RuntimeError):
    """Raised in place of torch's OOM error, naming the settings to lower."""


@contextmanager
def oom_guard(cfg, where: str = "this step") -> Iterator[None]:
    """Re-raise an out-of-memory error as `OutOfMemory` naming micro_batch, max_new_tokens and
    group_size with their values. Other errors pass through untouched."""
    try:
        yield
    except Exception as exc:
        if not is_oom(exc):
            raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise OutOfMemory(oom_message(cfg, where)) from exc


__all__ = ["DataParallel", "decoder_layers", "env_world", "GradientCheckpointing", "is_oom", "oom_guard",
           "oom_message", "OOM_SETTINGS", "OutOfMemory"]
