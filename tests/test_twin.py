"""Twin runs (vgrout.twin): vanilla written from absorb's run equals vanilla trained, file for
file, and a study/demo matrix trains absorb once. Real runs on the tiny toy world (smoke preset).

If this test fails, absorb no longer trains as vanilla does (a zone, a metric or a file now depends on
the arm): fix the difference or drop the pair from TWINS; never loosen the comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from vgrout.report.compare import build_report
from vgrout.study import plan_matrix, run_matrix
from vgrout.train.loop import train
from vgrout.train.config import preset
from vgrout.twin import TWIN_FILE, read_twin, twin_mismatch, write_twin

TINY = {"steps": "3", "eval.every": "2", "eval.n_problems": "4", "max_new_tokens": "12", "checkpoint_every": "2"}


def _no_times(line: str) -> dict:
    return {k: v for k, v in json.loads(line).items() if not k.startswith("time")}


def _equal(a, b) -> bool:
    """Exact equality of nested dicts/lists/tensors (tensors by value, bit for bit)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def _same_file(a: Path, b: Path, rel: str) -> None:
    """Byte-equal, except wall-clock fields (metrics' time_*, eval's created), the trainer state's
    Python `random` state (the sandbox draws from it; the training never does), and safetensors
    (equal tensors and metadata)."""
    if a.name == "metrics.jsonl":
        assert [_no_times(x) for x in a.read_text().splitlines()] == [_no_times(x) for x in b.read_text().splitlines()], rel
    elif a.match("eval/step_*.json"):
        ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
        ja.pop("created"), jb.pop("created")
        assert ja == jb, rel
    elif a.suffix == ".safetensors":  # the header's key order varies from process to process
        ta, tb = load_file(a), load_file(b)
        assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta), rel
        with safe_open(a, "pt") as ha, safe_open(b, "pt") as hb:
            assert ha.metadata() == hb.metadata(), rel
    elif a.name == "trainer_state.pt":
        sa, sb = (torch.load(p, weights_only=False) for p in (a, b))
        sa["rng"].pop("python"), sb["rng"].pop("python")
        assert _equal(sa, sb), rel
    else:
        assert a.read_bytes() == b.read_bytes(), rel


@pytest.mark.slow  # ~15 s: two 3-step runs with 2 evals and 2 checkpoints each
def test_vanilla_written_from_absorb_equals_vanilla_trained(tmp_path):
    base = preset("smoke").with_overrides({**TINY, "seed": "3"})
    for arm in ("vanilla", "absorb"):
        train(base.with_overrides({"arm": arm}), tmp_path / arm, progress=False)
    trained = (tmp_path / "vanilla").rename(tmp_path / "trained")  # the twin goes where vanilla trained:
    written = write_twin(tmp_path / "absorb", tmp_path / "vanilla",  # its eval files record that run dir
                         base.with_overrides({"arm": "vanilla"}))
    files = sorted(str(p.relative_to(trained)) for p in trained.rglob("*") if p.is_file())
    got = sorted(str(p.relative_to(written)) for p in written.rglob("*") if p.is_file() and p.name != TWIN_FILE)
    assert files == got and "eval/step_000002.samples.jsonl" in files and "checkpoints/step_000002/state.json" in files
    for rel in files:
        _same_file(trained / rel, written / rel, rel)
    info = read_twin(written)
    assert info["source_arm"] == "absorb" and "bit for bit" in info["why"]
    assert read_twin(trained) is None


def test_twin_mismatch_names_every_difference():
    base = preset("smoke")
    vanilla, absorb = base.with_overrides({"arm": "vanilla"}), base.with_overrides({"arm": "absorb"})
    assert twin_mismatch(absorb, vanilla) == []
    assert twin_mismatch(vanilla, absorb)  # absorb is not written from vanilla: its deployed state is its own
    assert any("lr" in w for w in twin_mismatch(absorb.with_overrides({"lr": "1e-2"}), vanilla))
    routeA = base.with_overrides({"arm": "routeA"})
    assert twin_mismatch(routeA, vanilla)


def test_write_twin_refuses_a_non_twin_and_an_unfinished_source(tmp_path):
    base = preset("smoke").with_overrides(TINY)
    src = tmp_path / "absorb"
    train(base.with_overrides({"arm": "absorb"}), src, progress=False, stop_after=1)
    with pytest.raises(ValueError, match="not finished"):
        write_twin(src, tmp_path / "vanilla", base.with_overrides({"arm": "vanilla"}))
    with pytest.raises(ValueError, match="lr"):
        write_twin(src, tmp_path / "vanilla", base.with_overrides({"arm": "vanilla", "lr": "1e-2"}))
    assert not (tmp_path / "vanilla").exists()


def test_the_matrix_trains_absorb_and_writes_vanilla_unless_told_to_train_both(tmp_path):
    base = preset("smoke").with_overrides(TINY)
    units, _ = plan_matrix(tmp_path, base, ("vanilla", "routeA", "absorb"), (0,), 0, 0)
    by = {u.name: u for u in units}
    assert by["vanilla_s0"].twin_of == tmp_path / "absorb_s0" and by["vanilla_s0"].after == "absorb_s0"
    assert by["absorb_s0"].twin_of is None and by["routeA_s0"].twin_of is None
    units, _ = plan_matrix(tmp_path, base, ("vanilla", "routeA", "absorb"), (0,), 0, 0, twins=False)
    assert all(u.twin_of is None for u in units)
    units, _ = plan_matrix(tmp_path, base, ("vanilla", "routeA"), (0,), 0, 0)  # no absorb: vanilla trains
    assert all(u.twin_of is None for u in units)


@pytest.mark.slow  # ~15 s: one 2-arm matrix
def test_a_matrix_with_twins_logs_the_written_run_and_reuses_it(tmp_path, capsys):
    base = preset("smoke").with_overrides(TINY)
    dirs = run_matrix(tmp_path, base, ("vanilla", "absorb"), (0,), jobs=1)
    assert [d.name for d in dirs] == ["vanilla_s0", "absorb_s0"]
    log = capsys.readouterr().out
    assert "absorb_s0: trained" in log and "vanilla_s0: written from absorb_s0" in log
    assert read_twin(tmp_path / "vanilla_s0")["source_arm"] == "absorb"
    report = build_report(dirs, tmp_path / "report.md").read_text()
    assert "## Twin runs" in report and "| vanilla | 0 | absorb_s0 |" in report
    run_matrix(tmp_path, base, ("vanilla", "absorb"), (0,), jobs=1)
    assert capsys.readouterr().out.count(": cached") == 2
