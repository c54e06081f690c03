"""Helpers shared by the benchmarks."""

from __future__ import annotations

import os
import subprocess
import time

import psutil


def run_measured(command: list[str], **popen_args) -> tuple[float, int, subprocess.Popen, float]:
    """Run `command` to its end: wall seconds, peak RSS (bytes) summed over its whole process tree
    (sampled every 50 ms, so that worker pools count), the finished process, and the CPU seconds
    (user + system) of the tree: each process's last sampled CPU time, which a loaded machine
    changes far less than wall time (a process that lives under 50 ms is missed)."""
    started = time.perf_counter()
    process = psutil.Popen(command, **popen_args)
    peak, cpu = 0, {}
    while process.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            for p in tree:
                times = p.cpu_times()
                cpu[p.pid] = times.user + times.system
        except psutil.Error:
            pass  # a process of the tree ended between listing and reading it
        time.sleep(0.05)
    return time.perf_counter() - started, peak, process, sum(cpu.values())


def wall_and_load(began: float, load_before: tuple[float, float, float]) -> str:
    """The closing line of a multi-seed run: its wall seconds since `began` (perf_counter) and the
    load average before and now, so a reader can tell an idle figure from a loaded one."""
    load_after = os.getloadavg()
    return (
        f"{time.perf_counter() - began:.0f}s wall; load average (1, 5, 15 min) before "
        f"{', '.join(f'{v:.1f}' for v in load_before)}, after {', '.join(f'{v:.1f}' for v in load_after)}"
    )
