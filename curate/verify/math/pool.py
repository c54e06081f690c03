"""Run math checks in worker processes with a hard wall-clock limit and an address-space limit.

The parent never parses anything: it sends (response, reference) strings to a worker and gets
back plain strings (status, extracted answer, detail). Tasks travel in small chunks, one message
each way per chunk, because most checks take well under a millisecond and per-message overhead
would otherwise dominate. Each worker publishes in shared memory which task it is running, since
when, and the answer that task extracted; the parent reads that to enforce the limit: a task
running longer than `timeout` gets its worker killed (SIGKILL from the parent; no signal.alarm)
and replaced, and the unreported tasks of that worker go to the others. Each worker lowers its own
RLIMIT_AS at start, so a runaway allocation ends in a MemoryError inside the worker, reported as
`timeout`.

Workers come from a forkserver that has already imported sympy and warmed the LaTeX parser
(warm.py), so replacing a killed worker takes milliseconds, not the seconds a fresh interpreter
needs.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import socket
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from curate.verify.result import Verdict

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MEMORY_MB = 1024
# Where a response holds its answer (curate/verify/math/extract.py): found by the rules, "trace"
# (boxes, tags and markers only) or "bare" (the response is the answer).
ANSWER_MODES = ("auto", "trace", "bare")
_START_TIMEOUT_S = 120.0  # a worker that is not ready by then is broken, not slow
_CHUNK_TASKS = 16
_CHUNKS_IN_FLIGHT = 4  # per worker: one running, the rest waiting in its socket
_MIN_QUEUE_BYTES = 16_384
_EXTRACTED_BYTES = 256 * 1024  # room for the running task's extracted answer (longer ones are cut)
_IDLE = -1.0
_PRELOAD = ["curate.verify.math.warm", "curate.verify.math.pool"]

Pair = tuple[str | None, str | None]
Task = tuple[int, str | None, str | None]


def _address_space_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _limit_memory(extra_mb: int) -> None:
    """Cap this process's address space at its current size plus extra_mb (Linux; no-op elsewhere)."""
    try:
        import resource
    except ImportError:
        return
    current = _address_space_bytes()
    if current is None:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = current + extra_mb * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


class _Progress:
    """Shared memory one worker writes and the parent reads: running task, its start, its answer."""

    def __init__(self, context: multiprocessing.context.BaseContext) -> None:
        self.clock = context.RawArray(ctypes.c_double, 2)  # task index (or _IDLE), time.monotonic() at start
        self.text = context.RawArray(ctypes.c_char, _EXTRACTED_BYTES)
        self.length = context.RawValue(ctypes.c_int, 0)
        self.clock[0] = _IDLE

    def begin(self, index: int) -> None:
        self.length.value = 0
        self.clock[1] = time.monotonic()
        self.clock[0] = float(index)

    def end(self) -> None:
        self.clock[0] = _IDLE

    def running(self) -> tuple[int, float] | None:
        """(task index, start) of the running task, or None when idle (read twice: writes are not atomic)."""
        index, start = self.clock[0], self.clock[1]
        if index == _IDLE or index != self.clock[0]:
            return None
        return int(index), start

    def set_extracted(self, text: str) -> None:
        data = text.encode("utf-8")[:_EXTRACTED_BYTES]
        self.text[: len(data)] = data
        self.length.value = len(data)

    def truncated(self) -> bool:
        return self.length.value == _EXTRACTED_BYTES

    def extracted(self) -> str | None:
        if self.length.value == 0:
            return None
        return bytes(self.text[: self.length.value]).decode("utf-8", errors="ignore")


