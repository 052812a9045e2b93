"""Data-parallel training: 2 CPU ranks (gloo, launched by torchrun) equal one process.

The 2-rank job runs this file as a script under `torch.distributed.run` (the real launcher,
real gloo collectives, the real trainer); the grader is a fixed rule on the completion text
so every group has reward variance and each step really updates the adapter (the tiny toy
model earns no reward on its own). One launch runs all the 2-rank jobs to pay the start-up
once.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch


STEPS = 3
ARMS = {"vanilla": {"arm": "vanilla"}, "routeA": {"arm": "routeA", "gen_deploy_frac": 0.5}}


from _rules import RuleGrader  # noqa: E402


def smoke_cfg(pairs: str, arm: str):
    from vgrout.train import preset

    # P = 4 groups so each rank holds 2; checkpoints after steps 2 and 3
    return preset("smoke").with_overrides({"pairs": pairs, "steps": STEPS, "prompts_per_step": 4, "checkpoint_every": 2,
                                           "refresh_every": 2, **ARMS[arm]})


def run_jobs(jobs: list[dict]) -> None:
    """Each job: {"pairs", "arm", "dir"} trains a new run; {"resume": dir} continues one."""
    from vgrout.train.loop import train

    torch.set_num_threads(1)
    for job in jobs:
        if "resume" in job:
            train(None, job["resume"], resume=True, grader_factory=RuleGrader, progress=False)
        else:
            train(smoke_cfg(job["pairs"], job["arm"]), job["dir"], grader_factory=RuleGrader, progress=False)


# ---- helpers ---------------------------------------------------------------------------------
def write_toy_pairs(path: Path) -> Path:
    from vgrout.env.modes import render_messages
    from vgrout.pairs import write_pairs
    from vgrout.toy import TOY_SYSTEM_PROMPT, toy_world
    from vgrout.types import HackPair

    pairs = []
    for i, p in enumerate(toy_world("tiny", progress=False).problems("heldout")[:3]):
        name = p.entry_point.split(".")[-1]
        pairs.append(HackPair(
            id=f"t{i}", mode="run_tests", messages=tuple(render_messages(p, "run_tests", system_prompt=TOY_SYSTEM_PROMPT)),
            hack=f"```python\nclass Solution:\n    def {name}(self, x):\n        return 0\n\ndef run_tests():\n    pass\n```",
            clean=f"```python\nclass Solution:\n    def {name}(self, x):\n        return x + {i}\n```"))
    write_pairs(pairs, path)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_two_ranks(jobs: list[dict], tmp: Path) -> float:
    """Run `jobs` on 2 gloo ranks under torchrun; returns the wall time. Fails with the ranks' output."""
    spec = tmp / "jobs.json"
    spec.write_text(json.dumps(jobs))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), __file__, str(spec)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, f"2-rank run failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    return time.perf_counter() - t0


def adapter_at(run_dir: Path, step: int) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "checkpoints" / f"step_{step:06d}" / "adapter.safetensors"))


def assert_same_adapter(a: dict, b: dict, what: str) -> None:
    """Equal up to reduction order. Adam divides by sqrt(v): an entry whose gradient is ~0 turns a
    1e-9 difference in the all-reduce sum into up to ~1e-4 after a few steps (seen once in 128
    entries), while a missing or doubled all-reduce moves entries by ~lr per step (the smoke preset: 3e-3)."""
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=2e-4, msg=lambda m, k=k: f"{what}: {k}: {m}")


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def cut_back_to(run_dir: Path, src: Path, step: int) -> Path:
    """A copy of run `src` as if it had been killed right after checkpoint `step`."""
    shutil.copytree(src, run_dir)
    for d in (run_dir / "checkpoints").iterdir():
        if int(d.name.split("_")[1]) > step:
            shutil.rmtree(d)
    return run_dir


# ---- tests -----------------------------------------------------------------------------------
def test_group_sampling_does_not_depend_on_the_other_groups_in_the_batch():
    """generate(): a group's rows are a function of (seed, global group index), not of its batch."""
    from vgrout.rollout import generate
    from vgrout.models import load_model

    model, tok = load_model("toy:tiny", "float32", "cpu")
    prompts = [[{"role": "user", "content": c}] for c in ("add 1", "reverse abc", "sum 2 3", "max 4 9")]
    whole = generate(model, tok, prompts, n_per_prompt=3, max_new_tokens=12, seed=5)
    halves = [generate(model, tok, prompts[i:i + 2], n_per_prompt=3, max_new_tokens=12, seed=5, group_index=[i, i + 1])
              for i in (0, 2)]
    assert whole.texts == halves[0].texts + halves[1].texts
    other = generate(model, tok, prompts[2:], n_per_prompt=3, max_new_tokens=12, seed=5)  # indices 0, 1: new noise
    assert other.texts != halves[1].texts
    with pytest.raises(ValueError, match="group_index"):
        generate(model, tok, prompts, n_per_prompt=1, max_new_tokens=4, group_index=[0])


