"""The sandbox: a pool of pre-started worker interpreters that fork one child per sample.

Each worker is a fresh `python -I -S` started by us (never a fork of the caller, so an imported
torch or CUDA context does not matter), running `_harness.py` + `_worker.py`, whose source travels
over stdin. Every worker installs the seccomp filter of `seccomp.py` before its first sample.
With `sandbox="bwrap"` each worker lives in its own bubblewrap jail built on an empty root: only
the interpreter, its stdlib and the shared libraries they load (`jail_mounts`), /dev basics and
a private /tmp; empty network, private pid/ipc/uts namespaces, cleared environment, only the
capabilities needed to drop each sample to a uid of its own. `sandbox="process"` keeps the
per-sample limits and the filter (rlimits, uid, wall clock, output caps, sweep, wiped temp dir)
but has no filesystem, network or pid isolation; `auto` picks bwrap when it works here and
otherwise says once, loudly, what is missing. See docs/env.md.
"""

from __future__ import annotations

import functools
import json
import os
import queue
import random
import shutil
import struct
import subprocess
import sys
import sysconfig
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

from vgrout.env import seccomp

# The harness (child side) and the worker (zygote) travel as one program; see _worker.py.
_WORKER_SOURCE = Path(__file__).with_name("_harness.py").read_text() + Path(__file__).with_name("_worker.py").read_text()
_BOOT = (
    "import sys;b=sys.stdin.buffer;n=int(b.readline());"
    "exec(compile(b.read(n),'vgrout_worker','exec'),{'__name__':'vgrout_worker','__builtins__':__builtins__})"
)
_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER")
_MISSING_WITHOUT_BWRAP = (
    "no filesystem isolation (the sample can read whatever its uid may, data sets included, and "
    "write e.g. /tmp), no network isolation, no pid namespace"
)
_warned_fallback = False


@dataclass(frozen=True)
class SandboxLimits:
    """Per-sample limits. `timeout_s` is wall clock, enforced by the worker from outside the child."""

    timeout_s: float = 5.0
    mem_mb: int = 1024  # RLIMIT_AS
    fsize_mb: int = 16  # RLIMIT_FSIZE: largest file a sample may write
    nproc: int = 32  # RLIMIT_NPROC for the sample's own uid (threads count)
    output_cap: int = 1 << 20  # stdout bytes before the sample is killed ("output_limit")
    result_cap: int = 8 << 20  # result-channel bytes before the sample is killed ("result_limit")


def bwrap_available() -> bool:
    """True when bwrap exists and can build the jail on this host (we need root, see docs/env.md)."""
    if shutil.which("bwrap") is None or os.geteuid() != 0:
        return False
    probe = subprocess.run(
        ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-pid", "--unshare-net", "true"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
    )
    return probe.returncode == 0


def resolve_sandbox(sandbox: str) -> str:
    """Map "auto" to "bwrap" or "process" (warning once, loudly, about what is missing)."""
    global _warned_fallback
    if sandbox not in ("auto", "bwrap", "process"):
        raise ValueError(f"sandbox must be 'auto', 'bwrap' or 'process', got {sandbox!r}")
    if sandbox == "bwrap" and not bwrap_available():
        raise RuntimeError(
            "sandbox='bwrap' but bubblewrap cannot run here (needs the `bwrap` binary and root); "
            "install it with `apt-get install bubblewrap` or pass sandbox='process'"
        )
    if sandbox != "auto":
        return sandbox
    if bwrap_available():
        return "bwrap"
    if not _warned_fallback:
        _warned_fallback = True
        extra = "" if os.geteuid() == 0 else "; not root, so no per-sample uid and no NPROC limit"
        msg = f"vgrout sandbox: bubblewrap unavailable, using sandbox='process': {_MISSING_WITHOUT_BWRAP}{extra}"
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        print(f"WARNING: {msg}", file=sys.stderr)
    return "process"


def _interpreter() -> tuple[str, str]:
    """(real interpreter path, its install prefix): the base interpreter, not a venv shim."""
    exe = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    return exe, os.path.realpath(sys.base_prefix)


def _world_traversable(path: str) -> bool:
    p = Path(path)
    return all(os.stat(q).st_mode & 0o005 == 0o005 for q in [p, *p.parents])


def _expose(path: str, binds: set[str], links: dict[str, str]) -> None:
    """Make `path` resolve inside the jail as it does here: every symlink on the way becomes a
    jail symlink (same target text), and the real file or directory at the end a read-only bind."""
    cur = "/"
    parts = Path(path).parts[1:]
    for i, part in enumerate(parts):
        nxt = os.path.join(cur, part)
        if os.path.islink(nxt):
            target = os.readlink(nxt)
            links[nxt] = target
            _expose(os.path.normpath(os.path.join(cur, target, *parts[i + 1:])), binds, links)
            return
        cur = nxt
    if os.path.exists(cur):
        binds.add(cur)


