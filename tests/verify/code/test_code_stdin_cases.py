"""A sandboxed Python stdin program's cases share one runner (issue 19), each case in a child of
its own: nothing one case leaves behind (files, SysV IPC objects, processes, a changed
interpreter) is seen by the next, each case gets its own stdin, and a case
that has to be stopped does not take the later ones with it.

Every test runs under each sandbox installed here, with a 1 s time limit.
"""

from __future__ import annotations

import secrets
import textwrap

import pytest

from curate.verify.code import CodeVerifier
from curate.verify.code.sandbox import candidates
from curate.verify.code.verifier import build_task
from tests.verify.code.helpers import assert_none_survive, assert_pool_alive, cases

MODES = candidates("auto")


@pytest.fixture(params=MODES)
def pool(request, sandbox_verifier):
    verifier = sandbox_verifier(request.param)
    yield verifier
    assert_pool_alive(verifier)


def program(source: str) -> str:
    return textwrap.dedent(source).lstrip("\n")


def stdin_spec(inputs: list[str], outputs: list[str]) -> dict:
    return {
        "kind": "stdin",
        "cases": [{"input": i, "output": o} for i, o in zip(inputs, outputs, strict=True)],
    }


def echo_spec(count: int = 3) -> dict:
    return stdin_spec([f"{n}\n" for n in range(count)], [f"{n}\n" for n in range(count)])


def test_each_case_reads_its_own_input(pool):
    verdict = pool.check(echo_spec(5), code="print(input())")
    assert verdict.status == "pass", verdict.detail
    assert [case["status"] for case in cases(verdict)] == ["pass"] * 5


def test_files_a_case_writes_are_gone_for_the_next(pool):
    code = program("""
        import os
        seen = [p for p in ("/tmp/mark", "/dev/shm/mark", "mark") if os.path.exists(p)]
        for path in ("/tmp/mark", "/dev/shm/mark"):
            open(path, "w").write("x")
        print(seen or input())
    """)
    verdict = pool.check(echo_spec(), code=code)
    assert verdict.status == "pass", verdict.detail


def test_a_case_changing_its_folder_does_not_change_the_next(pool):
    code = program("""
        import os
        changed = "sub" in os.listdir(".") or os.stat(".").st_mode & 0o777 != 0o777 or os.getcwd() != "/tmp"
        print("changed" if changed else input())
        os.makedirs("/tmp/sub", exist_ok=True)
        os.chmod("/tmp", 0o500)
    """)
    verdict = pool.check(echo_spec(), code=code)
    assert verdict.status == "pass", verdict.detail


def test_a_case_changing_its_folders_times_or_attributes_does_not_change_the_next(pool):
    """A case that leaves no file still gets new mounts if it changed /tmp or /dev/shm itself."""
    code = program("""
        import os
        changed = [p for p in ("/tmp", "/dev/shm") if os.stat(p).st_mtime == 0 or os.listxattr(p)]
        print(changed or input())
        for path in ("/tmp", "/dev/shm"):
            os.utime(path, (0, 0))
            try:
                os.setxattr(path, "user.mark", b"x")
            except OSError:  # extended attributes not supported here: the times still tell
                pass
    """)
    verdict = pool.check(echo_spec(), code=code)
    assert verdict.status == "pass", verdict.detail


def test_sysv_ipc_objects_do_not_outlive_their_case(pool):
    code = program("""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        IPC_CREAT, IPC_EXCL = 0o1000, 0o2000
        created = libc.msgget(4242, IPC_CREAT | IPC_EXCL | 0o600)
        print(input() if created >= 0 else "a queue from an earlier case")
    """)
    verdict = pool.check(echo_spec(), code=code)
    assert verdict.status == "pass", verdict.detail


