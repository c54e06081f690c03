"""Helpers shared by the benchmarks."""

from __future__ import annotations

import resource
import subprocess
import time

import psutil


def children_cpu_seconds() -> float:
    """User + system CPU seconds of every finished (waited-for) child process tree so far: the
    difference around `run_measured` is what one run cost in CPU, which a loaded machine changes
    much less than wall time."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_measured(command: list[str], **popen_args) -> tuple[float, int, subprocess.Popen]:
    """Run `command` to its end: wall seconds, peak RSS (bytes) summed over its whole process tree
    (sampled every 50 ms, so that worker pools count), and the finished process."""
    started = time.perf_counter()
    process = psutil.Popen(command, **popen_args)
    peak = 0
    while process.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass  # a process of the tree ended between listing and reading it
        time.sleep(0.05)
    return time.perf_counter() - started, peak, process
