"""The runner: one per run, cloned by the zygote. It enters its namespaces, lowers its limits,
drops every capability and executes the solution; it only ever reports values, never a verdict."""

from __future__ import annotations

import atexit
import builtins
import fcntl
import io
import marshal
import math
import os
import resource
import signal
import socket
import sys
import types

from .framing import recv_frame, send_frame, write_all
from .syscalls import (
    CLONE_NEWIPC,
    MNT_DETACH,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    PR_SET_DUMPABLE,
    PR_SET_PDEATHSIG,
    drop_capabilities,
    mount,
    prctl,
    umount,
    unshare,
    write_file,
)
from .values import decode, encode

INSIDE_ID = 1000  # the uid/gid a runner has inside its user namespace (never 0: no root semantics)
NAMESPACE_MARK = b"n"  # the byte that carries a sandboxed runner's mount namespace to the supervisor
NEXT_CASE, LAST_CASE = b"c", b"l"  # the byte that carries a case's stdio to a case runner


def _describe(error: BaseException) -> list:
    return [type(error).__name__, str(error)[:500]]


def _enter_namespaces(outer_uid: int, outer_gid: int) -> None:
    prctl(PR_SET_DUMPABLE, 1)  # the zygote is not dumpable, and /proc/self would not be ours to write
    write_file("/proc/self/setgroups", "deny")
    write_file("/proc/self/uid_map", f"{INSIDE_ID} {outer_uid} 1")
    write_file("/proc/self/gid_map", f"{INSIDE_ID} {outer_gid} 1")


def _hand_over_namespace(channel: int) -> None:
    """Send our mount namespace to the supervisor, as the first byte on the channel, before any
    untrusted code runs. Whoever drops a mount namespace's last reference tears it down and waits
    for an RCU grace period (milliseconds on a busy VM): held by the supervisor, that is done by
    its background closer after this runner has been reaped, not by this runner's exit while the
    supervisor waits for it."""
    namespace = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, channel)
    try:
        socket.send_fds(sock, [NAMESPACE_MARK], [namespace])
    finally:
        sock.detach()
        os.close(namespace)


def _private_tmp(limits: dict, held: list[tuple[int, str]]) -> None:
    """A fresh tmpfs on /tmp (the run's folder) and /dev/shm, seen by this run only. `held`: the
    interpreter's directories that live under /tmp (O_PATH fds, with their paths), bound again
    (read-only) on top of it."""
    options = f"size={int(limits['tmp_mb'])}m,nr_inodes=4096,mode=1777"
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, options)
    for fd, path in held:
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            os.makedirs(path, exist_ok=True)
        else:  # a file (a virtual environment's interpreter link, its pyvenv.cfg)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "w").close()
        mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    if os.path.isdir("/dev/shm"):
        mount(
            "tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=1m,nr_inodes=64,mode=1777"
        )
    os.chdir("/tmp")


def _hold(keep: list[str]) -> list[tuple[int, str]]:
    return [(os.open(path, os.O_PATH | os.O_CLOEXEC), path) for path in keep]


def _install_fds(fds: list[int]) -> None:
    """The channel becomes fd 3, the program's stdio fds 0-2 and a compiled build (if any) fd 4;
    everything else is closed."""
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in fds]
    for target, fd in zip((3, 0, 1, 2, 4), moved, strict=False):
        os.dup2(fd, target)
    os.closerange(5 if len(fds) > 4 else 4, resource.getrlimit(resource.RLIMIT_NOFILE)[1])


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
            _hand_over_namespace(fds[0])
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        _install_fds(fds)
        # Its own process group: kill(0, ...) reaches a whole group, across PID namespaces. (Not a
        # session: setsid() creates a scheduler autogroup, which costs milliseconds.)
        os.setpgid(0, 0)
        setup = recv_frame(3)
        if setup["mode"] == "cases":  # sandboxed only: it relies on being its PID namespace's init
            status = _serve_cases(setup, _hold(keep))
            return
        if sandboxed:
            held = _hold(keep)
            _private_tmp(setup["limits"], held)
            for fd, _ in held:
                os.close(fd)
        else:
            os.chdir(setup["workdir"])
        _apply_limits(setup["limits"])
        drop_capabilities()
        root = "/tmp" if sandboxed else setup["workdir"]
        if setup["mode"] == "compile":
            os.close(3)
            status = _compile(setup["program"], setup["code"], root)
        elif setup["mode"] == "stdin" and setup.get("program"):
            os.close(3)
            _unpack(root)
            command = _rooted(setup["program"]["run"], root)
            status = _run_as_child(lambda: _exec(command))
        elif setup["mode"] == "judge":  # a trusted checker or interactor: its own paths, our files
            os.close(3)
            _unpack(root)
            command = [part.replace("{root}", root) for part in setup["program"]["run"]]
            status = _run_as_child(lambda: _exec(command))
        elif setup["mode"] == "stdin":
            os.close(3)
            run = lambda: _run_program(_compiled(setup["code"]))  # noqa: E731
            status = _run_as_child(run) if sandboxed else run()
        else:
            _serve(setup)
            status = 0
    except BaseException:  # noqa: B036 - nothing may escape a forked child
        try:
            sys.__excepthook__(*sys.exc_info())
        except BaseException:  # noqa: B036
            pass
    finally:
        os._exit(status)


