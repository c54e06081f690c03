"""The part of the code verifier that runs inside the sandbox. Standard library only.

The host hands this file to the interpreter as source (a small `-c` bootstrap reads it from the
worker's stdin), so the sandbox needs no view of the repository and nothing here may import
distillery. Three roles:

supervisor  one per worker, long-lived. Reads tasks from the host (fd 0), keeps the tests and the
            expected answers, decides every verdict and writes it back (fd 1).
zygote      forked by the supervisor before it has read any task. For each run it clones one fresh
            runner, so a sample pays a fork instead of an interpreter start and inherits nothing
            the supervisor knows.
runner      one per run (one per stdin case, one per call/assert sample). It starts in its own user,
            PID, mount and IPC namespaces with a fresh /tmp, lowers its resource limits, drops every
            capability and executes the solution. It only ever reports *values* (what a function
            returned, what a program printed); it is never asked whether it passed.

A runner is PID 1 of its namespace and a child of the supervisor, which it cannot see: it cannot
signal it, trace it or read its memory. When the runner ends or is killed, every process it
started dies with it (the kernel empties a PID namespace whose init exits). A stdin program runs
in a child of the runner, so that it dies of its own signals as it would anywhere.

Costs that shape the code: a sample is a fork of the zygote, and in a VM each copy-on-write page
fault after a fork costs several microseconds, so the zygote is kept small and warm (see
zygote_main); a wake-up on another CPU costs far more than on the same one, so a worker's
processes share a CPU, and calls a test will make are queued before it runs (planned_calls).
"""

from __future__ import annotations

import ast
import atexit
import builtins
import collections
import ctypes
import fcntl
import gc
import io
import json
import math
import os
import resource
import select
import signal
import socket
import struct
import sys
import time
import traceback
import types

# Imported by the zygote so that a runner finds them loaded: the judge-style import prelude. Each
# module more makes every runner's clone a little slower; anything else is imported on demand.
# (A runner's `random` is reseeded by the module's own after-fork hook.)
PRELOAD = (
    "bisect collections copy datetime functools heapq itertools math operator random re string typing".split()
)

INSIDE_ID = 1000  # the uid/gid a runner has inside its user namespace (never 0: no root semantics)
MAX_FRAME = 1 << 28
STDERR_TAIL = 2000
_HEADER = struct.Struct("<I")

# --- Linux system calls (ctypes) ---------------------------------------------------------------------

CLONE_NEWNS, CLONE_PARENT, CLONE_NEWIPC = 0x00020000, 0x00008000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID = 0x10000000, 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
CAP_SETFCAP = 31
_SYSCALLS = {"x86_64": {"clone": 56, "pivot_root": 155}, "aarch64": {"clone": 220, "pivot_root": 41}}

# Bound once here, in the zygote: a runner that resolved them itself would pay for it in copied pages.
_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_mount = _libc.mount
_mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_capset = _libc.capset
_umount2 = _libc.umount2
# clone() as os.fork() does it: holding the GIL (a PyDLL call does not release it).
_clone = ctypes.PyDLL(None, use_errno=True).syscall
_clone.restype = ctypes.c_long
_before_fork = ctypes.pythonapi.PyOS_BeforeFork
_after_fork_child = ctypes.pythonapi.PyOS_AfterFork_Child
_after_fork_parent = ctypes.pythonapi.PyOS_AfterFork_Parent


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


_CAP_HEADER, _NO_CAPS = _CapHeader(0x20080522, 0), (_CapData * 2)()


def _check(result: int) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def _syscall_number(name: str) -> int:
    numbers = _SYSCALLS.get(os.uname().machine)
    if numbers is None:
        raise OSError(38, f"no {name} syscall number known for {os.uname().machine}")
    return numbers[name]


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else os.fsencode(text)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_mount(_bytes(source), _bytes(target), _bytes(fstype), flags, _bytes(data)))


def prctl(option: int, value: int) -> None:
    _check(_prctl(option, value, 0, 0, 0))


def clone_process(flags: int) -> int:
    """fork() that can also put the child in new namespaces: 0 in the child, its pid in the parent."""
    number = _syscall_number("clone")
    _before_fork()
    pid = _clone(number, ctypes.c_ulong(flags | signal.SIGCHLD), None, None, None, None)
    err = ctypes.get_errno()
    if pid == 0:
        _after_fork_child()
        return 0
    _after_fork_parent()
    if pid < 0:
        raise OSError(err, f"clone: {os.strerror(err)}")
    return pid


