"""One wrapped `nn.Linear`: the untouched base layer plus two named blocks, deployed and quarantine.

    y = W x (+ bias) + combine(D, Q, zone)
    D = deployed.delta(x)    Q = quarantine.delta(x)

For the low-rank family each block is `B (A x) - B0 (A0 x)`: trainable A, B start as copies of
frozen A0, B0, so the net delta is exactly zero at init whatever the init, while the
bottleneck `A x` is non-zero (which keeps the gradient probe alive). The antipasto block is
`U ((R Vh x) * S * tanh(g))` over a frozen basis. The two blocks share no parameters and have
no cross terms. Zones act on the block *outputs* (see `combine`), so a detach or a removal
blocks the gradient to every parameter that feeds that block.

Parameters are fp32 and cast to the activation dtype in the forward (bf16 on GPU).
What the forward does (mode, zones, merged, capture, probe) is read from one shared
`AdapterControl` that `BlockAdapter`'s context managers set and clear in `finally`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vgrout.adapter.config import KEEP, ROUTE

BLOCKS: tuple[str, ...] = ("deployed", "quarantine")
MODES: tuple[str, ...] = ("full", "deployed", "base")


class LowRankBlock(nn.Module):
    """Rank-r block `B (A x) - B0 (A0 x)`; A: (r, d_in), B: (d_out, r), A0/B0 frozen copies."""

    def __init__(self, A0: Tensor, B0: Tensor) -> None:
        super().__init__()
        if A0.ndim != 2 or B0.ndim != 2 or A0.shape[0] != B0.shape[1]:
            raise ValueError(f"A0 {tuple(A0.shape)} and B0 {tuple(B0.shape)} are not (r, d_in) and (d_out, r)")
        A0, B0 = A0.detach().float().contiguous(), B0.detach().float().contiguous()
        self.A = nn.Parameter(A0.clone())  # (r, d_in)
        self.B = nn.Parameter(B0.clone())  # (d_out, r)
        self.register_buffer("A0", A0)
        self.register_buffer("B0", B0)

    @property
    def rank(self) -> int:
        return self.A.shape[0]

    def bottleneck(self, x: Tensor) -> Tensor:
        """The block's read `A x`: (..., d_in) -> (..., r)."""
        return F.linear(x, self.A.to(x.dtype))

    def delta(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        """(..., d_in) -> (..., d_out). `c` (N, 1, r) scales the trainable bottleneck (grad probe).

        The frozen term is computed by the same ops as the trainable one, so at init the two
        are bitwise equal and the difference is exactly zero.
        """
        h = self.bottleneck(x)  # (..., r)
        if c is not None:
            h = h * c.to(h.dtype)
        h0 = F.linear(x, self.A0.to(x.dtype))  # (..., r)
        return F.linear(h, self.B.to(x.dtype)) - F.linear(h0, self.B0.to(x.dtype))

    def weight_delta(self) -> Tensor:
        """The block's net weight change (d_out, d_in) in fp32."""
        return self.B.detach() @ self.A.detach() - self.B0 @ self.A0

    def peft_factors(self) -> tuple[Tensor, Tensor]:
        """Exact factors (A (k, d_in), B (d_out, k)) with B @ A == weight_delta, k = 2r.

        The net delta B A - B0 A0 has rank up to 2r, so an exact LoRA needs both pairs.
        """
        A = torch.cat([self.A.detach(), self.A0], dim=0)  # (2r, d_in)
        B = torch.cat([self.B.detach(), -self.B0], dim=1)  # (d_out, 2r)
        return A, B

    def trainable(self) -> list[nn.Parameter]:
        return [self.A, self.B]

    @torch.no_grad()
    def reset(self) -> None:
        self.A.copy_(self.A0)
        self.B.copy_(self.B0)

    @torch.no_grad()
    def decay_toward_init(self, factor: float) -> None:
        """p <- p - factor (p - p0): shrinks the net delta, not the raw factors.

        Written as p0 + (1 - factor)(p - p0) so factor = 1 lands exactly on the init.
        """
        self.A.copy_(self.A0 + (1.0 - factor) * (self.A - self.A0))
        self.B.copy_(self.B0 + (1.0 - factor) * (self.B - self.B0))


def cayley(X: Tensor) -> Tensor:
    """Orthogonal (r, r) from an unconstrained (r, r): (I + K)^-1 (I - K), K = X - X^T."""
    K = X - X.T
    eye = torch.eye(X.shape[0], dtype=X.dtype, device=X.device)
    return torch.linalg.solve(eye + K, eye - K)


class GainBlock(nn.Module):
    """antipasto block `U ((R Vh x) * S * tanh(g))` over a frozen basis; g = 0 (and R = I) at init.

    U: (d_out, r), S: (r,), Vh: (r, d_in) frozen. Trainable gains g: (r,), and for the
    quarantine a rotation generator X: (r, r). The init of every trainable is zero.
    """

    def __init__(self, U: Tensor, S: Tensor, Vh: Tensor, rotate: bool) -> None:
        super().__init__()
        r = Vh.shape[0]
        if U.shape[1] != r or S.shape != (r,):
            raise ValueError(f"U {tuple(U.shape)}, S {tuple(S.shape)}, Vh {tuple(Vh.shape)} disagree on rank")
        self.register_buffer("U", U.detach().float().contiguous())
        self.register_buffer("S", S.detach().float().contiguous())
        self.register_buffer("Vh", Vh.detach().float().contiguous())
        self.g = nn.Parameter(torch.zeros(r, device=Vh.device))
        self.X = nn.Parameter(torch.zeros(r, r, device=Vh.device)) if rotate else None

    @property
    def rank(self) -> int:
        return self.Vh.shape[0]

    def _read(self) -> Tensor:
        """The effective read (r, d_in): R Vh."""
        return self.Vh if self.X is None else cayley(self.X) @ self.Vh

    def bottleneck(self, x: Tensor) -> Tensor:
        """The frozen read `Vh x`: (..., d_in) -> (..., r)."""
        return F.linear(x, self.Vh.to(x.dtype))

    def delta(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        if c is not None:
            raise ValueError("the antipasto adapter has no gradient probe; use a low-rank init for routeV")
        a = self.bottleneck(x)  # (..., r)
        if self.X is not None:
            a = F.linear(a, cayley(self.X).to(x.dtype))  # (..., r): R a
        s = self.S * torch.tanh(self.g)  # (r,)
        return F.linear(a * s.to(x.dtype), self.U.to(x.dtype))

    def weight_delta(self) -> Tensor:
        s = self.S * torch.tanh(self.g.detach())
        return (self.U * s) @ self._read().detach()

    def peft_factors(self) -> tuple[Tensor, Tensor]:
        s = self.S * torch.tanh(self.g.detach())
        return self._read().detach(), self.U * s  # (r, d_in), (d_out, r)

    def trainable(self) -> list[nn.Parameter]:
        return [self.g] if self.X is None else [self.g, self.X]

    @torch.no_grad()
    def reset(self) -> None:
        for p in self.trainable():
            p.zero_()

    @torch.no_grad()
    def decay_toward_init(self, factor: float) -> None:
        for p in self.trainable():  # init is zero
            p.mul_(1.0 - factor)


@dataclass
class AdapterControl:
    """What the next forwards do; set and cleared only by `BlockAdapter`'s context managers."""

    mode: str = "full"
    merged: bool = False
    keep_rows: Tensor | None = None  # (N, 1, 1) bool: Q removed from the forward
    route_rows: Tensor | None = None  # (N, 1, 1) bool: D detached
    capture: Any = None  # a BottleneckCapture, or None
    probe: Any = None  # a GradProbe, or None


class BlockLinear(nn.Module):
    """A target `nn.Linear` wrapped with a deployed and a quarantine block (base kept untouched)."""

    def __init__(self, base: nn.Linear, name: str, deployed: nn.Module, quarantine: nn.Module,
                 control: AdapterControl) -> None:
        super().__init__()
        self.base = base
        self.name = name
        self.deployed = deployed
        self.quarantine = quarantine
        object.__setattr__(self, "control", control)  # shared, not a submodule

    @property
    def rank(self) -> int:
        return self.deployed.rank

    def block(self, which: str) -> nn.Module:
        if which not in BLOCKS:
            raise ValueError(f"unknown block {which!r}; expected one of {BLOCKS}")
        return self.deployed if which == "deployed" else self.quarantine

    def forward(self, x: Tensor) -> Tensor:
        ctl = self.control
        y = self.base(x)  # (N, L, d_out)
        if ctl.capture is not None:
            ctl.capture.record(self.name, self.deployed.bottleneck(x))
        if ctl.merged or ctl.mode == "base":
            return y
        c_d = c_q = None
        if ctl.probe is not None:
            c_d, c_q = ctl.probe.make(self.name, x, self.rank)  # (N, 1, r) each
        D = self.deployed.delta(x, c_d)  # (N, L, d_out)
        if ctl.mode == "deployed":
            return y + D
        Q = self.quarantine.delta(x, c_q)  # (N, L, d_out)
        if ctl.keep_rows is not None:
            D, Q = combine_zones(D, Q, ctl.keep_rows, ctl.route_rows, self.name)
        return y + (D + Q)


def combine_zones(D: Tensor, Q: Tensor, keep_rows: Tensor, route_rows: Tensor, name: str) -> tuple[Tensor, Tensor]:
    """Per-row masks on the block outputs. D, Q: (N, L, d_out); masks (N, 1, 1) bool.

    keep: Q removed (value and gradient); route: D keeps its value, its gradient is cut;
    absorb: both untouched. `torch.where` gives exact zeros in the cut gradients.
    """
    if D.ndim != 3 or D.shape[0] != keep_rows.shape[0]:
        raise ValueError(f"zones has {keep_rows.shape[0]} rows but {name} got input of shape "
                         f"{tuple(D.shape[:-1])}; zones need a (N, L, ...) batch with N rows")
    keep_rows, route_rows = keep_rows.to(D.device), route_rows.to(D.device)
    D = torch.where(route_rows, D.detach(), D)
    Q = torch.where(keep_rows, torch.zeros((), dtype=Q.dtype, device=Q.device), Q)
    return D, Q


def zone_masks(z: Tensor) -> tuple[Tensor, Tensor]:
    """(N,) zone ids -> keep and route masks, each (N, 1, 1) bool."""
    return (z == KEEP)[:, None, None], (z == ROUTE)[:, None, None]
