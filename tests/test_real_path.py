"""The real-model path on CPU: a Hugging Face Qwen3 (built locally, random init, a context that
holds LeetCode prompts), real LeetCode rows, the real sandboxed grader, the authored LeetCode
pairs, the `leetcode-4b` preset. Every arm plus the scorda init runs 2 steps with the held-out
eval on 2 problems; one arm checkpoints and resumes; and the CLI command the README gives runs
without an eval_problems override.

A random model almost never earns reward, so each group carries one teacher row: the problem's
canonical solution with its behaviour log-probs under the initial model. The real grader pays
it and not the live rollout, so groups have reward variance and the update, gate and loss run
on LeetCode-length sequences. Skips cleanly without $VGROUT_LEETCODE_JSONL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

LEETCODE = os.environ.get("VGROUT_LEETCODE_JSONL", "")
pytestmark = [pytest.mark.skipif(not LEETCODE or not Path(LEETCODE).is_file(),
                                 reason="VGROUT_LEETCODE_JSONL not set (a LeetCode medhard jsonl)"),
              pytest.mark.slow]  # ~40 s on the 2-core CI machine, most of it the six 2-step runs

N_TRAIN, N_EVAL = 4, 2
STEPS = 2


def fence(code: str) -> str:
    return f"```python\n{code}\n```"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Disjoint train / test jsonl files of real rows, a local Qwen3 that holds them, a teacher pool."""
    from vgrout.env.modes import SYSTEM_PROMPT, render_messages
    from vgrout.env.problems import load_medhard_jsonl
    from vgrout.localqwen import build_local_qwen3
    from vgrout.pairs import load_pairs
    from vgrout.rollout import left_pad, per_token_logps, render_prompt_text
    from vgrout.rollout.tokens import encode_text
    from vgrout.models import load_model
    from vgrout.train.data import TeacherRow, write_teacher_pool

    root = tmp_path_factory.mktemp("real_path")
    lines = [line for line in Path(LEETCODE).read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = sorted(lines, key=lambda s: len(s))[: N_TRAIN + N_EVAL]  # the shortest rows: fewer tests to grade
    (root / "train.jsonl").write_text("\n".join(rows[:N_TRAIN]) + "\n", encoding="utf-8")
    (root / "test.jsonl").write_text("\n".join(rows[N_TRAIN:]) + "\n", encoding="utf-8")
    train = load_medhard_jsonl(root / "train.jsonl")
    test = load_medhard_jsonl(root / "test.jsonl")
    pairs = load_pairs("leetcode", modes=["run_tests"])
    texts = [m["content"] for p in train + test for m in render_messages(p, "run_tests")]
    texts += [p.canonical_solution for p in train + test] + [p.hack + p.clean for p in pairs]
    model_dir = build_local_qwen3(root / "qwen3", texts, shape="tiny", vocab_size=1024)

    model, tok = load_model(str(model_dir), "float32", "cpu")
    pool = []
    for p in train:
        comp = encode_text(tok, fence(p.canonical_solution)) + [tok.eos_token_id]
        for mode in ("run_tests", "gt_only"):  # leetcode-4b shows half the prompts hint-free (gt_only)
            prompt = encode_text(tok, render_prompt_text(tok, render_messages(p, mode, system_prompt=SYSTEM_PROMPT)))
            ids, mask = left_pad([prompt + comp], tok.pad_token_id)
            with torch.no_grad():
                lp = per_token_logps(model, ids, mask, len(comp))[0]
            pool.append(TeacherRow(p.id, mode, tuple(comp), tuple(min(float(x), 0.0) for x in lp), "canonical"))
    n_prompt = max(len(encode_text(tok, render_prompt_text(tok, render_messages(p, "run_tests")))) for p in train)
    write_teacher_pool(pool, root / "teacher.jsonl")
    return {"root": root, "model": model_dir, "train": root / "train.jsonl", "test": root / "test.jsonl",
            "teacher": root / "teacher.jsonl", "ids": ([p.id for p in train], [p.id for p in test]),
            "max_prompt_tokens": n_prompt}


def overrides(world: dict, **extra) -> dict:
    """leetcode-4b shrunk to seconds: 2 prompts x 2 rollouts (one a teacher row), 12 new tokens."""
    base = {"model": str(world["model"]), "device": "cpu", "dtype": "float32", "problems": str(world["train"]),
            "steps": STEPS, "warmup_steps": 0, "prompts_per_step": 2, "group_size": 2, "max_new_tokens": 12,
            "adapter_r": 2, "grader_workers": 1, "micro_batch": 2, "eval_every": STEPS, "eval_n_problems": N_EVAL,
            "checkpoint_every": 1, "refresh_every": 1, "buffer_size": 64, "pair_modes": ("run_tests",),
            "teacher_pool": str(world["teacher"]), "teacher_per_prompt": 1, "teacher_off_step": STEPS, "lr": 1e-3}
    base.update(extra)
    return base


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_prompts_are_real_leetcode_length(world):
    assert world["max_prompt_tokens"] > 300  # whole LeetCode statements, not toy prompts
    assert not set(world["ids"][0]) & set(world["ids"][1])


ARMS = [("vanilla", "gaussian"), ("absorb", "gaussian"), ("routeA", "gaussian"), ("routeV", "gaussian"),
        ("erase", "gaussian"), ("absorb", "scorda")]


@pytest.fixture(scope="module")
def arm_runs(world, tmp_path_factory):
    """Every arm (and absorb + scorda) trained for 2 steps through `train` with the real grader."""
    from vgrout.train.loop import train
    from vgrout.train.config import preset

    out = {}
    env_before = os.environ.get("VGROUT_LEETCODE_JSONL")
    os.environ["VGROUT_LEETCODE_JSONL"] = str(world["test"])  # the preset's eval_problems=leetcode-test
    try:
        for arm, init in ARMS:
            cfg = preset("leetcode-4b").with_overrides(overrides(world, arm=arm, adapter_init=init))
            run_dir = tmp_path_factory.mktemp(f"{arm}_{init}")
            run = train(cfg, run_dir, progress=False)
            out[(arm, init)] = (run, run_dir)
    finally:
        os.environ["VGROUT_LEETCODE_JSONL"] = env_before or ""
    return out


@pytest.mark.parametrize("arm,init", ARMS)
def test_every_arm_trains_and_evaluates_on_held_out_problems(arm_runs, world, arm, init):
    run, run_dir = arm_runs[(arm, init)]
    assert run.step == STEPS
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(STEPS))
    assert all(r["teacher_rows"] == 2 for r in rows)  # one canonical row per group
    assert any(not r.get("skipped") and r["rows_live"] > 0 for r in rows)  # the grader gave variance: an update ran
    assert all(r["reward_mean"] > 0 for r in rows)
    if arm in ("routeA", "routeV"):
        zones = [r["zone_keep"] + r["zone_absorb"] + r["zone_route"] for r in rows if not r.get("skipped")]
        assert all(z == pytest.approx(1.0) for z in zones)
        assert run.gate.direction.device.type == "cpu" and run.gate.buffer.features.dtype == torch.float32
    ev = json.loads((run_dir / "eval" / f"step_{STEPS:06d}.json").read_text())
    assert ev["run"]["problems"] == "leetcode-test"
    assert sorted(p["id"] for p in ev["problems"]) == sorted(world["ids"][1])  # the test split, not training's
    assert ev["states"]["deployed"]["overall"]["n"] == N_EVAL
    assert (run_dir / "checkpoints" / f"step_{STEPS:06d}").is_dir()


