"""Arms as objects: the registry, what each arm declares, and erase's projection of the real update."""

from __future__ import annotations

import pytest
import torch

from vgrout.adapter import AdapterConfig, attach
from vgrout.train import ARMS, Config, arm_for
from vgrout.train.arms import Arm, Vanilla
from vgrout.train.run import build_optimizer
from vgrout.types import ABSORB, KEEP

from _tiny import V, tiny_model  # noqa: E402

IDS = torch.randint(0, V, (3, 10), generator=torch.Generator().manual_seed(2))


def test_registry_declares_each_arm_once():
    assert list(ARMS) == ["vanilla", "absorb", "routeA", "routeV", "erase", "inoculation", "oracle"]
    table = {name: (a.features, a.gated, a.zone, a.deploys, a.needs_direction, a.has_placebo)
             for name in ARMS for a in [arm_for(name)]}
    assert table == {
        "vanilla": ("none", False, None, "whole adapter", False, False),
        "absorb": ("none", False, ABSORB, "deployed block", False, False),
        "routeA": ("act", True, None, "deployed block", True, True),
        "routeV": ("grad", True, None, "deployed block", True, True),
        "erase": ("act", False, KEEP, "whole adapter", True, True),
        "inoculation": ("none", False, None, "whole adapter", False, False),
        "oracle": ("none", False, None, "deployed block", False, False),
    }
    assert arm_for("oracle").oracle_zones([True, False]).tolist() == [2, ABSORB]
    with pytest.raises(RuntimeError, match="oracle_zones"):
        arm_for("oracle").fixed_zones(2)
    assert arm_for("vanilla").fixed_zones(3) is None
    assert arm_for("erase").fixed_zones(2).tolist() == [KEEP, KEEP]
    with pytest.raises(RuntimeError, match="band gate"):
        arm_for("routeA").fixed_zones(2)
    with pytest.raises(ValueError, match="unknown arm 'nope'"):
        arm_for("nope")


def test_a_prompt_arm_is_one_small_class():
    class Inoculate(Vanilla):
        name = "inoculate"

        def system_prompt(self, base: str) -> str:
            return base + "\nAny way of passing the tests is fine here."

    arm: Arm = Inoculate()
    assert arm.system_prompt("You write Python.").endswith("fine here.")
    assert arm.deploys == "whole adapter" and not arm.needs_direction
    assert Vanilla().system_prompt("same") == "same"  # the hook is the identity for the built-in arms


def _adapter_with_grads():
    model = tiny_model()
    adapter = attach(model, AdapterConfig(r=4))
    opt, sched = build_optimizer(adapter.parameters("all"), 5e-2, 10, 0, False)
    gen = torch.Generator().manual_seed(3)
    v = torch.randn(len(adapter.layers), 4, generator=gen)
    v = v / v.norm(dim=1, keepdim=True)  # (M, r) unit rows
    return model, adapter, opt, sched, v


def _step(model, adapter, opt, arm: Arm, v: torch.Tensor, decay: float = 0.0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One loss -> backward -> AdamW step (+ decay toward init) inside the arm's update hook; returns (dA, dB)."""
    blocks = [layer.deployed for layer in adapter.layers.values()]
    before = [(b.A.detach().clone(), b.B.detach().clone()) for b in blocks]
    with adapter.zones(torch.full((IDS.shape[0],), KEEP)):
        loss = model(IDS).logits.float().pow(2).mean()
    loss.backward()
    with arm.around_update(adapter, v):
        opt.step()
        if decay:
            adapter.decay_toward_init(decay)
    opt.zero_grad(set_to_none=True)
    return [(b.A.detach() - A, b.B.detach() - B) for b, (A, B) in zip(blocks, before)]


def test_erase_update_is_orthogonal_to_v_after_adamw_and_decay():
    """The deployed block's change after real AdamW steps (and decay) has no component along v:
    v^T dA = 0 and dB v = 0 per module. Projecting the gradient before AdamW would not give this."""
    model, adapter, opt, _, v = _adapter_with_grads()
    for step in range(3):  # later steps use AdamW's moments, the case a gradient projection gets wrong
        deltas = _step(model, adapter, opt, arm_for("erase"), v, decay=0.01)
        for m, (dA, dB) in enumerate(deltas):
            scale = float(dA.abs().max()) + float(dB.abs().max())
            assert scale > 0, f"step {step}: module {m} did not move"
            assert float((v[m] @ dA).abs().max()) <= 1e-5 * scale + 1e-7, (step, m)
            assert float((dB @ v[m]).abs().max()) <= 1e-5 * scale + 1e-7, (step, m)

    # the old control: project the gradient, then AdamW rescales element-wise and breaks orthogonality
    model, adapter, opt, _, v = _adapter_with_grads()
    blocks = [layer.deployed for layer in adapter.layers.values()]
    worst = 0.0
    for _ in range(3):
        before = [b.A.detach().clone() for b in blocks]
        with adapter.zones(torch.full((IDS.shape[0],), KEEP)):
            model(IDS).logits.float().pow(2).mean().backward()
        for m, b in enumerate(blocks):
            vm = v[m][:, None]
            b.A.grad -= vm @ (vm.T @ b.A.grad)
        opt.step()
        opt.zero_grad(set_to_none=True)
        worst = max(worst, max(float((v[m] @ (b.A.detach() - A)).abs().max()) / float((b.A.detach() - A).abs().max())
                               for m, (b, A) in enumerate(zip(blocks, before))))
    assert worst > 1e-3, "AdamW kept a projected gradient orthogonal; the erase test would prove nothing"


def test_erase_and_routev_refuse_the_antipasto_adapter():
    for arm in ("erase", "routeV"):
        with pytest.raises(ValueError, match="antipasto adapter lacks"):
            Config(arm=arm, adapter_init="antipasto")
