"""Block adapter invariants on a tiny random Qwen3: zones, modes, ablation, merge, decay, probes."""

from __future__ import annotations

import pytest
import torch

from vgrout.adapter import ABSORB, KEEP, ROUTE, AdapterConfig, attach

from _tiny import V, perturb, row_losses, tiny_model  # noqa: E402


@pytest.fixture()
def setup():
    model = tiny_model()
    adapter = attach(model, AdapterConfig(r=4))
    perturb(adapter)
    ids = torch.randint(0, V, (3, 9), generator=torch.Generator().manual_seed(5))  # (N, L)
    return model, adapter, ids


def grads(adapter, block: str) -> list[torch.Tensor | None]:
    return [p.grad for p in adapter.parameters(block)]


def zero_grads(adapter) -> None:
    for p in adapter.parameters("all"):
        p.grad = None


# zone -> which blocks a row's loss may reach ("zero" = every gradient exactly 0).
GRAD_TABLE = {
    KEEP: {"deployed": "nonzero", "quarantine": "zero"},
    ABSORB: {"deployed": "nonzero", "quarantine": "nonzero"},
    ROUTE: {"deployed": "zero", "quarantine": "nonzero"},
}


@pytest.mark.parametrize("zone", sorted(GRAD_TABLE))
def test_each_rows_loss_reaches_only_the_blocks_its_zone_allows(setup, zone):
    model, adapter, ids = setup
    z = torch.tensor([KEEP, ABSORB, ROUTE])
    row = int((z == zone).nonzero())
    zero_grads(adapter)
    with adapter.zones(z):
        row_losses(model(ids).logits, ids)[row].backward()
    for block, expect in GRAD_TABLE[zone].items():
        gs = grads(adapter, block)
        if expect == "zero":
            assert all(g is None or torch.count_nonzero(g) == 0 for g in gs), f"{block} got gradient from a {zone} row"
        else:
            assert all(g is not None and torch.count_nonzero(g) > 0 for g in gs), f"{block} starved in zone {zone}"


def test_batched_grad_equals_sum_of_per_row_grads(setup):
    model, adapter, ids = setup
    z = torch.tensor([KEEP, ABSORB, ROUTE])
    zero_grads(adapter)
    with adapter.zones(z):
        row_losses(model(ids).logits, ids).sum().backward()
    batched = [p.grad.clone() for p in adapter.parameters("all")]
    total = [torch.zeros_like(g) for g in batched]
    for i in range(3):  # each row alone, in its own batch of one
        zero_grads(adapter)
        with adapter.zones(z[i : i + 1]):
            row_losses(model(ids[i : i + 1]).logits, ids[i : i + 1]).sum().backward()
        total = [t + (torch.zeros_like(t) if p.grad is None else p.grad) for t, p in zip(total, adapter.parameters("all"))]
    for b, t in zip(batched, total):
        torch.testing.assert_close(b, t, atol=1e-6, rtol=1e-5)


def test_zones_change_gradients_not_the_forward_except_keep(setup):
    model, adapter, ids = setup
    with torch.no_grad():
        full = model(ids).logits
        with adapter.mode("deployed"):
            deployed = model(ids).logits
        with adapter.zones(torch.tensor([KEEP, ABSORB, ROUTE])):
            zoned = model(ids).logits
    assert torch.equal(zoned[0], deployed[0])  # keep = deployed-only forward for that row
    assert torch.equal(zoned[1:], full[1:])  # absorb and route: forward untouched
    assert not torch.equal(full[0], deployed[0])  # the quarantine does act (test has teeth)


def test_zones_are_cleared_even_after_an_exception(setup):
    model, adapter, ids = setup
    with pytest.raises(RuntimeError, match="boom"):
        with adapter.zones(torch.tensor([KEEP, KEEP, KEEP])):
            raise RuntimeError("boom")
    with torch.no_grad():
        out = model(ids).logits  # would fail on shape or equal deployed if zones leaked
        with adapter.mode("deployed"):
            dep = model(ids).logits
    assert not torch.equal(out, dep)


def test_mode_base_is_the_base_model_and_deployed_equals_ablation(setup):
    model, adapter, ids = setup
    with torch.no_grad():
        with adapter.mode("base"):
            base = model(ids).logits
        with adapter.mode("deployed"):
            deployed = model(ids).logits
        with adapter.unwrapped() as m:
            plain = m(ids).logits
    assert torch.equal(base, plain)
    q_before = [p.clone() for p in adapter.parameters("quarantine")]
    init = [(layer.quarantine.A0.clone(), layer.quarantine.B0.clone()) for layer in adapter.layers.values()]
    d_before = [p.clone() for p in adapter.parameters("deployed")]
    adapter.ablate_quarantine()
    for layer, (A0, B0) in zip(adapter.layers.values(), init):
        assert torch.equal(layer.quarantine.A, A0) and torch.equal(layer.quarantine.B, B0)
    assert all(torch.equal(a, b) for a, b in zip(d_before, adapter.parameters("deployed")))
    assert any(not torch.equal(a, b) for a, b in zip(q_before, adapter.parameters("quarantine")))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, deployed)


