"""`python -m vgrout ARGS` run in this process through `vgrout.cli.main(ARGS)`: the same parser and
handlers as the console script, without a fresh interpreter importing torch (~3-5 s) each time."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import traceback


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    """What `subprocess.run([python, "-m", "vgrout", *args], capture_output=True, text=True)` gives.

    Exit statuses and stderr follow the interpreter: SystemExit(int) is that status, SystemExit(msg)
    prints msg to stderr with status 1, and any other exception prints its traceback with status 1.
    Restores what a command may change for the rest of the process: torch's thread count and the
    thread variables `--threads` sets."""
    import torch

    from vgrout.cli import main

    threads = torch.get_num_threads()
    env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:
                if exc.code is None or isinstance(exc.code, int):
                    code = exc.code or 0
                else:
                    print(exc.code, file=sys.stderr)
                    code = 1
            except Exception:  # noqa: BLE001 - as the interpreter reports an uncaught exception
                traceback.print_exc(file=sys.stderr)
                code = 1
    finally:
        torch.set_num_threads(threads)
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return subprocess.CompletedProcess([sys.executable, "-m", "vgrout", *args], code, out.getvalue(), err.getvalue())