def _shared_libraries(files: list[str]) -> list[str]:
    """Every shared library (and the ELF interpreter) that `files` load, as `ldd` resolves them."""
    if shutil.which("ldd") is None:
        raise RuntimeError("sandbox='bwrap' needs `ldd` (Debian: libc-bin) to find the interpreter's shared libraries")
    out = subprocess.run(["ldd", *files], capture_output=True, text=True, timeout=120).stdout
    libs = set()
    for line in out.splitlines():
        for word in line.split():
            if word.startswith("/") and not word.endswith(":"):
                libs.add(word)
    return sorted(libs)


@functools.lru_cache(maxsize=None)
def jail_mounts(exe: str) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...], tuple[str, ...]]:
    """What a bwrap sample sees besides /dev and its private /tmp: (read-only binds, symlinks as
    (link, target), emptied directories). Exactly: the interpreter binary, its stdlib (with
    `site-packages` emptied), and the shared libraries the interpreter and the stdlib's extension
    modules load, with the symlinks that lead to them. No home, /etc, /opt, /srv, /var, /usr/bin,
    working trees or data sets."""
    stdlib = {os.path.realpath(sysconfig.get_paths()["stdlib"])}
    shared = sysconfig.get_config_var("DESTSHARED")  # lib-dynload: the stdlib's extension modules
    if shared and os.path.isdir(shared):
        stdlib.add(os.path.realpath(shared))
    dynload = [str(f) for d in stdlib for f in Path(d).glob("*.so")] + [
        str(f) for d in stdlib for f in Path(d, "lib-dynload").glob("*.so")]
    binds: set[str] = set()
    links: dict[str, str] = {}
    for path in [exe, *stdlib, *_shared_libraries([exe, *dynload])]:
        _expose(path, binds, links)
    binds = {b for b in binds if not any(b.startswith(o + "/") for o in binds)}
    links = {k: v for k, v in links.items() if not any(k.startswith(b + "/") for b in binds)}
    empty = tuple(sorted(str(Path(d, "site-packages")) for d in stdlib if Path(d, "site-packages").is_dir()))
    return tuple(sorted(binds)), tuple(sorted(links.items())), empty


def _bwrap_argv(exe: str, prefix: str) -> list[str]:
    binds, links, empty = jail_mounts(exe)
    argv = ["bwrap"]
    parents = {str(q) for p in [*binds, *(link for link, _ in links)] for q in Path(p).parents if str(q) != "/"}
    for d in sorted(parents, key=lambda d: (d.count("/"), d)):  # traversable by the sample's uid
        argv += ["--perms", "0755", "--dir", d]
    for b in binds:
        argv += ["--ro-bind", b, b]
    for link, target in links:
        argv += ["--symlink", target, link]
    for d in empty:
        argv += ["--tmpfs", d]
    argv += ["--dev", "/dev", "--size", str(64 << 20), "--tmpfs", "/tmp", "--size", str(16 << 20),
             "--tmpfs", "/dev/shm", "--remount-ro", "/"]
    argv += ["--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-pid", "--unshare-cgroup-try",
             "--die-with-parent", "--new-session", "--clearenv", "--setenv", "PATH", "/usr/bin:/bin",
             "--chdir", "/tmp", "--cap-drop", "ALL"]
    for cap in _CAPS:
        argv += ["--cap-add", cap]
    return argv + ["--", exe, "-I", "-S", "-B", "-c", _BOOT]


def _pick_uid() -> int:
    """A uid no process on this host uses, so RLIMIT_NPROC and the kill(-1) sweep are ours alone."""
    used = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                used.add(os.stat(entry.path).st_uid)
            except OSError:
                pass
    while True:
        uid = random.randint(200_000, 2_000_000_000)
        if uid not in used:
            return uid


class WorkerError(RuntimeError):
    pass