def _worker_main(conn: Connection, progress: _Progress, memory_mb: int, answers: str = "auto") -> None:
    """Worker loop: ("ready",), then for each chunk of tasks one ("done", [(index, status, ...)]) message."""
    from curate.verify.math.check import check_outcome

    _limit_memory(memory_mb)
    conn.send(("ready",))
    while True:
        try:
            chunk = conn.recv()
        except (EOFError, OSError):
            return
        if chunk is None:
            return
        results = []
        for index, response, reference in chunk:
            progress.begin(index)
            start = time.perf_counter()
            status, extracted, detail = check_outcome(response, reference, progress.set_extracted, answers)
            results.append((index, status, extracted, detail, time.perf_counter() - start))
            progress.end()
            if status == "timeout":
                break  # memory or recursion ran out: report, then leave for a clean worker
        conn.send(("done", results))
        if results[-1][1] == "timeout":
            return


@contextmanager
def _caller_main_hidden() -> Iterator[None]:
    """Start processes without the caller's __main__ module.

    multiprocessing re-imports the parent's main script in every new process (as __mp_main__),
    which runs an unguarded script's top level again and fails outright for `python - <<EOF`.
    Workers need nothing from it (their code is in this module), so while a worker starts,
    __main__ shows neither a file nor a spec, as in an interactive session.
    """
    main = sys.modules.get("__main__")
    saved = {name: main.__dict__[name] for name in ("__file__", "__spec__") if main and name in main.__dict__}
    try:
        if main is not None:
            main.__dict__.pop("__file__", None)
            main.__dict__["__spec__"] = None
        yield
    finally:
        if main is not None:
            main.__dict__.pop("__spec__", None)
            main.__dict__.update(saved)


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


@dataclass
class _Worker:
    process: Any  # a multiprocessing Process of the pool's context
    conn: Connection
    progress: _Progress
    born: float
    queue_bytes: int  # how much may wait in its socket without blocking a send
    ready: bool = False
    chunks: deque[list[int]] = field(default_factory=deque)  # task indices sent, not reported yet

    def unreported(self) -> list[int]:
        return [index for chunk in self.chunks for index in chunk]


