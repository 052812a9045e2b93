"""Independent jobs in a few worker processes (`vgrout study --jobs N`, `vgrout demo --jobs N`).

    tasks (each with .name, .after: the task that must finish first, or None, and optionally .cost)
    -> up to `jobs` spawned worker processes, each running fn(task) one task at a time
    -> on_done(task, result, seconds) in this process, in completion order

Why processes, and spawned ones: a training run is single-threaded torch, two side by side
run nearly as fast as one alone on a 2-CPU machine, and fork() after torch has started its
thread pools is unsafe. Workers live for the whole matrix (importing torch costs seconds).
Failure is loud: the first task that raises stops new launches, the running ones finish (their
work is kept: runs resume), then RunFailed names every failed task with its exception. Ctrl-C
or any other exception here terminates the workers (SIGTERM, which they turn into
KeyboardInterrupt so their `with` blocks close their sandboxes) and joins them: no orphans.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence


class RunFailed(RuntimeError):
    """One or more tasks raised in a worker (or a worker died); the message names them."""


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _worker(conn, fn: Callable[[Any], Any], init: Callable[[], None] | None) -> None:
    """A worker's life: tasks in over `conn`, ("ok", result, s) or ("error", text, s) out; None ends it."""
    import signal
    import traceback

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates us
    signal.signal(signal.SIGTERM, _interrupt)  # terminate() unwinds the task: its Grader closes its sandboxes
    try:
        if init is not None:
            init()
        while True:
            try:
                task = conn.recv()
            except EOFError:
                return
            if task is None:
                return
            t = time.perf_counter()
            try:
                result = fn(task)
            except (Exception, SystemExit) as exc:  # SystemExit: a run refusing another run's directory
                conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}", time.perf_counter() - t))
            else:
                conn.send(("ok", result, time.perf_counter() - t))
    except KeyboardInterrupt:  # terminated by the parent: the task unwound, exit without a traceback
        return


class _Slot:
    """One worker process and the task it runs (None: idle)."""

    def __init__(self, ctx, fn, init) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, fn, init), daemon=True)
        self.proc.start()
        child.close()
        self.task = None
        self.started = 0.0

    def stop(self, timeout: float = 30.0) -> None:
        """End the worker: idle ones are asked, busy ones terminated; killed if it does not exit in time."""
        if self.proc.is_alive():
            if self.task is None:
                try:
                    self.conn.send(None)
                except (BrokenPipeError, OSError):
                    pass
            else:
                self.proc.terminate()
            self.proc.join(timeout)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join()
        self.conn.close()


def critical_path(tasks: Sequence[Any]) -> dict[str, float]:
    """Each task's own cost (its .cost, default 1) plus the longest chain of tasks waiting on it:
    launching the largest first keeps the last worker from finishing long after the others
    (a prefix goes before its branches, a long run before short ones)."""
    children: dict[str, list[Any]] = {}
    for t in tasks:
        if t.after is not None:
            children.setdefault(t.after, []).append(t)
    memo: dict[str, float] = {}

    def prio(t) -> float:
        if t.name not in memo:
            memo[t.name] = float(getattr(t, "cost", 1.0)) + max((prio(c) for c in children.get(t.name, ())), default=0.0)
        return memo[t.name]

    return {t.name: prio(t) for t in tasks}


PARTITION_MAX = 1 << 16  # assignments (workers ** tasks) searched exhaustively at most; more: longest first


def balanced_assignment(costs: Sequence[float], loads: Sequence[float]) -> list[int] | None:
    """The worker for each task (`costs`) that finishes them all soonest, given the work the
    workers have left (`loads`, in the same units): an exhaustive branch-and-bound search, largest
    task first (None when more than PARTITION_MAX assignments). Why: longest-first alone can
    leave one worker running the last short runs by itself (three equal runs on two workers),
    one worker idle for a whole run at the end of a matrix."""
    n, w = len(costs), len(loads)
    if w ** n > PARTITION_MAX:
        return None
    order = sorted(range(n), key=lambda i: -costs[i])
    best: list = [float("inf"), None]
    assign = [0] * n
    load = list(loads)

    def place(k: int) -> None:
        top = max(load)
        if top >= best[0]:
            return
        if k == n:
            best[0], best[1] = top, assign.copy()
            return
        i, tried = order[k], set()
        for j in range(w):
            if load[j] in tried:  # an equally loaded worker: the same subtree
                continue
            tried.add(load[j])
            load[j] += costs[i]
            assign[i] = j
            place(k + 1)
            load[j] -= costs[i]

    place(0)
    return best[1]


