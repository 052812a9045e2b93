"""The toy model loads without transformers' per-tensor "Loading weights" bar (issue 11 item 8:
a readable demo log), and the bar setting is restored for everything else."""

from transformers.utils import logging as hf_logging

from vgrout.models import load_model


def test_toy_model_loads_without_a_progress_bar(capfd):
    assert hf_logging.is_progress_bar_enabled()
    model, _ = load_model("toy:tiny", "float32", "cpu")
    err = capfd.readouterr().err
    assert "Loading weights" not in err, err
    assert hf_logging.is_progress_bar_enabled()  # restored for real (hub) models
    assert sum(p.numel() for p in model.parameters()) > 0
