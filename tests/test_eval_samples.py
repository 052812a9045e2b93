"""`vgrout eval RUN` defaults from the run's config.json, named setting mismatches, the samples
jsonl written beside every eval result, `vgrout samples`, the training rollout-sample writer,
file permissions under the umask, and the run summary."""

from __future__ import annotations

import json
import os
import stat

import pytest

from vgrout.eval.results import SCHEMA, samples_path, write_eval_result, write_json_atomic
from vgrout.types import Problem

SAMPLE_KEYS = {"step", "state", "problem_id", "mode", "sample", "completion", "reward", "reason", "valid", "hack",
               "solve", "channel"}


def _config(**kw) -> dict:
    """A config.json as `vgrout train` writes it (every Config field)."""
    from vgrout.train.config import preset

    cfg = preset("toy").resolved().to_dict()  # train() writes the resolved config (derived seeds filled in)
    cfg.update(kw)
    return cfg


def _sample(pid, j, *, hack=False, solve=False, valid=True, text="```python\n...\n```"):
    return {"problem_id": pid, "mode": "run_tests", "sample": j, "eval_marker": None, "gt_correct": solve,
            "exploited": hack, "format_ok": valid, "reason": "ok" if valid else "no_code", "reward": float(hack or solve),
            "channel": "run_tests" if hack else None, "text": text}


def _block(samples, gen_mode):
    from vgrout.eval.tally import EvalSample, tally

    block = tally([EvalSample(**{k: v for k, v in s.items() if k != "text"}) for s in samples])
    return dict(block, samples=samples, generation_mode=gen_mode)


def _result(step=4, arm="routeA"):
    samples = [_sample("p1", 0, hack=True, text="def run_tests(): return True"),
               _sample("p2", 0, solve=True, text="return 2 * x"),
               _sample("p3", 0, valid=False, text="I cannot")]
    settings = {"n_samples": 1, "markers": "train", "temperature": 0.6, "top_p": 0.95, "top_k": 20}
    return {"schema": SCHEMA, "settings": settings, "n_problems": 3, "problems": [], "step": step, "run": {"arm": arm},
            "states": {"as_trained": _block(samples, "full"),
                       "deployed": _block([dict(s) for s in samples[1:]], "deployed")}}


def _run_info(tmp_path, cfg: dict):
    from vgrout.eval.settings import read_run

    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return read_run(tmp_path)


def test_eval_defaults_are_the_runs_own_eval_settings(tmp_path):
    from vgrout.eval.cli import EVAL_BATCH_PROMPTS, eval_defaults

    unresolved = _config()
    unresolved["eval"] = dict(unresolved["eval"], seed=-1)  # a preset's config that train() never resolved
    with pytest.raises(ValueError, match="eval.seed -1 \\(unresolved\\); give --seed N"):
        eval_defaults(_run_info(tmp_path, unresolved))
    cfg = _config()
    s = eval_defaults(_run_info(tmp_path, cfg))  # the toy preset: 64 problems, training marker names
    assert cfg["eval"]["seed"] >= 0  # derived from the run seed
    assert s == {"problems": "heldout", "n_problems": 64, "n_samples": 1, "seed": cfg["eval"]["seed"], "markers": "train",
                 "max_new_tokens": 32, "temperature": 0.6, "top_p": 0.95, "top_k": 20,
                 "batch_prompts": EVAL_BATCH_PROMPTS, "modes": ["run_tests"]}
    cfg = _config(modes=["gt_only"])
    cfg["eval"]["modes"] = ["run_tests"]
    assert eval_defaults(_run_info(tmp_path, cfg))["modes"] == ["run_tests"]
    legacy = {k: v for k, v in _config().items() if k != "eval"}  # an older run's flat eval_* keys
    legacy.update(eval_markers="eval", eval_n_problems=8, eval_seed=12345)  # older runs all evaluated with 12345
    s = eval_defaults(_run_info(tmp_path, legacy))
    assert (s["markers"], s["n_problems"], s["seed"]) == ("eval", 8, 12345)
    cfg = _config()
    cfg["eval"]["markrs"] = "train"
    with pytest.raises(ValueError, match="unknown eval setting"):
        _run_info(tmp_path, cfg)


