"""GPU-user options on CPU: gradient checkpointing (same gradients, zones respected), the
out-of-memory message, and the optional TensorBoard sink."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from _rules import RuleGrader
from _tiny import V, tiny_model

from vgrout.adapter import ABSORB, KEEP, ROUTE, AdapterConfig, attach
from vgrout.rollout import per_token_logps
from vgrout.train import config as presets
from vgrout.train.distributed import GradientCheckpointing, OutOfMemory, oom_guard
from vgrout.train.loop import TeeSink, with_tensorboard


def adapter_grads(checkpointed: bool) -> tuple[dict, int]:
    """Adapter grads of a zoned completion loss; the zones context closes before backward, as in the trainer."""
    model = tiny_model(0)
    adapter = attach(model, AdapterConfig(r=2))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in adapter.parameters("all"):
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    ids = torch.randint(1, V, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    zones = torch.tensor([KEEP, ABSORB, ROUTE])
    gc = GradientCheckpointing(model, adapter)
    if checkpointed:
        gc.enable()
    with adapter.zones(zones):
        lp = per_token_logps(model, ids, mask, 5)  # (3, 5)
    (-lp.sum()).backward()
    gc.disable()
    return {n: p.grad.clone() for n, p in enumerate(adapter.parameters("all")) if p.grad is not None}, gc.recomputed


def test_checkpointed_gradients_equal_plain_ones_under_zones():
    plain, _ = adapter_grads(False)
    ckpt, recomputed = adapter_grads(True)
    assert recomputed == 2  # both decoder layers were recomputed in the backward
    assert plain.keys() == ckpt.keys() and plain
    for k in plain:
        torch.testing.assert_close(ckpt[k], plain[k], rtol=1e-5, atol=1e-7)


def test_checkpointing_refuses_the_cached_forward_and_skips_no_grad():
    model = tiny_model(0)
    adapter = attach(model, AdapterConfig(r=2))
    ids = torch.randint(1, V, (2, 6))
    with GradientCheckpointing(model, adapter) as gc:
        with torch.no_grad():
            model(input_ids=ids)  # generation / scoring: untouched
        assert gc.recomputed == 0
        with pytest.raises(RuntimeError, match="share_prompt=False"):
            model(input_ids=ids, use_cache=True)
    model(input_ids=ids)  # disabled again: the class forward


def test_oom_error_names_the_settings_to_lower():
    cfg = presets.smoke().with_overrides({"micro_batch": "4"})
    with pytest.raises(OutOfMemory) as err:
        with oom_guard(cfg, "step 3"):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    msg = str(err.value)
    assert "step 3" in msg and "micro_batch=4" in msg and f"max_new_tokens={cfg.max_new_tokens}" in msg
    assert f"group_size={cfg.group_size}" in msg and "gradient_checkpointing=true" in msg
    assert isinstance(err.value.__cause__, torch.OutOfMemoryError)
    with pytest.raises(ValueError, match="unrelated"):  # other errors pass through unchanged
        with oom_guard(cfg):
            raise ValueError("unrelated")


class ListSink:
    def __init__(self):
        self.rows, self.closed = [], False

    def write(self, row):
        self.rows.append(row)

    def close(self):
        self.closed = True


def test_tensorboard_off_by_default_and_clear_without_the_package(tmp_path):
    assert presets.smoke().tensorboard is False and presets.leetcode_4b().tensorboard is False
    s = ListSink()
    assert with_tensorboard(s, tmp_path, False) is s
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.raises(RuntimeError, match="pip install tensorboard"):
            with_tensorboard(s, tmp_path, True)
    else:
        tee = with_tensorboard(s, tmp_path, True)
        assert isinstance(tee, TeeSink)
        tee.write({"step": 0, "loss": 0.5, "skipped": True, "name": "x"})
        tee.close()
        assert s.rows and s.closed and any((tmp_path / "tensorboard").iterdir())


def test_smoke_run_with_gradient_checkpointing(tmp_path):
    """The trainer path: checkpointing on, the training forward plain, the step completes."""
    cfg = presets.smoke().with_overrides({"arm": "routeA", "steps": "2", "gradient_checkpointing": "true",
                                          "checkpoint_every": "0"})
    from vgrout.train.loop import train

    train(cfg, tmp_path / "run", grader_factory=RuleGrader, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    ran = [r for r in rows if not r.get("skipped")]
    assert ran and all(r["rows_shared_prompt"] == 0 and r["rows_plain"] > 0 for r in ran)