def test_processes_a_case_leaves_running_are_gone_for_the_next(pool):
    token = "cv" + secrets.token_hex(6)
    code = program(f"""
        import errno, os, time
        try:
            os.kill(-1, 0)  # any process but ourselves and our runner
            print("a process from an earlier case")
        except OSError as error:
            print(input() if error.errno == errno.ESRCH else error)
        if os.fork() == 0:
            os.setsid()
            os.close(1)
            open('/proc/self/comm', 'w').write({token!r})
            time.sleep(60)
    """)
    verdict = pool.check(echo_spec(), code=code)
    assert verdict.status == "pass", verdict.detail
    assert_none_survive(token)


def test_a_case_changing_the_interpreter_does_not_change_the_next(pool):
    code = program("""
        import builtins, sys
        print("changed" if hasattr(builtins, "mark") or "mark" in sys.modules else input())
        builtins.mark = sys.modules["mark"] = 1
        builtins.print = builtins.input = None
    """)
    verdict = pool.check(echo_spec(), code=code)
    assert verdict.status == "pass", verdict.detail


FLOOD_TIME_S = 5  # a case printing past the output limit: time for 16 MB to cross a pipe
STOPPABLE = program("""
    value = input()
    if value == "loop":
        while True:
            pass
    if value == "flood":
        print("x" * (17 << 20))
    if value == "die":
        import os, signal
        os.kill(os.getpid(), signal.SIGKILL)
    print(value)
""")


@pytest.mark.parametrize(
    ("stop", "status", "reason"),
    [
        ("loop", "timeout", "time limit (1.0 s wall) exceeded"),
        ("flood", "fail", "output limit (16 MB) exceeded"),
        ("die", "fail", "exit code 137 (killed by SIGKILL)"),
    ],
)
def test_a_case_that_is_stopped_after_one_that_passed(pool, stop, status, reason):
    spec = stdin_spec(["a\n", f"{stop}\n", "b\n"], ["a\n", "", "b\n"])
    if stop == "flood":  # 16 MB through a pipe can take a loaded machine more than the 1 s
        spec["time_limit_s"] = FLOOD_TIME_S
    verdict = pool.check(spec, code=STOPPABLE)
    statuses = [(case["status"], case.get("reason")) for case in cases(verdict)]
    assert statuses == [("pass", None), (status, reason)], verdict.detail


# How a program ends, and the verdict a runner of its own gives it (as a case after one that
# passed, so that the case runner has served a case already).
ENDINGS = {
    "cpu signal": ("import os, signal\nos.kill(os.getpid(), signal.SIGXCPU)", "timeout",
                   "time limit (1.0 s wall) exceeded"),
    "memory": ("x = bytearray(300 << 20)", "fail", "exit code 1"),
    "segfault": ("import ctypes\nctypes.string_at(0)", "fail", "exit code 139 (killed by SIGSEGV)"),
    "exit code": ("raise SystemExit(3)", "fail", "exit code 3"),
    "exit message": ("raise SystemExit('bye')", "fail", "exit code 1"),
    "os._exit": ("import os\nos._exit(5)", "fail", "exit code 5"),
    "exit 256": ("raise SystemExit(256)", "pass", None),
    "end of input": ("input()", "fail", "exit code 1"),
    "stdout closed": ("import os\nprint('x')\nos.close(1)", "fail", "exit code 120"),
    "stderr flood": ("import sys\nsys.stderr.write('x' * (17 << 20))", "fail", "stderr output limit exceeded"),
    "kills its runner": ("import os, time\nos.kill(1, 9)\ntime.sleep(0.2)", "pass", None),
    # What a process it leaves behind prints after the program has ended is not its output.
    "late writer": ("import os, time\nif os.fork() == 0:\n    time.sleep(0.5)\n    print('late', flush=True)",
                    "pass", None),
}  # fmt: skip


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_case_ends_as_in_a_runner_of_its_own(pool, ending):
    body, status, reason = ENDINGS[ending]
    code = "if input() == 'a':\n    print('a')\nelse:\n" + textwrap.indent(body, "    ") + "\n"
    spec = stdin_spec(["a\n", "b\n"], ["a\n", ""])
    if "flood" in ending:
        spec["time_limit_s"] = FLOOD_TIME_S
    verdict = pool.check(spec, code=code)
    statuses = [(case["status"], case.get("reason")) for case in cases(verdict)]
    assert statuses == [("pass", None), (status, reason)], verdict.detail


