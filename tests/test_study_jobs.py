"""`vgrout study/demo --jobs N`: runs in worker processes give exactly the jobs=1 results, a failing run
stops the matrix and is named, a finished matrix starts no worker, Ctrl-C leaves no worker behind.

Real runs on the tiny toy world (smoke preset, 2 steps, 4 held-out problems)."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
import types
from pathlib import Path

import pytest
import torch
from _tasks import sleep_task as _sleep  # light: what spawned workers import
from safetensors.torch import load_file

import vgrout.jobs as jobs
from vgrout.jobs import RunFailed, run_tasks
from vgrout.study import run_is_finished, run_matrix
from vgrout.train.config import preset

TINY = {"steps": "2", "eval.every": "1", "eval.n_problems": "4", "max_new_tokens": "12"}
TIMING = ("created", "run_dir", "checkpoint")  # wall-clock and path fields: the only ones allowed to differ


def _strip(o, root: str):
    """A json value without its timing fields, with `root` (the matrix's --out) made relative."""
    if isinstance(o, dict):
        return {k: _strip(v, root) for k, v in o.items() if not k.startswith("time") and k not in TIMING}
    if isinstance(o, list):
        return [_strip(v, root) for v in o]
    return o.replace(root, "OUT") if isinstance(o, str) else o


def _outputs(out: Path) -> dict:
    """Every eval file, metrics row, relearning summary and adapter tensor under `out`, by relative path."""
    got = {}
    for f in sorted(out.rglob("*")):
        rel = str(f.relative_to(out))
        if f.name == "adapter.safetensors":
            got[rel] = load_file(f)
        elif f.suffix == ".jsonl" and f.name in ("metrics.jsonl", "curve.jsonl"):
            got[rel] = [_strip(json.loads(line), str(out)) for line in f.read_text().splitlines()]
        elif f.match("eval/step_*.json") or f.name in ("relearn.json", "start.json", "config.json"):
            got[rel] = _strip(json.loads(f.read_text()), str(out))
    return got


def test_the_matrixs_shared_grade_store_changes_no_run(tmp_path):
    """Runs that read each other's grades from the matrix's store train bit for bit as a run alone."""
    from vgrout.env.dedup import GradeStore
    from vgrout.train.loop import train

    base = preset("smoke").with_overrides(TINY)
    run_matrix(tmp_path / "m", base, ("vanilla", "routeA"), (0,), jobs=1)
    with GradeStore(tmp_path / "m" / "grades.sqlite") as store:
        assert len(store) > 0
    train(base.with_overrides({"arm": "routeA", "seed": "0"}), tmp_path / "alone" / "routeA_s0", progress=False)
    a, b = _outputs(tmp_path / "m" / "routeA_s0"), _outputs(tmp_path / "alone" / "routeA_s0")
    assert sorted(a) == sorted(b) and any(k.endswith("metrics.jsonl") for k in a)
    for k in a:
        if k.endswith(".safetensors"):
            assert all(torch.equal(a[k][t], b[k][t]) for t in a[k]), k
        else:
            assert a[k] == b[k], k


@pytest.mark.slow  # ~35 s: two 4-run matrices with a prefix per seed and relearning attacks
def test_jobs2_gives_the_jobs1_results_bitwise_and_reuses_finished_runs(tmp_path, capsys, monkeypatch):
    base = preset("smoke").with_overrides(TINY)
    kw = dict(fork_at=1, relearn_steps=1, relearn_n_problems=4)
    one = run_matrix(tmp_path / "j1", base, ("vanilla", "routeA"), (0, 1), jobs=1, **kw)
    capsys.readouterr()
    two = run_matrix(tmp_path / "j2", base, ("vanilla", "routeA"), (0, 1), jobs=2, **kw)
    log = capsys.readouterr().out
    names = ["vanilla_s0", "routeA_s0", "vanilla_s1", "routeA_s1"]
    assert [d.name for d in one] == [d.name for d in two] == names  # the report's (seed, arm) order
    for seed in (0, 1):  # a branch is logged (finished) only after its seed's prefix
        assert log.index(f"prefix_s{seed} (vanilla to step 1): trained") < log.index(f"routeA_s{seed}: trained")
    assert log.count(": trained") == 6 and log.count("relearn from") == 6
    a, b = _outputs(tmp_path / "j1"), _outputs(tmp_path / "j2")
    assert sorted(a) == sorted(b) and any("relearn/base/eval" in k for k in a)
    for k in a:
        if k.endswith(".safetensors"):
            assert a[k].keys() == b[k].keys() and all(torch.equal(a[k][t], b[k][t]) for t in a[k]), k
        else:
            assert a[k] == b[k], k
    assert all(a[k] for k in a if k.endswith("metrics.jsonl"))  # every run logged its steps: real rows compared

    # a finished matrix: every unit reused in this process, no worker started
    monkeypatch.setattr(jobs, "_Slot", lambda *a: pytest.fail("a worker started for a finished matrix"))
    assert run_matrix(tmp_path / "j2", base, ("vanilla", "routeA"), (0, 1), jobs=2, **kw) == two
    again = capsys.readouterr().out
    assert again.count(": cached") == 6 and ": trained" not in again and ": resumed" not in again


def test_a_failing_run_stops_new_launches_and_is_named(tmp_path, capsys):
    out = tmp_path / "m"
    (out / "routeA_s0").mkdir(parents=True)
    (out / "routeA_s0" / "config.json").write_text('{"another": "run"}')  # train_one refuses this directory
    base = preset("smoke").with_overrides(TINY)
    with pytest.raises(RunFailed, match=r"routeA_s0: ValueError: .*another config.*1 not started"):
        run_matrix(out, base, ("routeA", "vanilla", "absorb"), (0,), jobs=2)
    assert "routeA_s0: FAILED" in capsys.readouterr().out
    assert run_is_finished(out / "absorb_s0", 2)  # the run already running finished: its work is kept
    assert not (out / "vanilla_s0").exists()  # nothing new started after the failure (vanilla: absorb's twin)
    assert not multiprocessing.active_children()


def test_a_task_waits_for_its_dependency():
    tasks = [types.SimpleNamespace(name="prefix", after=None, s=1.5),
             types.SimpleNamespace(name="branch", after="prefix", s=0.0),
             types.SimpleNamespace(name="other", after=None, s=0.0)]
    order = []
    run_tasks(tasks, _sleep, jobs=2, on_done=lambda t, pid, s: order.append(t.name))
    assert order.index("branch") > order.index("prefix") and sorted(order) == ["branch", "other", "prefix"]
    with pytest.raises(ValueError, match="unknown tasks"):
        run_tasks([types.SimpleNamespace(name="a", after="nope")], _sleep, jobs=2, on_done=print)


def test_the_plan_balances_the_workers_where_longest_first_leaves_one_idle():
    """The demo's 15 runs (their seconds on 2 workers, 2026-12-07): longest-first ends with one worker
    running the last gt_only alone; the balanced plan ends both within a run's noise of the optimum."""
    import itertools

    from vgrout.jobs import balanced_assignment, critical_path, next_task

    for costs, loads in (([5, 4, 3, 3, 3], [0, 0]), ([7, 2, 2, 2, 1], [0, 4]), ([3, 3, 3], [0, 0, 1])):
        best = min(max(loads[j] + sum(c for c, w in zip(costs, a) if w == j) for j in range(len(loads)))
                   for a in itertools.product(range(len(loads)), repeat=len(costs)))
        got = balanced_assignment(costs, loads)
        assert max(loads[j] + sum(c for c, w in zip(costs, got) if w == j) for j in range(len(loads))) == best
    assert balanced_assignment([1.0] * 17, [0.0, 0.0]) is None  # past PARTITION_MAX: longest first instead

    seconds = {"routeA": (95, 97, 96), "placebo": (90, 86, 89), "oracle": (78, 76, 72), "absorb": (74, 83, 80),
               "gt_only": (65, 62, 52)}

    def makespan(balanced: bool) -> float:
        tasks = [types.SimpleNamespace(name=f"{a}_s{s}", after=None, cost=sum(v) / 240, s=v[s])
                 for s in range(3) for a, v in seconds.items()]
        prio, pending, ends = critical_path(tasks), list(tasks), [0.0, 0.0]
        while pending:
            w = min((0, 1), key=lambda j: ends[j])
            loads = [0.0 if j == w else (ends[j] - ends[w]) / 80 for j in (0, 1)]
            task = (next_task(pending, pending, prio, loads, w) if balanced
                    else min(pending, key=lambda t: (-prio[t.name], pending.index(t))))
            pending.remove(task)
            ends[w] += task.s
        return max(ends)

    total = sum(sum(v) for v in seconds.values())
    assert makespan(False) - total / 2 > 20  # longest first: the last gt_only runs alone
    assert makespan(True) - total / 2 < 5


def test_the_longest_chain_of_work_launches_first():
    from vgrout.jobs import critical_path

    T = types.SimpleNamespace
    tasks = [T(name="short", after=None, cost=1.0, s=0.0), T(name="source", after=None, cost=1.0, s=0.0),
             T(name="twin", after="source", cost=0.02, s=0.0), T(name="long", after=None, cost=1.45, s=0.0),
             T(name="prefix", after=None, cost=0.1, s=0.0), T(name="branch", after="prefix", cost=2.0, s=0.0)]
    prio = critical_path(tasks)
    assert prio["prefix"] == pytest.approx(2.1) and prio["source"] == pytest.approx(1.02) and prio["long"] == 1.45
    order = []
    run_tasks(tasks, _sleep, jobs=1, on_done=lambda t, pid, s: order.append(t.name))  # one worker: launch order
    assert order == ["prefix", "branch", "long", "source", "short", "twin"]


def test_ctrl_c_terminates_and_joins_every_worker(tmp_path):
    import signal

    # a suite started in the background (`./dev test &`) inherits SIGINT as ignored: install the default
    # handler, so the signal below raises KeyboardInterrupt as a Ctrl-C in a terminal does
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    tasks = [types.SimpleNamespace(name=f"t{i}", after=None, s=120.0, started=tmp_path) for i in range(3)]
    main = threading.main_thread().ident

    def ctrl_c() -> None:  # Ctrl-C once both workers sleep in a task (or after 30 s)
        deadline = time.perf_counter() + 30
        while len(list(tmp_path.iterdir())) < 2 and time.perf_counter() < deadline:
            time.sleep(0.05)
        signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=ctrl_c, daemon=True).start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_tasks(tasks, _sleep, jobs=2, on_done=lambda *a: None)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert len(list(tmp_path.iterdir())) == 2  # the signal came while two tasks ran, the third never started
    assert not multiprocessing.active_children() and time.perf_counter() - t0 < 60


