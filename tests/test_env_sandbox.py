"""The jail and the system-call filter: what a sample can see, and which calls it cannot make.

Secrets are planted in host places a sample must not reach (home, the working directory, the
data-set folder, /opt, /srv, /var/tmp, the project's parent); samples try to list and read them.
Every denied system call is made from a sample with ctypes and must fail with EPERM.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import uuid
from pathlib import Path

import pytest

from vgrout.env import LEETCODE_SETUP, Grader, bwrap_available, seccomp
from vgrout.env import oracle
from vgrout.env.grader import _parse_reply
from vgrout.env.sandbox import _interpreter, jail_mounts
from vgrout.types import GradeRequest, Problem

PROJECT = Path(__file__).resolve().parents[1]
PROBE = Problem(id="probe", statement="", starter_code="", entry_point="Solution().probe",
                setup_code=LEETCODE_SETUP, tests=("assert Solution().probe() == 0",))
needs_bwrap = pytest.mark.skipif(not bwrap_available(), reason="bubblewrap cannot run here (needs bwrap and root)")


def probe(body: str) -> str:
    """A completion whose `probe()` runs `body` (which sets `out`) and returns `out`."""
    lines = "\n".join("        " + ln for ln in body.strip("\n").splitlines())
    return f"```python\nclass Solution:\n    def probe(self):\n{lines}\n        return out\n```"


def outputs(grader: Grader, bodies: list[str]) -> list:
    """What each probe returned (decoded from the sandbox's record stream), or the error it raised."""
    jobs = [grader._job(PROBE.setup_code, probe(b).split("\n", 1)[1].rsplit("```", 1)[0], ["Solution().probe()"])
            for b in bodies]
    out = []
    for reply in grader._pool.run(jobs):
        run = _parse_reply(reply)
        calls = [r for r in run.records if r["k"] == "call"]
        if run.status != "exited" or not calls:
            out.append(f"{run.status} {run.detail}".strip())
        else:
            out.append(oracle.decode(calls[0]["v"]) if "v" in calls[0] else calls[0]["err"])
    return out


@pytest.fixture(scope="module")
def grader():
    with Grader(workers=2, timeout_s=10.0) as g:
        yield g


# ------------------------------------------------------------------ item 1: allow-list mounts


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A secret file in each host place; yields {place: path}; removes them afterwards."""
    tag = f"vgrout-secret-{uuid.uuid4().hex[:12]}"
    data_dir = tmp_path_factory.mktemp("dataset")
    places = {
        "home": Path.home(), "cwd": Path.cwd(), "dataset": data_dir, "opt": Path("/opt"), "srv": Path("/srv"),
        "var_tmp": Path("/var/tmp"), "project_parent": PROJECT.parent, "project": PROJECT,
    }
    if os.environ.get("VGROUT_LEETCODE_JSONL"):
        places["leetcode_dir"] = Path(os.environ["VGROUT_LEETCODE_JSONL"]).resolve().parent
    made = {}
    for name, d in places.items():
        path = d / f"{tag}.jsonl"
        try:
            path.write_text('{"gt_answer": ["assert f() == 42"]}\n')
            made[name] = path
        except OSError:
            pass  # a read-only place (the shared data set): the sample still tries to list the folder
    yield {"files": made, "dirs": places, "tag": tag}
    for path in made.values():
        path.unlink(missing_ok=True)


@needs_bwrap
def test_sample_cannot_list_or_read_planted_secrets(grader, planted):
    assert len(planted["files"]) >= 7, planted["files"]
    targets = [str(p) for p in planted["files"].values()]
    if os.environ.get("VGROUT_LEETCODE_JSONL"):
        targets.append(os.environ["VGROUT_LEETCODE_JSONL"])  # the real answer key
    dirs = sorted({str(d) for d in planted["dirs"].values()} | {"/work", "/home", "/etc", "/var", "/usr/bin", "/proc"})
    body = (
        f"import os\nout = {{}}\nfor d in {dirs!r}:\n    try:\n        out[d] = os.listdir(d)\n"
        "    except OSError as e:\n        out[d] = e.errno\n"
        f"for f in {targets!r}:\n    try:\n        out[f] = open(f).read()\n    except OSError as e:\n"
        "        out[f] = e.errno\n"
    )
    (seen,) = outputs(grader, [body])
    binds = jail_mounts(_interpreter()[0])[0]
    for d in dirs:  # only an ancestor of what the jail binds (the prefix under ~) exists at all, and the
        # jail's own fresh tmpfs mounts (a checkout under /tmp plants a file into the host's /tmp)
        if any(b.startswith(d.rstrip("/") + "/") for b in binds) or d.rstrip("/") in ("/tmp", "/dev/shm"):
            assert planted["tag"] not in str(seen[d]), (d, seen[d])
        else:
            assert seen[d] == errno.ENOENT, (d, seen[d])
    for f in targets:
        assert seen[f] == errno.ENOENT, (f, seen[f])


@needs_bwrap
def test_sample_sees_exactly_the_documented_tree(grader):
    binds, links, empty = jail_mounts(_interpreter()[0])
    (top,) = outputs(grader, ["import os\nout = sorted(os.listdir('/'))"])
    expected = {Path(p).parts[1] for p in [*binds, *(k for k, _ in links)]} | {"dev", "tmp"}
    assert set(top) == expected, (top, expected)
    assert not {"home", "work", "etc", "opt", "srv", "var", "proc"} & set(top)
    if empty:
        assert outputs(grader, [f"import os\nout = os.listdir({empty[0]!r})"]) == [[]]  # site-packages emptied
    (dev,) = outputs(grader, ["import os\nout = [os.path.exists('/dev/' + n) for n in ('null', 'urandom', 'zero')]"])
    assert dev == [True, True, True]


@needs_bwrap
def test_jail_mounts_are_the_interpreter_and_its_libraries_only():
    binds, links, empty = jail_mounts(_interpreter()[0])
    exe = _interpreter()[0]
    assert exe in binds
    stdlib = [b for b in binds if os.path.isdir(b)]
    assert stdlib and all(Path(d, "os.py").is_file() or Path(d).name == "lib-dynload" for d in stdlib), stdlib
    for b in binds:  # the interpreter, its stdlib, shared libraries: nothing else
        assert b == exe or b in stdlib or ".so" in Path(b).name, b
    assert not any(b.startswith(("/home", "/work", "/etc", "/opt", "/srv", "/var")) for b in binds)


# ------------------------------------------------------------------ item 2: seccomp

ARCH = seccomp.machine()
DENIED = seccomp.denied_numbers(ARCH)


def syscall_body(nr: int, *args: int) -> str:
    a = ", ".join(str(x) for x in args)
    return (f"import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nr = libc.syscall({nr}{', ' if a else ''}{a})\n"
            "out = [r, ctypes.get_errno()]")


@pytest.fixture(scope="module")
def denied_results(grader):
    names = sorted(DENIED)
    bodies = [syscall_body(DENIED[n], 0, 0, 0, 0, 0) for n in names]
    return dict(zip(names, outputs(grader, bodies)))


@pytest.mark.parametrize("name", sorted(DENIED))
def test_denied_syscall_fails_with_eperm(denied_results, name):
    assert denied_results[name] == [-1, errno.EPERM], (name, denied_results[name])


def test_filter_is_active_and_namespace_clone_is_denied(grader):
    clone_newuser = seccomp.CLONE[ARCH], 0x10000000 | 17, 0, 0, 0, 0  # CLONE_NEWUSER | SIGCHLD
    bodies = [
        "import ctypes\nout = ctypes.CDLL(None).prctl(21, 0, 0, 0, 0)",  # PR_GET_SECCOMP: 2 = filter
        syscall_body(*clone_newuser),
        syscall_body(seccomp.CLONE3, 0, 0),
        # threads (pthread falls back from clone3 to clone) and fork still work
        "import threading, os\nbox = []\nt = threading.Thread(target=box.append, args=(1,))\nt.start(); t.join()\n"
        "pid = os.fork()\nif pid == 0:\n    os._exit(7)\nout = [box, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])]",
    ]
    mode, clone, clone3, ok = outputs(grader, bodies)
    assert mode == 2
    assert clone == [-1, errno.EPERM] and clone3 == [-1, errno.ENOSYS]
    assert ok == [[1], 7]


@pytest.mark.skipif(ARCH != "x86_64", reason="x32 ABI is x86_64 only")
def test_foreign_abi_syscall_kills_the_sample(grader):
    (g,) = grader.grade([GradeRequest(PROBE, probe(syscall_body(0x40000000 | 39)), "gt_only")])  # x32 getpid
    assert (g.gt_correct, g.reward, g.reason) == (False, 0.0, "crash") and "SIGSYS" in g.detail, g


def test_io_uring_setup_is_reachable_without_the_filter():
    """Control: on this host, unfiltered, io_uring_setup(1, NULL) fails with something other
    than EPERM, so the EPERM seen inside the sandbox comes from the filter."""
    disabled = Path("/proc/sys/kernel/io_uring_disabled")
    if disabled.exists() and disabled.read_text().strip() == "2":
        pytest.skip("io_uring is disabled on this host (kernel.io_uring_disabled=2)")
    libc = ctypes.CDLL(None, use_errno=True)
    r = libc.syscall(DENIED["io_uring_setup"], 1, 0)
    assert r == -1 and ctypes.get_errno() != errno.EPERM


def test_process_sandbox_has_the_filter_too():
    with Grader(sandbox="process", workers=1) as g:
        (mode, uring) = outputs(g, ["import ctypes\nout = ctypes.CDLL(None).prctl(21, 0, 0, 0, 0)",
                                    syscall_body(DENIED["io_uring_setup"], 1, 0)])
    assert mode == 2 and uring == [-1, errno.EPERM]


def test_filter_program_shape():
    prog = seccomp.build_filter(ARCH)
    assert len(prog) % 8 == 0 and len(prog) // 8 < 256
    assert seccomp.build_filter("aarch64") != prog
    with pytest.raises(ValueError, match="no seccomp syscall table"):
        seccomp.build_filter("sparc")
