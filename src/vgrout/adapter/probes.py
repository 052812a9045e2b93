"""What the gates read from the adapter: pooled deployed bottlenecks and per-row probe gradients.

Both objects live only inside a `BlockAdapter.capture_bottleneck` / `grad_probe` context.
Every wrapped module reports to them during the forward, keyed by module name; results are
stacked in `module_names` order (sorted, stable), giving (N, M, r).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def split_probe(c: Tensor, r: int) -> tuple[Tensor, Tensor]:
    """A probe (N, 1, 2r) -> (deployed (N, 1, r), quarantine (N, 1, r)): the one probe split."""
    if c.shape[-1] != 2 * r:
        raise ValueError(f"probe has last dim {c.shape[-1]}, expected 2r = {2 * r}")
    return c[..., :r], c[..., r:]


class BottleneckCapture:
    """Mean of the deployed bottleneck `A_d x` over each row's masked (completion) positions.

    Pooling happens inside the forward, so nothing of size (N, L, d_in) is kept. Features are
    detached fp32: the gate scores them, it never differentiates through them.
    """

    def __init__(self, completion_mask: Tensor, module_names: Sequence[str]) -> None:
        if not isinstance(completion_mask, Tensor) or completion_mask.ndim != 2:
            raise ValueError("completion_mask must be a (N, L) tensor")
        if completion_mask.dtype != torch.bool:
            raise ValueError(f"completion_mask must be bool, got {completion_mask.dtype}")
        counts = completion_mask.sum(1)  # (N,)
        empty = (counts == 0).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"completion_mask rows {empty} select no tokens; every row needs >= 1 completion token")
        self._mask = completion_mask
        self._counts = counts
        self._names = list(module_names)
        self._pooled: dict[str, Tensor] = {}

    def record(self, name: str, h: Tensor) -> None:
        """h: (N, L, r) deployed bottleneck of module `name` for this forward."""
        if h.shape[:2] != self._mask.shape:
            raise ValueError(f"capture mask is {tuple(self._mask.shape)} but {name} saw input {tuple(h.shape[:2])}; "
                             "capture one full (N, L) forward, not cached generation steps")
        if name in self._pooled:
            raise RuntimeError(f"{name} ran twice inside one capture_bottleneck; run exactly one forward inside it")
        m = self._mask.to(device=h.device, dtype=torch.float32)[..., None]  # (N, L, 1)
        pooled = (h.detach().float() * m).sum(1)  # (N, r)
        self._pooled[name] = pooled / self._counts.to(h.device, torch.float32)[:, None]

    @property
    def pooled(self) -> Tensor:
        """(N, M, r) in module order."""
        missing = [n for n in self._names if n not in self._pooled]
        if missing:
            raise RuntimeError(f"no forward reached {len(missing)} module(s) (first: {missing[0]}); "
                               "run the forward inside the capture_bottleneck context")
        dev = self._pooled[self._names[0]].device
        return torch.stack([self._pooled[n].to(dev) for n in self._names], dim=1)


class GradProbe:
    """Ones tensors c (N, 1, 2r) multiplying each module's trainable bottleneck.

    d loss / d c[n, 0, k] = sum over row n's tokens of h_k (B^T delta)_k: row n's gradient
    projected into the bottleneck. Rows never mix, so one batched backward gives every row's
    own gradient exactly.
    """

    def __init__(self, module_names: Sequence[str]) -> None:
        self._names = list(module_names)
        self._c: dict[str, Tensor] = {}
        self._r: int | None = None

    def make(self, name: str, x: Tensor, r: int) -> tuple[Tensor, Tensor]:
        if not torch.is_grad_enabled():
            raise RuntimeError("grad_probe needs grad enabled; do not run its forward under torch.no_grad()")
        if x.ndim != 3:
            raise ValueError(f"grad_probe needs (N, L, d) inputs; {name} got shape {tuple(x.shape)}")
        if name in self._c:
            raise RuntimeError(f"{name} ran twice inside one grad_probe; run exactly one forward inside it")
        c = torch.ones(x.shape[0], 1, 2 * r, device=x.device, requires_grad=True)  # (N, 1, 2r)
        self._c[name], self._r = c, r
        return split_probe(c, r)

    @property
    def tensors(self) -> list[Tensor]:
        """The probes (N, 1, 2r), in module order; pass them to torch.autograd.grad."""
        missing = [n for n in self._names if n not in self._c]
        if missing:
            raise RuntimeError(f"no forward reached {len(missing)} module(s) (first: {missing[0]}); "
                               "run the forward inside the grad_probe context")
        return [self._c[n] for n in self._names]

    def deployed_grads(self, grads: Sequence[Tensor]) -> Tensor:
        """Gradients w.r.t. `tensors` -> (N, M, r): each row's gradient in the deployed bottleneck."""
        if len(grads) != len(self._names):
            raise ValueError(f"got {len(grads)} gradients for {len(self._names)} probes")
        dev = grads[0].device
        return torch.stack([split_probe(g, self._r)[0][:, 0].to(dev) for g in grads], dim=1)

    def per_row(self, loss: Tensor, retain_graph: bool = False) -> Tensor:
        """Backward of loss (scalar, or (N,) summed) into the probes only -> (N, M, r).

        Parameter .grad is untouched, so gradients already accumulated survive.
        """
        total = loss.sum() if loss.ndim else loss
        grads = torch.autograd.grad(total, self.tensors, retain_graph=retain_graph, allow_unused=True)
        grads = [torch.zeros_like(c) if g is None else g for g, c in zip(grads, self.tensors, strict=True)]
        return self.deployed_grads(grads)
