"""The zygote: forked by the supervisor before any task, it clones one fresh runner per run, so a
sample pays a fork instead of an interpreter start and inherits nothing the supervisor knows."""

from __future__ import annotations

import builtins
import gc
import json
import os
import socket
import struct

from .framing import HEADER, frame
from .runner import resolve_entry, runner_main
from .syscalls import (
    CLONE_NEWIPC,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_PARENT,
    cloner,
    libc,
)
from .values import decode, encode

# Imported before the zygote forks so that a runner finds them loaded: the judge-style import prelude.
# Each module more makes every runner's clone a little slower; anything else is imported on demand.
# (A runner's `random` is reseeded by the module's own after-fork hook.)
PRELOAD = (
    "bisect collections copy datetime functools heapq itertools math operator random re string typing".split()
)


def _warm_up() -> None:
    """Run a runner's pure code paths here a few times. Python specialises bytecode and fills
    caches as it runs (writes); done here, runners inherit it instead of each copying the pages
    it lives on (a copy-on-write fault costs microseconds in a VM). 20 rounds spare as many faults
    per runner as 300 did (453 against 476 without any, HumanEval) at a fifteenth of the time,
    which every worker's start waits for."""
    refs: list = []
    reply = {"ok": {"globals": {"x": [1, 2]}, "entry": {"ref": [0, "function"]}}}
    request = {"op": "call", "ref": 0, "args": [[1, 2.5, "x", None, True]], "kwargs": {"dict": []}}
    for _ in range(20):
        json.loads(frame(reply)[HEADER.size :])
        json.loads(frame(request)[HEADER.size :])
        decode(
            encode([1, 2.5, "x", None, True, (1,), {"a": {2}}, [[]], b"", 1j, object()], refs), lambda n, t: n
        )
        refs.clear()
    namespace: dict = {"__builtins__": builtins}
    exec(compile("def f(a, b):\n    return a + b\n", "solution.py", "exec"), namespace)
    resolve_entry(namespace, "f")


def zygote_main(control: socket.socket, sandboxed: bool, keep: list[str]) -> None:
    """Clone one runner per request. Requests carry only file descriptors, never code or tests."""
    outer_ids = (os.geteuid(), os.getegid())
    flags = CLONE_PARENT  # the supervisor, not the zygote, is the runner's parent: it waits for it
    if sandboxed:
        flags |= CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC
    clone_process = cloner(flags)  # before the freeze below, like everything the loop uses
    _warm_up()
    gc.collect()
    libc.malloc_trim(0)  # hand freed heap pages back: every resident page makes each clone dearer
    gc.freeze()  # a runner's collections must not write to (and so copy) every inherited page
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 16, 8)
        except OSError:
            os._exit(0)
        if not message:
            os._exit(0)
        try:
            pid = clone_process()
        except OSError as error:
            pid = -(error.errno or 1)
        if pid == 0:
            runner_main(fds, sandboxed, outer_ids, control, keep)
        for fd in fds:
            os.close(fd)
        control.send(struct.pack("<i", pid))