def test_jobs_below_one_is_refused_before_any_work(tmp_path):
    from vgrout.demo import run_demo
    from vgrout.study import run_study

    with pytest.raises(ValueError, match="--jobs 0 must be >= 1"):
        run_demo(tmp_path / "d", ("vanilla",), (0,), dict(TINY), fresh=False, jobs=0)
    with pytest.raises(ValueError, match="--jobs 0 must be >= 1"):
        run_study(tmp_path / "s", "smoke", ("vanilla",), (0,), dict(TINY), jobs=0)
    assert not (tmp_path / "d").exists() and not (tmp_path / "s").exists()


def test_a_finished_run_is_reused_across_new_config_fields_and_refused_with_another_config(tmp_path, capsys):
    """A run written before a Config field existed (its config.json lacks the key; the default
    reproduces the old behaviour) is still the same run; a finished run with another config is an
    error with --jobs 2 as with --jobs 1, never silently reused."""
    base = preset("smoke").with_overrides({**TINY, "eval.every": "2"})
    run_matrix(tmp_path, base, ("vanilla",), (0,), jobs=1)
    cfg_file = tmp_path / "vanilla_s0" / "config.json"
    saved = json.loads(cfg_file.read_text())
    del saved["per_block_baseline"]  # as a run written before the field was added
    cfg_file.write_text(json.dumps(saved))
    capsys.readouterr()
    for n in (1, 2):
        run_matrix(tmp_path, base, ("vanilla",), (0,), jobs=n)
        assert "vanilla_s0: cached" in capsys.readouterr().out
    other = base.with_overrides({"lr": str(base.lr * 2)})
    with pytest.raises(ValueError, match="holds a run with another config"):
        run_matrix(tmp_path, other, ("vanilla",), (0,), jobs=1)
    with pytest.raises(RunFailed, match="vanilla_s0: ValueError: .*holds a run with another config"):
        run_matrix(tmp_path, other, ("vanilla",), (0,), jobs=2)