def test_merged_generation_matches_hook_path_and_restores_exactly(setup):
    model, adapter, ids = setup
    W_before = {n: layer.base.weight.clone() for n, layer in adapter.layers.items()}
    kw = dict(max_new_tokens=6, do_sample=False, pad_token_id=0, eos_token_id=None,
              output_logits=True, return_dict_in_generate=True)
    for which in ("full", "deployed"):
        ctx = adapter.mode(which)
        with torch.no_grad(), ctx:
            hook = model.generate(ids, **kw)
        with torch.no_grad(), adapter.merged(which):
            merged = model.generate(ids, **kw)
        assert torch.equal(hook.sequences, merged.sequences)
        torch.testing.assert_close(torch.stack(merged.logits), torch.stack(hook.logits), atol=1e-4, rtol=1e-4)
    with pytest.raises(RuntimeError, match="inside"):
        with adapter.merged("full"):
            raise RuntimeError("fails inside merged")
    for n, layer in adapter.layers.items():
        assert torch.equal(layer.base.weight, W_before[n]), n


def test_merged_refuses_zones_and_mode_switches(setup):
    _, adapter, _ = setup
    with adapter.merged("deployed"):
        with pytest.raises(RuntimeError):
            with adapter.zones(torch.tensor([KEEP])):
                pass
        with pytest.raises(RuntimeError):
            with adapter.mode("base"):
                pass
    with pytest.raises(ValueError, match="takes one of full, deployed, half_quarantine, quarantine_only"):
        with adapter.merged("base"):
            pass


def test_decay_toward_init_shrinks_the_net_delta_not_the_factors(setup):
    model, adapter, ids = setup
    deltas = [(layer.deployed.A - layer.deployed.A0).detach().clone() for layer in adapter.layers.values()]
    adapter.decay_toward_init(0.25)
    for layer, d in zip(adapter.layers.values(), deltas):
        torch.testing.assert_close(layer.deployed.A - layer.deployed.A0, 0.75 * d, atol=1e-7, rtol=1e-6)
    adapter.decay_toward_init(1.0)
    with torch.no_grad(), adapter.mode("base"):
        base = model(ids).logits
    with torch.no_grad():
        assert torch.equal(model(ids).logits, base)  # fully decayed = net delta exactly zero
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        adapter.decay_toward_init(1.5)


def test_parameters_partition_the_trainables_and_base_is_frozen(setup):
    model, adapter, _ = setup
    dep, quar = adapter.parameters("deployed"), adapter.parameters("quarantine")
    ids_d, ids_q = {id(p) for p in dep}, {id(p) for p in quar}
    assert not ids_d & ids_q
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == ids_d | ids_q
    assert len(dep) == len(quar) == 2 * len(adapter.module_names)
    with pytest.raises(ValueError, match="unknown block"):
        adapter.parameters("both")


def test_block_grad_norms_match_the_zone(setup):
    model, adapter, ids = setup
    zero_grads(adapter)
    with adapter.zones(torch.tensor([KEEP, KEEP, KEEP])):
        row_losses(model(ids).logits, ids).sum().backward()
    d, q = adapter.block_grad_norms()
    assert d > 0 and q == 0.0


def test_capture_pools_the_deployed_bottleneck_over_masked_tokens(setup):
    model, adapter, ids = setup
    name = adapter.module_names[3]
    layer = adapter.layers[name]
    seen = {}
    handle = layer.register_forward_pre_hook(lambda m, a: seen.__setitem__("x", a[0].detach()))
    mask = torch.zeros(3, 9, dtype=torch.bool)
    mask[0, 4:], mask[1, 2:5], mask[2, 8] = True, True, True
    try:
        with torch.no_grad(), adapter.capture_bottleneck(mask) as cap:
            model(ids)
    finally:
        handle.remove()
    pooled = cap.pooled
    assert pooled.shape == (3, len(adapter.module_names), 4)
    h = seen["x"] @ layer.deployed.A.detach().T  # (N, L, r)
    want = torch.stack([h[i][mask[i]].mean(0) for i in range(3)])
    torch.testing.assert_close(pooled[:, 3], want, atol=1e-6, rtol=1e-5)
    bad = mask.clone()
    bad[1] = False
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        with adapter.capture_bottleneck(bad):
            pass


