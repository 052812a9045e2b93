"""Tasks for `vgrout.jobs.run_tasks` tests. A spawned worker imports the module of the function it
runs: this one imports nothing heavy (no torch), so a worker starts in well under a second."""

from __future__ import annotations

import os
import time
from pathlib import Path


def sleep_task(task) -> int:
    """Sleeps task.s seconds; returns the worker's pid. With task.started (a directory), first
    touches a file named after the task there: the test sees the worker is running it."""
    started = getattr(task, "started", None)
    if started is not None:
        (Path(started) / task.name).touch()
    time.sleep(task.s)
    return os.getpid()
