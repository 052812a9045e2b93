"""One wrapped `nn.Linear`: the untouched base layer plus two named blocks, deployed and quarantine.

    y = W x (+ bias) + combine(D, Q, zone)
    D = deployed.delta(x)    Q = quarantine.delta(x)

For the low-rank family each block is `B (A x) - B0 (A0 x)`: trainable A, B start as copies of
frozen A0, B0, so the net delta is exactly zero at init whatever the init, while the
bottleneck `A x` is non-zero (which keeps the gradient probe alive). The antipasto block is
`U ((R Vh x) * S * tanh(g))` over a frozen basis. The two blocks share no parameters and have
no cross terms. Zones act on the block *outputs* (see `combine`), so a detach or a removal
blocks the gradient to every parameter that feeds that block.

Fused path (low-rank blocks, the default): both blocks run as ONE pair of skinny matmuls,

    delta = [B_d, B_q, B_d-B0_d, B_q-B0_q] @ ([A_d-A0_d; A_q-A0_q; A0_d; A0_q] @ x)     (4r wide)

the same function as `B A x - B0 A0 x` per block, rewritten as `B (A-A0) x + (B-B0) A0 x`. The
per-block path streams eight full-width activations per Linear (A x, A0 x, B h, B0 h0, the two
differences, D + Q, y + ...); the fused one writes none (an in-place `addmm_` into y, so a
forward hook on `base` that kept its output would see the delta: vgrout registers none). The rewrite
keeps the exact zero at init (and after `reset`/full decay) without relying on rounding: A-A0
and B-B0 are exactly zero there, so every term is. Zones act on the 4r bottleneck columns
(`fused_delta`): keep rows zero their quarantine columns (value and gradient); route rows
keep their deployed columns' value and cut their gradient in a custom backward (`_RoutedAddmm`),
which is what detaching D did. Results equal the per-block path to fp32 rounding
(tests/test_adapter_fused.py); `BlockAdapter.unfused()` runs the per-block path (the reference).

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
    fused: bool = True  # low-rank blocks run as one 4r-wide matmul pair (False: per block, the reference)


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
        self.fusable = isinstance(deployed, LowRankBlock) and isinstance(quarantine, LowRankBlock)

    @property
    def rank(self) -> int:
        return self.deployed.rank

    def block(self, which: str) -> nn.Module:
        if which not in BLOCKS:
            raise ValueError(f"unknown block {which!r}; expected one of {BLOCKS}")
        return self.deployed if which == "deployed" else self.quarantine

    def forward(self, x: Tensor) -> Tensor:
        ctl = self.control
        if ctl.capture is not None:
            ctl.capture.record(self.name, self.deployed.bottleneck(x))
        if ctl.fused and self.fusable and not ctl.merged and ctl.mode != "base":
            # the base output is made 2-D (its own storage, not a view) so the delta adds in place
            y = self.base(x.reshape(-1, x.shape[-1]))  # (N*L, d_out)
            return fused_delta(y, x, self.deployed, self.quarantine, ctl, self.name).view(*x.shape[:-1], -1)
        y = self.base(x)  # (N, L, d_out)
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


class _RoutedAddmm(torch.autograd.Function):
    """y += H @ Bt (in place) with the gradient of masked entries of H cut, for H and for Bt alike.

    y (M, d_out), H (M, k), Bt (k, d_out), gmask (M, k) float 0/1. The value is `addmm_`'s; in
    the backward the masked entries of H count as constants (d/dH is zeroed there, and they
    do not enter d/dBt), which is `H.detach()` on those entries with the value unchanged.
    """

    @staticmethod
    def forward(ctx, y: Tensor, H: Tensor, Bt: Tensor, gmask: Tensor) -> Tensor:
        ctx.save_for_backward(H, Bt, gmask)
        ctx.mark_dirty(y)
        return y.addmm_(H, Bt)

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor | None, ...]:
        H, Bt, gmask = ctx.saved_tensors
        gH = (g @ Bt.t()) * gmask if ctx.needs_input_grad[1] else None  # (M, k)
        gB = (H * gmask).t() @ g if ctx.needs_input_grad[2] else None  # (k, d_out)
        return g, gH, gB, None


def fused_delta(y: Tensor, x: Tensor, dep: LowRankBlock, qua: LowRankBlock, ctl: AdapterControl,
                 name: str) -> Tensor:
    """y + D + Q (zones, mode, probe applied) with both low-rank blocks in one matmul pair.

    y: (M, d_out) the base output, written in place and returned; x: (..., d_in) with M rows. Columns of the (..., 4r) bottleneck H:
    [u_d, u_q, h0_d, h0_q] with u = (A - A0) x and h0 = A0 x, so D = B_d u_d + (B_d - B0_d) h0_d.
    """
    r, dt = dep.rank, x.dtype
    deployed_only = ctl.mode == "deployed"
    A = torch.cat([dep.A - dep.A0, qua.A - qua.A0, dep.A0, qua.A0]).to(dt)  # (4r, d_in)
    if deployed_only:  # the quarantine's columns read as zero: net Q = 0 (keep rows get the same)
        Bq = Bq0 = torch.zeros_like(qua.B0)
    else:
        Bq, Bq0 = qua.B, qua.B - qua.B0
    Bt = torch.cat([dep.B, Bq, dep.B - dep.B0, Bq0], 1).to(dt).t()  # (4r, d_out)
    H = F.linear(x, A)  # (..., 4r)
    if ctl.probe is not None:
        # c scales the trainable bottleneck h = A x = u + h0. At c = 1 the value is exactly u
        # (h0 (c - 1) is exactly 0); d/dc = u + h0 = A x as in the per-block path.
        c = torch.cat(ctl.probe.make(name, x, r), -1).to(dt)  # (N, 1, 2r)
        U, H0 = H[..., : 2 * r], H[..., 2 * r:]
        H = torch.cat([U * c + H0 * (c - 1), H0], -1)
    gmask = None
    if ctl.keep_rows is not None:
        if H.ndim != 3 or H.shape[0] != ctl.keep_rows.shape[0]:
            raise ValueError(f"zones has {ctl.keep_rows.shape[0]} rows but {name} got input of shape "
                             f"{tuple(H.shape[:-1])}; zones need a (N, L, ...) batch with N rows")
        col = torch.arange(4 * r, device=H.device)
        is_q = ((col >= r) & (col < 2 * r)) | (col >= 3 * r)  # (4r,) the quarantine's columns
        keep = ctl.keep_rows.to(H.device) & is_q  # (N, 1, 4r)
        H = torch.where(keep, torch.zeros((), dtype=H.dtype, device=H.device), H)
        route = ctl.route_rows.to(H.device) & ~is_q  # (N, 1, 4r): deployed columns of route rows
        if bool(route.any()):
            gmask = (~route).to(H.dtype).expand(-1, H.shape[1], -1).reshape(-1, 4 * r)  # (N*L, 4r)
    H2 = H.reshape(-1, 4 * r)  # (M, 4r)
    if gmask is not None:
        return _RoutedAddmm.apply(y, H2, Bt, gmask)
    return y.addmm_(H2, Bt)  # in place: y is the base Linear's fresh output, which its backward does not read


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