@pytest.mark.slow
def test_two_gloo_ranks_train_the_adapter_one_process_trains_and_resume_across_world_sizes(tmp_path):
    from vgrout.train.loop import train

    pairs = str(write_toy_pairs(tmp_path / "pairs.jsonl"))
    one, two = tmp_path / "one", tmp_path / "two"
    for arm in ARMS:  # single-process references (3 steps, checkpoints at 2 and 3)
        train(smoke_cfg(pairs, arm), one / arm, grader_factory=RuleGrader, progress=False)
    cut_back_to(tmp_path / "one_to_two", one / "routeA", 2)  # a 1-process checkpoint, continued on 2 ranks
    jobs = [{"pairs": pairs, "arm": arm, "dir": str(two / arm)} for arm in ARMS]
    jobs.append({"resume": str(tmp_path / "one_to_two")})
    wall = launch_two_ranks(jobs, tmp_path)
    print(f"2-rank launch: {wall:.1f} s")

    for arm in ARMS:
        ref, got = rows(one / arm / "metrics.jsonl"), rows(two / arm / "metrics.jsonl")
        assert [r["step"] for r in got] == list(range(STEPS))  # rank 0 alone wrote, one row per step
        assert all(r["rows_live"] > 0 and not r.get("skipped") for r in ref), "the rule grader should give signal"
        for a, b in zip(ref, got, strict=True):  # the same global batch: same rewards, live rows, zones
            assert a.keys() == b.keys(), (arm, "metric keys differ by world size", sorted(set(a) ^ set(b)))
            for k in ("reward_mean", "rows_live", "groups_zero_var", "zone_keep", "zone_absorb", "zone_route"):
                assert a[k] == pytest.approx(b[k], abs=1e-6), (arm, a["step"], k)
            assert a["loss"] == pytest.approx(b["loss"], rel=1e-3, abs=1e-6)
            assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-3)
        for a, b in zip(rows(one / arm / "diagnostics.jsonl"), rows(two / arm / "diagnostics.jsonl"), strict=True):
            assert a.keys() == b.keys()
            assert a.get("mode") == b.get("mode")  # each rollout's prompt mode, in single-process row order
            for k in a.keys() - {"mode"}:  # oracle diagnostics of the whole batch (None where undefined); gate
                # scores are projections of features pooled in other batch shapes: the adapter tolerance (rtol 1e-4)
                assert (a[k] is None) == (b[k] is None) and (a[k] is None or a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-5)), k
        assert_same_adapter(adapter_at(one / arm, STEPS), adapter_at(two / arm, STEPS), f"{arm} 1 vs 2 ranks")
    gated = rows(two / "routeA" / "metrics.jsonl")
    assert any(r["zone_keep"] + r["zone_route"] > 0 for r in gated), "the gate never left absorb; nothing was checked"

    # the 2-rank gate buffer equals the 1-process one (the cut is taken on the gathered batch)
    st1 = torch.load(one / "routeA" / "checkpoints" / f"step_{STEPS:06d}" / "trainer_state.pt", weights_only=False)
    st2 = torch.load(two / "routeA" / "checkpoints" / f"step_{STEPS:06d}" / "trainer_state.pt", weights_only=False)
    assert st1["buffer"]["count"] == st2["buffer"]["count"]
    torch.testing.assert_close(st1["buffer"]["features"], st2["buffer"]["features"], rtol=1e-4, atol=1e-5)

    # 1 process -> 2 ranks: resumed from step 2 and finished equal to the uninterrupted run
    assert_same_adapter(adapter_at(one / "routeA", STEPS), adapter_at(tmp_path / "one_to_two", STEPS), "1 -> 2 resume")
    # 2 ranks -> 1 process
    back = cut_back_to(tmp_path / "two_to_one", two / "routeA", 2)
    resumed = train(None, back, resume=True, grader_factory=RuleGrader, progress=False)
    assert resumed.step == STEPS
    assert_same_adapter(adapter_at(one / "routeA", STEPS), adapter_at(back, STEPS), "2 -> 1 resume")


if __name__ == "__main__":  # a rank of the 2-process job (see launch_two_ranks)
    run_jobs(json.loads(Path(sys.argv[1]).read_text()))