def test_checkpoint_and_resume_match_the_uninterrupted_run(arm_runs, world, tmp_path):
    from vgrout.train.loop import train
    from vgrout.train.config import preset

    full, full_dir = arm_runs[("routeA", "gaussian")]
    os.environ["VGROUT_LEETCODE_JSONL"] = str(world["test"])
    cfg = preset("leetcode-4b").with_overrides(overrides(world, arm="routeA"))
    run_dir = tmp_path / "resumed"
    train(cfg, run_dir, progress=False, stop_after=1)
    assert (run_dir / "checkpoints" / "step_000001").is_dir()
    resumed = train(None, run_dir, resume=True, progress=False)
    assert resumed.step == STEPS
    drop = ("time_", "rows_shared_prompt", "rows_plain", "prompt_rows_run")
    a = [{k: v for k, v in r.items() if not k.startswith(drop)} for r in read_jsonl(full_dir / "metrics.jsonl")]
    b = [{k: v for k, v in r.items() if not k.startswith(drop)} for r in read_jsonl(run_dir / "metrics.jsonl")]
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    a_state, b_state = full.adapter.state_dict(), resumed.adapter.state_dict()
    assert a_state.keys() == b_state.keys()
    for name in a_state:
        assert torch.equal(a_state[name], b_state[name]), name


def test_cli_leetcode_4b_runs_without_an_eval_problems_override(world, tmp_path):
    sets = overrides(world, arm="routeA")
    cmd = [sys.executable, "-m", "vgrout", "train", "--preset", "leetcode-4b"]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={','.join(v) if isinstance(v, tuple) else v}"]
    assert "eval_problems" not in sets
    env = dict(os.environ, VGROUT_LEETCODE_JSONL=str(world["test"]))
    r = subprocess.run(cmd + ["--out", str(tmp_path / "cli")], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "cli" / "eval" / f"step_{STEPS:06d}.json").is_file()
    # the same command evaluating on its own training problems stops, naming the ids and the fix
    env["VGROUT_LEETCODE_JSONL"] = str(world["train"])
    r = subprocess.run(cmd + ["--out", str(tmp_path / "cli2")], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    named = re.search(r"share (\d+) id\(s\): ([\d, ]+)\.", r.stderr)
    assert named and int(named[1]) == N_EVAL, r.stderr[-2000:]  # eval_n_problems of the 4 training problems
    assert set(named[2].split(", ")) <= set(world["ids"][0]) and "eval.problems=leetcode-test" in r.stderr