def next_task(pending: Sequence[Any], ready: Sequence[Any], priority: dict[str, float], loads: list[float],
              slot: int) -> Any:
    """The task the free worker `slot` starts: the largest ready task of its share in the balanced
    assignment of everything pending (`balanced_assignment`); the longest chain of work first
    (critical path) while a pending task still heads a chain (a prefix before its branches) or
    when the search is too large."""
    lpt = min(ready, key=lambda t: (-priority[t.name], pending.index(t)))
    cost = {t.name: float(getattr(t, "cost", 1.0)) for t in pending}
    if any(priority[t.name] > cost[t.name] + 0.05 for t in pending):  # waiting branches: start their head
        return lpt
    assign = balanced_assignment([cost[t.name] for t in pending], loads)
    mine = [t for t, j in zip(pending, assign or ()) if j == slot and t in ready]
    return min(mine, key=lambda t: (-priority[t.name], pending.index(t))) if mine else lpt


def run_tasks(tasks: Sequence[Any], fn: Callable[[Any], Any], *, jobs: int, on_done: Callable[[Any, Any, float], None],
              init: Callable[[], None] | None = None, inline: Callable[[Any], bool] = lambda task: False) -> None:
    """Run fn(task) for every task, `jobs` at a time in spawned workers, a task only after its .after;
    fn and init must be picklable (module-level functions or functools.partial of them). `inline(task)`
    true: run it here instead (a finished run: reused in milliseconds, no worker needed)."""
    import multiprocessing
    from multiprocessing.connection import wait

    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"task names must be unique: {names}")
    missing = [t.after for t in tasks if t.after is not None and t.after not in names]
    if missing:
        raise ValueError(f"tasks wait for unknown tasks {missing}")
    priority = critical_path(tasks)
    pending = list(tasks)
    finished: set[str] = set()
    failed: list[str] = []
    ctx = multiprocessing.get_context("spawn")
    slots: list[_Slot] = []
    spent = [0.0, 0.0]  # seconds and cost units of the tasks finished in workers: their ratio prices a unit
    checked: set[str] = set()  # ready tasks asked `inline` once (nothing else runs a pending task, so the answer holds)

    def remaining(s: _Slot) -> float:
        """The work a worker has left, in cost units (its task's cost less the part its time has paid)."""
        if s.task is None:
            return 0.0
        cost = float(getattr(s.task, "cost", 1.0))
        if not spent[1] or not spent[0]:
            return cost
        return max(0.0, cost - (time.perf_counter() - s.started) * spent[1] / spent[0])

    try:
        while True:
            while not failed:  # launch: finished units here, then the free worker's share of a balanced plan
                ready = [t for t in pending if t.after is None or t.after in finished]
                task = None
                for t in ready:  # a finished unit is reused here, in milliseconds, not in a worker
                    if t.name not in checked:
                        checked.add(t.name)
                        if inline(t):
                            task = t
                            break
                if task is not None:
                    pending.remove(task)
                    t0 = time.perf_counter()
                    on_done(task, fn(task), time.perf_counter() - t0)
                    finished.add(task.name)
                    continue
                if not ready:
                    break
                slot = next((s for s in slots if s.task is None), None)
                if slot is None and len(slots) < jobs:
                    slot = _Slot(ctx, fn, init)
                    slots.append(slot)
                if slot is None:
                    break
                loads = [remaining(s) for s in slots] + [0.0] * (jobs - len(slots))  # the free slot's is 0
                task = next_task(pending, ready, priority, loads, slots.index(slot))
                pending.remove(task)
                slot.conn.send(task)
                slot.task, slot.started = task, time.perf_counter()
            busy = [s for s in slots if s.task is not None]
            if not busy:
                break
            wait([s.conn for s in busy] + [s.proc.sentinel for s in busy])
            for s in busy:
                task = s.task
                if s.conn.poll():
                    try:
                        status, payload, seconds = s.conn.recv()
                    except EOFError:
                        status, payload, seconds = "error", f"its worker exited (code {s.proc.exitcode})", 0.0
                elif not s.proc.is_alive():
                    status, payload, seconds = "error", f"its worker died (exit code {s.proc.exitcode})", 0.0
                else:
                    continue
                s.task = None
                if status == "ok":
                    finished.add(task.name)
                    spent[0] += seconds
                    spent[1] += float(getattr(task, "cost", 1.0))
                    on_done(task, payload, seconds)
                else:
                    failed.append(f"{task.name}: {payload}")
                    print(f"  {task.name}: FAILED after {seconds:.0f} s; no new runs start "
                          f"({len([b for b in slots if b.task is not None])} still running)\n{payload}", flush=True)
                if not s.proc.is_alive():
                    s.stop()
                    slots.remove(s)
    finally:
        for s in slots:
            s.stop()
    if failed:
        first = [f.split("\nTraceback", 1)[0] for f in failed]
        raise RunFailed(f"{len(failed)} run(s) failed: " + "; ".join(first)
                        + (f"; {len(pending)} not started" if pending else ""))


__all__ = ["RunFailed", "run_tasks"]