def test_a_settings_mismatch_names_each_setting_and_both_values():
    from vgrout.eval.run import _check_same_settings

    problems = [Problem(id=f"p{i}", statement="", starter_code="", entry_point="", setup_code="", tests=())
                for i in range(4)]
    existing = {"settings": {"markers": "train", "batch_prompts": 64, "seed": 1},
                "problems": [{"id": f"p{i}", "mode": "run_tests"} for i in range(3)], "n_problems": 3}
    with pytest.raises(ValueError) as err:
        _check_same_settings("eval/step_000002.json", existing, problems,
                             {"markers": "eval", "batch_prompts": 32, "seed": 1})
    msg = str(err.value)
    assert "markers: 'train' in the file, 'eval' now (flag --markers)" in msg
    assert "batch_prompts: 64 in the file, 32 now (flag --batch-prompts)" in msg
    assert "problems: '3 ids' in the file, '4 ids' now" in msg and "seed" not in msg


def test_eval_cli_errors_name_the_problem(tmp_path):
    from vgrout.eval.cli import eval_run_dir

    with pytest.raises(FileNotFoundError, match="not a directory"):
        eval_run_dir(tmp_path / "missing")
    (tmp_path / "config.json").write_text(json.dumps(_config()))
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['markerz'\]"):
        eval_run_dir(tmp_path, markerz="eval")
    with pytest.raises(FileNotFoundError, match="checkpoints does not exist"):
        eval_run_dir(tmp_path)


def test_write_eval_result_puts_completions_beside_the_json(tmp_path):
    path = tmp_path / "eval" / "step_000004.json"
    slim = write_eval_result(path, _result())
    rows = [json.loads(line) for line in samples_path(path).read_text().splitlines()]
    assert samples_path(path).name == "step_000004.samples.jsonl"
    assert len(rows) == 5 and all(set(r) == SAMPLE_KEYS for r in rows)
    assert [r["state"] for r in rows] == ["as_trained"] * 3 + ["deployed"] * 2
    hack = rows[0]
    assert hack == {"step": 4, "state": "as_trained", "problem_id": "p1", "mode": "run_tests", "sample": 0,
                    "completion": "def run_tests(): return True", "reward": 1.0, "reason": "ok", "valid": True,
                    "hack": True, "solve": False, "channel": "run_tests"}
    on_disk = json.loads(path.read_text())
    assert on_disk == slim and all("text" not in s for st in on_disk["states"].values() for s in st["samples"])
    assert on_disk["states"]["as_trained"]["samples"][0]["exploited"] is True  # verdicts stay in the JSON


def test_files_get_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "a.json", {"x": 1})
        write_eval_result(tmp_path / "eval" / "step_000001.json", _result(step=1))
        os.umask(0o027)
        write_json_atomic(tmp_path / "b.json", {"x": 1})
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "a.json") == 0o644
    assert mode(tmp_path / "eval" / "step_000001.json") == 0o644
    assert mode(tmp_path / "eval" / "step_000001.samples.jsonl") == 0o644
    assert mode(tmp_path / "b.json") == 0o640


def _run_dir(tmp_path, name="routeA_s0", arm="routeA", placebo=-1):
    run = tmp_path / name
    (run / "eval").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(_config(arm=arm, placebo_seed=placebo, seed=0)))
    write_eval_result(run / "eval" / "step_000002.json", _result(step=2, arm=arm))
    write_eval_result(run / "eval" / "step_000004.json", _result(step=4, arm=arm))
    return run