class MathVerifier:
    """A pool of math-check workers. Use as a context manager, or call close().

    `map` checks many (response, reference) pairs and yields Verdicts in input order; `check`
    checks one. Not thread-safe: use one verifier per thread.
    """

    def __init__(
        self,
        workers: int = 1,
        timeout: float = DEFAULT_TIMEOUT_S,
        memory_mb: int = DEFAULT_MEMORY_MB,
        answers: str = "auto",
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.timeout = float(timeout)
        self.memory_mb = int(memory_mb)
        if answers not in ANSWER_MODES:
            raise ValueError(f"answers must be one of {ANSWER_MODES}")
        self.answers = answers  # how responses hold their answer (extract.py: auto, trace, bare)
        self._context = _context()
        self._closed = False
        self._workers = [self._spawn() for _ in range(workers)]

    # --- worker lifecycle ---------------------------------------------------------------------------

    def _spawn(self) -> _Worker:
        parent_end, child_end = self._context.Pipe(duplex=True)
        progress = _Progress(self._context)
        process = self._context.Process(
            target=_worker_main,
            args=(child_end, progress, self.memory_mb, self.answers),
            daemon=True,
            name="math-verify-worker",
        )
        with _caller_main_hidden():
            process.start()
        child_end.close()
        return _Worker(process, parent_end, progress, time.monotonic(), _queue_bytes(parent_end))

    def _replace(self, worker: _Worker) -> None:
        worker.process.kill()
        worker.process.join(5)
        worker.conn.close()
        self._workers[self._workers.index(worker)] = self._spawn()

    def wait_ready(self) -> None:
        """Block until every worker has started (map and check do not need this; benchmarks do)."""
        while not all(worker.ready for worker in self._workers):
            starting = [w for w in self._workers if not w.ready]
            if any(time.monotonic() >= w.born + _START_TIMEOUT_S for w in starting):
                raise RuntimeError(f"a math verification worker did not start within {_START_TIMEOUT_S:g} s")
            ready = wait([w.conn for w in starting], timeout=1.0)
            for worker in starting:
                if worker.conn in ready:
                    self._drain(worker)  # a starting worker only ever says "ready" (or dies)

    def close(self) -> None:
        """Stop the workers (those busy are killed)."""
        if self._closed:
            return
        self._closed = True
        for worker in self._workers:
            try:
                if not worker.chunks:
                    worker.conn.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + 2
        for worker in self._workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)
            worker.conn.close()

    def __enter__(self) -> MathVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            try:
                self.close()
            except Exception:  # at interpreter exit the modules close() needs may be gone
                pass

    # --- checking -------------------------------------------------------------------------------------

    def check(self, response: str | None, reference: str | None) -> Verdict:
        """Verify one response against one reference answer."""
        return next(self.map([(response, reference)]))

    def map(self, pairs: Iterable[Pair]) -> Iterator[Verdict]:
        """Verify (response, reference) pairs; yields one Verdict per pair, in input order.

        Numbers are accepted as text (an int reference is common); other non-text values get a
        verdict without a check: `invalid_reference` or `no_answer`.
        """
        if self._closed:
            raise RuntimeError("this MathVerifier is closed")
        self._source = iter(enumerate(pairs))
        self._exhausted = False
        self._payloads: dict[int, tuple[str | None, str | None]] = {}  # sent or waiting, not answered
        self._retry: deque[int] = deque()  # unreported tasks of a replaced worker, to send again
        self._results: dict[int, Verdict] = {}
        next_out = 0
        try:
            while True:
                self._dispatch()
                while next_out in self._results:
                    yield self._results.pop(next_out)
                    next_out += 1
                if self._exhausted and not self._payloads:
                    return
                self._collect()
        finally:
            # A caller that stops early leaves tasks in flight: restart those workers so their late
            # answers cannot leak into the next call.
            for worker in list(self._workers):
                if worker.chunks and not self._closed:
                    worker.chunks.clear()
                    self._replace(worker)

    def _next_task(self) -> int | None:
        """Index of the next task to send (its payload stored), or None when there is none now."""
        if self._retry:
            return self._retry.popleft()
        while not self._exhausted:
            try:
                index, (response, reference) = next(self._source)
            except StopIteration:
                self._exhausted = True
                return None
            payload, verdict = _payload(response, reference)
            if verdict is not None:
                self._results[index] = verdict
                continue
            self._payloads[index] = payload
            return index
        return None

    def _next_chunk(self, limit_bytes: int) -> list[int]:
        """Up to _CHUNK_TASKS tasks within limit_bytes; a task that does not fit waits for the next chunk."""
        chunk: list[int] = []
        size = 0
        while len(chunk) < _CHUNK_TASKS:
            index = self._next_task()
            if index is None:
                break
            task_size = _size(self._payloads[index])
            if size + task_size > limit_bytes:
                self._retry.appendleft(index)
                break
            chunk.append(index)
            size += task_size
        return chunk

    def _dispatch(self) -> None:
        """Keep each ready worker busy, with chunks queued behind the running one.

        Queued chunks wait in the worker's socket, so a send to a busy worker must fit in the
        socket's buffer: a send that blocks would stop this loop from enforcing deadlines. The
        queue is deep (tens of milliseconds of work) so that workers keep going while this
        process waits for its turn on a busy machine.
        """
        for worker in self._workers:
            while worker.ready and len(worker.chunks) < _CHUNKS_IN_FLIGHT:
                queued = sum(_size(self._payloads[index]) for index in worker.unreported())
                # an idle worker takes any task, however big (it is reading: the send cannot block)
                room = worker.queue_bytes - queued if worker.chunks else 1 << 62
                chunk = self._next_chunk(room) if room > 0 else []
                if not chunk:
                    break
                worker.chunks.append(chunk)
                worker.conn.send([(index, *self._payloads[index]) for index in chunk])

    def _collect(self) -> None:
        """Wait for messages or the nearest deadline; handle answers, deaths and timeouts."""
        now = time.monotonic()
        deadlines = [now + self.timeout]
        for worker in self._workers:
            running = worker.progress.running() if worker.chunks else None
            if running is not None:
                deadlines.append(running[1] + self.timeout)
            if not worker.ready:
                deadlines.append(worker.born + _START_TIMEOUT_S)
        ready = wait([w.conn for w in self._workers], timeout=max(0.0, min(deadlines) - now))
        for worker in list(self._workers):
            if worker.conn in ready:
                self._drain(worker)
        now = time.monotonic()
        for worker in list(self._workers):
            running = worker.progress.running() if worker.chunks else None
            if running is not None and now >= running[1] + self.timeout:
                index, start = running
                worker.process.kill()  # first, so the shared answer stops changing
                detail = f"no result within {self.timeout:g} s; worker killed"
                if worker.progress.truncated():
                    detail += f"; extracted answer cut to {_EXTRACTED_BYTES // 1024} kB"
                self._record(
                    index, Verdict("timeout", worker.progress.extracted(), detail, round(now - start, 6))
                )
                self._retire(worker, skip=index)
            elif not worker.ready and now >= worker.born + _START_TIMEOUT_S:
                raise RuntimeError(f"a math verification worker did not start within {_START_TIMEOUT_S:g} s")

    def _record(self, index: int, verdict: Verdict) -> None:
        self._payloads.pop(index, None)
        self._results[index] = verdict

    def _retire(self, worker: _Worker, skip: int | None = None) -> None:
        """Replace a worker; its unreported tasks (but `skip`) are sent again to a live one."""
        self._retry.extendleft(reversed([index for index in worker.unreported() if index != skip]))
        worker.chunks.clear()
        self._replace(worker)

    def _drain(self, worker: _Worker) -> None:
        try:
            while worker.conn.poll():
                message = worker.conn.recv()
                if message[0] == "ready":
                    worker.ready = True
                    continue
                reported = {index for index, *_ in message[1]}
                for index, status, extracted, detail, seconds in message[1]:
                    self._record(index, Verdict(status, extracted, detail, round(seconds, 6)))
                chunk = worker.chunks.popleft()
                self._retry.extendleft(reversed([index for index in chunk if index not in reported]))
        except (EOFError, OSError):
            worker.process.join(5)
            if not worker.ready:
                raise RuntimeError(
                    f"a math verification worker failed to start (exit code {worker.process.exitcode})"
                ) from None
            running = worker.progress.running()
            if running is not None:
                # the running task took the worker down (a crash in native code): it gets `error`
                detail = f"worker died (exit code {worker.process.exitcode})"
                self._record(running[0], Verdict("error", worker.progress.extracted(), detail, 0.0))
            self._retire(worker, skip=running[0] if running else None)


def _queue_bytes(conn: Connection) -> int:
    """Half the send buffer of the connection's socket (the rest covers per-message overhead)."""
    try:
        sock = socket.socket(fileno=conn.fileno())
    except OSError:
        return _MIN_QUEUE_BYTES
    try:
        return max(_MIN_QUEUE_BYTES, sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) // 2)
    except OSError:
        return _MIN_QUEUE_BYTES
    finally:
        sock.detach()  # the descriptor stays the connection's


def _size(payload: tuple[str | None, str | None]) -> int:
    return sum(len(text) for text in payload if text)


def _payload(response: object, reference: object) -> tuple[tuple[str | None, str | None], Verdict | None]:
    """(response, reference) as text, or a verdict when a value has a type no check can use."""
    if isinstance(reference, (int, float)) and not isinstance(reference, bool):
        reference = str(reference)
    if reference is not None and not isinstance(reference, str):
        return (None, None), Verdict(
            "invalid_reference", None, f"reference is a {type(reference).__name__}, not text"
        )
    if response is not None and not isinstance(response, str):
        return (None, None), Verdict("no_answer", None, f"response is a {type(response).__name__}, not text")
    return (response, reference), None