class _Worker:
    """One worker process and its pipes. Owned by exactly one dispatcher thread."""

    def __init__(self, kind: str, limits: SandboxLimits):
        exe, prefix = _interpreter()
        root = os.geteuid() == 0
        self.base_dir = None
        if kind == "bwrap":
            argv, base = _bwrap_argv(exe, prefix), "/tmp/vgrout"
        else:
            if root and not _world_traversable(sysconfig.get_paths()["stdlib"]):
                exe = shutil.which("python3", path="/usr/bin:/usr/local/bin") or exe
            self.base_dir = tempfile.mkdtemp(prefix="vgrout-sandbox-")
            os.chmod(self.base_dir, 0o711)
            argv, base = [exe, "-I", "-S", "-B", "-c", _BOOT], self.base_dir
        self.uid = _pick_uid() if root else None
        cfg = {"pidns": kind == "bwrap", "seccomp": seccomp.build_filter().hex(), "uid": self.uid, "base_dir": base, "mem_mb": limits.mem_mb,
               "fsize_mb": limits.fsize_mb, "nproc": limits.nproc, "output_cap": limits.output_cap,
               "result_cap": limits.result_cap}
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin"}, cwd="/", start_new_session=True, close_fds=True,
        )
        src = _WORKER_SOURCE.encode()
        cfg_bytes = json.dumps(cfg).encode()
        try:
            self.proc.stdin.write(b"%d\n" % len(src) + src + struct.pack(">I", len(cfg_bytes)) + cfg_bytes)
            self.proc.stdin.flush()
            ready = self._recv(timeout=60.0)
        except Exception as exc:
            self.kill()
            raise WorkerError(f"sandbox worker ({kind}) failed to start: {exc}") from exc
        if "error" in ready:
            self.kill()
            raise WorkerError(f"sandbox worker ({kind}) failed to start: {ready['error']}")

    def _recv(self, timeout: float) -> dict:
        import select

        fd = self.proc.stdout.fileno()
        buf = b""
        need = 4
        header = True
        deadline = _now() + timeout
        while True:
            while len(buf) < need:
                left = deadline - _now()
                if left <= 0 or not select.select([fd], [], [], left)[0]:
                    raise WorkerError("worker did not answer in time")
                chunk = os.read(fd, need - len(buf))
                if not chunk:
                    raise WorkerError(f"worker exited (code {self.proc.poll()})")
                buf += chunk
            if header:
                need, buf, header = struct.unpack(">I", buf)[0], b"", False
            else:
                return json.loads(buf)

    def run(self, job: dict) -> dict:
        data = json.dumps(job).encode()
        self.proc.stdin.write(struct.pack(">I", len(data)) + data)
        self.proc.stdin.flush()
        return self._recv(timeout=job["timeout"] + 30.0)  # outer watchdog on the worker itself

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except Exception:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except Exception:
                pass
        if self.base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def _now() -> float:
    import time

    return time.monotonic()


class WorkerPool:
    """`workers` dispatcher threads, each owning one worker process (restarted when it dies).

    Threads own their worker for their whole life because PDEATHSIG (bwrap --die-with-parent)
    fires when the *thread* that started the process exits.
    """

    def __init__(self, kind: str, workers: int, limits: SandboxLimits):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.kind, self.limits = kind, limits
        self._jobs: queue.Queue = queue.Queue()
        self._threads = []
        self._start_errors: list[BaseException] = []
        self.sample_uids: set[int] = set()  # every uid a sample of this pool ever ran as (for audits)
        started = threading.Barrier(workers + 1)
        for i in range(workers):
            t = threading.Thread(target=self._serve, args=(started,), name=f"vgrout-sandbox-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        started.wait()
        if self._start_errors:
            self.close()
            raise self._start_errors[0]

    def _new_worker(self) -> _Worker:
        worker = _Worker(self.kind, self.limits)
        if worker.uid is not None:
            self.sample_uids.add(worker.uid)
        return worker

    def _serve(self, started: threading.Barrier) -> None:
        worker = None
        try:
            worker = self._new_worker()
        except BaseException as exc:
            self._start_errors.append(exc)
        started.wait()
        if worker is None:
            return
        while True:
            item = self._jobs.get()
            if item is None:
                break
            job, out, idx, done = item
            try:
                if worker is None:
                    worker = self._new_worker()
                out[idx] = worker.run(job)
            except Exception as exc:  # worker died or wedged: fail this sample closed, restart
                out[idx] = {"status": "sandbox_error", "detail": f"{type(exc).__name__}: {exc}"}
                if worker is not None:
                    worker.kill()
                worker = None
            finally:
                done.release()
        if worker is not None:
            worker.kill()

    def run(self, jobs: list[dict]) -> list[dict]:
        """Run jobs in parallel; one reply per job, in order. Never raises for a job's behaviour."""
        if not self._threads:
            raise RuntimeError("the sandbox pool is closed")
        out: list = [None] * len(jobs)
        done = threading.Semaphore(0)
        for i, job in enumerate(jobs):
            self._jobs.put((job, out, i, done))
        for _ in jobs:
            done.acquire()
        return out

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for t in self._threads:
            t.join(timeout=30)
        self._threads = []
