"""Sandbox worker: a zygote that forks one child per sample. Stdlib only, never imports vgrout.

The grader starts `python -I -S -c BOOT` (inside bwrap when available) and sends `_harness.py`
followed by this file over stdin, so the worker never needs the project directory (the jail does
not contain it). Protocol on the worker's stdin/stdout: 4-byte big-endian length + JSON, one
reply per job. Before the first job the worker installs the seccomp filter it was given (see
seccomp.py), so every sample it forks runs under it.

A job is {setup, code, calls, probe_names, stub, shutdown, timeout, ...}. The child compiles
`code`, execs `setup` then `code` into one fresh globals dict, evaluates each call expression,
optionally reads sentinel attributes or calls the run_tests stub, optionally replays the
interpreter's shutdown, and streams one JSON record per step to fd 3 (`_harness.py`). It never
sees expected values: the grader compares outputs itself. Everything else (time, output caps,
process sweep, temp dir wipe) is enforced here, from outside the child.
"""

import ctypes
import errno
import json
import os
import resource
import select
import shutil
import signal
import stat
import struct
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
STDOUT_KEEP = 64 * 1024  # bytes of stdout kept for the stdout_marker detector
FILE_KEEP = 4096  # bytes read from each file left in the sample dir
MAX_FILES = 32

_libc = ctypes.CDLL(None, use_errno=True)
# Pre-import what the LeetCode preamble and typical solutions import, so children start warm.
PREIMPORT = (
    "random", "functools", "collections", "string", "math", "datetime", "typing", "itertools",
    "heapq", "bisect", "operator", "re", "copy", "fractions", "decimal", "statistics", "array",
    "dataclasses", "enum", "cmath", "numbers", "queue", "textwrap", "unicodedata", "json",
)

class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _install_seccomp(program):
    """Install the grader's BPF program on this process (inherited by every child it forks)."""
    if not program or len(program) % 8:
        raise RuntimeError("no valid seccomp program")
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.addressof(buf))
    ul = ctypes.c_ulong
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, ul(1), ul(0), ul(0), ul(0)) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
    if _libc.prctl(PR_SET_SECCOMP, ul(SECCOMP_MODE_FILTER), ctypes.byref(fprog), ul(0), ul(0)) != 0:
        raise OSError(ctypes.get_errno(), "the kernel refused the seccomp filter")


def _child(job, cfg, sample_dir, out_w, res_w, base):
    try:
        os.setsid()
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        null = os.open("/dev/null", os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(null, 2)
        os.dup2(res_w, 3)
        os.closerange(4, 65536)
        os.chdir(sample_dir)
        t = job["timeout"]
        mem = cfg["mem_mb"] << 20
        for lim, val in (
            (resource.RLIMIT_AS, (mem, mem)),
            (resource.RLIMIT_CPU, (int(t) + 1, int(t) + 2)),
            (resource.RLIMIT_FSIZE, (cfg["fsize_mb"] << 20,) * 2),
            (resource.RLIMIT_NOFILE, (64, 64)),
            (resource.RLIMIT_NPROC, (cfg["nproc"],) * 2),
            (resource.RLIMIT_CORE, (0, 0)),
            (resource.RLIMIT_STACK, (64 << 20, 64 << 20)),
        ):
            resource.setrlimit(lim, val)
        uid = cfg["uid"]
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            _exit(121)
        os.umask(0o077)
        sys.stdout.reconfigure(line_buffering=True, write_through=True)  # survives a kill
        main = _run_harness(job, base)
        if main is not None and job.get("shutdown"):
            _shutdown(*main)
        try:
            sys.stdout.flush()
        except BaseException:
            pass
        _exit(HARNESS_EXIT)
    except BaseException:
        pass
    _exit(120)  # harness setup failed: the grader treats anything without "done" as a failure


# ---------------------------------------------------------------- worker side (trusted)


def _set_nonblock(fd):
    import fcntl

    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)


