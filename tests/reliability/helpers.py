"""Shared pieces of the fault suite: a small corpus that exercises every default stage (math rows
for the sympy workers, code rows for the sandboxes, duplicates for dedup), CLI runs in their own
process, byte comparison of workspaces, and the process tree of a run."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def make_corpus(path: Path, math_rows: int = 120, code_rows: int = 24, seed: int = 0) -> Path:
    """JSON lines in the prompt/response shape: math with references (some wrong answers, some
    repeated rows for dedup), code with call-style tests (some failing)."""
    rng = random.Random(seed)
    lines = []
    for i in range(math_rows):
        a, b = rng.randint(1, 999), rng.randint(1, 999)
        answer = a + b if i % 7 else a + b + 1  # every 7th is wrong: verify rejects it
        words = " ".join(rng.choice(["add", "carry", "check", "sum", "digits", "tens"]) for _ in range(30))
        lines.append(
            {
                "prompt": f"Problem {i}: what is {a} + {b}?",
                "response": f"<think>{words}</think> The answer is \\boxed{{{answer}}}.",
                "reference": str(a + b),
            }
        )
        if i % 20 == 0:
            lines.append(dict(lines[-1]))  # an exact duplicate
    for i in range(code_rows):
        k = rng.randint(1, 50)
        body = f"return x + {k}" if i % 5 else f"return x - {k}"  # every 5th fails its tests
        tests = {
            "kind": "call",
            "fn_name": f"shift_{i}",
            "cases": [{"args": [n], "expected": n + k} for n in (0, 3, 10)],
        }
        lines.append(
            {
                "prompt": f"Write shift_{i}(x) that adds {k} to x.",
                "response": f"<think>add {k}</think>\n```python\ndef shift_{i}(x):\n    {body}\n```",
                "tests": json.dumps(tests),
            }
        )
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


PACKAGES = ("curate", "distill", "merge", "sql")


def copy_code(dest: Path) -> Path:
    """A copy of the project's packages under `dest`, to run (or change) apart from the checkout."""
    for package in PACKAGES:
        shutil.copytree(REPO / package, dest / package, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def curate_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "distill.cli", "curate", *args, "--quiet"]


def _env(code: Path | None) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(code or REPO), "PYTHONDONTWRITEBYTECODE": "1"}


def run_curate(
    *args: str, cwd: Path, code: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """`distillery curate ARGS` in its own process, with the packages of `code` (default: the checkout)."""
    return subprocess.run(
        curate_command(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=_env(code)
    )


def start_curate(*args: str, cwd: Path, code: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        curate_command(*args),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(code),
    )


def parquet_bytes(ws: Path) -> dict[str, bytes]:
    """Every Parquet file of a workspace, by relative path."""
    files = sorted(ws.rglob("*.parquet"))
    assert files, f"no parquet under {ws}"
    return {str(p.relative_to(ws)): p.read_bytes() for p in files}


def assert_same_parquet(a: Path, b: Path) -> None:
    left, right = parquet_bytes(a), parquet_bytes(b)
    assert sorted(left) == sorted(right)
    differing = [name for name in left if left[name] != right[name]]
    assert not differing, f"Parquet files differ: {differing}"


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, from /proc (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """The pids among `pids` that are still running (a zombie waiting to be reaped is not)."""
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            running.add(pid)
    return running


def wait_gone(pids: set[int], grace: float = 20.0) -> set[int]:
    """Wait until none of `pids` runs (orphans notice their parent's death and exit); the rest."""
    deadline = time.monotonic() + grace
    while (left := alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left
