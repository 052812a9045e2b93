"""Sandbox harness: the code that runs inside each forked sample child, around the user's program.

Stdlib only, never imports vgrout. The grader sends this file followed by `_worker.py` as one
source to the worker interpreter (see sandbox.py), so the two share one namespace.

Robust to patching: everything the harness calls after user code has started is captured here,
at worker start, before any user code exists: builtins, `os.write`/`os._exit`, the C string
escaper of `json`, and the methods of builtin types (which no program can replace). Results are
encoded by `_jd`, our own JSON writer, so a program that patches `json.dumps`, `isinstance`,
`print`, `type` or the like changes nothing here. What a program can still do (write to fd 3,
patch this module through `sys.modules['__main__']`, exit) only ever makes the record stream
malformed or incomplete, and the grader fails those closed; no such route yields the expected
values, which never enter the sandbox.

Record stream on fd 3, one JSON object per line, in this order (the grader checks the order):
  compile, [setup] | exec, call 0..n-1, [probe], done, [shut excepthook], [shut atexit],
  [shut finalize], [end]     (the shutdown part may also follow an exec that raised)
The shutdown part (`job["shutdown"]`) replays what a normal interpreter exit would do after the
script (sys.excepthook, atexit handlers, finalizers), so exit status, stdout and files are seen
as an evaluator that runs the script to its end would see them.
"""

import atexit
import gc
import json
import os
import sys

# Captured before any user code runs: the user may monkeypatch builtins/modules afterwards.
# Builtins the harness names directly are rebound as globals of this namespace, so a program that
# assigns `builtins.list = ...` or `builtins.BaseException = ...` changes nothing here.
BaseException, Exception, SystemExit, AssertionError = BaseException, Exception, SystemExit, AssertionError
bool, int, float, str, list, tuple, dict, set, frozenset = bool, int, float, str, list, tuple, dict, set, frozenset
enumerate, isinstance = enumerate, isinstance
_type, _len, _isinstance, _repr, _str = type, len, isinstance, repr, str
_bool, _getattr, _setattr, _eval, _exec, _compile = bool, getattr, setattr, eval, exec, compile
_write, _exit, _urandom = os.write, os._exit, os.urandom
_esc = json.encoder.c_encode_basestring_ascii or json.encoder.py_encode_basestring_ascii
_join, _encode, _startswith = str.join, str.encode, str.startswith
_int_repr, _float_repr, _int_int, _items, _append = int.__repr__, float.__repr__, int.__int__, dict.items, list.append
_setrec, _REC = sys.setrecursionlimit, sys.getrecursionlimit()
_setdigits, _DIGITS = getattr(sys, "set_int_max_str_digits", None), getattr(sys, "get_int_max_str_digits", lambda: 0)()
_sys, _default_excepthook, _run_exitfuncs, _gc_collect = sys, sys.__excepthook__, atexit._run_exitfuncs, gc.collect
_reversed, _list, _ModuleType = reversed, list, type(sys)
_INF = float("inf")
_NoneType = type(None)
_MAX_DEPTH, _MAX_NODES = 64, 200_000
HARNESS_EXIT = 86  # the child's status when the harness ran to its end (0 is the program's own exit)
_SELF = "Solution()."  # calls of this shape keep their instance for the sentinel probe


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
            return {"f": _float_repr(v)}
        return v
    if t is list:
        return [_enc(x, depth + 1, budget) for x in v]
    if t is tuple:
        return {"t": [_enc(x, depth + 1, budget) for x in v]}
    if t is dict:
        return {"d": [[_enc(k, depth + 1, budget), _enc(x, depth + 1, budget)] for k, x in _items(v)]}
    if t is set or t is frozenset:
        return {"s" if t is set else "fs": [_enc(x, depth + 1, budget) for x in v]}
    name = t.__name__ if _type(t.__name__) is str else ""
    if name == "ListNode":
        vals, node = [], v
        while node is not None:
            if _type(node).__name__ != "ListNode" or _len(vals) > _MAX_NODES:
                raise _Unsafe("bad_list")
            _append(vals, _enc(node.val, depth + 1, budget))
            node = node.next
        return {"ln": vals}
    if name == "TreeNode":
        out, queue, i = [], [v], 0
        while i < _len(queue):
            node = queue[i]
            i += 1
            if node is None:
                _append(out, None)
                continue
            if _type(node).__name__ != "TreeNode" or _len(queue) > _MAX_NODES:
                raise _Unsafe("bad_tree")
            _append(out, _enc(node.val, depth + 1, budget))
            _append(queue, node.left)
            _append(queue, node.right)
        while out and out[-1] is None:
            out.pop()
        return {"tn": out}
    raise _Unsafe("unsafe_type")


