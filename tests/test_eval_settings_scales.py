"""`eval.deploy_scales`: which evals sample the deploy-scale states, and what older configs meant."""

import pytest

from vgrout.eval.results import SCALE_STATES, STATES
from vgrout.eval.settings import EvalSettings, eval_states


def test_last_samples_the_scale_states_at_the_last_eval_only():
    ev = EvalSettings()
    assert ev.deploy_scales == "last"
    assert eval_states(ev, deployed_is_full=False, last=False) == STATES
    assert eval_states(ev, deployed_is_full=False, last=True) == STATES + SCALE_STATES
    assert eval_states(ev, deployed_is_full=True, last=True) == STATES  # no quarantine to scale


def test_every_and_off_and_the_booleans_of_older_configs():
    assert eval_states(EvalSettings(deploy_scales="every"), False, last=False) == STATES + SCALE_STATES
    assert eval_states(EvalSettings(deploy_scales="off"), False, last=True) == STATES
    assert EvalSettings(deploy_scales=True).deploy_scales == "every"
    assert EvalSettings(deploy_scales=False).deploy_scales == "off"
    with pytest.raises(ValueError, match="choose one of last, every, off"):
        EvalSettings(deploy_scales="sometimes")
