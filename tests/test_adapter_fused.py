"""The fused adapter path (both low-rank blocks in one 4r-wide matmul pair) against the per-block path.

Every case runs the same forward and backward twice, fused (default) and inside
`adapter.unfused()`, and compares logits and every adapter gradient at fp32 tolerance: modes
full / deployed / base, zones mixing keep / absorb / route, the gradient probe and the
bottleneck capture. The routing guarantees themselves (exact zeros) are checked on the fused path.
"""

from __future__ import annotations

import pytest
import torch

from vgrout.adapter import ABSORB, KEEP, ROUTE, AdapterConfig, attach

from _tiny import V, perturb, row_losses, tiny_model  # noqa: E402

# fp32 rounding of two orderings of the same sums: 2e-6 held on the AMD EPYC machine; on the
# Intel Xeon (AVX-512) one logit of 4545 differed by 2.6e-6 (2026-12-02). A real routing or
# algebra error moves logits by orders of magnitude more.
TOL = dict(atol=1e-5, rtol=1e-4)


@pytest.fixture()
def setup():
    model = tiny_model()
    adapter = attach(model, AdapterConfig(r=4))
    perturb(adapter)
    ids = torch.randint(0, V, (5, 9), generator=torch.Generator().manual_seed(5))  # (N, L)
    return model, adapter, ids


def run(model, adapter, ids, mode: str = "full", zones: torch.Tensor | None = None, fused: bool = True):
    """Logits (N, L, V) and the adapter's gradients (zeros where None) of the summed row losses."""
    for p in adapter.parameters("all"):
        p.grad = None
    with torch.enable_grad():
        ctx = [adapter.mode(mode)] if mode != "full" else []
        if zones is not None:
            ctx.append(adapter.zones(zones))
        if not fused:
            ctx.insert(0, adapter.unfused())
        from contextlib import ExitStack
        with ExitStack() as stack:
            for c in ctx:
                stack.enter_context(c)
            logits = model(ids).logits
        if mode != "base":
            row_losses(logits, ids).sum().backward()
    return logits.detach(), [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in adapter.parameters("all")]


def assert_same(a, b) -> None:
    torch.testing.assert_close(a[0], b[0], **TOL)
    for ga, gb in zip(a[1], b[1], strict=True):
        torch.testing.assert_close(ga, gb, **TOL)


@pytest.mark.parametrize("mode", ["full", "deployed", "base"])
def test_fused_equals_per_block_in_every_mode(setup, mode):
    model, adapter, ids = setup
    assert all(layer.fusable for layer in adapter.layers.values())
    fused, ref = run(model, adapter, ids, mode), run(model, adapter, ids, mode, fused=False)
    assert_same(fused, ref)
    if mode != "base":
        assert any(torch.count_nonzero(g) for g in fused[1])  # gradients exist (the test has teeth)


@pytest.mark.parametrize("zones", [[KEEP, ABSORB, ROUTE, ROUTE, KEEP], [ROUTE] * 5, [KEEP] * 5, [ABSORB] * 5])
def test_fused_equals_per_block_with_zones(setup, zones):
    model, adapter, ids = setup
    z = torch.tensor(zones)
    assert_same(run(model, adapter, ids, zones=z), run(model, adapter, ids, zones=z, fused=False))


def test_fused_route_and_keep_cut_gradients_exactly(setup):
    model, adapter, ids = setup
    _, g_route = run(model, adapter, ids, zones=torch.tensor([ROUTE] * 5))
    _, g_keep = run(model, adapter, ids, zones=torch.tensor([KEEP] * 5))
    n_dep = len(adapter.parameters("deployed"))
    dep_ids = {id(p) for p in adapter.parameters("deployed")}
    is_dep = [id(p) in dep_ids for p in adapter.parameters("all")]
    assert sum(is_dep) == n_dep
    for d, gr, gk in zip(is_dep, g_route, g_keep):
        if d:
            assert torch.count_nonzero(gr) == 0 and torch.count_nonzero(gk) > 0
        else:
            assert torch.count_nonzero(gk) == 0 and torch.count_nonzero(gr) > 0


def test_fused_is_exactly_zero_at_init_and_after_full_decay():
    model = tiny_model()
    ids = torch.randint(0, V, (2, 7), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        base = model(ids).logits
    adapter = attach(model, AdapterConfig(r=4, init="pissa"))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, base)
    perturb(adapter)
    with torch.no_grad():
        assert not torch.equal(model(ids).logits, base)
    adapter.decay_toward_init(1.0)
    with torch.no_grad():
        assert torch.equal(model(ids).logits, base)


def test_fused_probe_and_capture_match_the_per_block_path(setup):
    model, adapter, ids = setup
    out = {}
    for fused in (True, False):
        ctx = adapter.unfused() if not fused else torch.enable_grad()
        with ctx, adapter.grad_probe() as probe:
            losses = row_losses(model(ids).logits, ids)
            out[fused, "probe"] = probe.per_row(losses)  # (N, M, r)
        mask = torch.zeros(ids.shape, dtype=torch.bool)
        mask[:, 3:] = True
        ctx = adapter.unfused() if not fused else torch.enable_grad()
        with ctx, torch.no_grad(), adapter.mode("deployed"), adapter.capture_bottleneck(mask) as cap:
            out[fused, "logits"] = model(ids).logits
        out[fused, "pooled"] = cap.pooled
    for k in ("probe", "logits", "pooled"):
        torch.testing.assert_close(out[True, k], out[False, k], **TOL)
    assert out[True, "probe"].abs().sum() > 0


def test_fused_bf16_is_close_to_the_fp32_model():
    """bf16 activations: the fused path casts A - A0 and B - B0 after the fp32 subtraction."""
    model = tiny_model()
    adapter = attach(model, AdapterConfig(r=4))
    perturb(adapter)
    ids = torch.randint(0, V, (3, 8), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        want = model(ids).logits
        model.to(torch.bfloat16)
        for layer in adapter.layers.values():  # the blocks stay fp32
            for b in (layer.deployed, layer.quarantine):
                b.float()
        got = model(ids).logits.float()
    torch.testing.assert_close(got, want, atol=0.1, rtol=0.05)