def drop_capabilities(keep: int = 0) -> None:
    """Drop every capability but those in the `keep` mask (of the first 32), for good."""
    caps = _NO_CAPS
    if keep:
        caps = (_CapData * 2)(_CapData(keep, keep, 0))
    _check(_capset(ctypes.byref(_CAP_HEADER), caps))
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def _write_file(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


# --- framing: a 4-byte length, then JSON ----------------------------------------------------------------


class Timeout(Exception):
    """A deadline passed while waiting for the other side."""


class ProtocolError(Exception):
    """The other side sent something that is not a well-formed frame."""


def _wait_readable(fd: int, deadline: float | None) -> None:
    if deadline is None:
        return
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
        raise Timeout


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes | None:
    chunks, missing = [], size
    while missing:
        _wait_readable(fd, deadline)
        chunk = os.read(fd, min(missing, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def _frame(message: object) -> bytes:
    payload = json.dumps(message, separators=(",", ":")).encode()
    return _HEADER.pack(len(payload)) + payload


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def send_frame(fd: int, message: object) -> None:
    _write_all(fd, _frame(message))


def recv_frame(fd: int, deadline: float | None = None) -> object:
    """The next message; EOFError when the other side closed, Timeout, or ProtocolError."""
    header = _read_exact(fd, _HEADER.size, deadline)
    if header is None:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME:
        raise ProtocolError(f"frame of {size} bytes")
    body = _read_exact(fd, size, deadline)
    if body is None:
        raise EOFError
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:
        raise ProtocolError(f"unreadable frame: {error}") from None


# --- values crossing from the runner to the supervisor -----------------------------------------------------
# Plain data travels as JSON plus one-key tags ({"tuple": [...]}, {"set": [...]}, ...), built only from
# objects whose type is *exactly* a builtin type. Anything else (a function, an instance, an int
# subclass with a lying __eq__) stays in the runner and travels as {"ref": [n, type name]}; the
# supervisor sees it as a Remote, which equals nothing but itself.

_PLAIN = (type(None), bool, int, float, str)


def encode(value: object, refs: list, depth: int = 0) -> object:
    kind = type(value)
    if kind in _PLAIN:
        return value
    if depth > 100:
        raise ValueError("value nested too deeply to report")
    if kind is list:
        return [encode(item, refs, depth + 1) for item in value]
    if kind is tuple or kind is set or kind is frozenset:
        return {kind.__name__: [encode(item, refs, depth + 1) for item in value]}
    if kind is dict:
        return {"dict": [[encode(k, refs, depth + 1), encode(v, refs, depth + 1)] for k, v in value.items()]}
    if kind is bytes:
        return {"bytes": value.hex()}
    if kind is complex:
        return {"complex": [value.real, value.imag]}
    refs.append(value)
    return {"ref": [len(refs) - 1, kind.__name__]}


def decode(data: object, make_ref, depth: int = 0) -> object:
    """The inverse of encode, building fresh builtin objects; make_ref(n, type_name) builds a Remote."""
    kind = type(data)
    if kind in _PLAIN:
        return data
    if depth > 100:
        raise ProtocolError("value nested too deeply")
    if kind is list:
        return [decode(item, make_ref, depth + 1) for item in data]
    if kind is not dict or len(data) != 1:
        raise ProtocolError(f"unexpected value {str(data)[:80]}")
    ((tag, payload),) = data.items()
    try:
        if tag == "ref":
            number, type_name = payload
            if type(number) is not int or type(type_name) is not str:
                raise ProtocolError("bad reference")
            return make_ref(number, type_name)
        if tag == "bytes":
            return bytes.fromhex(payload)
        if tag == "complex":
            real, imag = payload
            return complex(float(real), float(imag))
        if type(payload) is not list:
            raise ProtocolError(f"bad {tag} payload")
        items = [decode(item, make_ref, depth + 1) for item in payload]
        if tag == "tuple":
            return tuple(items)
        if tag == "set":
            return set(items)
        if tag == "frozenset":
            return frozenset(items)
        if tag == "dict":
            return {key: value for key, value in items}
    except (TypeError, ValueError) as error:  # unhashable set items, wrong pair shapes, bad hex
        raise ProtocolError(f"bad {tag} value: {error}") from None
    raise ProtocolError(f"unknown tag {tag!r}")


# --- comparisons (made by the supervisor) ---------------------------------------------------------------


def numbers_close(a: float, b: float, tolerance: float) -> bool:
    return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)


def same_value(got: object, expected: object, tolerance: float) -> bool:
    """Equality with exact types: `True` is not `1`, `1` is not `1.0`. Expected values come from JSON,
    so a list also accepts a tuple and a float accepts an int within the tolerance."""
    kind = type(expected)
    if kind is float:
        return type(got) in (float, int) and numbers_close(got, expected, tolerance)
    if kind is list:
        return (
            type(got) in (list, tuple)
            and len(got) == len(expected)
            and all(same_value(a, b, tolerance) for a, b in zip(got, expected, strict=True))
        )
    if kind is dict:
        return (
            type(got) is dict
            and got.keys() == expected.keys()
            and all(same_value(got[key], expected[key], tolerance) for key in expected)
        )
    return type(got) is kind and got == expected


def _output_lines(text: str) -> list[str]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _tokens_match(got: list[str], expected: list[str], tolerance: float | None) -> bool:
    if got == expected:
        return True
    if tolerance is None or len(got) != len(expected):
        return False
    for a, b in zip(got, expected, strict=True):
        if a == b:
            continue
        try:
            if not numbers_close(float(a), float(b), tolerance):
                return False
        except ValueError:
            return False
    return True


def compare_output(got: str, expected: str, tolerance: float | None = None) -> str | None:
    """None when the outputs agree, else why not. Line by line, whitespace-insensitive within a line,
    trailing blank lines ignored; numbers may differ by `tolerance` when one is given."""
    got_lines, expected_lines = _output_lines(got), _output_lines(expected)
    if len(got_lines) != len(expected_lines):
        return f"expected {len(expected_lines)} lines, got {len(got_lines)}"
    for number, (a, b) in enumerate(zip(got_lines, expected_lines, strict=True), 1):
        if not _tokens_match(a.split(), b.split(), tolerance):
            return f"line {number}: expected {b[:80]!r}, got {a[:80]!r}"
    return None


# --- the runner: one per run, cloned by the zygote ------------------------------------------------------


def _describe(error: BaseException) -> list:
    return [type(error).__name__, str(error)[:500]]


def _enter_namespaces(outer_uid: int, outer_gid: int) -> None:
    prctl(PR_SET_DUMPABLE, 1)  # the zygote is not dumpable, and /proc/self would not be ours to write
    _write_file("/proc/self/setgroups", "deny")
    _write_file("/proc/self/uid_map", f"{INSIDE_ID} {outer_uid} 1")
    _write_file("/proc/self/gid_map", f"{INSIDE_ID} {outer_gid} 1")


def _private_tmp(limits: dict, keep: list[str]) -> None:
    """A fresh tmpfs on /tmp (the run's folder) and /dev/shm, seen by this run only. `keep`: the
    interpreter's directories that live under /tmp, bound again (read-only) on top of it."""
    held = [(os.open(path, os.O_PATH | os.O_CLOEXEC), path) for path in keep]
    options = f"size={int(limits['tmp_mb'])}m,nr_inodes=4096,mode=1777"
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, options)
    for fd, path in held:
        os.makedirs(path, exist_ok=True)
        mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
        os.close(fd)
    if os.path.isdir("/dev/shm"):
        mount(
            "tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=1m,nr_inodes=64,mode=1777"
        )


def _install_fds(fds: list[int]) -> None:
    """The channel becomes fd 3 and the program's stdio fds 0-2; everything else is closed."""
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in fds]
    for target, fd in zip((3, 0, 1, 2), moved, strict=True):
        os.dup2(fd, target)
    os.closerange(4, resource.getrlimit(resource.RLIMIT_NOFILE)[1])


