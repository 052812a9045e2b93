"""Initialisations of the two blocks, per wrapped Linear with weight W (d_out, d_in).

Every init only chooses the frozen starting point (A0, B0, or antipasto's basis); the
trainables start equal to it, so the net delta is zero at init for all of them.

- gaussian: A0 ~ N(0, 1/d_in), B0 ~ N(0, 1/(2r)); 2r slots drawn together, first r deployed.
- pissa: top-2r singular vectors of W, unit norm, singular values dropped; even components to
  the deployed block, odd to the quarantine (interleaved so neither block owns the top ones).
- corda: the same interleave over the top-2r SVD of W C^1/2, where C is the hack-clean input
  covariance from authored pairs plus a small ridge (contrast-weighted basis).
- scorda: signed CorDA. The quarantine's first slot is the unit mean hack-clean input delta
  u_in (A0) and unit(W u_in) (B0); the other 2r-1 slots are W's SVD with those axes
  projected out, filled in order (deployed gets components 0..r-1). scorda_rev puts the seed
  in the deployed block's first slot instead (the reverse control).
- antipasto: corda basis kept with its singular values, gains tanh(g) with g = 0, and a
  Cayley rotation on the quarantine.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vgrout.adapter.layer import GainBlock, LowRankBlock

CORDA_EPS = 1e-3  # ridge, relative to the mean squared delta per input dim


def _unit_rows(X: Tensor) -> Tensor:
    return X / X.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _split_slots(A0: Tensor, B0: Tensor) -> tuple[LowRankBlock, LowRankBlock]:
    """2r slots -> (deployed, quarantine): slots [0, r) deployed, [r, 2r) quarantine.

    The only place the 2r-slot layout is cut into blocks. A0: (2r, d_in), B0: (d_out, 2r).
    """
    r = A0.shape[0] // 2
    return LowRankBlock(A0[:r], B0[:, :r]), LowRankBlock(A0[r:], B0[:, r:])


def _interleave(A0: Tensor, B0: Tensor) -> tuple[Tensor, Tensor]:
    """Reorder components 0..2r-1 as evens then odds, so _split_slots gives even->deployed."""
    order = torch.cat([torch.arange(0, A0.shape[0], 2), torch.arange(1, A0.shape[0], 2)]).to(A0.device)
    return A0[order], B0[:, order]


def gaussian_blocks(W: Tensor, r: int, seed: int) -> tuple[LowRankBlock, LowRankBlock]:
    d_out, d_in = W.shape
    gen = torch.Generator(device="cpu").manual_seed(seed)  # CPU draw: same init on every device
    A0 = torch.randn(2 * r, d_in, generator=gen) / d_in**0.5  # (2r, d_in)
    B0 = torch.randn(d_out, 2 * r, generator=gen) / (2 * r) ** 0.5  # (d_out, 2r)
    return _split_slots(A0.to(W.device), B0.to(W.device))


def pissa_blocks(W: Tensor, r: int) -> tuple[LowRankBlock, LowRankBlock]:
    U, _, Vh = torch.linalg.svd(W.float(), full_matrices=False)
    A0 = _unit_rows(Vh[: 2 * r])  # (2r, d_in)
    B0 = _unit_rows(U[:, : 2 * r].T).T  # (d_out, 2r)
    return _split_slots(*_interleave(A0, B0))


def check_deltas(deltas: Tensor | None, d_in: int, name: str) -> Tensor:
    """Validate one module's calibration deltas (P, d_in)."""
    if deltas is None:
        raise ValueError(f"no calibration deltas for module {name}; pair-based inits need "
                         f"contrastive_input_deltas(...) covering every wrapped module")
    if deltas.ndim != 2 or deltas.shape[1] != d_in or deltas.shape[0] < 1:
        raise ValueError(f"calibration for {name} has shape {tuple(deltas.shape)}; expected (P >= 1, {d_in})")
    if not torch.isfinite(deltas).all():
        raise ValueError(f"calibration for {name} has non-finite values")
    if float(deltas.abs().sum()) == 0.0:
        raise ValueError(f"calibration for {name} is all zeros: hack and clean inputs are identical")
    return deltas.float()


