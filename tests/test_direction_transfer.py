"""The transfer check: before training, a direction arm scores the authored check pairs with its
direction (and a placebo with its Haar draw too) and writes the numbers to direction.json."""

from __future__ import annotations

import json
import math

import torch

from test_train_step import RuleGrader, pairs_path, smoke_cfg  # noqa: F401  (fixture)
from vgrout.pairs import load_pairs
from vgrout.train.loop import train
from vgrout.train.direction import direction_quality


def test_direction_quality_on_features_it_separates_and_inverts():
    v = torch.tensor([[1.0, 0.0]])  # (M=1, r=2)
    hack = torch.tensor([[[2.0, 0.0]], [[3.0, 1.0]]])  # (P=2, M, r)
    clean = torch.tensor([[[0.0, 5.0]], [[1.0, 0.0]]])
    q = direction_quality(hack, clean, v, ["run_tests", "sentinel"])
    assert q["auroc"] == 1.0 and q["paired_accuracy"] == 1.0
    assert q["auroc_by_mode"] == {"run_tests": 1.0, "sentinel": 1.0}
    inv = direction_quality(hack, clean, -v)
    assert inv["auroc"] == 0.0 and inv["paired_accuracy"] == 0.0 and "auroc_by_mode" not in inv


def test_a_direction_run_writes_its_transfer_check_to_direction_json(tmp_path, pairs_path):
    n_check = len(load_pairs("toy_check"))
    train(smoke_cfg(pairs_path, arm="routeA", steps=1), tmp_path / "r", grader_factory=RuleGrader, progress=False)
    info = json.loads((tmp_path / "r" / "direction.json").read_text())
    t = info["transfer"]
    assert (t["pairs"], t["n_pairs"]) == ("toy_check", n_check)
    assert 0.0 <= t["auroc"] <= 1.0 and 0.0 <= t["paired_accuracy"] <= 1.0
    assert set(t["auroc_by_mode"]) == {p.mode for p in load_pairs("toy_check")}
    assert "placebo_auroc" not in t

    train(smoke_cfg(pairs_path, arm="routeA", placebo=True, steps=1), tmp_path / "p", grader_factory=RuleGrader,
          progress=False)
    t = json.loads((tmp_path / "p" / "direction.json").read_text())["transfer"]
    assert t["auroc"] == json.loads((tmp_path / "r" / "direction.json").read_text())["transfer"]["auroc"]  # extracted
    assert not math.isnan(t["placebo_auroc"]) and "placebo_auroc_by_mode" in t  # and the Haar draw beside it


def test_vgrout_direction_prints_the_same_check_for_a_preset(pairs_path, capsys):
    from vgrout.cli import main

    assert main(["direction", "smoke", "--set", f"pairs={pairs_path}"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "act" and info["transfer"]["pairs"] == "toy_check"