def _apply_limits(limits: dict) -> None:
    mb = 1 << 20
    cpu = max(1, math.ceil(limits["cpu_s"]))
    wanted = {
        # PID 1 ignores SIGXCPU, so the hard limit (SIGKILL) is what stops a spinning runner.
        resource.RLIMIT_CPU: (cpu, cpu + 1),
        resource.RLIMIT_AS: (limits["memory_mb"] * mb,) * 2,
        resource.RLIMIT_NPROC: (limits["processes"],) * 2,
        resource.RLIMIT_FSIZE: (limits["file_mb"] * mb,) * 2,
        resource.RLIMIT_NOFILE: (limits["open_files"],) * 2,
        resource.RLIMIT_CORE: (0, 0),
    }
    for which, (soft, hard) in wanted.items():
        _, current = resource.getrlimit(which)
        if current != resource.RLIM_INFINITY:
            soft, hard = min(soft, current), min(hard, current)
        resource.setrlimit(which, (int(soft), int(hard)))


def runner_main(
    fds: list[int], sandboxed: bool, outer_ids: tuple[int, int], zygote_socket: socket.socket, keep: list[str]
) -> None:
    """Body of a freshly cloned runner; never returns."""
    status = 70
    try:
        zygote_socket.detach()  # closed below with the other inherited fds
        if sandboxed:
            _enter_namespaces(*outer_ids)
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        _install_fds(fds)
        # Its own process group: kill(0, ...) reaches a whole group, across PID namespaces. (Not a
        # session: setsid() creates a scheduler autogroup, which costs milliseconds.)
        os.setpgid(0, 0)
        setup = recv_frame(3)
        if sandboxed:
            _private_tmp(setup["limits"], keep)
            os.chdir("/tmp")
        else:
            os.chdir(setup["workdir"])
        _apply_limits(setup["limits"])
        drop_capabilities()
        if setup["mode"] == "stdin":
            os.close(3)
            status = _run_as_child(setup) if sandboxed else _run_program(setup)
        else:
            _serve(setup)
            status = 0
    except BaseException:  # noqa: B036 - nothing may escape a forked child
        try:
            traceback.print_exc()
        except BaseException:  # noqa: B036
            pass
    finally:
        os._exit(status)


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if type(code) is int:
        return code & 0xFF
    try:
        print(code, file=sys.stderr)
    except BaseException:  # noqa: B036
        pass
    return 1


