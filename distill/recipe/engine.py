"""The step engine: resumable steps, their markers, and running them (side by side with `parallel`).

Every step writes its output into its own folder; then the engine writes a marker,
OUT/.steps/<step>.json, holding the fingerprint of what the step was made from: its own settings
and the fingerprints of the steps it reads. A rerun skips a step whose marker matches; a step that
was killed midway is started again in the same folder (SFT resumes from its own checkpoints); a
step whose settings changed is redone, and so is everything downstream of it, because their
fingerprints chain. The markers stay out of the step folders, which hold only what the step's tool
wrote (a curate workspace, a model), so those tools see their own folders as they left them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKERS = ".steps"  # under the run's output folder


def fingerprint(name: str, settings: Any, after: list[Step], out: Path, code: str = "") -> str:
    """The fingerprint of step `name`: its settings, those of the steps it reads and `code` (the
    step_code of the module that computes it). The run's output folder is written as `{out}`, so
    that a run folder can be moved or copied."""
    text = json.dumps(settings, sort_keys=True, default=str).replace(str(out), "{out}")
    value = {"step": name, "settings": text, "after": [s.fingerprint for s in after], "code": code}
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


# Libraries that compute the models and scores (curate.codehash adds those that write the data).
STEP_LIBRARIES = ("torch", "transformers", "safetensors", "tokenizers")
# Not followed: what the recipe's parser computes is in each step's settings, and every step imports
# it (with the SFT config's checks behind it), so following it would tie curation to the trainer.
NOT_FOLLOWED = ("distill.recipe.schema",)


def step_code(module: str) -> str:
    """A hash of the code that computes a step: the sources of its module and of every project module
    it imports, followed through their imports (curate.codehash), and the versions of the libraries
    that train and evaluate. An upgraded trainer or verifier redoes the steps it computes."""
    from curate.codehash import code_hash

    code = code_hash(module, NOT_FOLLOWED)
    return hashlib.sha256(f"{code}\0{_library_versions()}".encode()).hexdigest()[:16]


@functools.cache
def _library_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for library in STEP_LIBRARIES:
        try:
            found.append(f"{library}={version(library)}")
        except PackageNotFoundError:
            found.append(f"{library}=none")
    return ",".join(found)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Step:
    """One resumable unit of work: `run()` fills `out` and returns a short summary for the table."""

    name: str
    group: str
    out: Path
    fingerprint: str
    run: Callable[[], dict[str, Any]]
    markers: Path  # the run's marker folder
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None  # how long the step took when it ran (kept in its marker)
    label: str = ""  # how the log names it (default: its name); a variant's steps carry the variant's
    worker: Callable[[str], None] | None = None  # runs it in a worker process (default: run_steps')
    after: list[Step] = field(default_factory=list)  # the steps whose output it reads
    position: str = ""  # "[n/N]", its place among its run's steps as the log shows it

    @property
    def marker(self) -> Path:
        """Written when the step has finished."""
        return self.markers / f"{self.name.replace('/', '__')}.json"

    @property
    def pending(self) -> Path:
        """Written when the step starts, removed when it has finished."""
        return self.marker.with_suffix(".pending")

    def done(self) -> bool:
        if not self.marker.is_file() or not self.out.exists():
            return False
        saved = json.loads(self.marker.read_text())
        if saved.get("fingerprint") != self.fingerprint:
            return False
        self.summary, self.seconds = saved.get("summary", {}), saved.get("seconds")
        return True

    def execute(self) -> None:
        self.markers.mkdir(parents=True, exist_ok=True)
        self.marker.unlink(missing_ok=True)
        if self.out.exists():
            # A killed attempt with the same inputs is continued (SFT resumes from its checkpoints);
            # anything else in the folder came from other settings and is cleared first.
            pending = self.pending
            same = (
                pending.is_file() and json.loads(pending.read_text()).get("fingerprint") == self.fingerprint
            )
            if not same:
                shutil.rmtree(self.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.pending.write_text(json.dumps({"fingerprint": self.fingerprint}))
        started = time.perf_counter()
        self.summary = self.run()
        self.seconds = round(time.perf_counter() - started, 1)
        marker = {"fingerprint": self.fingerprint, "summary": self.summary, "seconds": self.seconds}
        self.marker.write_text(json.dumps(marker, indent=2))
        self.pending.unlink()


def run_steps(
    steps: list[Step],
    redo: set[str],
    parallel: int,
    worker: Callable[[str], None] | None,
    log: Callable[[str], None],
) -> list[Step]:
    """Execute every step not done yet; steps of the groups in `redo` are done again. Returns the
    steps it executed (the others were reused from an earlier run).

    A step starts once every step it reads (`after`) has finished, the earliest ready one in `steps`
    first. With `parallel` 1 they run one at a time in this process. With more, up to `parallel`
    ready steps run at once, each in a worker process calling `worker(step name)` (or the step's own
    `worker`); a step that is ready while nothing runs and nothing else is ready runs in this process
    instead, with its progress bars, since nothing could start beside it anyway."""
    numbers = {
        id(step): f"{step.position or f'[{n}/{len(steps)}]'} {step.label or step.name}"
        for n, step in enumerate(steps, 1)
    }
    pending = []
    for step in steps:
        if step.group not in redo and step.done():
            log(f"{numbers[id(step)]}: done earlier, skipped")
            continue
        if step.out.exists() and step.group in redo:
            shutil.rmtree(step.out)
        pending.append(step)
    executed = list(pending)

    def finished(step: Step) -> None:
        log(f"{numbers[id(step)]}: {describe(step.summary)} ({step.seconds:.1f}s)")

    running: dict[Future, Step] = {}
    with _worker_pool(parallel) as pool:
        while pending or running:
            unfinished = {id(s) for s in (*pending, *running.values())}
            ready = [s for s in pending if not any(id(d) in unfinished for d in s.after)]
            if not ready and not running:
                raise RuntimeError(f"steps that wait on each other: {[s.name for s in pending]}")
            if parallel == 1 or (len(ready) == 1 and not running):
                step = ready[0]
                pending.remove(step)
                step.execute()
                finished(step)
                continue
            for step in ready[: parallel - len(running)]:
                pending.remove(step)
                running[pool().submit(step.worker or worker, step.name)] = step
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                step = running.pop(future)
                future.result()
                if not step.done():
                    raise RuntimeError(f"{step.name}: the worker process ended without finishing the step")
                finished(step)
    return executed


@contextlib.contextmanager
def _worker_pool(size: int) -> Iterator[Callable[[], ProcessPoolExecutor]]:
    """A pool of `size` worker processes, started only when first asked for (a run whose steps each
    wait on the one before never needs one) and kept for the rest of the run, so that each worker
    imports torch once."""
    import multiprocessing

    pool: list[ProcessPoolExecutor] = []

    def get() -> ProcessPoolExecutor:
        if not pool:
            context = multiprocessing.get_context("spawn")  # torch and fork do not mix
            pool.append(ProcessPoolExecutor(size, mp_context=context))
        return pool[0]

    try:
        yield get
    finally:
        for executor in pool:
            executor.shutdown(wait=True, cancel_futures=True)


def describe(summary: dict[str, Any]) -> str:
    """A step's summary in one line; training steps show loss and tokens/s."""
    if "tokens_per_s" in summary:
        loss = f"loss {summary['first_loss']:.3f} -> {summary['last_loss']:.3f}"
        return f"{summary['steps']} steps on {summary['samples']} samples, {loss}, {summary['tokens_per_s']:,} tokens/s"
    return ", ".join(f"{k} {_short(v)}" for k, v in summary.items())


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "/".join(map(str, value))
    return str(value)
