"""The supervisor: one per worker. Reads tasks from the host, keeps the tests and the expected
answers, starts a runner per run and decides every verdict."""

from __future__ import annotations

import builtins
import marshal
import os
import select
import signal
import socket
import struct
import sys
import time
import types

from . import pytest_compat
from .compare import compare_output, compare_tokens, same_value
from .framing import ProtocolError, Timeout, frame, recv_frame, send_frame, write_all
from .plan import planned_calls
from .remote import HarnessError, Session, SolutionDied, SolutionTimeout, call_frame
from .runner import LAST_CASE, NAMESPACE_MARK, NEXT_CASE

STDERR_TAIL = 2000
CHECKER_TIME_S = 10.0
AFTER_INTERACTION_S = 1.0  # how long a solution may run on once the interactor has ended
_BUILTIN_NAMES = frozenset(dir(builtins))


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
        self.namespace: list[int] = []  # the fd the runner sent of its mount namespace (see take_namespace)

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

    def take_namespace(self, channel: socket.socket, deadline: float) -> None:
        """Read the mount namespace a sandboxed runner sends before anything else on its channel
        (runner._hand_over_namespace), for a channel that the supervisor reads; on other channels
        it stays in flight, held by the channel until the closer closes it."""
        if not self.sandboxed:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([channel], [], [], remaining)[0]:
            return  # not started in time: the session's own deadline reports it
        try:
            mark, fds, _, _ = socket.recv_fds(channel, len(NAMESPACE_MARK), 1)
        except OSError:
            return
        self.namespace += fds
        if mark != NAMESPACE_MARK:  # the runner died before sending it
            self.supervisor.closer.close(*fds)

    def finish(self) -> None:
        """Stop, reap and clean up: done after the verdict is sent, so teardown costs no latency.
        The mount namespace is let go only once the runner has been reaped, so that its exit
        never waits for the namespace's teardown."""
        self.stop()
        if self.exit_status is None and self.started():
            self.reap()
        self.supervisor.closer.close(*self.namespace)
        self.namespace = []
        if self.workdir:
            _remove_tree(self.workdir)
            self.workdir = None


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
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<test>":
            line = tb.tb_lineno
        tb = tb.tb_next
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


class Closer:
    """Closes file descriptors on a thread of its own. The last reference to a runner's mount
    namespace (the fd it sent, or the channel holding it in flight) tears the namespace down, and
    that waits for an RCU grace period: done here, the wait delays no sample. When this thread
    falls behind, fds are closed at once instead (correct, only slower)."""

    BACKLOG = 64

    def __init__(self) -> None:
        # Started after the zygote has been forked (a forked thread would not exist in the
        # child anyway); the low-level modules: `threading` would weigh on the supervisor only.
        import _thread
        from _queue import SimpleQueue

        self._queue: SimpleQueue = SimpleQueue()
        _thread.start_new_thread(self._loop, ())

    def close(self, *handles: int | socket.socket) -> None:
        for handle in handles:
            if self._queue.qsize() < self.BACKLOG:
                self._queue.put(handle)
            else:
                _close(handle)

    def _loop(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())  # the main thread's alarms
        while True:
            _close(self._queue.get())


def _close(handle: int | socket.socket) -> None:
    try:
        handle.close() if isinstance(handle, socket.socket) else os.close(handle)
    except OSError:
        pass


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