def _compiled(code: str) -> types.CodeType | BaseException:
    try:
        return compile(code, "solution.py", "exec")
    except BaseException as error:  # noqa: B036 - reported as python would, by _run_program
        return error


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


def _run_as_child(body) -> int:
    """Stay PID 1 and run the program in a child, whose exit status we pass on (128 + N when it
    died of signal N). The kernel drops signals that a namespace's init has no handler for, so a
    program running as PID 1 would survive its own SIGKILL; this one dies as it would anywhere."""
    prctl(PR_SET_DUMPABLE, 0)  # the program may not trace us to change what we report
    child = os.fork()
    if child == 0:
        code = 70
        try:
            code = body()
        finally:
            os._exit(code)
    while True:  # orphans of the program are ours to reap too
        pid, status = os.waitpid(-1, 0)
        if pid == child:
            return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _serve_cases(setup: dict, held: list[tuple[int, str]]) -> int:
    """Run a Python stdin program once per case the supervisor sends (a byte on the channel with
    the case's stdin, stdout and stderr fds: NEXT_CASE, or LAST_CASE when no other case follows),
    each in a child forked from here, and report {"exit": status, "cpu_s": seconds} per case; ends
    when the supervisor hangs up.

    A case sees what a runner of its own would: a fresh interpreter (this process never runs the
    program, it only compiles it once), the limits, no capabilities, an IPC namespace of its own,
    a /tmp and /dev/shm as fresh as new mounts (new mounts, unless the case before left nothing
    there: _scratch_state); whatever it leaves running is killed and reaped before its report."""
    limits = setup["limits"]
    memory, hard = resource.getrlimit(resource.RLIMIT_AS)
    compiling = int(limits["memory_mb"] * (1 << 20))  # compiled under a case's limit, as before
    if hard != resource.RLIM_INFINITY:
        compiling = min(compiling, hard)
    resource.setrlimit(resource.RLIMIT_AS, (compiling, hard))
    program = _compiled(setup["code"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, hard))
    prctl(PR_SET_DUMPABLE, 0)  # the program may not trace us to change what we report
    channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, 3)
    _private_tmp(limits, held)
    fresh = _scratch_state()
    while True:
        message, fds, _, _ = socket.recv_fds(channel, 1, 3)
        if not message:
            return 0
        before = _children_cpu()
        child = os.fork()
        if child == 0:
            code = 70
            try:
                code = _run_case(fds, limits, program)
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        while True:  # the program's orphans count, as in a runner of its own
            pid, status = os.waitpid(-1, 0)
            if pid == child:
                break
        _kill_the_rest()  # their CPU counts too, as when a runner's PID namespace goes
        cpu_s = _children_cpu() - before
        code = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        send_frame(3, {"exit": code, "cpu_s": cpu_s})
        if message == LAST_CASE or (not held and _scratch_state() == fresh):
            continue
        # For the next case, while the supervisor judges this one (unmounting waits for an RCU
        # grace period).
        if os.path.isdir("/dev/shm"):
            umount("/dev/shm", MNT_DETACH)
        umount("/tmp", MNT_DETACH)
        _private_tmp(limits, held)
        fresh = _scratch_state()