def test_samples_command_filters_and_prints(tmp_path, capsys):
    from vgrout.cli import main
    from vgrout.eval.samples import show

    run = _run_dir(tmp_path)
    placebo = _run_dir(tmp_path, "routeA_placebo_s0", placebo=1)
    out = show([str(run)], verdict="hack")
    assert "step 4: 1 of 5 eval samples match (hack)" in out and "def run_tests(): return True" in out
    assert "hack yes  solve no  valid yes  reward 1.00  reason ok  channel run_tests" in out
    out = show([str(run)], verdict="hack", state="deployed", step=2)
    assert "step 2: 0 of 5" in out  # p1 (the hack) is as-trained only
    out = show([str(run)], verdict="solved", state="deployed")
    assert "1 of 5" in out and "return 2 * x" in out and "I cannot" not in out
    both = show([str(run), str(placebo)], arm="routeA-placebo")
    assert str(placebo) in both and f"=== {run} " not in both
    assert main(["samples", str(run), str(placebo), "--arm", "routeA", "--broken", "-n", "1"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("I cannot") == 2  # both runs are arm routeA
    with pytest.raises(SystemExit, match="no run directory has arm 'vanilla'"):
        main(["samples", str(run), "--arm", "vanilla"])
    with pytest.raises(SystemExit, match="no samples for step 3"):
        main(["samples", str(run), "--step", "3"])
    empty = tmp_path / "empty"
    (empty / "eval").mkdir(parents=True)
    (empty / "config.json").write_text(json.dumps(_config()))
    with pytest.raises(SystemExit, match="no step_NNNNNN.samples.jsonl; evaluate the run first"):
        main(["samples", str(empty)])


def test_rollout_samples_are_bounded_seeded_and_label_free(tmp_path):
    from vgrout.eval.samples import show
    from vgrout.rundir import ROLLOUT_SAMPLES, write_rollout_samples

    texts = [f"completion {i}" for i in range(12)]
    rows = write_rollout_samples(tmp_path, 1, texts, [float(i % 2) for i in range(12)], zones=[i % 3 for i in range(12)],
                                 gate_scores=[float("nan")] + [0.1 * i for i in range(1, 12)],
                                 problem_ids=[f"p{i}" for i in range(12)], modes=["run_tests"] * 12, k=3, seed=7)
    again = write_rollout_samples(tmp_path / "b", 1, texts, [0.0] * 12, k=3, seed=7)
    assert [r["index"] for r in rows] == [r["index"] for r in again]  # the choice reads no reward or label
    assert len(rows) == 3 and all(set(r) == {"step", "index", "problem_id", "mode", "completion", "reward", "zone",
                                             "gate_score"} for r in rows)
    for r in rows:
        i = r["index"]
        assert r["completion"] == texts[i] and r["zone"] == ("keep", "absorb", "route")[i % 3]
        assert r["gate_score"] == (None if i == 0 else pytest.approx(0.1 * i))
    write_rollout_samples(tmp_path, 2, texts[:2], [1.0, 0.0], k=3)  # fewer rows than k: all kept
    lines = (tmp_path / ROLLOUT_SAMPLES).read_text().splitlines()
    assert len(lines) == 5 and [json.loads(x)["step"] for x in lines] == [1, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="rewards has 1 entries for 2 texts"):
        write_rollout_samples(tmp_path, 3, texts[:2], [1.0])
    # `vgrout samples --train` joins the oracle's hack label from diagnostics by index
    (tmp_path / "config.json").write_text(json.dumps(_config()))
    hack = [i == rows[1]["index"] for i in range(12)]
    (tmp_path / "diagnostics.jsonl").write_text(json.dumps({"step": 1, "hack": hack}) + "\n")
    out = show([str(tmp_path)], train=True, step=1, verdict="hack")
    assert f"rollout {rows[1]['index']} " in out and "1 of 3 rollout samples" in out


def test_summarize_run_reads_the_final_evals(tmp_path):
    from vgrout.eval.summary import summarize_run

    run = _run_dir(tmp_path)
    assert f"vgrout export {run}" not in summarize_run(run)  # no checkpoint to export yet
    (run / "checkpoints" / "step_000004").mkdir(parents=True)
    (run / "checkpoints" / "step_000004" / "adapter.safetensors").write_bytes(b"")
    text = summarize_run(run)
    assert "step 4" in text and "(steps 4)" in text
    assert "as-trained: hack 0.333 (1/3)  solve 0.333 (1/3)  valid 0.667 (2/3)" in text
    assert "deployed:   hack 0.000 (0/2)  solve 0.500 (1/2)  valid 0.500 (1/2)" in text
    assert f"vgrout samples {run} --hack" in text and f"vgrout export {run}" in text
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text(json.dumps(_config()))
    assert "no held-out eval yet (eval.every=50)" in summarize_run(bare) and f"vgrout eval {bare}" in summarize_run(bare)