class Supervisor:
    """Runs tasks from the host one at a time; every verdict is decided here."""

    def __init__(self, host_in: int, host_out: int, zygote: socket.socket, sandboxed: bool) -> None:
        self.host_in, self.host_out, self.zygote, self.sandboxed = host_in, host_out, zygote, sandboxed
        self.devnull = os.open(os.devnull, os.O_RDWR)
        self.closer = Closer()
        self._cache: dict[tuple[str, str], object] = {}
        self._finishing: list[Runner] = []
        self._seen: set[int] = set()  # hashes of the tests run once so far (see _plan)

    # --- runners ------------------------------------------------------------------------------------------

    def start_runner(
        self,
        task: dict,
        mode: str,
        stdio: list[int],
        resolve: dict | None = None,
        planned: list[bytes] = (),
        limits: dict | None = None,
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
            "limits": limits or task["limits"],
            "workdir": workdir,
            "resolve": resolve,
            "program": task.get("program"),
        }
        for earlier in self._finishing:  # the zygote answers in order: collect earlier answers first
            earlier.started()
        first = frame(setup)
        planned = list(planned) if len(first) + sum(map(len, planned)) <= 65536 else []
        queued = len(first) <= 65536  # fits an empty socket buffer: writing it cannot block
        channel, child_end = socket.socketpair()
        try:
            if queued:
                os.write(channel.fileno(), first + b"".join(planned))
            runner = Runner(self, [child_end.fileno(), *stdio], workdir)
        except BaseException:
            self.closer.close(channel)
            if workdir:
                _remove_tree(workdir)
            raise
        finally:
            child_end.close()
        self._finishing.append(runner)
        if not queued:
            write_all(channel.fileno(), first)
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

    def _plan(self, test: str) -> list[tuple[list, dict]]:
        """The calls to queue for a test, from its second sample on: planning costs more CPU than
        the round trips it saves for one sample (about 1 ms against 0.5 on HumanEval), and many
        datasets have one sample per problem; every later sample of the problem gets it free."""
        if ("plan", test) in self._cache:
            return self._cache["plan", test]
        if hash(test) not in self._seen:  # hashes: tests can be large (a collision only plans early)
            if len(self._seen) >= 4096:
                self._seen.clear()
            self._seen.add(hash(test))
            return []
        return self._cached("plan", test, planned_calls)

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
        if kind in ("assert", "pytest"):
            return self.run_assert(task)
        raise ValueError(f"unknown test kind {kind!r}")

    # --- stdin/stdout programs: a fresh process per case, outputs compared here ---------------------------------

    def run_stdin(self, task: dict) -> dict:
        """Each case in a fresh process: a sandboxed Python program's cases in children of one case
        runner (runner._serve_cases), anything else's in a runner each. A program in another
        language is built first (once), and the sample stops when its total time budget is spent."""
        results, status, build, info = [], "pass", None, {}
        if task.get("program"):
            build, info = self.build(task)
            if build is None:
                return {"status": info.pop("status"), "cases": [], "message": info.pop("message"), **info}
        budget, started = task["limits"].get("total_s"), time.monotonic()
        interactive = (task.get("judge") or {}).get("role") == "interactor"
        shared: list = []  # a Python program's cases share one runner: (runner, channel) while it serves
        try:
            for number, case in enumerate(task["cases"]):
                if budget is not None and time.monotonic() - started > budget:
                    results.append({"case": number, "status": "timeout",
                                    "reason": f"total time budget ({budget} s) of the sample exceeded"})  # fmt: skip
                    status = "timeout"
                    break
                if interactive:
                    result = self.run_interactive_case(task, case, build)
                elif build is None and self.sandboxed:
                    result = self.run_shared_case(task, case, shared, number == len(task["cases"]) - 1)
                else:
                    result = self.run_stdin_case(task, case, build)
                result = {"case": number, **result}
                results.append(result)
                if result["status"] != "pass":
                    status = result["status"]
                    if task.get("stop_on_fail", True):
                        break
        finally:
            if build is not None:
                os.close(build)
            if shared:
                self.closer.close(shared[1])
        return {"status": status, "cases": results, "message": "", **info}

    def build(self, task: dict) -> tuple[int | None, dict]:
        """(memfd holding the build as marshal({path: bytes}), info), or (None, the failed result).
        An interpreted program's build is its source; a compiled one's is what its compiler wrote,
        run in a runner of its own under the compile limits."""
        program = task["program"]
        if not program.get("compile"):
            return _memfd(marshal.dumps({program["source"]: task["code"].encode()})), {}
        limits = task["compile_limits"]
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        start = time.perf_counter()
        try:
            runner, channel, _ = self.start_runner(
                task, "compile", [self.devnull, out_w, err_w], limits=limits
            )
        finally:
            os.close(out_w)
            os.close(err_w)
        try:
            output, messages, problem, _ = self._collect(
                runner, out_r, err_r, start + limits["wall_s"], limits
            )
        finally:
            self.closer.close(channel)
            os.close(out_r)
            os.close(err_r)
        info = {"compile_seconds": round(time.perf_counter() - start, 6)}
        text = messages.decode("utf-8", "replace").strip()
        if _timed_out(problem, runner.exit_status, runner.cpu_s, limits):
            reason = f"compilation did not finish within {limits['wall_s']} s"
        elif problem:
            reason = f"compilation stopped: {problem}"
        elif runner.exit_status != 0:
            reason = (
                f"compile error: {text}" if text else f"compile error ({_status_text(runner.exit_status)})"
            )
        else:
            return _memfd(output), {"builds": 1, **info}
        return None, {"status": "fail", "message": reason, **info}

    def run_stdin_case(self, task: dict, case: dict, build: int | None = None) -> dict:
        """One case in a runner of its own (a compiled program, or no sandbox)."""
        limits = task["limits"]
        stdio = _case_stdio(case)
        start = time.perf_counter()
        try:
            runner, channel, _ = self.start_runner(
                task, "stdin", stdio[:3] if build is None else [*stdio[:3], build]
            )
        finally:
            for fd in stdio[:3]:
                os.close(fd)
        try:
            output, stderr_tail, problem, _ = self._collect(
                runner, stdio[3], stdio[4], start + limits["wall_s"], limits
            )
        finally:
            self.closer.close(channel)
            os.close(stdio[3])
            os.close(stdio[4])
        return self._case_verdict(
            task, case, start, output, stderr_tail, problem, runner.exit_status, runner.cpu_s
        )

    def run_shared_case(self, task: dict, case: dict, shared: list, last: bool) -> dict:
        """One case of a Python program in the sample's case runner (runner._serve_cases), started
        for the first case and again after a case that had to be stopped; `shared` holds
        (runner, channel) while that runner serves. `last`: no case follows (its runner need not
        prepare for one)."""
        limits = task["limits"]
        stdio = _case_stdio(case)
        start = time.perf_counter()
        deadline = start + limits["wall_s"]
        mark = LAST_CASE if last else NEXT_CASE
        try:
            if shared:
                try:
                    socket.send_fds(shared[1], [mark], stdio[:3])
                except OSError:  # it ended after its last report (it could not prepare the next case)
                    self.closer.close(shared[1])
                    shared.clear()
            if not shared:
                shared[:] = self.start_runner(task, "cases", [self.devnull] * 3)[:2]
                socket.send_fds(shared[1], [mark], stdio[:3])
            runner, channel = shared
            if not runner.namespace:
                runner.take_namespace(channel, deadline)
        finally:
            for fd in stdio[:3]:
                os.close(fd)
        try:
            if runner.namespace:
                output, stderr_tail, problem, report = self._collect(
                    runner, stdio[3], stdio[4], deadline, limits, channel
                )
            else:  # it did not start within the time limit, or died starting
                runner.stop()
                runner.reap()
                output, stderr_tail, report = b"", b"", None
                problem = "timeout" if time.monotonic() >= deadline else None
        finally:
            os.close(stdio[3])
            os.close(stdio[4])
        if report is None:  # stopped, or gone: the next case gets a fresh runner
            self.closer.close(channel)
            shared.clear()
            exit_status, cpu_s = runner.exit_status, runner.cpu_s
        else:
            exit_status, cpu_s = (report["exit"] & 0xFF) << 8, report["cpu_s"]
        return self._case_verdict(task, case, start, output, stderr_tail, problem, exit_status, cpu_s)

    def _case_verdict(self, task: dict, case: dict, start: float, output: bytes, stderr_tail: bytes,
                      problem: str | None, exit_status: int | None, cpu_s: float) -> dict:  # fmt: skip
        limits = task["limits"]
        result = {"status": "pass", "seconds": round(time.perf_counter() - start, 6)}
        if _timed_out(problem, exit_status, cpu_s, limits):
            result.update(status="timeout", reason=f"time limit ({limits['wall_s']} s wall) exceeded")
        elif problem:
            result.update(status="fail", reason=problem)
        elif os.WIFSIGNALED(exit_status):
            result.update(status="fail", reason=f"killed by {signal.Signals(os.WTERMSIG(exit_status)).name}")
        elif os.WEXITSTATUS(exit_status) != 0:
            result.update(status="fail", reason=_exit_reason(os.WEXITSTATUS(exit_status)))
        else:
            reason = self.judge(task, case, output)
            if reason:
                result.update(status="fail", reason=f"wrong answer: {reason}")
        if result["status"] != "pass" and stderr_tail:
            result["stderr"] = stderr_tail.decode("utf-8", "replace")
        return result

    def _collect(self, runner: Runner, out_r: int, err_r: int, deadline: float, limits: dict,
                 channel: socket.socket | None = None):  # fmt: skip
        """Read stdout/stderr until the program ends; (stdout, stderr excerpt, problem or None,
        report): the excerpt is its head and its tail (a compiler's first error, a traceback's last
        line). A program past its deadline or its output limit is stopped at once. The program's
        end is its runner's exit, or with `channel` (a case runner) the case's report on it; the
        report is None where there was none (the runner was stopped, or died)."""
        output, stderr_head, stderr_tail, stderr_total = bytearray(), b"", bytearray(), 0
        limit = int(limits["output_mb"] * (1 << 20))
        ender = os.pidfd_open(runner.pid) if channel is None else channel.fileno()
        open_fds, exited_at, problem, report = {out_r, err_r}, None, None, None
        try:
            while (open_fds or exited_at is None) and problem is None:
                now = time.monotonic()
                if exited_at is None:
                    wait = deadline - now
                    if wait <= 0:
                        problem = "timeout"
                        break
                    watched = [*open_fds, ender]
                else:
                    wait = exited_at + 0.5 - now  # leftovers after exit: only the unsandboxed mode has any
                    if wait <= 0:
                        break
                    watched = list(open_fds)
                for fd in select.select(watched, [], [], wait)[0]:
                    if fd == ender:
                        exited_at = time.monotonic()
                        if channel is None:
                            runner.reap()
                            runner.stop()  # unsandboxed: its group; sandboxed: already gone with it
                        else:
                            try:
                                report = _case_report(channel, deadline)
                            except Timeout:
                                problem = "timeout"
                                break
                            if report is None:
                                runner.stop()
                                runner.reap()
                        continue
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        open_fds.discard(fd)
                    elif fd == out_r:
                        output += chunk
                        if len(output) > limit:
                            problem = f"output limit ({limits['output_mb']} MB) exceeded"
                    else:
                        if len(stderr_head) < STDERR_TAIL // 2:
                            stderr_head += chunk[: STDERR_TAIL // 2 - len(stderr_head)]
                        stderr_total += len(chunk)
                        stderr_tail = (stderr_tail + chunk)[-STDERR_TAIL:]
                        if stderr_total > limit:
                            problem = "stderr output limit exceeded"
            if problem is not None:
                report = None
                runner.stop()
            if runner.exit_status is None and report is None:
                runner.reap()
            if stderr_total > STDERR_TAIL:
                excerpt = stderr_head + b"\n[...]\n" + bytes(stderr_tail[-STDERR_TAIL // 2 :])
            else:
                excerpt = bytes(stderr_tail)
            return bytes(output), excerpt, problem, report
        finally:
            if channel is None:
                os.close(ender)

    def judge(self, task: dict, case: dict, raw: bytes) -> str | None:
        """None when the output is accepted, else why not: by the problem's checker when it has one
        (a judge program or a Python function), else token by token or line by line (numbers
        within float_tol when given)."""
        if task.get("judge"):
            return self.run_judge_checker(task, case, raw)
        output = raw.decode("utf-8", "replace")
        if task.get("checker"):
            return self.run_checker(task["checker"], case, output)
        if task.get("compare") == "tokens":
            return compare_tokens(output, case["output"], task.get("float_tol"))
        return compare_output(output, case["output"], task.get("float_tol"))

    def run_checker(self, source: str, case: dict, output: str) -> str | None:
        """A trusted Python checker, `check(input, expected, output)` -> bool or (bool, message), run
        here, outside the solution's runner. What it raises is the output's fault (as a testlib
        checker's presentation error); a checker that hangs is stopped after CHECKER_TIME_S."""
        check = self._cached("checker", source, _checker_function)
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, CHECKER_TIME_S)
        try:
            verdict = check(case["input"], case["output"], output)
        except _Deadline:
            raise HarnessError(f"the checker took more than {CHECKER_TIME_S} s") from None
        except Exception as error:  # noqa: BLE001 - the checker refused the output
            return f"checker: {type(error).__name__}: {error}"[:500]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        accepted, message = verdict if isinstance(verdict, tuple) else (verdict, "")
        if accepted is True:
            return None
        if accepted is False:
            return f"checker: {message}"[:500] if message else "checker: output rejected"
        raise HarnessError(f"the checker returned {type(accepted).__name__}, not a bool")

    # --- judge programs (testlib's convention): checkers and interactors, each in a runner of its own ---------

    def _start_judge(self, task: dict, stdio: list[int], case: dict, output: bytes | None):
        """Start the task's judge program on `stdio` with its files, the case's input and answer
        (and the solution's output, for a checker) in its folder."""
        files = {name: text.encode() for name, text in task["judge"]["files"].items()}
        files.update({"input.txt": case["input"].encode(), "answer.txt": case["output"].encode()})
        if output is not None:
            files["output.txt"] = output
        fd = _memfd(marshal.dumps(files))
        program = {"code": "", "program": {"run": task["judge"]["argv"]}, "limits": task["judge_limits"]}
        try:
            return self.start_runner(program, "judge", [*stdio, fd])
        finally:
            os.close(fd)

    def run_judge_checker(self, task: dict, case: dict, output: bytes) -> str | None:
        """A checker program run as `checker input output answer` in a runner of its own."""
        limits = task["judge_limits"]
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        start = time.monotonic()
        try:
            judge, channel, _ = self._start_judge(task, [self.devnull, out_w, err_w], case, output)
        finally:
            os.close(out_w)
            os.close(err_w)
        try:
            _, messages, problem, _ = self._collect(judge, out_r, err_r, start + limits["wall_s"], limits)
        finally:
            self.closer.close(channel)
            os.close(out_r)
            os.close(err_r)
        if problem:
            raise HarnessError(f"the checker stopped: {problem} (limit {limits['wall_s']} s)")
        return _judge_verdict("checker", judge.exit_status, messages)

    def run_interactive_case(self, task: dict, case: dict, build: int | None = None) -> dict:
        """The solution and the interactor, each in a runner of its own, the solution's stdout
        wired to the interactor's stdin and back; the interactor's exit code decides (testlib's
        convention), after the solution's own limits and exit status."""
        limits = task["limits"]
        to_solution, from_solution, err, judge_err = os.pipe(), os.pipe(), os.pipe(), os.pipe()
        start = time.perf_counter()
        deadline = time.monotonic() + limits["wall_s"]
        channels = []
        try:
            judge, channel, _ = self._start_judge(
                task, [from_solution[0], to_solution[1], judge_err[1]], case, None
            )
            channels.append(channel)
            stdio = [to_solution[0], from_solution[1], err[1]] + ([build] if build is not None else [])
            runner, channel, _ = self.start_runner(task, "stdin", stdio)
            channels.append(channel)
        except BaseException:
            for channel in channels:
                self.closer.close(channel)
            os.close(err[0])
            os.close(judge_err[0])
            raise
        finally:
            for fd in (*to_solution, *from_solution, err[1], judge_err[1]):
                os.close(fd)
        try:
            problem, judge_problem, tails, solution_first = self._wait_interaction(
                runner, judge, err[0], judge_err[0], deadline, task["judge_limits"]["wall_s"]
            )
        finally:
            for channel in channels:
                self.closer.close(channel)
            os.close(err[0])
            os.close(judge_err[0])
        result = {"status": "pass", "seconds": round(time.perf_counter() - start, 6)}
        if _timed_out(problem, runner.exit_status, runner.cpu_s, limits):
            result.update(status="timeout", reason=f"time limit ({limits['wall_s']} s wall) exceeded")
        elif judge_problem:
            raise HarnessError(
                f"the interactor did not end within {task['judge_limits']['wall_s']} s of the solution"
            )
        elif solution_first and _judge_crashed(judge.exit_status):
            # A broken pipe, most often: it wrote to a solution that had already gone.
            result.update(status="fail", reason=f"wrong answer: the solution ended before the interactor, "
                          f"which then failed ({_status_text(judge.exit_status)})")  # fmt: skip
        else:
            reason = _judge_verdict("interactor", judge.exit_status, tails[1])
            if reason:
                result.update(status="fail", reason=f"wrong answer: {reason}")
            elif problem:  # accepted, but the solution went on running after the interaction ended
                result.update(status="timeout", reason=problem)
            elif runner.exit_status != 0:
                result.update(status="fail", reason=_status_text(runner.exit_status))
        if result["status"] != "pass" and tails[0]:
            result["stderr"] = tails[0].decode("utf-8", "replace")
        return result

    def _wait_interaction(self, runner: Runner, judge: Runner, err_r: int, judge_err_r: int,
                          deadline: float, judge_wall: float) -> tuple[str | None, str | None, list[bytes], bool]:  # fmt: skip
        """Wait for the solution (until `deadline`) and the interactor (until `judge_wall` after the
        solution ended), keeping the tails of their stderr; stop whichever outlives its time.
        (the solution's problem or None, the interactor's or None, [solution's, interactor's stderr],
        whether the solution ended first)."""
        tails, open_fds = {err_r: b"", judge_err_r: b""}, {err_r, judge_err_r}
        pidfds = {os.pidfd_open(runner.pid): runner, os.pidfd_open(judge.pid): judge}
        ended: dict[Runner, float] = {}
        problem = judge_problem = None

        def read(fd: int) -> None:
            chunk = os.read(fd, 1 << 16)
            if chunk:
                tails[fd] = (tails[fd] + chunk)[-STDERR_TAIL:]
            else:
                open_fds.discard(fd)

        try:
            while len(ended) < 2:
                now = time.monotonic()
                if runner not in ended:
                    after = ended[judge] + AFTER_INTERACTION_S if judge in ended else deadline
                    until = min(deadline, after)
                    if now >= until:
                        problem = (
                            "timeout"
                            if now >= deadline
                            else "the solution did not exit after the interaction"
                        )
                        break
                else:
                    until = ended[runner] + judge_wall
                    if now >= until:
                        judge_problem = "timeout"
                        break
                watched = [*open_fds, *(fd for fd, who in pidfds.items() if who not in ended)]
                for fd in select.select(watched, [], [], until - now)[0]:
                    if fd in pidfds:
                        pidfds[fd].reap()
                        ended[pidfds[fd]] = time.monotonic()
                    else:
                        read(fd)
            for who in (runner, judge):
                if who not in ended:
                    who.stop()
                    who.reap()
            while open_fds and (ready := select.select(list(open_fds), [], [], 0)[0]):  # what is left
                for fd in ready:
                    read(fd)
        finally:
            for fd in pidfds:
                os.close(fd)
        solution_first = runner in ended and (judge not in ended or ended[runner] <= ended[judge])
        return problem, judge_problem, [tails[err_r], tails[judge_err_r]], solution_first

    # --- functions: one serving runner per sample -----------------------------------------------------------

    def _load(self, runner: Runner, session: Session, start: float) -> tuple[object, dict | None]:
        """The runner's load report, or (None, the finished result when loading failed)."""
        runner.take_namespace(session.channel, session.deadline)
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
                call_frame({"op": "call", "entry": task["fn_name"]}, case["args"], {})
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
            self.closer.close(channel)

    def run_assert(self, task: dict) -> dict:
        """Run the test here, against Remote proxies of the solution's entry point and names.

        `assert`: the test's code, then its `check(candidate)` if it defines one; one case.
        `pytest`: the solution is importable as module `solution`; each collected test is a case,
        and the sample passes when every one passes and at least one ran."""
        limits, entry, is_pytest = task["limits"], task.get("entry_point"), task["kind"] == "pytest"
        start = time.perf_counter()
        try:  # trusted code that does not compile is the reference's fault (the host leaves it to us)
            test_code = self._compiled(task["test_code"], "<test>")
            prelude = self._compiled(task["prelude"], "<prelude>") if task.get("prelude") else None
        except (SyntaxError, ValueError) as error:
            return {"status": "invalid_reference", "cases": [], "message": f"not valid Python: {error}"}
        resolve = {"names": sorted(_referenced_names(test_code) - _BUILTIN_NAMES), "entry": entry}
        try:
            plan = [] if is_pytest else self._plan(task["test_code"])
            frames = [call_frame({"op": "call", "ref": 0}, args, kwargs) for args, kwargs in plan]
        except HarnessError:  # a literal that cannot cross (Ellipsis): no head start, that is all
            frames = []
        runner, channel, queued = self.start_runner(task, "serve", [self.devnull] * 3, resolve, frames)
        session = Session(channel, time.monotonic() + limits["wall_s"], queued)
        results: list[dict] = []
        case = {"case": 0, "status": "pass"}
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, limits["wall_s"] * 2)
        installed = {name: sys.modules.get(name) for name in ("solution", "pytest")}
        try:
            # The trusted context (HumanEval's prompt, a judge's import prelude) is set up while the
            # runner starts, and wins over the solution's copies of the same helpers.
            namespace: dict = {"__name__": "__test__", "__builtins__": builtins}
            if prelude is not None:
                exec(prelude, namespace)
            loaded, failed = self._load(runner, session, start)
            if failed:
                return failed
            if type(loaded) is not dict or type(loaded.get("globals")) is not dict:
                raise SolutionDied("the solution process sent a malformed reply")
            found = {name: _module(data) or session.value(data) for name, data in loaded["globals"].items()}
            session.deadline = time.monotonic() + limits["wall_s"]
            signal.setitimer(signal.ITIMER_REAL, limits["wall_s"])
            if is_pytest:
                solution = types.ModuleType("solution")
                solution.__dict__.update(found)
                sys.modules["solution"], sys.modules["pytest"] = solution, pytest_compat
                exec(test_code, namespace)
                for number, (name, test) in enumerate(pytest_compat.collect(namespace, "<test>")):
                    case = {"case": number, "test": name, "status": "pass"}
                    results.append(case)
                    try:
                        test()
                    except pytest_compat.Skipped:
                        case["status"] = "skipped"
                if not any(result["status"] == "pass" for result in results):
                    case = {"case": len(results), "status": "fail", "reason": "no test ran"}
                    results.append(case)
            else:
                for name, value in found.items():
                    namespace.setdefault(name, value)
                candidate = session.value(loaded["entry"])
                if "." not in entry and "(" not in entry:
                    namespace[entry] = candidate  # the entry point is always the solution's
                exec(test_code, namespace)
                check = namespace.get("check")
                if callable(check):
                    check(candidate)
        except (SolutionTimeout, _Deadline):
            case.update(status="timeout", reason=f"time limit ({limits['wall_s']} s wall) exceeded")
        except SolutionDied as error:
            case.update(status="fail", reason=str(error))
        except (HarnessError, pytest_compat.Unsupported) as error:
            case.update(status="error", reason=str(error))
        except SystemExit:
            case.update(status="error", reason="the test code called exit()")
        except Exception as error:  # noqa: BLE001 - a failed assertion or what the solution raised
            case.update(status="fail", reason=_test_failure(error, task["test_code"]))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            runner.stop()
            self.closer.close(channel)
            for name, module in installed.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module
        if not any(result is case for result in results):  # assert, or a module failing before its tests
            results.append(case)
        case["calls"] = session.calls
        case["seconds"] = round(time.perf_counter() - start, 6)
        status = next((r["status"] for r in results if r["status"] not in ("pass", "skipped")), "pass")
        return {"status": status, "cases": results, "message": ""}


def _checker_function(source: str):
    namespace: dict = {"__name__": "__checker__", "__builtins__": builtins}
    exec(compile(source, "<checker>", "exec"), namespace)
    check = namespace.get("check")
    if not callable(check):
        raise HarnessError("the checker defines no check(input, expected, output)")
    return check


def _judge_verdict(role: str, status: int | None, messages: bytes) -> str | None:
    """A judge program's verdict from its exit status (testlib: 0 accepted, 1 wrong answer, 2
    presentation error, 3 and anything else the judge failed): None, a reason, or HarnessError."""
    text = messages.decode("utf-8", "replace").strip()[:500]
    code = os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status) else None
    if code == 0:
        return None
    if code in (1, 2):
        return f"{role}: {text or ('wrong answer', 'presentation error')[code - 1]}"
    raise HarnessError(f"the {role} failed ({_status_text(status)}){': ' + text if text else ''}")