def test_grad_probe_gives_exact_per_row_deployed_gradients(setup):
    model, adapter, ids = setup
    with torch.no_grad():
        plain = model(ids).logits
    zero_grads(adapter)
    with adapter.grad_probe() as probe:
        logits = model(ids).logits
        assert torch.equal(logits, plain)  # the probe does not change the forward
        losses = row_losses(logits, ids)
        g = probe.per_row(losses, retain_graph=True)  # (N, M, r)
    assert g.shape == (3, len(adapter.module_names), 4)
    assert all(p.grad is None for p in adapter.parameters("all"))  # parameter grads untouched
    for i in range(3):  # each row in its own run
        with adapter.grad_probe() as probe_i:
            gi = probe_i.per_row(row_losses(model(ids[i : i + 1]).logits, ids[i : i + 1]))
        torch.testing.assert_close(g[i], gi[0], atol=1e-6, rtol=1e-5)
    # The probe's gradient is diag(dL/dA_d A_d^T): check it against the parameter gradient.
    losses.sum().backward()
    for m, layer in enumerate(adapter.layers.values()):
        A = layer.deployed.A
        torch.testing.assert_close(g[:, m].sum(0), (A.grad @ A.detach().T).diagonal(), atol=1e-6, rtol=1e-4)


def test_grad_probe_needs_grad(setup):
    model, adapter, ids = setup
    with adapter.grad_probe(), torch.no_grad(), pytest.raises(RuntimeError, match="grad enabled"):
        model(ids)


def test_bad_zones_are_rejected(setup):
    model, adapter, ids = setup
    for z, msg in [(torch.tensor([0, 3, 1]), "values"), (torch.tensor([0.0, 1.0, 1.0]), "integer"),
                   (torch.tensor([[0, 1, 2]]), "integer")]:
        with pytest.raises(ValueError, match=msg):
            with adapter.zones(z):
                pass
    with pytest.raises(ValueError, match="zones has 2 rows"):
        with adapter.zones(torch.tensor([KEEP, ROUTE])):
            model(ids)
    with pytest.raises(ValueError, match="unknown adapter mode"):
        with adapter.mode("quarantine"):
            pass


def test_unload_restores_the_original_model_bit_for_bit():
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    adapter = attach(model, AdapterConfig(r=2))
    perturb(adapter)
    with adapter.merged("full"):
        pass
    adapter.unload()
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    with pytest.raises(RuntimeError, match="unloaded"):
        with adapter.mode("base"):
            pass


def test_bf16_model_keeps_fp32_params_and_exact_zero_init():
    model = tiny_model().to(torch.bfloat16)
    ids = torch.randint(0, V, (2, 6), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        base = model(ids).logits
    adapter = attach(model, AdapterConfig(r=2))
    assert all(p.dtype == torch.float32 for p in adapter.parameters("all"))
    with adapter.zones(torch.tensor([ABSORB, ROUTE])):
        logits = model(ids).logits
    assert logits.dtype == torch.bfloat16 and torch.equal(logits, base)
    row_losses(logits.float(), ids).sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in adapter.parameters("quarantine"))


def test_grad_probe_in_deployed_mode_reads_only_the_deployed_block(setup):
    model, adapter, ids = setup
    with adapter.mode("deployed"), adapter.grad_probe() as probe:
        losses = row_losses(model(ids).logits, ids)
        grads = torch.autograd.grad(losses.sum(), probe.tensors)
    assert all(torch.count_nonzero(g[..., 4:]) == 0 for g in grads)  # quarantine half of c unused
    assert probe.deployed_grads(grads).abs().sum() > 0


def test_merged_deploy_scale_states_fold_the_blocks_at_their_scales():
    """half_quarantine = W + D + Q/2 and quarantine_only = W + Q, restored bit for bit after."""
    from vgrout.adapter import MERGE_SCALES

    torch.manual_seed(0)
    adapter = attach(tiny_model(), AdapterConfig(r=2))
    layer = next(iter(adapter.layers.values()))
    with torch.no_grad():
        for blk in (layer.deployed, layer.quarantine):
            blk.A.add_(torch.randn_like(blk.A))
            blk.B.add_(torch.randn_like(blk.B))
    W0 = layer.base.weight.detach().clone()
    D, Q = layer.deployed.weight_delta(), layer.quarantine.weight_delta()
    assert set(MERGE_SCALES) == {"full", "deployed", "half_quarantine", "quarantine_only"}
    for which, want in (("half_quarantine", W0 + D + 0.5 * Q), ("quarantine_only", W0 + Q), ("deployed", W0 + D)):
        with adapter.merged(which):
            assert torch.allclose(layer.base.weight, want, atol=1e-6), which
        assert torch.equal(layer.base.weight, W0)
    with pytest.raises(ValueError, match="merged\\(\\) takes one of"):
        with adapter.merged("quarantine"):
            pass