def _jd(x):
    """JSON text of a plain value (what `_enc` and the harness build), using captured functions only."""
    t = _type(x)
    if t is str:
        return _esc(x)
    if x is None:
        return "null"
    if t is bool:
        return "true" if x else "false"
    if t is int:
        return _int_repr(x)
    if t is float:
        return _float_repr(x)
    if t is list:
        return "[" + _join(",", [_jd(v) for v in x]) + "]"
    if t is dict:
        return "{" + _join(",", [_esc(k) + ":" + _jd(v) for k, v in _items(x)]) + "}"
    raise _Unsafe("unencodable")


def _emit(rec):
    data = _encode(_jd(rec) + "\n")
    while data:
        data = data[_write(3, data):]


def _err_name(e):
    try:
        n = _type(e).__name__
        return n if _type(n) is str else "Exception"
    except BaseException:
        return "Exception"


def _exit_code(e):
    """The exit status CPython gives `SystemExit(code)`: None and False are 0, ints wrap to 8 bits
    (out of C long range: 255), anything else prints and is 1."""
    try:
        c = e.code
        if c is None:
            return 0
        if _isinstance(c, int):
            v = _int_int(c)
            return 255 if not -(1 << 63) <= v < (1 << 63) else v & 0xFF
        return 1
    except BaseException:
        return 1


def _canaries():
    seed = int.from_bytes(_urandom(8), "big")

    class _Canary:
        pass

    return (_Canary(), seed | (1 << 70), "\x00canary-%x" % seed, [seed, "\x00"], -seed - 0.5)


def _restore():
    """Undo interpreter-wide settings a program may have changed that the harness relies on."""
    try:
        _setrec(_REC)
        if _setdigits is not None:
            _setdigits(_DIGITS)
    except BaseException:
        pass


def _call(src, g, keep):
    """Evaluate one test call; with `keep`, a `Solution().f(...)` call keeps its instance."""
    if keep is not None and _startswith(src, _SELF):
        inst = _eval(_compile("Solution()", "<test>", "eval"), g)
        _append(keep, inst)
        return _eval(_compile("_vgrout_self" + src[_len(_SELF) - 1:], "<test>", "eval"), g, {"_vgrout_self": inst})
    return _eval(_compile(src, "<test>", "eval"), g)


def _probe(g, names, kept):
    """Sentinel names that are truthy on the class, a fresh instance or an instance the calls used."""
    found = []
    try:
        cls = g.get("Solution")
        targets = [cls]
        try:
            _append(targets, cls())
        except BaseException:
            pass
        targets += kept
        for n in names:
            for obj in targets:
                try:
                    if _bool(_getattr(obj, n)):
                        _append(found, n)
                        break
                except BaseException:
                    pass
    except BaseException:
        pass
    return found


def _run_tests_stub(g, stub):
    """The run_tests channel: the disclosed name as it resolves after the program ran (module
    global, else a builtin, else a `Solution` attribute), called with the entry method replaced
    by one that returns 0 (on a stub `Solution` when the program defines none). Returning
    normally means the test function checks nothing."""
    method, name = stub["method"], stub["name"]

    def _zero(self, *args, **kwargs):
        return 0

    if "Solution" not in g:  # a bare test function: give it the stub class to call
        g["Solution"] = _type("Solution", (), {})
    cls = g.get("Solution")
    b = g.get("__builtins__")
    builtin_names = b if _type(b) is dict else _getattr(b, "__dict__", {})
    try:
        _setattr(cls, method, _zero)
        if _getattr(cls, method) is not _zero:
            raise _Unsafe("stub")
    except BaseException:
        _emit({"k": "call", "i": 0, "err": "stub_failed"})
        return
    try:
        if name in g:
            g[name]()
        elif name in builtin_names:
            builtin_names[name]()
        else:
            _getattr(cls(), name)()
    except SystemExit as e:
        _emit({"k": "call", "i": 0, "err": "SystemExit", "exit": _exit_code(e)})
        return
    except BaseException as e:
        _emit({"k": "call", "i": 0, "err": _err_name(e)})
        return
    _emit({"k": "call", "i": 0, "v": 0})