def _judge_crashed(status: int | None) -> bool:
    """Whether a judge ended with neither a verdict (0, 1, 2) nor testlib's explicit FAIL (3)."""
    return status is not None and not (os.WIFEXITED(status) and os.WEXITSTATUS(status) in (0, 1, 2, 3))


def _case_stdio(case: dict) -> list[int]:
    """[stdin (a memfd holding the case's input), stdout's write end, stderr's write end, stdout's
    read end, stderr's read end]."""
    stdin = os.memfd_create("stdin")
    os.write(stdin, case["input"].encode())
    os.lseek(stdin, 0, os.SEEK_SET)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    return [stdin, out_w, err_w, out_r, err_r]


def _case_report(channel: socket.socket, deadline: float) -> dict | None:
    """A case runner's report of a case, or None when it is gone (or sent something else);
    Timeout when it is not all there by the deadline."""
    try:
        report = recv_frame(channel.fileno(), deadline)
    except (EOFError, OSError, ProtocolError):
        return None
    ok = type(report) is dict and type(report.get("exit")) is int and type(report.get("cpu_s")) is float
    return report if ok else None


def _memfd(data: bytes) -> int:
    fd = os.memfd_create("build")
    write_all(fd, data)
    return fd


def _timed_out(problem: str | None, status: int | None, cpu_s: float, limits: dict) -> bool:
    """Whether a run is reported as a timeout: stopped at its wall deadline or, when nothing else
    stopped it, it used its CPU limit or died of RLIMIT_CPU's SIGXCPU (itself, or as 128 + SIGXCPU
    from the runner whose child it was). The kernel sends SIGXCPU on a tick-sampled clock that can
    reach the limit a little before the CPU time wait4 reports does."""
    if problem is not None:
        return problem == "timeout"
    killed_by_cpu_limit = status is not None and (
        (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXCPU)
        or (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 128 + signal.SIGXCPU)
    )
    return killed_by_cpu_limit or cpu_s >= limits["cpu_s"]


def _status_text(status: int | None) -> str:
    if status is not None and os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return _exit_reason(os.WEXITSTATUS(status or 0))


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
