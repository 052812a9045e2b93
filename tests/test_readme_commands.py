"""Every command in the README's Commands section, run in order on a tiny run.

The block is parsed from README.md, so a command added there is run here. Substitutions keep
it to seconds and self-contained: the `smoke` preset (tiny toy world) for `toy`, a tiny
world for `toy build`, a temporary `runs/`, the CLI's `main(argv)` in this process for
`.venv/bin/vgrout` (the console script's parser and handlers, without a fresh interpreter
importing torch for each command), this interpreter for `torchrun` (a subprocess: its two ranks
need their own processes), the run's own eval samples as `rows.jsonl` and its held-out problems
as `problems.jsonl`. Also checks that `vgrout eval RUN` reuses the trainer's eval files (its
defaults are the run's settings) and that the keys a run writes are documented.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from _cli import run_cli

ROOT = Path(__file__).resolve().parents[1]
# the tiny run: 2 steps, a checkpoint each step, the trainer's held-out eval at step 2 on 4 problems
SMOKE = ["--preset", "smoke", "--set", "steps=2", "--set", "checkpoint_every=1", "--set", "eval_every=2",
         "--set", "eval_n_problems=4", "--set", "max_new_tokens=16"]


def readme_commands() -> list[str]:
    """The lines of the first ```bash block under '## Commands' in README.md, comments dropped."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Commands", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README.md's Commands section has no ```bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def substitute(line: str, runs: Path, files: dict[str, Path]) -> list[str]:
    """One README line -> the argv that runs it on the tiny setup."""
    argv = shlex.split(line, comments=True)
    if argv[0] == ".venv/bin/vgrout":
        argv = [sys.executable, "-m", "vgrout", *argv[1:]]
    elif argv[0] == "torchrun":
        argv = [sys.executable, "-m", "torch.distributed.run", *argv[1:]]
    else:
        raise AssertionError(f"README command {line!r} starts with an unknown program; teach this test to run it")
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--preset" and argv[i + 1] == "toy":
            out += SMOKE
            i += 2
            continue
        if a.startswith("runs/"):
            a = str(runs / a[len("runs/"):])
            matches = sorted(glob.glob(a)) if "*" in a else [a]
            assert matches, f"{line!r}: {a} matches nothing"
            out += matches
            i += 1
            continue
        out.append(str(files.get(a, a)))
        i += 1
    if out[3:5] == ["toy", "build"]:
        out += ["--config", "tiny", "--no-progress", "--threads", "1"]
    return out


def _medhard_rows(problems) -> str:
    """Problems in the LeetCode medhard row format `vgrout grade --problems` reads."""
    return "".join(json.dumps({"id": p.id, "question": p.statement, "func_name": p.entry_point,
                               "setup_code": p.setup_code, "gt_answer": list(p.tests),
                               "prompt_metadata": {"starter_code": p.starter_code}}) + "\n" for p in problems)


def _documented_keys(doc: str, heading: str) -> set[str]:
    """Metric names in the first column of the table under `heading` in docs/training.md."""
    table = doc.split(heading, 1)[1].split("\n## ", 1)[0]
    keys = set()
    for row in table.splitlines():
        if row.startswith("| ") and not row.startswith("| metric") and not row.startswith("|---"):
            keys |= {k.strip(" `") for k in row.split("|")[1].split("/")}
    return keys


@pytest.mark.slow
def test_every_readme_command_runs_on_a_tiny_run(tmp_path, monkeypatch):
    from vgrout.toy.world import toy_world

    runs = tmp_path / "runs"
    runs.mkdir()
    files = {"rows.jsonl": tmp_path / "rows.jsonl", "problems.jsonl": tmp_path / "problems.jsonl"}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    lines = readme_commands()
    assert any(" samples " in x for x in lines) and any(" export " in x for x in lines)
    monkeypatch.chdir(tmp_path)  # the in-process commands run where the subprocesses did
    run = runs / "routeA_s0"
    trainer_eval_mtime = None
    for line in lines:
        if " grade " in line:  # grade the run's own held-out completions against its held-out problems
            files["rows.jsonl"].write_text((run / "eval" / "step_000002.samples.jsonl").read_text())
            files["problems.jsonl"].write_text(_medhard_rows(toy_world("tiny", progress=False).problems("heldout")))
        argv = substitute(line, runs, files)
        if argv[1:3] == ["-m", "vgrout"]:
            proc = run_cli(argv[3:])
        else:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
        assert proc.returncode == 0, f"{line}\n-> {argv}\n{proc.stderr[-3000:]}"
        assert "Traceback" not in proc.stderr, f"{line}\n{proc.stderr[-3000:]}"
        if argv[3:4] == ["train"] and "--resume" not in argv and trainer_eval_mtime is None:
            trainer_eval_mtime = (run / "eval" / "step_000002.json").stat().st_mtime_ns
        if argv[3:4] == ["eval"]:
            # the run's own settings by default: the trainer's step-2 file is reused, step 1 is added
            assert (run / "eval" / "step_000002.json").stat().st_mtime_ns == trainer_eval_mtime
            assert [json.loads(x)["step"] for x in (run / "eval" / "curve.jsonl").read_text().splitlines()] == [1, 2]
            assert (run / "eval" / "step_000001.samples.jsonl").is_file()
        if argv[3:4] == ["samples"]:
            assert f"=== {run} (routeA, seed 0), step 2:" in proc.stdout
        if argv[3:4] == ["grade"]:
            assert len(proc.stdout.splitlines()) == len(files["rows.jsonl"].read_text().splitlines())
    assert (run / "export" / "adapter_config.json").is_file()
    assert (runs / "report.md").is_file() and (runs / "dp" / "config.json").is_file()

    doc = (ROOT / "docs" / "training.md").read_text()
    for sink, heading in (("metrics.jsonl", "## Metrics"), ("diagnostics.jsonl", "## Diagnostics")):
        written = set().union(*(json.loads(x) for x in (run / sink).read_text().splitlines()))
        missing = written - _documented_keys(doc, heading)
        assert not missing, f"{sink} keys not in docs/training.md's table: {sorted(missing)}"
