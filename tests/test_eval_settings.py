"""What `vgrout eval` reads of a run directory, without importing the trainer (new and older runs)."""

from __future__ import annotations

import json

import pytest

from vgrout.eval.settings import EvalSettings, read_run


def _run_dir(tmp_path, config: dict, state: dict | None):
    (tmp_path / "config.json").write_text(json.dumps(config))
    ckpt = tmp_path / "checkpoints" / "step_000002"
    ckpt.mkdir(parents=True)
    if state is not None:
        (ckpt / "state.json").write_text(json.dumps(state))
    return ckpt


def test_read_run_new_layout_takes_deploys_from_state_json(tmp_path):
    ckpt = _run_dir(tmp_path, {"arm": "inoculate", "model": "toy:tiny", "eval": {"temperature": 0.3, "every": 5}},
                    {"step": 2, "arm": "inoculate", "deploys": "whole adapter"})
    run = read_run(tmp_path, ckpt)
    assert run.deployed_is_full and run.model == "toy:tiny"
    assert run.eval == EvalSettings(temperature=0.3, every=5)
    with pytest.raises(AttributeError, match="no field 'nope'"):
        run.nope


def test_read_run_older_flat_config_without_deploys(tmp_path):
    ckpt = _run_dir(tmp_path, {"arm": "routeA", "eval_temperature": 0.5, "eval_top_k": 0}, {"step": 2})
    run = read_run(tmp_path, ckpt)
    assert not run.deployed_is_full and (run.eval.temperature, run.eval.top_k) == (0.5, 0)
    assert run.eval.top_p == EvalSettings().top_p
    (tmp_path / "v").mkdir()
    vanilla = _run_dir(tmp_path / "v", {"arm": "vanilla"}, {"step": 2})
    assert read_run(tmp_path / "v", vanilla).deployed_is_full  # before state.json said, the arm did


def test_read_run_errors_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="written by `vgrout train`"):
        read_run(tmp_path)
    ckpt = _run_dir(tmp_path, {"arm": "routeA", "eval": {"temp": 1}}, None)
    with pytest.raises(ValueError, match="unknown eval setting"):
        read_run(tmp_path, ckpt)