def _drain(fd, buf, cap):
    """Read what is available; returns False at EOF. Keeps at most `cap` bytes, counts all."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not chunk:
            return False
        buf[1] += len(chunk)
        if len(buf[0]) < cap:
            buf[0] += chunk[: cap - len(buf[0])]


def _sweep(cfg, child_pgid):
    """Kill every process the sample could have left behind."""
    if cfg["pidns"]:
        try:
            os.kill(-1, signal.SIGKILL)  # whole pid namespace except ourselves and its init
        except ProcessLookupError:
            pass
    elif cfg["uid"] is not None:
        pid = os.fork()  # kill(-1) as the sample uid hits only that uid's processes
        if pid == 0:
            try:
                os.setgid(cfg["uid"])
                os.setuid(cfg["uid"])
                os.kill(-1, signal.SIGKILL)
            except BaseException:
                pass
            os._exit(0)
        os.waitpid(pid, 0)
    else:
        try:
            os.killpg(child_pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    while True:  # reap our own zombies (in a pid namespace, init reaps the rest)
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break


def _list_files(sample_dir):
    files = []
    try:
        entries = sorted(os.listdir(sample_dir))[:MAX_FILES]
    except OSError:
        return files
    for name in entries:
        path = os.path.join(sample_dir, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                files.append([name, os.read(fd, FILE_KEEP).decode("utf-8", "replace")])
        except OSError:
            pass
        finally:
            os.close(fd)
    return files


_SETUP_CACHE = {}


def _setup_namespace(setup):
    """Globals with the problem's (trusted) setup code already run, built once per setup text.

    Children get a copy-on-write copy through fork, so no sample can change what the next one
    sees. None when the setup fails here: the child then runs it itself and reports the error.
    """
    if setup not in _SETUP_CACHE:
        if len(_SETUP_CACHE) >= 64:
            _SETUP_CACHE.clear()
        g = {"__name__": "__main__", "__builtins__": __builtins__}
        try:
            exec(compile(setup, "<setup>", "exec"), g)
        except BaseException:
            g = None
        _SETUP_CACHE[setup] = g
    return _SETUP_CACHE[setup]


def _run_job(job, cfg, counter):
    base = _setup_namespace(job["setup"])
    sample_dir = os.path.join(cfg["base_dir"], "s%d" % counter)
    os.mkdir(sample_dir, 0o700)
    if cfg["uid"] is not None:
        os.chown(sample_dir, cfg["uid"], cfg["uid"])
    out_r, out_w = os.pipe()
    res_r, res_w = os.pipe()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(out_r)
        os.close(res_r)
        _child(job, cfg, sample_dir, out_w, res_w, base)
    os.close(out_w)
    os.close(res_w)
    pidfd = os.pidfd_open(pid)
    for fd in (out_r, res_r):
        _set_nonblock(fd)
    out, res = [b"", 0], [b"", 0]
    deadline = t0 + job["timeout"]
    status, open_fds = None, {out_r, res_r}
    while status is None:
        left = deadline - time.monotonic()
        if left <= 0:
            status = "timeout"
            break
        ready, _, _ = select.select(list(open_fds) + [pidfd], [], [], left)
        for fd in ready:
            if fd == pidfd:
                continue
            buf, cap = (out, STDOUT_KEEP) if fd == out_r else (res, cfg["result_cap"])
            if not _drain(fd, buf, cap):
                open_fds.discard(fd)
        if out[1] > cfg["output_cap"]:
            status = "output_limit"
        elif res[1] > cfg["result_cap"]:
            status = "result_limit"
        elif pidfd in ready:
            _drain(out_r, out, STDOUT_KEEP)  # what the child wrote before exiting; never wait for EOF
            _drain(res_r, res, cfg["result_cap"])
            status = "exited"
    elapsed = time.monotonic() - t0
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _, wstatus = os.waitpid(pid, 0)
    _sweep(cfg, pid)
    files = _list_files(sample_dir) if job.get("list_files") else []
    for fd in (out_r, res_r, pidfd):
        os.close(fd)
    shutil.rmtree(sample_dir, ignore_errors=True)
    if status == "exited" and res[1] > cfg["result_cap"]:
        status = "result_limit"
    reply = {"status": status, "elapsed": elapsed, "files": files}
    if os.WIFEXITED(wstatus):
        reply["returncode"] = os.WEXITSTATUS(wstatus)
    elif os.WIFSIGNALED(wstatus):
        reply["signal"] = os.WTERMSIG(wstatus)
    reply["records"] = res[0].decode("utf-8", "replace")
    reply["stdout"] = out[0].decode("utf-8", "replace")
    return reply


def _read_exact(stream, n):
    data = stream.read(n)
    if data is None or len(data) != n:
        raise EOFError
    return data


def _start(cfg):
    """Everything before the first job; a failure here is reported to the grader, not swallowed."""
    if cfg["pidns"] and os.getpid() > 3:
        raise RuntimeError("expected to run inside a private pid namespace")
    if not cfg["pidns"]:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # children (another uid) cannot ptrace or read our memory
    _install_seccomp(bytes.fromhex(cfg["seccomp"]))
    for name in PREIMPORT:
        __import__(name)
    os.makedirs(cfg["base_dir"], mode=0o711, exist_ok=True)
    import gc

    gc.collect()
    gc.freeze()  # keep forked children's copy-on-write pages shared


def main():
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    cfg = json.loads(_read_exact(stdin, struct.unpack(">I", _read_exact(stdin, 4))[0]))
    try:
        _start(cfg)
    except BaseException as e:
        msg = json.dumps({"error": "%s: %s" % (type(e).__name__, e)}).encode()
        stdout.write(struct.pack(">I", len(msg)) + msg)
        stdout.flush()
        return
    counter = 0
    stdout.write(struct.pack(">I", 2) + b"{}")  # ready
    stdout.flush()
    while True:
        try:
            n = struct.unpack(">I", _read_exact(stdin, 4))[0]
            job = json.loads(_read_exact(stdin, n))
        except EOFError:
            return
        counter += 1
        try:
            reply = _run_job(job, cfg, counter)
        except Exception as e:  # a worker-side fault: the grader fails the sample closed
            reply = {"status": "sandbox_error", "detail": "%s: %s" % (type(e).__name__, e)}
        data = json.dumps(reply).encode()
        stdout.write(struct.pack(">I", len(data)) + data)
        stdout.flush()


if __name__ == "__main__" or __name__ == "vgrout_worker":
    main()
