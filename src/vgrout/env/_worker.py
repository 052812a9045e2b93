"""Sandbox worker: a zygote that forks one child per sample. Stdlib only, never imports vgrout.

The grader starts `python -I -S -c BOOT` (inside bwrap when available) and sends this file's
source over stdin, so the worker never needs the project directory (bwrap hides it). Protocol on
the worker's stdin/stdout: 4-byte big-endian length + JSON, one reply per job.

A job is {setup, code, calls, probe_names, timeout, ...}. The child compiles `code`, execs
`setup` then `code` into one fresh globals dict, optionally reads sentinel attributes, evaluates
each call expression and streams one JSON record per step to fd 3. It never sees expected values:
the grader compares outputs itself. Everything else (time, output caps, process sweep, temp dir
wipe) is enforced here, from outside the child.
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

# ---------------------------------------------------------------- child side (runs user code)

# Captured before any user code runs: the user may monkeypatch builtins/modules afterwards.
_type, _len, _isinstance, _repr, _str = type, len, isinstance, repr, str
_bool, _getattr, _eval, _exec, _compile = bool, getattr, eval, exec, compile
_write, _dumps, _exit, _urandom = os.write, json.dumps, os._exit, os.urandom
_INF = float("inf")
_NoneType = type(None)
_MAX_DEPTH, _MAX_NODES = 64, 200_000


class _Unsafe(Exception):
    pass


def _enc(v, depth, budget):
    """Plain-JSON image of v with exact-type checks; tagged objects keep tuple/set/dict/node types."""
    budget[0] -= 1
    if budget[0] < 0 or depth > _MAX_DEPTH:
        raise _Unsafe("too_big")
    t = _type(v)
    if t is bool or t is str or t is _NoneType:
        return v
    if t is int:
        if v.bit_length() > 14000:
            raise _Unsafe("huge_int")
        return v
    if t is float:
        if v != v or v == _INF or v == -_INF:
            return {"f": _repr(v)}
        return v
    if t is list:
        return [_enc(x, depth + 1, budget) for x in v]
    if t is tuple:
        return {"t": [_enc(x, depth + 1, budget) for x in v]}
    if t is dict:
        return {"d": [[_enc(k, depth + 1, budget), _enc(x, depth + 1, budget)] for k, x in v.items()]}
    if t is set or t is frozenset:
        return {"s" if t is set else "fs": [_enc(x, depth + 1, budget) for x in v]}
    name = t.__name__ if _isinstance(t.__name__, str) else ""
    if name == "ListNode":
        vals, node = [], v
        while node is not None:
            if _type(node).__name__ != "ListNode" or _len(vals) > _MAX_NODES:
                raise _Unsafe("bad_list")
            vals.append(_enc(node.val, depth + 1, budget))
            node = node.next
        return {"ln": vals}
    if name == "TreeNode":
        out, queue, i = [], [v], 0
        while i < _len(queue):
            node = queue[i]
            i += 1
            if node is None:
                out.append(None)
                continue
            if _type(node).__name__ != "TreeNode" or _len(queue) > _MAX_NODES:
                raise _Unsafe("bad_tree")
            out.append(_enc(node.val, depth + 1, budget))
            queue.append(node.left)
            queue.append(node.right)
        while out and out[-1] is None:
            out.pop()
        return {"tn": out}
    raise _Unsafe("unsafe_type")


def _emit(rec):
    data = (_dumps(rec) + "\n").encode()
    while data:
        data = data[_write(3, data):]


def _err_name(e):
    try:
        n = _type(e).__name__
        return n if _isinstance(n, str) else "Exception"
    except BaseException:
        return "Exception"


def _exit_code(e):
    try:
        c = e.code
        return 0 if c is None else (c if _type(c) is int else 1)
    except BaseException:
        return 1


def _canaries():
    seed = int.from_bytes(_urandom(8), "big")

    class _Canary:
        pass

    return (_Canary(), seed | (1 << 70), "\x00canary-%x" % seed, [seed, "\x00"], -seed - 0.5)


def _run_harness(job, base):
    """Runs inside the forked child, after the limits are in place."""
    code = job["code"]
    try:
        solution = _compile(code, "<solution>", "exec")
    except BaseException as e:  # SyntaxError, ValueError (null bytes), RecursionError, MemoryError
        _emit({"k": "compile", "ok": False, "err": _err_name(e)})
        return
    _emit({"k": "compile", "ok": True})
    if base is not None:
        g = base  # the worker's setup namespace; after fork this copy is private to the child
    else:
        g = {"__name__": "__main__", "__builtins__": __builtins__}
        try:
            _exec(_compile(job["setup"], "<setup>", "exec"), g)
        except BaseException as e:
            _emit({"k": "setup", "err": _err_name(e)})
            return
    try:
        _exec(solution, g)
    except SystemExit as e:
        _emit({"k": "exec", "err": "SystemExit", "exit": _exit_code(e)})
        return
    except BaseException as e:
        _emit({"k": "exec", "err": _err_name(e)})
        return
    _emit({"k": "exec"})
    names = job.get("probe_names") or []
    if names:
        found = []
        try:
            cls = g.get("Solution")
            targets = [cls]
            try:
                targets.append(cls())
            except BaseException:
                pass
            for n in names:
                for obj in targets:
                    try:
                        if _bool(_getattr(obj, n)):
                            found.append(n)
                            break
                    except BaseException:
                        pass
        except BaseException:
            pass
        _emit({"k": "probe", "names": found})
    canaries = _canaries()
    for i, src in enumerate(job["calls"]):
        try:
            out = _eval(_compile(src, "<test>", "eval"), g)
        except SystemExit as e:
            _emit({"k": "call", "i": i, "err": "SystemExit", "exit": _exit_code(e)})
            continue
        except BaseException as e:
            _emit({"k": "call", "i": i, "err": _err_name(e)})
            continue
        try:
            _emit({"k": "call", "i": i, "v": _enc(out, 0, [_MAX_NODES])})
        except _Unsafe as e:
            eq_any = False
            for c in canaries:  # an always-equal object equals values no answer can be
                try:
                    if _bool(out == c):
                        eq_any = True
                        break
                except BaseException:
                    pass
            _emit({"k": "call", "i": i, "err": _str(e.args[0]), "eq_any": eq_any})
        except BaseException as e:
            _emit({"k": "call", "i": i, "err": _err_name(e)})
    _emit({"k": "done"})


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
        _run_harness(job, base)
        try:
            sys.stdout.flush()
        except BaseException:
            pass
        _exit(0)
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


def main():
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    cfg = json.loads(_read_exact(stdin, struct.unpack(">I", _read_exact(stdin, 4))[0]))
    if cfg["pidns"] and os.getpid() > 3:
        raise SystemExit("vgrout worker: expected to run inside a private pid namespace")
    if not cfg["pidns"]:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # children (another uid) cannot ptrace or read our memory
    for name in PREIMPORT:
        __import__(name)
    os.makedirs(cfg["base_dir"], mode=0o711, exist_ok=True)
    import gc

    gc.collect()
    gc.freeze()  # keep forked children's copy-on-write pages shared
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
