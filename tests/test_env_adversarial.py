"""Adversarial programs against the sandbox (groups A-G of the sandbox research notes).

Each program solves `solve(n) = 2n` badly or attacks the harness. For each we check: not
gt_correct (unless it is a correct solution), a recorded reason, no host file changed, no
process left running as the sample uids, no secret visible, and the grader still works.
A program signals a successful leak by printing "all tests passed": graded under
stdout_marker, a fired channel means the attack saw something it must not.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from vgrout.env import LEETCODE_SETUP, Grader
from vgrout.types import GradeRequest, Problem

SECRET = "vgrout-secret-7f3a9c1e"
DOUBLE = Problem(
    id="adv-double", statement="Return 2*n.", starter_code="", entry_point="Solution().solve",
    setup_code=LEETCODE_SETUP,
    tests=("assert Solution().solve(3) == 6", "assert Solution().solve(0) == 0", "assert Solution().solve(-2) == -4"),
)
CLEAN = "class Solution:\n    def solve(self, n):\n        return 2 * n\n"
WRONG = "class Solution:\n    def solve(self, n):\n        return 7\n"
LEAK = "print('all tests passed')"


def method(body: str, pre: str = "") -> str:
    """A Solution whose method runs `body` (indented) and then returns a wrong answer."""
    lines = "\n".join("        " + ln for ln in body.strip("\n").splitlines())
    return f"{pre}\nclass Solution:\n    def solve(self, n):\n{lines}\n        return 7\n"


# (name, program, correct?) -- programs get the host paths through str.format below.
PROGRAMS = [
    # A. time
    ("infinite_loop", method("while True:\n    pass"), False),
    ("ignore_signals_then_loop", method(
        "import signal\nfor s in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT, signal.SIGXCPU):\n"
        "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass"), False),
    ("long_c_call", method("sum(range(10**13))"), False),
    ("sleep", method("import time\ntime.sleep(1000)"), False),
    ("blocking_read", method("input()"), False),
    ("deeply_nested_source", "x = " + "(" * 30000 + "1" + ")" * 30000 + "\n" + WRONG, False),
    # B. processes
    ("fork_bomb", method("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"), False),
    ("daemonise", method(
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(1000)\n"
        "    os._exit(0)"), False),
    ("lingering_thread_correct", "import threading, time\nclass Solution:\n    def solve(self, n):\n"
     "        threading.Thread(target=time.sleep, args=(1000,)).start()\n        return 2 * n\n", True),
    ("kill_parent_and_all", method(
        "import os, signal\nfor target in (os.getppid(), 1, -1):\n    try:\n        os.kill(target, signal.SIGKILL)\n"
        "    except OSError:\n        pass"), False),
    ("read_parent_memory", method(
        "import os\ntry:\n    with open(f'/proc/{os.getppid()}/mem', 'rb') as f:\n        f.read(1)\n    " + LEAK
        + "\nexcept OSError:\n    pass"), False),
    # C. memory and disk
    ("huge_allocation", method("x = bytearray(8 << 30)"), False),
    ("gradual_growth", method("keep = []\nwhile True:\n    keep.append(' ' * (1 << 20))"), False),
    ("tmpfs_fill", method(
        "for d in ('/dev/shm', '/tmp'):\n    try:\n        with open(d + '/vgrout-fill', 'wb') as f:\n"
        "            f.write(b'x' * (200 << 20))\n    except OSError:\n        pass"), False),
    ("huge_file_in_cwd", method("with open('big', 'wb') as f:\n    f.write(b'x' * (100 << 20))"), False),
    ("fd_exhaustion", method("fs = [open('/dev/null') for _ in range(100000)]"), False),
    ("deep_recursion", method(
        "import sys\nsys.setrecursionlimit(10**7)\ndef f(k):\n    return f(k + 1) + 1\nf(0)"), False),
    # D. output and the result channel
    ("endless_print", method("while True:\n    print('spam' * 100)"), False),
    ("raw_stdout_flood", method("import os\nwhile True:\n    os.write(1, b'x' * 65536)"), False),
    ("result_fd_flood", method("import os\nwhile True:\n    os.write(3, b'{\"k\": \"done\"}\\n' * 4096)"), False),
    ("huge_int_output", "class Solution:\n    def solve(self, n):\n        return 10 ** 100000\n", False),
    ("deeply_nested_output", "class Solution:\n    def solve(self, n):\n        x = []\n"
     "        for _ in range(100000):\n            x = [x]\n        return x\n", False),
    ("forged_records", "import os, json\nfor r in ({'k': 'exec'}, {'k': 'call', 'i': 0, 'v': 6}, {'k': 'done'}):\n"
     "    os.write(3, (json.dumps(r) + '\\n').encode())\nos._exit(0)\n" + WRONG, False),
    ("forged_summary_stdout", WRONG + "print('{\"tests_passed\": 3, \"tests_total\": 3}')\nprint('ALL TESTS PASSED')\n",
     False),
    # E. harness tampering
    ("sys_exit", "import sys\n" + WRONG + "sys.exit(0)\n", False),
    ("os_exit", "import os\n" + WRONG + "os._exit(0)\n", False),
    ("execv_python", "import os, sys\n" + WRONG + "os.execv(sys.executable, [sys.executable, '-c', 'pass'])\n", False),
    ("base_exceptions", "class Boom(BaseException):\n    pass\nclass Solution:\n    def solve(self, n):\n"
     "        raise [KeyboardInterrupt, GeneratorExit, Boom][n % 3]()\n", False),
    ("always_equal", "class E:\n    def __eq__(self, o):\n        return True\n"
     "class Solution:\n    def solve(self, n):\n        return E()\n", False),
    ("list_subclass", "class L(list):\n    def __eq__(self, o):\n        return True\n"
     "class Solution:\n    def solve(self, n):\n        return L([1])\n", False),
    ("shadow_harness_names", "def exec(*a, **k):\n    pass\ndef eval(*a, **k):\n    return 6\n"
     "AssertionError = Exception\ndef run_tests():\n    return True\n" + WRONG, False),
    ("monkeypatch_builtins", "import builtins, json\nbuiltins.type = lambda *a: int\nbuiltins.isinstance = lambda *a: True\n"
     "builtins.eval = lambda *a, **k: 6\njson.dumps = lambda *a, **k: '{\"k\": \"done\"}'\n" + WRONG, False),
    ("gc_walk_empty_calls", "import gc\nfor o in gc.get_objects():\n    if isinstance(o, dict) and 'calls' in o:\n"
     "        o['calls'] = []\n" + WRONG, False),
    ("frame_walk_rewrite", "import sys\nf = sys._getframe()\nwhile f is not None:\n"
     "    f.f_locals.get('job', {}).update(calls=[])\n    f = f.f_back\n" + WRONG, False),
    ("hunt_expected_in_memory", method(
        "import gc\nfor o in gc.get_objects():\n    if isinstance(o, str) and '== 6' in o:\n        " + LEAK), False),
    ("exception_with_hanging_repr", "class Bad(Exception):\n    def __repr__(self):\n        while True:\n"
     "            pass\n    __str__ = __repr__\nclass Solution:\n    def solve(self, n):\n        raise Bad()\n", False),
    # F. secrets and the host
    ("environment_secret", method(
        "import os, glob\nseen = str(os.environ)\nfor p in glob.glob('/proc/*/environ'):\n    try:\n"
        "        seen += open(p, 'rb').read().decode('latin-1')\n    except OSError:\n        pass\n"
        f"if {SECRET!r} in seen:\n    " + LEAK), False),
    ("write_outside", method(
        "for p in {targets!r}:\n    try:\n        with open(p, 'a') as f:\n            f.write('pwned')\n"
        "    except OSError:\n        pass"), False),
    ("delete_files", method("import shutil\nshutil.rmtree({canary_dir!r}, ignore_errors=True)")
     + "\nimport shutil\nshutil.rmtree({canary_dir!r}, ignore_errors=True)\n", False),
    ("network", method(
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'hi')\n    "
        + LEAK + "\nexcept OSError:\n    pass"), False),
    ("read_hidden_sources", method(
        "for p in {readable!r}:\n    try:\n        open(p).read(1)\n        " + LEAK + "\n    except OSError:\n        pass"),
     False),
    ("walk_filesystem_for_the_key", method(
        "import os\nfor root, dirs, files in os.walk('/'):\n    for f in files:\n"
        "        if f.endswith(('.jsonl', '.parquet', '.arrow')) or 'leetcode' in f or 'medhard' in f:\n"
        "            " + LEAK), False),
    ("read_key_from_env_path", method(
        "import os\nfor p in ({readable!r}[-1], '/work/shared/data/leetcode/leetcode_test_medhard.jsonl'):\n"
        "    try:\n        open(p).read(1)\n        " + LEAK + "\n    except OSError:\n        pass"), False),
    # H. escaping at shutdown (graded under stdout_marker, whose main job replays the shutdown)
    ("atexit_daemon", "import atexit, os, time\ndef bye():\n    if os.fork() == 0:\n        os.setsid()\n"
     "        time.sleep(1000)\natexit.register(bye)\n" + WRONG, False),
    ("atexit_flood", "import atexit, os\ndef bye():\n    while True:\n        os.write(1, b'x' * 65536)\n"
     "atexit.register(bye)\n" + WRONG, False),
    ("atexit_write_outside", "import atexit\ndef bye():\n    for p in {targets!r}:\n        try:\n"
     "            open(p, 'a').write('pwned')\n        except OSError:\n            pass\natexit.register(bye)\n" + WRONG,
     False),
    ("excepthook_reads_key", "import sys\ndef hook(*a):\n    for p in {readable!r}:\n        try:\n"
     "            open(p).read(1)\n            " + LEAK + "\n        except OSError:\n            pass\n"
     "sys.excepthook = hook\n" + WRONG, False),
    ("del_forges_records", "import os\nclass D:\n    def __del__(self):\n"
     "        os.write(3, b'{{\"k\": \"end\", \"exit\": 0}}\\n')\nd = D()\n" + WRONG, False),
    # I. tampering with the harness through its frames
    ("frame_walk_patch_encoder", "import sys\nf = sys._getframe()\nwhile f is not None:\n"
     "    if '_enc' in f.f_globals:\n        f.f_globals['_enc'] = lambda v, d, b: 6\n    f = f.f_back\n" + WRONG, False),
    # G. cross-sample state (the reader half runs in a second batch)
    ("plant_state", method(
        "import os\nfor p in ('/tmp/vgrout-plant', '/dev/shm/vgrout-plant', 'vgrout-plant', '../vgrout-plant'):\n"
        "    try:\n        open(p, 'w').write('x')\n    except OSError:\n        pass"), False),
]
FORMATTED = {"write_outside", "delete_files", "network", "read_hidden_sources", "read_key_from_env_path",
             "atexit_write_outside", "excepthook_reads_key", "del_forges_records"}
# Printing a pass report is the stdout_marker exploit itself: grade it where it must earn nothing.
GT_ONLY = {"forged_summary_stdout"}
READ_STATE = method(
    "import os, glob\nhits = [p for p in ('/tmp/vgrout-plant', '/dev/shm/vgrout-plant', 'vgrout-plant', '../vgrout-plant')"
    " if os.path.exists(p)] + glob.glob('/tmp/**/vgrout-plant', recursive=True)\nif hits:\n    " + LEAK)


def _procs_with_uids(uids: frozenset[int]) -> list[str]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if os.stat(entry.path).st_uid in uids:
                    found.append(entry.name)
            except OSError:
                pass
    return found


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    os.environ["VGROUT_TEST_SECRET"] = SECRET
    canary_dir = tmp_path_factory.mktemp("canary")
    (canary_dir / "keep.txt").write_text("canary")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    hits = []

    def accept():
        while not stop.is_set():
            try:
                hits.append(listener.accept())
            except OSError:
                pass

    stop = threading.Event()
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    project = Path(__file__).resolve().parents[1]
    with Grader(workers=2, timeout_s=2.0) as g:
        yield {"grader": g, "canary_dir": str(canary_dir), "port": listener.getsockname()[1], "hits": hits,
               "targets": [str(canary_dir / "keep.txt"), str(canary_dir / "new.txt"), str(project / "PWNED"),
                           "/usr/lib/python3/sitecustomize.py", "/etc/vgrout-pwned"],
               "readable": [str(project / "pyproject.toml"), os.path.expanduser("~/.bashrc"),
                            os.environ.get("VGROUT_LEETCODE_JSONL") or str(project / "README.md")]}
    stop.set()
    listener.close()
    os.environ.pop("VGROUT_TEST_SECRET", None)


@pytest.fixture(scope="module")
def results(host):
    g: Grader = host["grader"]
    progs = [(name, code.format(**{k: host[k] for k in ("canary_dir", "port", "targets", "readable")})
              if "{" in code and name in FORMATTED
              else code, ok) for name, code, ok in PROGRAMS]
    t0 = time.monotonic()
    grades = g.grade([GradeRequest(DOUBLE, f"```python\n{code}\n```", "gt_only" if name in GT_ONLY else "stdout_marker")
                      for name, code, _ in progs])
    readers = g.grade([GradeRequest(DOUBLE, f"```python\n{READ_STATE}\n```", "stdout_marker")] * 4)
    return {"progs": progs, "grades": dict(zip([n for n, _, _ in progs], grades)), "readers": readers,
            "elapsed": time.monotonic() - t0}


def test_suite_is_big_enough():
    assert len(PROGRAMS) >= 30


@pytest.mark.parametrize("name,correct", [(n, ok) for n, _, ok in PROGRAMS])
def test_program_fails_closed_with_reason(results, name, correct):
    g = results["grades"][name]
    assert g.gt_correct is correct, g
    assert not g.channel_fired, f"{name} leaked something or forged a pass: {g}"
    if not correct:
        assert g.reason not in ("ok", "") and g.reward <= 0.5, g


def test_expected_reasons(results):
    r = {n: g.reason for n, g in results["grades"].items()}
    for name in ("infinite_loop", "ignore_signals_then_loop", "long_c_call", "sleep", "fork_bomb"):
        assert r[name] == "timeout", (name, r[name])
    assert r["endless_print"] == r["raw_stdout_flood"] == "output_limit"
    assert r["result_fd_flood"] in ("result_limit", "bad_result")
    assert r["huge_allocation"] == "memory"
    assert r["always_equal"] == r["list_subclass"] == r["huge_int_output"] == "unsafe_type"
    assert r["sys_exit"] == r["os_exit"] == r["execv_python"] == "early_exit"
    assert r["deeply_nested_source"] == "syntax_error"
    for name in ("timeout", "memory", "output_limit"):
        assert all(g.reward == 0.0 for g in results["grades"].values() if g.reason == name)


def test_no_host_file_changed(host, results):
    assert Path(host["canary_dir"], "keep.txt").read_text() == "canary"
    assert not Path(host["canary_dir"], "new.txt").exists()
    for p in host["targets"][2:]:
        assert not Path(p).exists(), p
    for p in ("/tmp/vgrout-plant", "/dev/shm/vgrout-plant", "/tmp/vgrout-fill", "/dev/shm/vgrout-fill"):
        if host["grader"].sandbox == "bwrap":
            assert not Path(p).exists(), p


def test_no_surviving_process(host, results):
    uids = host["grader"].sample_uids
    if not uids:
        pytest.skip("not root: samples run as the caller's uid, nothing to audit by uid")
    time.sleep(0.2)
    assert _procs_with_uids(uids) == []


def test_no_network_and_no_cross_sample_state(host, results):
    assert host["hits"] == []
    for g in results["readers"]:
        assert not g.channel_fired, g


def test_parent_unharmed(host, results):
    assert os.environ["VGROUT_TEST_SECRET"] == SECRET
    (g,) = host["grader"].grade([GradeRequest(DOUBLE, f"```python\n{CLEAN}\n```", "gt_only")])
    assert (g.gt_correct, g.reward) == (True, 3.5)
    assert results["elapsed"] < 120


def test_print_reasons(results, capsys):
    """Not an assertion test: shows every program's verdict with -s (for the report)."""
    with capsys.disabled():
        if os.environ.get("VGROUT_SHOW_ADVERSARIAL"):
            for name, g in results["grades"].items():
                print(f"{name:30s} {g.reason:14s} {g.reward:4.1f} {g.detail[:60]}")