def _scratch_state() -> list[tuple]:
    """What a case could leave in /tmp and /dev/shm for the next one to see: each folder's own
    metadata and extended attributes, and the inodes and blocks in use on it (anything created
    anywhere below). Equal to its value after mounting, once the case's processes are gone, the
    folder is as fresh as a new mount (with no interpreter folders bound under /tmp: then there
    are folders below that a case may change, and the next case always gets new mounts)."""
    state = []
    for path in ("/tmp", "/dev/shm"):
        try:
            info, usage = os.stat(path), os.statvfs(path)
        except FileNotFoundError:
            continue
        state.append((
            info.st_mode, info.st_uid, info.st_gid, info.st_nlink,
            info.st_atime_ns, info.st_mtime_ns, info.st_ctime_ns,
            usage.f_files - usage.f_ffree, usage.f_blocks - usage.f_bfree, os.listxattr(path),
        ))  # fmt: skip
    return state


def _run_case(fds: list[int], limits: dict, program: types.CodeType | BaseException) -> int:
    """A case's child: the case's stdio as fds 0-2 and nothing else, an IPC namespace of its own,
    the limits, no capabilities; then the program. (Called as _run_as_child calls a runner's
    program, so that the program starts as many Python frames deep: the same recursion depth.)"""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    unshare(CLONE_NEWIPC)
    _apply_limits(limits)
    drop_capabilities()
    return _run_program(program)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _kill_the_rest() -> None:
    """Kill and reap every other process of our PID namespace (kill(-1) from its init)."""
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _rooted(parts: list[str], root: str) -> list[str]:
    """Commands name paths under /tmp; unsandboxed, a run's folder is elsewhere."""
    if root == "/tmp":
        return parts
    return [root if part == "/tmp" else part.replace("/tmp/", root + "/") for part in parts]


def _exec(command: list[str]) -> int:
    """Replace this process with a compiler or a compiled program (in the child of _run_as_child)."""
    try:
        os.execvp(command[0], command)
    except OSError as error:
        print(f"cannot run {command[0]}: {error.strerror}", file=sys.stderr, flush=True)
    return 127


def _compile(program: dict, code: str, root: str) -> int:
    """Write the source, run the compiler (its messages on stderr) and, when it succeeds, send
    what it built to stdout as marshal({path: bytes}); the compiler's exit status."""
    os.makedirs(f"{root}/src")
    os.makedirs(f"{root}/build")
    with open(f"{root}/src/{program['source']}", "w", encoding="utf-8") as handle:
        handle.write(code)
    command = _rooted(program["compile"], root)

    def compiler() -> int:
        os.dup2(2, 1)
        return _exec(command)

    status = _run_as_child(compiler)
    if status == 0:
        built = {}
        for folder, _, names in os.walk(f"{root}/build"):
            for name in names:
                path = os.path.join(folder, name)
                with open(path, "rb") as handle:
                    built[os.path.relpath(path, f"{root}/build")] = handle.read()
        write_all(1, marshal.dumps(built))
    return status


def _unpack(root: str) -> None:
    """Unpack the files of fd 4 (a build, an interpreted program's source, a judge's input, output
    and answer) into the run's folder."""
    data, offset = b"", 0
    size = os.fstat(4).st_size
    while offset < size:
        chunk = os.pread(4, size - offset, offset)
        if not chunk:
            break
        data, offset = data + chunk, offset + len(chunk)
    os.close(4)
    for name, content in marshal.loads(data).items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(content)
        os.chmod(path, 0o755)


def _print_traceback(error: BaseException) -> None:
    """The traceback python would print, without the runner's own frames."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != "solution.py":
        tb = tb.tb_next
    # The interpreter's own printer, not the traceback module: the zygote does without that
    # module and the three it imports, which would make every runner's clone dearer.
    sys.__excepthook__(type(error), error.with_traceback(tb), tb)  # it prints __traceback__


def _run_program(program: types.CodeType | BaseException) -> int:
    """Run a stdin/stdout program (compiled, or the error compiling it raised) as `python
    solution.py` would; returns its exit status."""
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
        if isinstance(program, BaseException):
            raise program
        exec(program, module.__dict__)
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


def resolve_entry(namespace: dict, entry: str) -> object:
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
            refs.append(resolve_entry(namespace, wanted["entry"]))
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
                    refs[request["ref"]] if "ref" in request else resolve_entry(namespace, request["entry"])
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
