"""The feature forwards skip work nobody reads, and read the same features bit for bit.

`completion_logps(logps=False)` runs the decoder as the log-prob forward does but no lm_head
over the completion; `act_features(logps_for=...)` uses it on micro-batches without a row whose
log-probs are read (the v_act refresh's pairs; routeA's gate when no row was sampled deployed).
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import pytest
import torch

from vgrout.rollout.logps import completion_logps
from vgrout.train.direction import act_features, adapter_context, completion_positions

from test_rollout_shared_prefix import G, P, batch, tiny_adapted


def pooled(model, adapter, r, share: bool, logps: bool):
    """The deployed pooled bottleneck of one completion_logps call, and what it returned."""
    whole = completion_positions(r)
    caps = []

    @contextmanager
    def capture(part, rows):
        with adapter.capture_bottleneck(whole if part == "whole" else r.completion_mask.bool()) as cap:
            caps.append(cap)
            yield

    with torch.no_grad():
        out = completion_logps(model, r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask,
                               share_prompt=share, context=adapter_context(adapter, "deployed", around_completion=capture),
                               logps=logps)
    return caps[0].pooled, out


@pytest.mark.parametrize("share", [True, False])
def test_logps_false_captures_the_same_features(share):
    model, adapter = tiny_adapted()
    r = batch()
    f_on, (lp, run_on) = pooled(model, adapter, r, share, logps=True)
    f_off, (none, run_off) = pooled(model, adapter, r, share, logps=False)
    assert none is None and lp.shape == r.completion_ids.shape
    assert torch.equal(f_on, f_off)  # bit for bit: the head runs after every captured layer
    assert run_on == run_off == (P if share else P * G)


def test_act_features_logps_only_where_asked():
    model, adapter = tiny_adapted()
    r = batch()
    n = P * G
    f_all, l_all = act_features(adapter, model, r, 5)  # chunks of 5 rows: [0, 5), [5, 10), [10, 12)
    want = torch.zeros(n, dtype=torch.bool)
    want[6] = True  # only the middle chunk needs its log-probs
    f, lp = act_features(adapter, model, r, 5, logps_for=want)
    assert torch.equal(f, f_all)
    assert torch.equal(lp[5:10], l_all[5:10])
    assert torch.isnan(lp[:5]).all() and torch.isnan(lp[10:]).all()  # never computed: a stray read shows
    f0, l0 = act_features(adapter, model, r, 0, logps_for=torch.zeros(n, dtype=torch.bool))
    assert torch.equal(f0, act_features(adapter, model, r, 0)[0]) and bool(torch.isnan(l0).all())
    assert not math.isnan(float(l_all[0, 0]))