def _run_as_child(setup: dict) -> int:
    """Stay PID 1 and run the program in a child, whose exit status we pass on (128 + N when it
    died of signal N). The kernel drops signals that a namespace's init has no handler for, so a
    program running as PID 1 would survive its own SIGKILL; this one dies as it would anywhere."""
    prctl(PR_SET_DUMPABLE, 0)  # the program may not trace us to change what we report
    child = os.fork()
    if child == 0:
        code = 70
        try:
            code = _run_program(setup)
        finally:
            os._exit(code)
    while True:  # orphans of the program are ours to reap too
        pid, status = os.waitpid(-1, 0)
        if pid == child:
            return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _print_traceback(error: BaseException) -> None:
    """The traceback python would print, without the runner's own frames."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != "solution.py":
        tb = tb.tb_next
    traceback.print_exception(type(error), error, tb)


def _run_program(setup: dict) -> int:
    """Run a stdin/stdout program as `python solution.py` would; returns its exit status."""
    module = types.ModuleType("__main__")
    module.__file__ = "solution.py"
    sys.modules["__main__"] = module
    sys.argv = ["solution.py"]
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), "utf-8")
    stdout = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(1, "w", closefd=False)), "utf-8", "backslashreplace"
    )
    sys.stdout = sys.__stdout__ = stdout
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), "utf-8", "backslashreplace", line_buffering=True
    )
    status = 0
    try:
        exec(compile(setup["code"], "solution.py", "exec"), module.__dict__)
    except SystemExit as error:
        status = _exit_status(error.code)
    except BaseException as error:  # noqa: B036 - the program's own crash, reported as python would
        _print_traceback(error)
        status = 1
    try:
        atexit._run_exitfuncs()
        for stream in {sys.stdout, stdout}:
            stream.flush()
    except SystemExit as error:
        status = _exit_status(error.code)
    except BaseException:  # noqa: B036
        status = status or 120  # what python exits with when it cannot flush stdout
    return status


def _resolve_entry(namespace: dict, entry: str) -> object:
    """`f`, `Solution().method`, `Class.attr`; a bare name missing from the module is looked up on
    `Solution()`, as LeetCode-style judges do."""
    head, _, rest = entry.partition(".")
    call = head.endswith("()")
    name = head[:-2] if call else head
    if not rest and not call and name not in namespace and "Solution" in namespace:
        return getattr(namespace["Solution"](), name)
    if name not in namespace:
        raise NameError(f"name {name!r} is not defined by the solution")
    target = namespace[name]
    if call:
        target = target()
    for attribute in rest.split(".") if rest else ():
        target = getattr(target, attribute)
    return target


def _serve(setup: dict) -> None:
    """Load the solution, then answer the supervisor's requests until it hangs up or kills us.

    The load reply already carries what the test needs first: the module globals it names
    (modules by name only) and the entry point, saving round trips."""
    sys.modules["__solution__"] = module = types.ModuleType("__solution__")
    namespace = module.__dict__
    namespace["__builtins__"] = builtins
    refs: list = []
    try:
        prelude, code = setup.get("prelude") or "", setup["code"]
        if prelude and not code.startswith(prelude):  # HumanEval programs already begin with it
            exec(compile(prelude, "prelude.py", "exec"), namespace)
        exec(compile(code, "solution.py", "exec"), namespace)
        wanted = setup.get("resolve") or {}
        entry = None
        if wanted.get("entry"):
            # Always reference 0, so that calls queued before we started can name it.
            refs.append(_resolve_entry(namespace, wanted["entry"]))
            entry = {"ref": [0, type(refs[0]).__name__]}
        found = {}
        for name in wanted.get("names", ()):
            if name in namespace:
                value = namespace[name]
                is_module = type(value) is types.ModuleType
                found[name] = {"module": value.__name__} if is_module else encode(value, refs)
        reply = {"ok": {"globals": found, "entry": entry}}
    except BaseException as error:  # noqa: B036 - the solution failed to load; say why and stop
        send_frame(3, {"raised": _describe(error)})
        return
    send_frame(3, reply)

    def arguments(data: object) -> object:
        def ref(number: int, _type_name: str) -> object:
            return refs[number]

        return decode(data, ref)

    while True:
        try:
            request = recv_frame(3)
        except EOFError:
            return
        try:
            op = request["op"]
            if op == "call":
                target = (
                    refs[request["ref"]] if "ref" in request else _resolve_entry(namespace, request["entry"])
                )
                args, kwargs = arguments(request["args"]), arguments(request["kwargs"])
                answer = encode(target(*args, **kwargs), refs)
            elif op == "getattr":
                answer = encode(getattr(refs[request["ref"]], request["name"]), refs)
            else:
                raise ValueError(f"unknown request {op!r}")
            reply = {"ok": answer}
        except BaseException as error:  # noqa: B036 - SystemExit from a solution is just another answer
            reply = {"raised": _describe(error)}
        send_frame(3, reply)


# --- the zygote -------------------------------------------------------------------------------------------


def _warm_up() -> None:
    """Run a runner's pure code paths here a few hundred times. Python specialises bytecode and
    fills caches as it runs (writes); done here, runners inherit it instead of each copying the
    pages it lives on (a copy-on-write fault costs microseconds in a VM)."""
    refs: list = []
    reply = {"ok": {"globals": {"x": [1, 2]}, "entry": {"ref": [0, "function"]}}}
    request = {"op": "call", "ref": 0, "args": [[1, 2.5, "x", None, True]], "kwargs": {"dict": []}}
    for _ in range(300):
        json.loads(_frame(reply)[_HEADER.size :])
        json.loads(_frame(request)[_HEADER.size :])
        decode(
            encode([1, 2.5, "x", None, True, (1,), {"a": {2}}, [[]], b"", 1j, object()], refs), lambda n, t: n
        )
        refs.clear()
    namespace: dict = {"__builtins__": builtins}
    exec(compile("def f(a, b):\n    return a + b\n", "solution.py", "exec"), namespace)
    _resolve_entry(namespace, "f")


def zygote_main(control: socket.socket, sandboxed: bool, keep: list[str]) -> None:
    """Clone one runner per request. Requests carry only file descriptors, never code or tests."""
    outer_ids = (os.geteuid(), os.getegid())
    _warm_up()
    gc.collect()
    _libc.malloc_trim(0)  # hand freed heap pages back: every resident page makes each clone dearer
    gc.freeze()  # a runner's collections must not write to (and so copy) every inherited page
    flags = CLONE_PARENT  # the supervisor, not the zygote, is the runner's parent: it waits for it
    if sandboxed:
        flags |= CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 16, 8)
        except OSError:
            os._exit(0)
        if not message:
            os._exit(0)
        try:
            pid = clone_process(flags)
        except OSError as error:
            pid = -(error.errno or 1)
        if pid == 0:
            runner_main(fds, sandboxed, outer_ids, control, keep)
        for fd in fds:
            os.close(fd)
        control.send(struct.pack("<i", pid))


# --- the supervisor ---------------------------------------------------------------------------------------


class SolutionDied(BaseException):
    """The runner ended or stopped answering; test code cannot catch this."""


class SolutionTimeout(BaseException):
    """The time limit passed; test code cannot catch this."""


class HarnessError(Exception):
    """The test asked for something the harness cannot do (not the solution's fault)."""


class Runner:
    """One runner process, seen from the supervisor (its parent)."""

    def __init__(self, supervisor: Supervisor, fds: list[int], workdir: str | None) -> None:
        socket.send_fds(supervisor.zygote, [b"r"], fds)  # the zygote answers with the pid: read later
        self.supervisor = supervisor
        self.sandboxed = supervisor.sandboxed
        self.workdir = workdir
        self.exit_status: int | None = None
        self.cpu_s = 0.0
        self._pid: int | None = None

    def started(self) -> bool:
        """Collect the zygote's answer to our clone request (once): False if the clone failed.
        Read only when needed, so that the supervisor gets on with the test meanwhile."""
        if self._pid is None:
            answer = self.supervisor.zygote.recv(4)
            if len(answer) != 4:
                raise SolutionDied("the zygote is gone")
            (self._pid,) = struct.unpack("<i", answer)
        return self._pid > 0

    @property
    def pid(self) -> int:
        if not self.started():
            raise OSError(-self._pid, f"cannot start a runner: {os.strerror(-self._pid)}")
        return self._pid

    def stop(self) -> None:
        """SIGKILL the runner; its PID namespace, and every process in it, dies with it."""
        if not self.started():
            return
        if self.exit_status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not self.sandboxed:
            try:
                os.killpg(self.pid, signal.SIGKILL)  # without a PID namespace, its group is all we know
            except (ProcessLookupError, PermissionError):
                pass

    def reap(self) -> None:
        _, status, usage = os.wait4(self.pid, 0)
        self.exit_status = status
        self.cpu_s = usage.ru_utime + usage.ru_stime

    def finish(self) -> None:
        """Stop, reap and clean up: done after the verdict is sent, so teardown costs no latency."""
        self.stop()
        if self.exit_status is None and self.started():
            self.reap()
        if self.workdir:
            _remove_tree(self.workdir)
            self.workdir = None


class Session:
    """Request/answer over the channel to a serving runner, with a deadline for every answer."""

    def __init__(self, channel: socket.socket, deadline: float, planned: list[bytes] | None = None) -> None:
        self.channel, self.deadline, self.calls = channel, deadline, 0
        self.planned = collections.deque(planned or ())  # requests queued before the test ran

    def send_bytes(self, data: bytes) -> None:
        """Send a request. Queued requests are answered first: a test that strays from the plan
        has their answers read and dropped."""
        while self.planned:
            self.planned.popleft()
            try:
                self.receive()
            except Exception:  # noqa: BLE001 - an answer nobody asked for, dropped
                pass
        try:
            _write_all(self.channel.fileno(), data)
        except OSError:
            raise SolutionDied("the solution process stopped answering") from None

    def receive(self) -> object:
        """The runner's next answer: its value, or the exception it raised, raised here."""
        try:
            reply = recv_frame(self.channel.fileno(), self.deadline)
        except Timeout:
            raise SolutionTimeout from None
        except (EOFError, OSError, ProtocolError) as error:
            raise SolutionDied(f"the solution process stopped answering ({type(error).__name__})") from None
        if type(reply) is not dict or len(reply) != 1:
            raise SolutionDied("the solution process sent a malformed reply")
        if "raised" in reply:
            raise _solution_exception(reply["raised"])
        if "ok" not in reply:
            raise SolutionDied("the solution process sent a malformed reply")
        return reply["ok"]

    def value(self, data: object) -> object:
        try:
            return decode(data, lambda number, type_name: Remote(self, number, type_name))
        except ProtocolError as error:
            raise SolutionDied(f"the solution returned an unreadable value ({error})") from None

    def call(self, message: dict, args: tuple, kwargs: dict) -> object:
        self.calls += 1
        frame = _call_frame(message, list(args), kwargs)
        if self.planned and self.planned[0] == frame:
            self.planned.popleft()  # already queued: its answer is next in line
        else:
            self.send_bytes(frame)
        return self.value(self.receive())


def _call_frame(message: dict, args: list, kwargs: dict) -> bytes:
    message["args"] = _encode_argument(args)
    message["kwargs"] = {"dict": [[key, _encode_argument(value)] for key, value in kwargs.items()]}
    return _frame(message)


def _solution_exception(described: object) -> BaseException:
    """The exception the test sees when the solution raised: a builtin of the same name (so a test
    may expect a ValueError), never one the test could mistake for a harness event."""
    try:
        name, message = described
        name, message = str(name), str(message)
    except (TypeError, ValueError):
        return SolutionDied("the solution process sent a malformed reply")
    kind = getattr(builtins, name, None)
    if name in ("SystemExit", "KeyboardInterrupt", "GeneratorExit"):
        return SolutionDied(f"the solution raised {name}")
    if isinstance(kind, type) and issubclass(kind, Exception):
        try:
            return kind(message)
        except Exception:  # noqa: BLE001 - builtins with unusual constructors (UnicodeError subclasses)
            pass
    return RuntimeError(f"{name}: {message}")


class Remote:
    """A value that lives in the solution's process. It can be called and its attributes read;
    it equals nothing but itself, so an object with a lying __eq__ never passes a comparison."""

    __slots__ = ("_session", "_ref", "_type")

    def __init__(self, session: Session, ref: int, type_name: str) -> None:
        self._session, self._ref, self._type = session, ref, type_name

    def __call__(self, *args: object, **kwargs: object) -> object:
        return self._session.call({"op": "call", "ref": self._ref}, args, kwargs)

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        session = self._session
        session.send_bytes(_frame({"op": "getattr", "ref": self._ref, "name": name}))
        return session.value(session.receive())

    def __repr__(self) -> str:
        return f"<{self._type} object of the solution>"


def _encode_argument(value: object) -> object:
    """Arguments the test passes to the solution: plain data, or values that came from the solution."""
    if type(value) is Remote:
        return {"ref": [value._ref, value._type]}
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is list:
        return [_encode_argument(item) for item in value]
    if kind in (tuple, set, frozenset):
        return {kind.__name__: [_encode_argument(item) for item in value]}
    if kind is dict:
        return {"dict": [[_encode_argument(k), _encode_argument(v)] for k, v in value.items()]}
    if kind is bytes:
        return {"bytes": value.hex()}
    if kind is complex:
        return {"complex": [value.real, value.imag]}
    raise HarnessError(f"the test passes a {kind.__name__} to the solution; only plain data can cross")


_BUILTIN_NAMES = frozenset(dir(builtins))
_SIMPLE_STATEMENTS = (ast.Assert, ast.Expr, ast.Assign, ast.Pass)
# Constructs that may skip or reorder the calls inside them.
_UNORDERED = (ast.BoolOp, ast.IfExp, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Lambda)
_UNORDERED += (ast.Dict, ast.NamedExpr, ast.Await, ast.Yield, ast.YieldFrom)


def _post_order(node: ast.AST):
    for child in ast.iter_child_nodes(node):
        yield from _post_order(child)
    yield node


def planned_calls(source: str) -> list[tuple[list, dict]]:
    """The calls a `check(candidate)` test makes first, unconditionally and with literal arguments,
    in the order it makes them: they can be queued for the runner before the test even starts.
    (Almost every HumanEval/LeetCode test is such straight-line asserts.) The plan stops at the
    first statement that is not a plain assert/expression/assignment or whose calls might be
    skipped or reordered; a test that strays from it anyway only loses the head start."""
    tree = ast.parse(source)
    check = next(
        (node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "check"), None
    )
    if check is None or not check.args.args:
        return []
    target, calls = check.args.args[0].arg, []
    for statement in check.body:
        if not isinstance(statement, _SIMPLE_STATEMENTS) or any(
            isinstance(n, _UNORDERED) for n in ast.walk(statement)
        ):
            break
        if isinstance(statement, ast.Assign):
            if not all(isinstance(name, ast.Name) and name.id != target for name in statement.targets):
                break
            statement = statement.value  # evaluated before its targets
        for node in _post_order(statement):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == target:
                try:
                    args = [ast.literal_eval(arg) for arg in node.args]
                    kwargs = {keyword.arg: ast.literal_eval(keyword.value) for keyword in node.keywords}
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    return calls
                if None in kwargs:  # **mapping
                    return calls
                calls.append((args, kwargs))
    return calls


def _module(data: object) -> types.ModuleType | None:
    """A module the solution imported, reported by name: the test gets our own copy of it."""
    if type(data) is dict and list(data) == ["module"] and type(data["module"]) is str:
        return __import__(data["module"], fromlist=["_"])
    return None


def _referenced_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _referenced_names(constant)
    return names


def _test_failure(error: BaseException, test_source: str) -> str:
    """Where in the test an exception surfaced, as `line N: <source>`."""
    line = None
    for frame, number in traceback.walk_tb(error.__traceback__):
        if frame.f_code.co_filename == "<test>":
            line = number
    text = str(error) or type(error).__name__
    if isinstance(error, AssertionError) and not str(error):
        text = "assertion failed"
    elif not isinstance(error, AssertionError):
        text = f"{type(error).__name__}: {error}"
    if line is not None:
        source = test_source.splitlines()[line - 1].strip() if line <= len(test_source.splitlines()) else ""
        return f"{text} (test line {line}: {source[:160]})"
    return text


class _Deadline(BaseException):
    pass


def _alarm(_signum: int, _frame: object) -> None:
    raise _Deadline


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


class Supervisor:
    """Runs tasks from the host one at a time; every verdict is decided here."""

    def __init__(self, host_in: int, host_out: int, zygote: socket.socket, sandboxed: bool) -> None:
        self.host_in, self.host_out, self.zygote, self.sandboxed = host_in, host_out, zygote, sandboxed
        self.devnull = os.open(os.devnull, os.O_RDWR)
        self._cache: dict[tuple[str, str], object] = {}
        self._finishing: list[Runner] = []

    # --- runners ------------------------------------------------------------------------------------------

    def start_runner(
        self, task: dict, mode: str, stdio: list[int], resolve: dict | None = None, planned: list[bytes] = ()
    ) -> tuple[Runner, socket.socket, list[bytes]]:
        """Clone a runner with its setup, and the `planned` requests if they fit, queued on a fresh
        channel; (runner, our end of the channel, the requests queued). Queued before the clone, the
        runner finds them at once; the runner is finished after the verdict has been sent."""
        workdir = None
        if not self.sandboxed:
            import tempfile

            workdir = tempfile.mkdtemp(prefix="distillery-run-")
        setup = {
            "mode": mode,
            "code": task["code"],
            "prelude": task.get("prelude"),
            "limits": task["limits"],
            "workdir": workdir,
            "resolve": resolve,
        }
        for earlier in self._finishing:  # the zygote answers in order: collect earlier answers first
            earlier.started()
        frame = _frame(setup)
        planned = list(planned) if len(frame) + sum(map(len, planned)) <= 65536 else []
        queued = len(frame) <= 65536  # fits an empty socket buffer: writing it cannot block
        channel, child_end = socket.socketpair()
        try:
            if queued:
                os.write(channel.fileno(), frame + b"".join(planned))
            runner = Runner(self, [child_end.fileno(), *stdio], workdir)
        except BaseException:
            channel.close()
            if workdir:
                _remove_tree(workdir)
            raise
        finally:
            child_end.close()
        self._finishing.append(runner)
        if not queued:
            _write_all(channel.fileno(), frame)
        return runner, channel, planned

    def finish_runners(self) -> None:
        while self._finishing:
            self._finishing.pop().finish()

    def _cached(self, kind: str, source: str, build):
        """build(source), once per distinct source: many samples share one problem's tests."""
        key = (kind, source)
        if key not in self._cache:
            if len(self._cache) >= 1024:
                self._cache.clear()
            self._cache[key] = build(source)
        return self._cache[key]

    def _compiled(self, source: str, filename: str) -> types.CodeType:
        return self._cached(filename, source, lambda text: compile(text, filename, "exec"))

    # --- the task loop ----------------------------------------------------------------------------------------

    def loop(self) -> None:
        while True:
            try:
                task = recv_frame(self.host_in)
            except EOFError:
                return
            start = time.perf_counter()
            try:
                result = self.handle(task)
            except SolutionDied as error:  # the zygote died: report, then let the host restart us
                send_frame(self.host_out, {"status": "error", "cases": [], "message": str(error)})
                return
            except Exception as error:  # noqa: BLE001 - a harness bug must not look like a verdict
                result = {"status": "error", "cases": [], "message": f"{type(error).__name__}: {error}"}
            result["seconds"] = round(time.perf_counter() - start, 6)
            send_frame(self.host_out, result)
            self.finish_runners()

    def handle(self, task: dict) -> dict:
        kind = task["kind"]
        if kind == "stdin":
            return self.run_stdin(task)
        if kind == "call":
            return self.run_call(task)
        if kind == "assert":
            return self.run_assert(task)
        raise ValueError(f"unknown test kind {kind!r}")

    # --- stdin/stdout programs: one runner per case, outputs compared here ---------------------------------

    def run_stdin(self, task: dict) -> dict:
        results, status = [], "pass"
        for number, case in enumerate(task["cases"]):
            result = {"case": number, **self.run_stdin_case(task, case)}
            results.append(result)
            if result["status"] != "pass":
                status = result["status"]
                if task.get("stop_on_fail", True):
                    break
        return {"status": status, "cases": results, "message": ""}

    def run_stdin_case(self, task: dict, case: dict) -> dict:
        limits = task["limits"]
        stdin = os.memfd_create("stdin")
        os.write(stdin, case["input"].encode())
        os.lseek(stdin, 0, os.SEEK_SET)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        start = time.perf_counter()
        try:
            runner, channel, _ = self.start_runner(task, "stdin", [stdin, out_w, err_w])
        finally:
            for fd in (stdin, out_w, err_w):
                os.close(fd)
        try:
            output, stderr_tail, problem = self._collect(
                runner, out_r, err_r, start + limits["wall_s"], limits
            )
        finally:
            channel.close()
            os.close(out_r)
            os.close(err_r)
        result = {"status": "pass", "seconds": round(time.perf_counter() - start, 6)}
        if problem == "timeout" or (problem is None and runner.cpu_s >= limits["cpu_s"]):
            result.update(status="timeout", reason=f"time limit ({limits['wall_s']} s wall) exceeded")
        elif problem:
            result.update(status="fail", reason=problem)
        elif os.WIFSIGNALED(runner.exit_status):
            result.update(
                status="fail", reason=f"killed by {signal.Signals(os.WTERMSIG(runner.exit_status)).name}"
            )
        elif os.WEXITSTATUS(runner.exit_status) != 0:
            result.update(status="fail", reason=_exit_reason(os.WEXITSTATUS(runner.exit_status)))
        else:
            reason = compare_output(output.decode("utf-8", "replace"), case["output"], task.get("float_tol"))
            if reason:
                result.update(status="fail", reason=f"wrong answer: {reason}")
        if result["status"] != "pass" and stderr_tail:
            result["stderr"] = stderr_tail.decode("utf-8", "replace")
        return result

    def _collect(self, runner: Runner, out_r: int, err_r: int, deadline: float, limits: dict):
        """Read stdout/stderr until the program ends; (stdout, stderr tail, problem or None).
        A program past its deadline or its output limit is stopped at once."""
        output, stderr_tail, stderr_total = bytearray(), bytearray(), 0
        limit = int(limits["output_mb"] * (1 << 20))
        pidfd = os.pidfd_open(runner.pid)
        open_fds, exited_at, problem = {out_r, err_r}, None, None
        try:
            while open_fds and problem is None:
                now = time.monotonic()
                if exited_at is None:
                    wait = deadline - now
                    if wait <= 0:
                        problem = "timeout"
                        break
                    watched = [*open_fds, pidfd]
                else:
                    wait = exited_at + 0.5 - now  # leftovers after exit: only the unsandboxed mode has any
                    if wait <= 0:
                        break
                    watched = list(open_fds)
                for fd in select.select(watched, [], [], wait)[0]:
                    if fd == pidfd:
                        runner.reap()
                        exited_at = time.monotonic()
                        runner.stop()  # unsandboxed: its group; sandboxed: already gone with it
                        continue
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        open_fds.discard(fd)
                    elif fd == out_r:
                        output += chunk
                        if len(output) > limit:
                            problem = f"output limit ({limits['output_mb']} MB) exceeded"
                    else:
                        stderr_total += len(chunk)
                        stderr_tail = (stderr_tail + chunk)[-STDERR_TAIL:]
                        if stderr_total > limit:
                            problem = "stderr output limit exceeded"
            if problem is not None:
                runner.stop()
            if runner.exit_status is None:
                runner.reap()
            return bytes(output), bytes(stderr_tail), problem
        finally:
            os.close(pidfd)

    # --- functions: one serving runner per sample -----------------------------------------------------------

    def _load(self, runner: Runner, session: Session, start: float) -> tuple[object, dict | None]:
        """The runner's load report, or (None, the finished result when loading failed)."""
        try:
            return session.receive(), None
        except SolutionTimeout:
            return None, _one_case("timeout", start, "time limit exceeded while loading the solution")
        except SolutionDied as error:
            if not runner.started():
                return None, _one_case("error", start, "the zygote could not start a runner")
            return None, _one_case("fail", start, str(error))
        except Exception as error:  # noqa: BLE001 - the solution raised while loading
            return None, _one_case(
                "fail", start, f"the solution failed to load: {type(error).__name__}: {error}"
            )

    def run_call(self, task: dict) -> dict:
        """Call the entry point once per case; return values are compared here with exact types.
        Small requests are all queued at once, so no case waits for a round trip."""
        limits, results, status = task["limits"], [], "pass"
        tolerance = 1e-9 if task.get("float_tol") is None else task["float_tol"]
        start = time.perf_counter()
        runner, channel, _ = self.start_runner(task, "serve", [self.devnull] * 3)
        session = Session(channel, time.monotonic() + limits["wall_s"])
        try:
            _, failed = self._load(runner, session, start)
            if failed:
                return failed
            frames = [
                _call_frame({"op": "call", "entry": task["fn_name"]}, case["args"], {})
                for case in task["cases"]
            ]
            pipelined = sum(map(len, frames)) <= 65536
            if pipelined:
                session.send_bytes(b"".join(frames))
            for number, case in enumerate(task["cases"]):
                case_start = time.perf_counter()
                session.deadline = time.monotonic() + limits["wall_s"]
                result, died = {"case": number, "status": "pass"}, False
                try:
                    if not pipelined:
                        session.send_bytes(frames[number])
                    got = session.value(session.receive())
                    if not same_value(got, case["expected"], tolerance):
                        result.update(
                            status="fail", reason=f"expected {_short(case['expected'])}, got {_short(got)}"
                        )
                except SolutionTimeout:
                    result.update(status="timeout", reason=f"time limit ({limits['wall_s']} s wall) exceeded")
                except SolutionDied as error:
                    result.update(status="fail", reason=str(error))
                    died = True
                except Exception as error:  # noqa: BLE001 - what the solution raised
                    result.update(status="fail", reason=f"{type(error).__name__}: {error}")
                result["seconds"] = round(time.perf_counter() - case_start, 6)
                results.append(result)
                if result["status"] != "pass":
                    status = result["status"]
                    if task.get("stop_on_fail", True) or status == "timeout" or died:
                        break
            return {"status": status, "cases": results, "message": ""}
        finally:
            runner.stop()
            channel.close()

    def run_assert(self, task: dict) -> dict:
        """Run the test here, against Remote proxies of the solution's entry point and names."""
        limits, entry = task["limits"], task["entry_point"]
        start = time.perf_counter()
        test_code = self._compiled(task["test_code"], "<test>")
        resolve = {"names": sorted(_referenced_names(test_code) - _BUILTIN_NAMES), "entry": entry}
        try:
            plan = self._cached("plan", task["test_code"], planned_calls)
            frames = [_call_frame({"op": "call", "ref": 0}, args, kwargs) for args, kwargs in plan]
        except HarnessError:  # a literal that cannot cross (Ellipsis): no head start, that is all
            frames = []
        runner, channel, queued = self.start_runner(task, "serve", [self.devnull] * 3, resolve, frames)
        session = Session(channel, time.monotonic() + limits["wall_s"], queued)
        case = {"case": 0, "status": "pass"}
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, limits["wall_s"] * 2)
        try:
            # The trusted context (HumanEval's prompt, a judge's import prelude) is set up while the
            # runner starts, and wins over the solution's copies of the same helpers.
            namespace: dict = {"__name__": "__test__", "__builtins__": builtins}
            if task.get("prelude"):
                exec(self._compiled(task["prelude"], "<prelude>"), namespace)
            loaded, failed = self._load(runner, session, start)
            if failed:
                return failed
            if type(loaded) is not dict or type(loaded.get("globals")) is not dict:
                raise SolutionDied("the solution process sent a malformed reply")
            for name, data in loaded["globals"].items():
                if name not in namespace:
                    namespace[name] = _module(data) or session.value(data)
            candidate = session.value(loaded["entry"])
            if "." not in entry and "(" not in entry:
                namespace[entry] = candidate  # the entry point is always the solution's
            session.deadline = time.monotonic() + limits["wall_s"]
            signal.setitimer(signal.ITIMER_REAL, limits["wall_s"])
            exec(test_code, namespace)
            check = namespace.get("check")
            if callable(check):
                check(candidate)
        except (SolutionTimeout, _Deadline):
            case.update(status="timeout", reason=f"time limit ({limits['wall_s']} s wall) exceeded")
        except SolutionDied as error:
            case.update(status="fail", reason=str(error))
        except HarnessError as error:
            case.update(status="error", reason=str(error))
        except SystemExit:
            case.update(status="error", reason="the test code called exit()")
        except Exception as error:  # noqa: BLE001 - a failed assertion or what the solution raised
            case.update(status="fail", reason=_test_failure(error, task["test_code"]))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            runner.stop()
            channel.close()
        case["calls"] = session.calls
        case["seconds"] = round(time.perf_counter() - start, 6)
        return {"status": case["status"], "cases": [case], "message": ""}