def corda_basis(W: Tensor, deltas: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """Top-k SVD of W C^1/2 with C = D^T D / P + a I. Returns U (d_out, k), S (k,), Vh (k, d_in).

    C^1/2 has the closed form sqrt(a) I + U_d diag(g) U_d^T (U_d: right singular vectors of
    the deltas D), so no d_in x d_in matrix is formed. The right vectors are mapped back
    through C^1/2 (the reference's "read emphasis", kept on purpose so reads lean toward the
    contrast directions).
    """
    W, D = W.float(), deltas.to(W.device).float()
    P, d_in = D.shape
    a = CORDA_EPS * float(D.pow(2).sum()) / P / d_in
    _, sig, Vd = torch.linalg.svd(D, full_matrices=False)  # Vd: (p, d_in)
    g = torch.sqrt(a + sig**2 / P) - a**0.5  # (p,)

    def sqrt_c(X: Tensor) -> Tensor:  # X (m, d_in) -> X C^1/2
        return a**0.5 * X + ((X @ Vd.T) * g) @ Vd

    U2, S2, Q2 = torch.linalg.svd(sqrt_c(W), full_matrices=False)
    return U2[:, :k], S2[:k], sqrt_c(Q2[:k])


def corda_blocks(W: Tensor, r: int, deltas: Tensor) -> tuple[LowRankBlock, LowRankBlock]:
    U, _, Vh = corda_basis(W, deltas, 2 * r)
    return _split_slots(*_interleave(_unit_rows(Vh), _unit_rows(U.T).T))


def hack_axes(W: Tensor, deltas: Tensor) -> tuple[Tensor, Tensor]:
    """The signed hack input axis u_in (d_in,) (clean -> hack) and u_out = unit(W u_in) (d_out,)."""
    mean = deltas.to(W.device).float().mean(0)  # (d_in,)
    if float(mean.norm()) == 0.0:
        raise ValueError("the mean hack-clean delta is zero; scorda needs a signed contrast")
    u_in = mean / mean.norm()
    w_u = W.float() @ u_in
    if float(w_u.norm()) == 0.0:
        raise ValueError("W maps the hack axis to zero; scorda cannot seed an output direction")
    return u_in, w_u / w_u.norm()


def scorda_blocks(W: Tensor, r: int, deltas: Tensor, reverse: bool) -> tuple[LowRankBlock, LowRankBlock]:
    u_in, u_out = hack_axes(W, deltas)
    U, _, Vh = torch.linalg.svd(W.float(), full_matrices=False)
    Vh = Vh[: 2 * r - 1]  # (2r-1, d_in)
    Ut = U[:, : 2 * r - 1].T  # (2r-1, d_out)
    Vh = _unit_rows(Vh - (Vh @ u_in)[:, None] * u_in)  # hack axis projected out
    Ut = _unit_rows(Ut - (Ut @ u_out)[:, None] * u_out)
    seed_slot = 0 if reverse else r
    A0 = torch.cat([Vh[:seed_slot], u_in[None], Vh[seed_slot:]])  # (2r, d_in)
    B0 = torch.cat([Ut[:seed_slot], u_out[None], Ut[seed_slot:]]).T  # (d_out, 2r)
    return _split_slots(A0, B0)


def antipasto_blocks(W: Tensor, r: int, deltas: Tensor) -> tuple[GainBlock, GainBlock]:
    U, S, Vh = corda_basis(W, deltas, 2 * r)
    even, odd = torch.arange(0, 2 * r, 2), torch.arange(1, 2 * r, 2)
    return (GainBlock(U[:, even], S[even], Vh[even], rotate=False),
            GainBlock(U[:, odd], S[odd], Vh[odd], rotate=True))


def build_blocks(init: str, W: Tensor, r: int, *, seed: int, deltas: Tensor | None, name: str
                 ) -> tuple[nn.Module, nn.Module]:
    """(deployed, quarantine) blocks for one Linear of weight W (d_out, d_in)."""
    W = W.detach().float()
    if init == "gaussian":
        return gaussian_blocks(W, r, seed)
    if init == "pissa":
        return pissa_blocks(W, r)
    deltas = check_deltas(deltas, W.shape[1], name)
    if init == "corda":
        return corda_blocks(W, r, deltas)
    if init in ("scorda", "scorda_rev"):
        return scorda_blocks(W, r, deltas, reverse=init == "scorda_rev")
    if init == "antipasto":
        return antipasto_blocks(W, r, deltas)
    raise ValueError(f"unknown adapter init {init!r}")


def empty_blocks(init: str, d_out: int, d_in: int, r: int, device: torch.device) -> tuple[nn.Module, nn.Module]:
    """Blocks of the right shapes with zero contents, to be filled by `load_state_dict`."""
    if init == "antipasto":
        z = lambda *s: torch.zeros(*s, device=device)  # noqa: E731
        return GainBlock(z(d_out, r), z(r), z(r, d_in), False), GainBlock(z(d_out, r), z(r), z(r, d_in), True)
    return _split_slots(torch.zeros(2 * r, d_in, device=device), torch.zeros(d_out, 2 * r, device=device))
