"""Hostile programs are contained (issue 4, "must be contained"): the verdict is fail or timeout,
nothing they start outlives the run, the host is untouched and the pool goes on.

Every test runs under each sandbox installed here (bwrap and unshare in CI), with a 1 s time
limit and 256 MB of address space per process.
"""

from __future__ import annotations

import os
import secrets
import socket
import textwrap
import threading
import time

import pytest

from curate.verify.code import CodeVerifier
from curate.verify.code.sandbox import SANDBOX_ENV, candidates
from tests.verify.code.helpers import ADD_CODE, assert_none_survive, assert_pool_alive, cases

MODES = candidates("auto")


def spec_returning(expected: object) -> dict:
    return {"kind": "call", "fn_name": "attack", "cases": [{"args": [], "expected": expected}]}


def program(source: str) -> str:
    return textwrap.dedent(source).lstrip("\n")


def named(token: str) -> str:
    """Code that renames the current process to `token`, so the host can find it."""
    return f"open('/proc/self/comm', 'w').write({token!r})"


@pytest.fixture(params=MODES)
def pool(request, sandbox_verifier):
    verifier = sandbox_verifier(request.param)
    yield verifier
    assert_pool_alive(verifier)


def test_at_least_one_sandbox_is_installed():
    assert MODES, "neither bwrap nor unshare is installed: code verification cannot run here"


def test_fork_bomb(pool):
    token = "cv" + secrets.token_hex(6)
    code = program(f"""
        import os

        def attack():
            {named(token)}
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
    """)
    verdict = pool.check(spec_returning(1), code=code)
    assert verdict.status in ("fail", "timeout"), verdict.detail
    assert_none_survive(token)


@pytest.mark.parametrize(
    "attack",
    [
        "x = bytearray(8 * 1024**3)",
        "chunks = []\n    while True:\n        chunks.append(bytearray(16 * 1024**2))",
    ],
    ids=["one huge allocation", "growing until the limit"],
)
def test_memory_bomb(pool, attack):
    verdict = pool.check(spec_returning(1), code=f"def attack():\n    {attack}\n    return 1\n")
    # On a loaded machine the growing bomb may reach the 1 s limit before the memory limit.
    assert verdict.status in ("fail", "timeout"), verdict.detail
    if verdict.status == "fail":
        assert "MemoryError" in cases(verdict)[0]["reason"]


@pytest.mark.parametrize(
    "attack", ["while True:\n        pass", "import time\n    time.sleep(10**6)"], ids=["spin", "sleep"]
)
def test_infinite_loop_and_sleeping_forever_time_out(pool, attack):
    start = time.monotonic()
    verdict = pool.check(spec_returning(1), code=f"def attack():\n    {attack}\n")
    assert verdict.status == "timeout", verdict.detail
    assert time.monotonic() - start < 10


def test_stdin_program_that_never_ends(pool):
    spec = {"kind": "stdin", "cases": [{"input": "", "output": "1\n"}]}
    verdict = pool.check(spec, code="print(1, flush=True)\nwhile True:\n    pass\n")
    assert verdict.status == "timeout", verdict.detail


def test_a_gigabyte_of_output_is_cut_off(pool):
    # 5 s: the 16 MB before the cut can take a loaded machine more than the pool's 1 s to read
    spec = {"kind": "stdin", "cases": [{"input": "", "output": "1\n"}], "time_limit_s": 5}
    code = "import sys\nline = 'x' * (1 << 20) + '\\n'\nfor _ in range(1024):\n    sys.stdout.write(line)\n"
    start = time.monotonic()
    verdict = pool.check(spec, code=code)
    assert verdict.status == "fail", verdict.detail
    assert "output limit" in cases(verdict)[0]["reason"]
    assert time.monotonic() - start < 10


def test_a_gigabyte_file_is_cut_off(pool):
    code = program("""
        def attack():
            with open("big", "wb") as handle:
                for _ in range(1024):
                    handle.write(b"x" * (1 << 20))
            return 1
    """)
    verdict = pool.check(spec_returning(1), code=code)
    assert verdict.status == "fail", verdict.detail
    assert "File too large" in cases(verdict)[0]["reason"] or "No space" in cases(verdict)[0]["reason"]


def test_no_connection_to_a_server_on_the_host(pool):
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    port = server.getsockname()[1]
    accepted, done = [], threading.Event()

    def serve() -> None:  # bounded: stops when the check is over
        while not done.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve)
    thread.start()
    code = program(f"""
        import socket

        def attack():
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=0.5).sendall(b"hello")
                return "connected"
            except OSError as error:
                return type(error).__name__
    """)
    try:
        verdict = pool.check(spec_returning("connected"), code=code)
    finally:
        done.set()
        thread.join()
        server.close()
    assert verdict.status == "fail", verdict.detail
    assert accepted == []