def _exit_reason(code: int) -> str:
    if code > 128 and code - 128 in signal.valid_signals():
        return f"exit code {code} (killed by {signal.Signals(code - 128).name})"
    return f"exit code {code}"


def _one_case(status: str, start: float, reason: str) -> dict:
    case = {"case": 0, "status": status, "reason": reason, "seconds": round(time.perf_counter() - start, 6)}
    return {"status": status, "cases": [case], "message": reason}


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


# --- start-up ----------------------------------------------------------------------------------------------


def _build_root(binds: list[list[str]], links: list[list[str]], devices: list[str], tmp_mb: int) -> None:
    """`unshare` mode: give this mount namespace a fresh read-only root holding only `binds`, as bwrap
    does (we already are in new mount, PID, network, IPC and UTS namespaces)."""
    sources = [(os.open(src, os.O_PATH | os.O_CLOEXEC), dest) for src, dest in binds if os.path.exists(src)]
    nodes = [
        (os.open(f"/dev/{name}", os.O_PATH | os.O_CLOEXEC), name)
        for name in devices
        if os.path.exists(f"/dev/{name}")
    ]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    base = "/tmp"
    mount("tmpfs", base, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    os.makedirs(base + "/tmp", mode=0o755)  # first: an interpreter under /tmp is bound inside it
    mount("tmpfs", base + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={tmp_mb}m")
    for fd, dest in sources:
        target = base + dest
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            os.makedirs(target, mode=0o755, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            open(target, "w").close()
        mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
        mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for target, link in links:
        os.symlink(target, base + link)
    os.makedirs(base + "/dev", mode=0o755)
    mount("tmpfs", base + "/dev", "tmpfs", MS_NOSUID, "mode=0755,size=64k")
    for fd, name in nodes:
        open(f"{base}/dev/{name}", "w").close()
        mount(f"/proc/self/fd/{fd}", f"{base}/dev/{name}", None, MS_BIND)
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, f"{base}/dev/{name}")
    os.mkdir(base + "/dev/shm", 0o1777)
    os.makedirs(base + "/proc", mode=0o755)
    try:
        mount("proc", base + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except PermissionError:  # a masked /proc forbids a fresh one without privileges: reuse it
        mount("/proc", base + "/proc", None, MS_BIND | MS_REC)
    for fd, _ in sources + nodes:
        os.close(fd)
    os.chdir(base)
    _check(_syscall(_syscall_number("pivot_root"), b".", b"."))
    _check(_umount2(b".", MNT_DETACH))
    os.chdir("/")
    mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    mount(None, "/dev", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID)


def main() -> None:
    config = json.loads(sys.argv[1])
    host_in, host_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    sandboxed = config["isolation"] != "none"
    os.environ.pop("PWD", None)  # bwrap's --chdir sets it: runs see the same environment in every mode
    if config.get("cpu") is not None:
        # Supervisor, zygote and runners share one CPU: a wake-up on another (virtual) CPU costs
        # ~30x more, and a sample makes a dozen of them.
        os.sched_setaffinity(0, {config["cpu"]})
    try:
        if config["isolation"] == "unshare":
            _build_root(config["binds"], config["links"], config["devices"], config["tmp_mb"])
        if config.get("drop_to"):
            uid, gid = config["drop_to"]
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
        elif config["isolation"] == "unshare":
            # Root of our own user namespace only while building the root. CAP_SETFCAP stays: a
            # runner's user namespace may map our uid 0 only if its creator had it (Linux >= 5.12).
            drop_capabilities(keep=1 << CAP_SETFCAP)
        prctl(PR_SET_DUMPABLE, 0)  # no same-uid process may trace us or read our memory
        sys.set_int_max_str_digits(0)
        for name in PRELOAD:
            __import__(name)
        supervisor_end, zygote_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if os.fork() == 0:
            supervisor_end.close()
            for fd in (host_in, host_out):
                os.close(fd)
            zygote_main(zygote_end, sandboxed, config.get("keep_under_tmp", []))
        zygote_end.close()
        supervisor = Supervisor(host_in, host_out, supervisor_end, sandboxed)
        # One real run before reporting ready: proves that runners can be cloned and set up here.
        probe = supervisor.run_stdin(
            {
                "code": "print(input()[::-1])",
                "cases": [{"input": "ok", "output": "ko"}],
                "limits": config["probe_limits"],
            }
        )
    except Exception as error:  # noqa: BLE001 - tell the host why this isolation cannot work here
        send_frame(host_out, {"ready": False, "message": f"{type(error).__name__}: {error}"})
        return
    supervisor.finish_runners()
    if probe["status"] != "pass":
        send_frame(host_out, {"ready": False, "message": f"probe run failed: {probe['cases']}"})
        return
    send_frame(host_out, {"ready": True, "python": sys.version.split()[0], "uid": os.getuid()})
    supervisor.loop()


if __name__ == "__main__":
    main()
