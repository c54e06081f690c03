"""Verify many code samples with a pool of pre-started sandboxed workers.

Each item is one sample: a mapping with `tests` (the spec JSON) and `code` (a solution as is) or
`response` (a model output to extract the code from), or a (response, tests) pair. Verdicts come
back in input order. A worker runs one sample at a time; a pool of N workers runs N at once.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import queue
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from curate.verify.code import judges, languages
from curate.verify.code.extract import extract_code, fence_language
from curate.verify.code.limits import (
    DEFAULT_MAX_PROCESSES,
    DEFAULT_MEMORY_MB,
    DEFAULT_TIME_LIMIT_S,
    FILE_MB,
    JUDGE_MEMORY_MB,
    JUDGE_TIME_S,
    OPEN_FILES,
    OUTPUT_MB,
    TMP_MB,
)
from curate.verify.code.sandbox import IsolationError, Worker, WorkerError, start_worker
from curate.verify.code.specs import SpecError, parse_spec, solution_import
from curate.verify.result import Verdict

_FIXED_LIMITS = {"file_mb": FILE_MB, "open_files": OPEN_FILES, "tmp_mb": TMP_MB, "output_mb": OUTPUT_MB}
_GUARD_SLACK_S = 10.0  # beyond the task's own limits, before the host gives up on a worker

Item = Mapping | tuple

# Feeder threads still stopping their workers after close(wait=False): joined at exit, so that a
# sandbox that does not end by itself is still killed (Worker.stop) before this process ends.
_stopping: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


@atexit.register
def _join_stopping() -> None:
    for thread in list(_stopping):
        thread.join(timeout=5)


@dataclass(frozen=True)
class Limits:
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    memory_mb: int = DEFAULT_MEMORY_MB
    max_processes: int = DEFAULT_MAX_PROCESSES
    total_time_s: float | None = None


def build_task(code: str, spec: dict, limits: Limits, language: str = "python") -> tuple[dict, float]:
    """The task a worker runs for one sample, and how long the host waits for its answer."""
    kind = spec["kind"]
    wall = float(spec.get("time_limit_s") or limits.time_limit_s)
    runs = len(spec.get("cases", ()))
    cpu = {"stdin": wall, "call": wall * (runs + 1), "assert": wall * 2, "pytest": wall * 2}[kind]
    memory = int(spec.get("memory_mb") or limits.memory_mb)
    total = spec.get("total_time_s") or limits.total_time_s
    task = {
        "kind": kind,
        "code": code,
        "prelude": spec.get("prelude"),
        "float_tol": spec.get("float_tol"),
        "compare": spec.get("compare"),
        "checker": spec.get("checker"),
        "limits": {
            "wall_s": wall,
            "cpu_s": cpu,
            "memory_mb": memory,
            "processes": limits.max_processes,
            "total_s": float(total) if total else None,
            **_FIXED_LIMITS,
        },
    }
    guard = 0.0
    if language != "python":
        task["program"] = program = languages.program(languages.BY_NAME[language], code, memory)
        task["limits"]["memory_mb"] = memory + program["memory_overhead_mb"]
        task["limits"]["processes"] = max(limits.max_processes, program["processes"] or 0)
        if program["compile"]:
            task["compile_limits"] = {
                **task["limits"],
                "wall_s": languages.COMPILE_TIME_LIMIT_S,
                "cpu_s": languages.COMPILE_TIME_LIMIT_S,
                "memory_mb": languages.COMPILE_MEMORY_MB + program["memory_overhead_mb"],
                "processes": max(languages.COMPILE_PROCESSES, program["processes"] or 0),
            }
            guard = languages.COMPILE_TIME_LIMIT_S + 1
    if kind == "assert":
        task.update(entry_point=spec["entry_point"], test_code=spec["code"])
    elif kind == "pytest":
        task["test_code"] = spec["code"]
    else:
        task["cases"] = spec["cases"]
        if kind == "call":
            task["fn_name"] = spec["fn_name"]
    if kind == "stdin" and total:
        runs = min(runs, math.ceil(float(total) / wall) + 1)  # the budget stops it before the last case
    guard += (runs * (wall + 1) if kind == "stdin" else cpu) + _GUARD_SLACK_S
    return task, guard


def _unpack(item: Item) -> tuple[str | None, object, bool]:
    """(text, tests, text_is_code) of one item."""
    if isinstance(item, Mapping):
        code = item.get("code")
        if isinstance(code, str) and code.strip():
            return code, item.get("tests"), True
        return item.get("response"), item.get("tests"), False
    if isinstance(item, tuple | list) and len(item) == 2:
        return item[0], item[1], False
    raise TypeError(
        f"a code item is a mapping with tests and code/response, or a (response, tests) pair; got {item!r}"
    )


def _entry_hint(spec: dict) -> str | None:
    if spec["kind"] == "assert":
        return spec["entry_point"]
    if spec["kind"] == "call":
        return spec["fn_name"]
    if spec["kind"] == "pytest":
        return solution_import(spec["code"])
    return None


class CodeVerifier:
    """A pool of sandboxed workers. Use as a context manager, or call close().

    isolation: "auto" (bubblewrap, else unshare; refuses when neither works), "bwrap", "unshare",
    or "none" (no isolation: only for code you trust). Limits given here are defaults that a
    spec's own time_limit_s / memory_mb override. Thread-safe; map() keeps every worker busy.
    judge_include: folders searched for the headers of C++ checkers and interactors (testlib.h),
    before those of DISTILLERY_JUDGE_INCLUDE.

    Each worker has a host thread of its own; with pin_cpus, worker i and its thread stay on the
    i-th CPU this process may use, because a sample is a dozen hand-offs between processes and a
    hand-off to another (virtual) CPU costs far more than one on the same CPU.
    """

    def __init__(
        self,
        workers: int = 1,
        isolation: str = "auto",
        *,
        time_limit_s: float = DEFAULT_TIME_LIMIT_S,
        memory_mb: int = DEFAULT_MEMORY_MB,
        max_processes: int = DEFAULT_MAX_PROCESSES,
        total_time_s: float | None = None,
        python: str | None = None,
        language: str = "python",
        pin_cpus: bool = True,
        judge_include: Sequence[str] = (),
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if language not in languages.SUPPORTED:
            raise ValueError(f"unknown language {language!r}; expected one of {languages.SUPPORTED}")
        self.limits = Limits(
            float(time_limit_s),
            int(memory_mb),
            int(max_processes),
            float(total_time_s) if total_time_s else None,
        )
        self.language = language
        self._python = python or sys.executable
        self._judge_include = judges.include_dirs(judge_include)
        self._probe = {"wall_s": 30.0, "cpu_s": 30.0, "memory_mb": 512, "processes": 8, **_FIXED_LIMITS}
        cpus = sorted(os.sched_getaffinity(0)) if pin_cpus else []
        self._cpus = [cpus[index % len(cpus)] if cpus else None for index in range(workers)]
        self._tasks: queue.SimpleQueue[tuple[Future, tuple] | None] = queue.SimpleQueue()
        self._workers: list[Worker] = []
        self._threads: list[threading.Thread] = []
        self._closed = False
        self.isolation = isolation
        self._start_threads(workers)  # all at once, each finding the sandbox that works here
        modes = {worker.isolation for worker in self._workers}
        if len(modes) > 1:  # a sandbox that failed for some workers only: do not mix them
            self.close()
            raise IsolationError(
                f"workers started under different sandboxes {sorted(modes)}: name one with isolation="
            )
        self.isolation = self._workers[0].isolation

    def _start_threads(self, count: int) -> None:
        errors: list[BaseException] = []
        started = []
        for index in range(count):
            ready = threading.Event()
            thread = threading.Thread(
                target=self._feed, args=(index, ready, errors), name=f"code-verify-{index}", daemon=True
            )
            thread.start()
            started.append(ready)
            self._threads.append(thread)
        for ready in started:
            ready.wait()
        if errors:
            self.close()
            raise errors[0]

    def _feed(self, index: int, ready: threading.Event, errors: list[BaseException]) -> None:
        """Thread body: start worker `index`, then run tasks from the queue on it until told to stop."""
        cpu = self._cpus[index]
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})  # this thread only
        try:
            worker = start_worker(self.isolation, self._python, TMP_MB, self._probe, cpu)
        except BaseException as error:  # noqa: B036 - handed to the constructor, which raises it
            errors.append(error)
            ready.set()
            return
        self._workers.append(worker)
        ready.set()
        try:
            while (job := self._tasks.get()) is not None:
                future, prepared = job
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(self._run(worker, prepared))
                    except BaseException as error:  # noqa: B036 - delivered to whoever waits on it
                        future.set_exception(error)
        finally:
            worker.stop()

    @property
    def workers(self) -> int:
        return len(self._workers)

    def cpu_seconds(self) -> float:
        """CPU time used so far by the pool's sandboxes (supervisors, zygotes, runners); the
        calling process's own share is not included. A worker restarted meanwhile starts at 0."""
        return sum(worker.cpu_seconds() for worker in self._workers)

    # --- verifying --------------------------------------------------------------------------------------

    def _prepare(self, item: Item) -> Verdict | tuple[dict, float, str]:
        """A ready verdict (nothing to run) or (task, guard seconds, extracted code)."""
        text, tests, is_code = _unpack(item)
        spec = None
        if tests is not None and not (isinstance(tests, str) and not tests.strip()):
            try:
                spec = parse_spec(tests, check_python=False)  # the sandbox compiles the test
            except SpecError as error:
                code = text if is_code else extract_code(text, self.language)
                return Verdict("invalid_reference", code, json.dumps({"message": str(error)}))
        language = self._language(spec, None if is_code else text)
        code = text if is_code else extract_code(text, language, _entry_hint(spec) if spec else None)
        if spec is None:
            return Verdict("no_reference", code, json.dumps({"message": "no tests"}))
        if code is None:
            return Verdict("no_answer", None, json.dumps({"message": "no code found in the response"}))
        if spec.get("interactive") and not spec.get("interactor"):
            message = "an interactive problem: it needs an interactor, and none is given"
            return Verdict("unsupported", code, json.dumps({"message": message}))
        if language != "python" and spec["kind"] != "stdin":
            message = f"{spec['kind']} tests call Python functions; a {language} solution needs stdin tests"
            return Verdict("invalid_reference", code, json.dumps({"message": message}))
        missing = languages.missing_tool(language)
        if missing:
            message = f"{missing} is not installed here, so {language} cannot be verified"
            return Verdict("error", code, json.dumps({"message": message}))
        task, guard = build_task(code, spec, self.limits, language)
        judge = spec.get("interactor") or (
            spec["checker"] if isinstance(spec.get("checker"), Mapping) else None
        )
        if judge is not None:
            role = "interactor" if spec.get("interactor") else "checker"
            try:
                task["judge"] = judges.prepare(judge, role, self._python, self._judge_include)
            except judges.JudgeError as error:
                return Verdict("invalid_reference", code, json.dumps({"message": f"{role}: {error}"}))
            except judges.JudgeToolMissing as error:
                return Verdict("error", code, json.dumps({"message": f"{role}: {error}"}))
            task["checker"] = None  # the program decides, not a Python function
            task["judge_limits"] = {
                **task["limits"],
                "wall_s": JUDGE_TIME_S,
                "cpu_s": JUDGE_TIME_S + task["limits"]["wall_s"],  # an interactor lives as long as the run
                "memory_mb": JUDGE_MEMORY_MB,
                "processes": max(DEFAULT_MAX_PROCESSES, task["limits"]["processes"]),
            }
            guard += len(task["cases"]) * (JUDGE_TIME_S + 1)
        return task, guard, code

    def _language(self, spec: dict | None, response: str | None) -> str:
        """The spec's `language`; else, for stdin tests, the language of the response's code block;
        else the verifier's default. Function tests (call, assert, pytest) are Python's."""
        if spec is not None and spec.get("language"):
            return spec["language"]
        if spec is not None and spec["kind"] != "stdin":
            return "python"
        fenced = fence_language(response, languages.SUPPORTED) if response else None
        return fenced or self.language

    def _run(self, worker: Worker, prepared: tuple[dict, float, str]) -> Verdict:
        task, guard, code = prepared
        start = time.perf_counter()
        try:
            result = worker.run(task, guard)
        except WorkerError as error:
            seconds = round(time.perf_counter() - start, 6)
            return Verdict("error", code, json.dumps({"message": f"sandbox worker failed: {error}"}), seconds)
        detail = {
            "cases": result.get("cases", []),
            "message": result.get("message", ""),
            "isolation": self.isolation,
        }
        for key in ("builds", "compile_seconds"):  # a compiled language's build
            if key in result:
                detail[key] = result[key]
        return Verdict(
            result["status"], code, json.dumps(detail, ensure_ascii=False), float(result.get("seconds", 0.0))
        )

    def check(self, tests: object, response: str | None = None, code: str | None = None) -> Verdict:
        """Verify one sample: `code` as is, or the code extracted from `response`."""
        return next(self.map([{"tests": tests, "response": response, "code": code}]))

    def map(self, items: Iterable[Item]) -> Iterator[Verdict]:
        """Verify many samples; yields one Verdict per item, in input order."""
        if self._closed:
            raise RuntimeError("this CodeVerifier is closed")
        pending: deque[Future | Verdict] = deque()
        source = iter(items)
        window = 4 * len(self._workers)

        def fill() -> None:
            while len(pending) < window:
                try:
                    item = next(source)
                except StopIteration:
                    return
                prepared = self._prepare(item)
                if isinstance(prepared, Verdict):
                    pending.append(prepared)
                else:
                    future: Future = Future()
                    self._tasks.put((future, prepared))
                    pending.append(future)

        fill()
        while pending:
            head = pending.popleft()
            yield head if isinstance(head, Verdict) else head.result()
            fill()

    # --- lifecycle ----------------------------------------------------------------------------------------

    def close(self, wait: bool = True) -> None:
        """Stop the workers (after the tasks already queued). With wait=False (what leaving a
        `with` block does), return at once: queued tasks still run, and the sandboxes end in the
        background (a sandbox's teardown waits on the kernel, tens of milliseconds); one that
        does not end by itself is still killed, by the end of this process at the latest."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        for _ in self._threads:
            self._tasks.put(None)
        for thread in self._threads:
            if thread is threading.current_thread():
                continue
            if wait:
                thread.join()
            else:
                _stopping.add(thread)

    def __enter__(self) -> CodeVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(wait=False)

    def __del__(self) -> None:
        self.close()


def verify_code_batch(
    items: Iterable[Item], workers: int = 1, isolation: str = "auto", **limits: object
) -> list[Verdict]:
    """Verify many samples with a fresh pool of `workers`; verdicts in input order."""
    with CodeVerifier(workers=workers, isolation=isolation, **limits) as verifier:  # type: ignore[arg-type]
        return list(verifier.map(items))


def check_code(
    tests: object, response: str | None = None, code: str | None = None, isolation: str = "auto"
) -> Verdict:
    """Verify one sample with a one-off worker (starting it takes a fraction of a second)."""
    with CodeVerifier(workers=1, isolation=isolation) as verifier:
        return verifier.check(tests, response=response, code=code)
