"""The gate's device contract: every tensor a gate step touches is CPU float32 (zones CPU long).

A CPU-only machine cannot show the CUDA failure itself (a CPU buffer scored against a CUDA
direction); these tests pin the contract that rules it out: whatever device and dtype the
features, direction and placebo arrive in, everything the gate keeps or returns is on the
CPU, and the bf16 path gives the float32 answer. The CUDA test runs where a GPU is present.
"""

from __future__ import annotations

import math

import pytest
import torch

from vgrout.gates import (
    ABSORB, ScoreBuffer, band_gate, haar_unit_rows, mean_difference_direction, paired_accuracy, project_scores,
)
from vgrout.gates.band import GATE_DEVICE, GATE_DTYPE, to_gate

CPU = torch.device("cpu")


def assert_gate_tensor(t: torch.Tensor, dtype: torch.dtype = GATE_DTYPE) -> None:
    assert t.device == CPU and t.dtype == dtype and not t.requires_grad, (t.device, t.dtype, t.requires_grad)


def run_gate(feature_batches: list[torch.Tensor], direction: torch.Tensor) -> tuple[list, ScoreBuffer]:
    buf = ScoreBuffer(64)
    out = [band_gate(buf, f, direction, tail_q=0.2, half_life=8.0, warmup=0) for f in feature_batches]
    return out, buf


def test_contract_constants_and_to_gate():
    assert GATE_DEVICE == CPU and GATE_DTYPE == torch.float32
    x = torch.randn(3, 2, 4, dtype=torch.bfloat16, requires_grad=True)
    assert_gate_tensor(to_gate(x))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_band_gate_returns_and_keeps_cpu_float32_for_any_input_dtype(dtype):
    g = torch.Generator().manual_seed(0)
    batches32 = [torch.randn(6, 3, 4, generator=g) for _ in range(3)]
    v32 = mean_difference_direction(torch.randn(5, 3, 4, generator=g), torch.randn(5, 3, 4, generator=g))
    assert_gate_tensor(v32)
    # features arrive in the model's dtype with grad history (routeV's probe output), the direction in another dtype
    batches = [b.to(dtype).requires_grad_(True) * 1.0 for b in batches32]
    out, buf = run_gate(batches, v32.to(dtype))
    for zones, scores, t_lo, t_hi in out:
        assert_gate_tensor(zones, torch.long)
        assert_gate_tensor(scores)
        assert isinstance(t_lo, float) and isinstance(t_hi, float)
    assert_gate_tensor(buf.features)
    assert_gate_tensor(buf.stamps, torch.long)
    # same zones as the float32 run on features rounded to the same dtype (the cast is the only change)
    ref, _ = run_gate([b.to(dtype).float() for b in batches32], v32.to(dtype).float())
    for (z, s, lo, hi), (zr, sr, lor, hir) in zip(out, ref):
        assert torch.equal(z, zr) and torch.equal(s, sr)
        assert (math.isnan(lo) and math.isnan(lor)) or (lo, hi) == (lor, hir)
    assert out[0][0].tolist() == [ABSORB] * 6  # the first batch only fills the buffer
    assert set(out[2][0].tolist()) != {ABSORB}  # later batches leave the band


def test_placebo_and_direction_share_the_gate_device():
    hack, clean = torch.randn(4, 3, 5, dtype=torch.bfloat16), torch.randn(4, 3, 5, dtype=torch.bfloat16)
    v = mean_difference_direction(hack, clean)
    p = haar_unit_rows(tuple(v.shape), seed=3)
    assert_gate_tensor(v)
    assert_gate_tensor(p)
    # the placebo scores bf16 features like the real direction does (refresh_direction's accuracy check)
    acc = paired_accuracy(project_scores(hack, p), project_scores(clean, p))
    assert 0.0 <= acc <= 1.0
    assert_gate_tensor(project_scores(hack, p))


def test_buffer_state_round_trip_lands_on_the_gate_device():
    buf = ScoreBuffer(8)
    buf.add(torch.randn(5, 2, 3, dtype=torch.bfloat16))
    state = buf.state_dict()
    state["features"] = state["features"].double()  # e.g. a checkpoint written by other code
    fresh = ScoreBuffer(1)
    fresh.load_state_dict(state)
    assert_gate_tensor(fresh.features)
    assert fresh.count == 5 and len(fresh) == 5


def test_trainer_keeps_gate_state_on_cpu_and_zones_on_the_model_device(tmp_path):
    """A routeA smoke step: the direction and buffer stay CPU float32; the zones the adapter
    receives are on the model's device (CPU here: the check is the same code a GPU run takes)."""
    from _rules import RuleGrader  # the trainer tests' rule-based stand-in grader
    from vgrout.train import config as presets
    from vgrout.train.loop import train

    seen = []
    cfg = presets.smoke().with_overrides({"arm": "routeA", "steps": 2, "checkpoint_every": 0})
    from vgrout.adapter.attach import BlockAdapter

    orig = BlockAdapter.zones

    def spy(self, z):
        seen.append((z.device, z.dtype))
        return orig(self, z)

    BlockAdapter.zones = spy
    try:
        run = train(cfg, tmp_path / "run", grader_factory=RuleGrader, progress=False)
    finally:
        BlockAdapter.zones = orig
    model_device = next(run.model.parameters()).device
    assert seen and all(d == model_device and t == torch.long for d, t in seen)
    assert_gate_tensor(run.gate.direction)
    assert_gate_tensor(run.gate.buffer.features)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_band_gate_takes_cuda_features_and_direction():
    f = torch.randn(3, 6, 2, 4, device="cuda", dtype=torch.bfloat16)
    v = mean_difference_direction(torch.randn(4, 2, 4, device="cuda"), torch.randn(4, 2, 4, device="cuda"))
    out, buf = run_gate(list(f), v.cuda())
    for zones, scores, _, _ in out:
        assert_gate_tensor(zones, torch.long)
        assert_gate_tensor(scores)
    assert_gate_tensor(buf.features)