def test_no_writes_outside_the_run_folder(pool, tmp_path):
    targets = [
        str(tmp_path / "escaped"),
        "/etc/escaped",
        "/usr/escaped",
        "/escaped",
        "/dev/escaped",
        "../escaped",
    ]
    code = program(f"""
        def attack():
            written = []
            for path in {targets!r}:
                try:
                    with open(path, "w") as handle:
                        handle.write("x")
                    written.append(path)
                except OSError:
                    pass
            return written
    """)
    verdict = pool.check(spec_returning(targets), code=code)
    assert verdict.status == "fail", verdict.detail
    assert "got []" in cases(verdict)[0]["reason"]
    assert not (tmp_path / "escaped").exists() and not os.path.exists("/escaped")


def test_each_run_has_its_own_temporary_folder(pool):
    """A file a run leaves in /tmp or /dev/shm is gone for the next run, even in the same worker."""
    writer = "def attack():\n    open('/tmp/left', 'w').write('x')\n    open('/dev/shm/left', 'w').write('x')\n    return 1\n"
    assert pool.check(spec_returning(1), code=writer).status == "pass"
    reader = (
        "import os\ndef attack():\n    return [os.path.exists(p) for p in ('/tmp/left', '/dev/shm/left')]\n"
    )
    assert pool.check(spec_returning([False, False]), code=reader).status == "pass"


@pytest.mark.parametrize(
    "attack",
    [
        "os.kill(os.getppid(), signal.SIGKILL)",
        "os.kill(-1, signal.SIGKILL)",
        "[os.kill(pid, signal.SIGKILL) for pid in range(1, 4096) if pid != os.getpid() and ok(pid)]",
        "os.killpg(os.getpgid(0), signal.SIGKILL)",
    ],
    ids=["parent", "everyone", "every pid", "own group"],
)
def test_killing_the_parent(pool, attack):
    code = program(f"""
        import os, signal

        def ok(pid):
            return True

        def attack():
            for step in range(2):
                try:
                    {attack}
                except OSError:
                    pass
            return 0
    """)
    verdict = pool.check(spec_returning(1), code=code)
    assert verdict.status == "fail", verdict.detail


def test_daemons_do_not_outlive_the_run(pool):
    token = "cv" + secrets.token_hex(6)
    code = program(f"""
        import os, time

        def attack():
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    {named(token)}
                    time.sleep(60)
                os._exit(0)
            time.sleep(0.2)
            return 0
    """)
    verdict = pool.check(spec_returning(1), code=code)
    assert verdict.status == "fail", verdict.detail
    assert_none_survive(token)


def test_daemons_of_a_stdin_program_do_not_outlive_it(pool):
    token = "cv" + secrets.token_hex(6)
    code = program(f"""
        import os, sys, time

        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.close(1)
                {named(token)}
                time.sleep(60)
            os._exit(0)
        print(1)
    """)
    verdict = pool.check({"kind": "stdin", "cases": [{"input": "", "output": "1\n"}]}, code=code)
    assert verdict.status == "pass", verdict.detail  # the program itself is right
    assert_none_survive(token)


def test_runs_see_neither_the_host_nor_the_worker(pool, monkeypatch):
    """No host file beyond the system and the interpreter, no host process, only a scrubbed environment."""
    monkeypatch.setenv("DISTILLERY_HOST_SECRET", "x")
    code = program("""
        import os

        def attack():
            host = [p for p in ("/work/shared", "/home", "/root/.bashrc", os.path.expanduser("~/.ssh")) if os.path.exists(p)]
            return [host, os.getpid(), os.getuid() != 0, sorted(os.environ)]
    """)
    verdict = pool.check(spec_returning([[], 1, True, sorted(SANDBOX_ENV)]), code=code)
    assert verdict.status == "pass", verdict.detail


def test_correct_code_still_passes_in_every_sandbox(pool):
    verdict = pool.check(
        {"kind": "call", "fn_name": "add", "cases": [{"args": [1, 2], "expected": 3}]}, code=ADD_CODE
    )
    assert verdict.status == "pass", verdict.detail


@pytest.mark.parametrize("mode", MODES)
def test_a_virtual_environment_is_seen_as_its_interpreter_and_packages_only(tmp_path, mode):
    """A clone under /tmp with its virtual environment inside (issue 18): the sandbox shows the
    interpreter link, pyvenv.cfg and site-packages, not the clone nor the rest of the environment."""
    import subprocess
    import sys

    clone = tmp_path / "clone"
    venv = clone / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (clone / "secret.txt").write_text("expected answers")
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-I", "-c", "import site; print(site.getsitepackages()[0])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (tmp_path / "clone" / site / "marker_package.py").write_text("VALUE = 42\n")
    code = program(f"""
        import os
        import marker_package

        def attack():
            return [sorted(os.listdir({str(venv)!r})), sorted(os.listdir({str(venv / "bin")!r})),
                    os.path.exists({str(clone / "secret.txt")!r}), marker_package.VALUE]
    """)
    expected = [["bin", "lib", "pyvenv.cfg"], ["python"], False, 42]
    with CodeVerifier(workers=1, isolation=mode, python=str(python), time_limit_s=5) as verifier:
        verdict = verifier.check(spec_returning(expected), code=code)
    assert verdict.status == "pass", verdict.detail