CPU_BOUND = program("""
    import resource
    resource.setrlimit(resource.RLIMIT_CPU, (1, resource.getrlimit(resource.RLIMIT_CPU)[1]))
    print(input())
    while True:
        pass
""")


def test_a_case_killed_at_its_cpu_limit_is_a_timeout(pool):
    """The kernel's SIGXCPU at a program's CPU limit (here lowered by the program to 1 s, under a
    3 s wall limit, so that the signal comes first) is a timeout, whatever CPU time wait4 counts."""
    spec = {**stdin_spec(["a\n"], ["a\n"]), "time_limit_s": 3}
    verdict = pool.check(spec, code=CPU_BOUND)
    statuses = [(case["status"], case.get("reason")) for case in cases(verdict)]
    assert statuses == [("timeout", "time limit (3.0 s wall) exceeded")], verdict.detail


def test_the_cpu_limit_rule_holds_without_a_sandbox():
    """Unsandboxed, a Python program runs in its runner itself, which dies of the signal."""
    with CodeVerifier(workers=1, isolation="none", time_limit_s=3) as unsafe:
        for code in (CPU_BOUND, "import os, signal\nos.kill(os.getpid(), signal.SIGXCPU)"):
            verdict = unsafe.check(stdin_spec(["a\n"], ["a\n"]), code=code)
            assert verdict.status == "timeout", verdict.detail


DEEPEST = program("""
    def deepest(n=0):
        try:
            return deepest(n + 1)
        except RecursionError:
            return n
    print(deepest())
""")
TELL = "import sys\nsys.exit(print(sys.stdin.readline().strip(), file=sys.stderr) or 1)\n"


def test_a_case_recurses_as_deep_as_in_a_runner_of_its_own(pool):
    """An interactive problem's solution still runs in a runner of its own: its depth is the one
    a case's child must give (the program starts as many interpreter frames deep)."""
    own = pool.check({**stdin_spec([""], [""]), "interactor": TELL, "language": "python"}, code=DEEPEST)
    shared = pool.check(stdin_spec(["a\n", "b\n"], ["x\n", "x\n"]), code=DEEPEST)
    depth = cases(own)[0]["reason"].removeprefix("wrong answer: interactor: ")
    assert depth.isdigit(), own.detail
    assert cases(shared)[0]["reason"] == f"wrong answer: line 1: expected 'x', got '{depth}'", shared.detail


def test_cases_after_a_stopped_one_still_run(pool):
    """With stop_on_fail off (the supervisor's option; the host always stops at the first
    failure), a case that had to be stopped takes its runner with it: the next gets a new one."""
    inputs = ["a", "loop", "b", "flood", "die", "c"]
    spec = stdin_spec([f"{i}\n" for i in inputs], ["a\n", "", "b\n", "", "", "c\n"])
    spec["time_limit_s"] = FLOOD_TIME_S
    task, guard = build_task(STOPPABLE, spec, pool.limits)
    result = pool._workers[0].run({**task, "stop_on_fail": False}, guard)
    statuses = [case["status"] for case in result["cases"]]
    assert statuses == ["pass", "timeout", "pass", "fail", "fail", "pass"], result["cases"]


def test_a_program_that_does_not_compile_fails_as_python_would(pool):
    verdict = pool.check(echo_spec(), code="print(input()")
    assert [case["status"] for case in cases(verdict)] == ["fail"], verdict.detail
    assert "SyntaxError: '(' was never closed" in cases(verdict)[0]["stderr"], verdict.detail