def _run_harness(job, base):
    """Runs inside the forked child, after the limits are in place. Returns (globals, how the
    main phase ended: "ok", "raised" or "exit"), or None when there is nothing to shut down."""
    code = job["code"]
    try:
        solution = _compile(code, "<solution>", "exec")
    except BaseException as e:  # SyntaxError, ValueError (null bytes), RecursionError, MemoryError
        _emit({"k": "compile", "ok": False, "err": _err_name(e)})
        return None
    _emit({"k": "compile", "ok": True})
    if base is not None:
        g = base  # the worker's setup namespace; after fork this copy is private to the child
    else:
        g = {"__name__": "__main__", "__builtins__": __builtins__}
        try:
            _exec(_compile(job["setup"], "<setup>", "exec"), g)
        except BaseException as e:
            _emit({"k": "setup", "err": _err_name(e)})
            return None
    try:
        _exec(solution, g)
    except SystemExit as e:
        _emit({"k": "exec", "err": "SystemExit", "exit": _exit_code(e)})
        return g, "exit"
    except BaseException as e:
        _emit({"k": "exec", "err": _err_name(e)})
        return g, "raised"
    _emit({"k": "exec"})
    if job.get("stub"):
        _run_tests_stub(g, job["stub"])
        _emit({"k": "done"})
        return None
    names = job.get("probe_names") or []
    kept = [] if names else None
    canaries = _canaries()
    for i, src in enumerate(job["calls"]):
        try:
            out = _call(src, g, kept)
        except SystemExit as e:
            _emit({"k": "call", "i": i, "err": "SystemExit", "exit": _exit_code(e)})
            continue
        except BaseException as e:
            _emit({"k": "call", "i": i, "err": _err_name(e)})
            continue
        _restore()
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
        out = None
    if names:
        _emit({"k": "probe", "names": _probe(g, names, kept)})
    kept = None
    _emit({"k": "done"})
    return g, "ok"


def _finalize(g):
    """Drop what the program left in its globals, newest first and modules last (modules stay
    alive in sys.modules until the very end there too), so `__del__` methods and unclosed
    files run and flush with the names they use still bound. As in CPython's finalization,
    `open` is gone from the builtins and imports fail by then (sys.modules emptied)."""
    b = g.get("__builtins__")
    names = b if _type(b) is dict else _getattr(b, "__dict__", None)
    if _type(names) is dict:
        names.pop("open", None)
    _sys.modules.clear()
    _sys.meta_path = None
    for k in _reversed(_list(g)):
        if k != "__builtins__" and _type(g[k]) is not _ModuleType:
            del g[k]
    _gc_collect()
    g.clear()
    _gc_collect()


def _shutdown(g, ended):
    """What the interpreter does after the script: sys.excepthook (when the script raised; after
    the calls the harness cannot know whether an assert failed, so it calls the hook as if one
    did: only a failing script can be an exploit), atexit handlers, then finalizers of what the
    program left behind. A hook that exits the process ends it here, as it would there.
    The atexit record carries the status a SystemExit from the excepthook sets, written before
    any later hook runs (CPython ignores a SystemExit raised by an atexit handler or a finalizer)."""
    status = None
    try:
        hook = _sys.excepthook
        if ended != "exit" and hook is not _default_excepthook:
            _emit({"k": "shut", "p": "excepthook"})
            try:
                hook(AssertionError, AssertionError(), None)
            except SystemExit as e:
                status = _exit_code(e)
            except BaseException:
                pass
    except BaseException:
        pass
    _emit({"k": "shut", "p": "atexit", "exit": status})  # written before any later hook can run
    try:
        _run_exitfuncs()
    except BaseException:
        pass
    _emit({"k": "shut", "p": "finalize"})
    try:
        _finalize(g)
    except BaseException:
        pass
    try:
        _sys.stdout.flush()
    except BaseException:
        pass
    _emit({"k": "end"})
