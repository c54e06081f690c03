"""The step engine: resumable steps, their markers, and running them (side by side where allowed).

Every step writes its output into its own folder; then the engine writes a marker,
OUT/.steps/<step>.json, holding the fingerprint of what the step was made from: its own settings
and the fingerprints of the steps it reads. A rerun skips a step whose marker matches; a step that
was killed midway is started again in the same folder (SFT resumes from its own checkpoints); a
step whose settings changed is redone, and so is everything downstream of it, because their
fingerprints chain. The markers stay out of the step folders, which hold only what the step's tool
wrote (a curate workspace, a model), so those tools see their own folders as they left them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
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
    side_by_side: tuple[str, ...],
    worker: Callable[[str], None] | None,
    log: Callable[[str], None],
) -> list[Step]:
    """Execute every step not done yet, in order; steps of the groups in `redo` are done again.
    Returns the steps it executed (the others were reused from an earlier run).

    With `parallel` > 1, the pending steps of the `side_by_side` groups (they must read only what the
    steps before them wrote) run together in up to `parallel` fresh processes, each calling
    `worker(step name)` (or the step's own `worker`), started in the order of `side_by_side` (then of
    `steps`)."""
    numbers = {id(step): f"[{n}/{len(steps)}] {step.label or step.name}" for n, step in enumerate(steps, 1)}
    pending = []
    for step in steps:
        if step.group not in redo and step.done():
            log(f"{numbers[id(step)]}: done earlier, skipped")
            continue
        if step.out.exists() and step.group in redo:
            shutil.rmtree(step.out)
        pending.append(step)
    executed = list(pending)
    while pending:
        step = pending.pop(0)
        if parallel == 1 or step.group not in side_by_side:
            step.execute()
            log(f"{numbers[id(step)]}: {describe(step.summary)} ({step.seconds:.1f}s)")
            continue
        batch = [step, *(s for s in pending if s.group in side_by_side)]
        pending = [s for s in pending if s not in batch]
        batch.sort(key=lambda s: side_by_side.index(s.group))
        for done in _in_processes(batch, parallel, worker):
            log(f"{numbers[id(done)]}: {describe(done.summary)} ({done.seconds:.1f}s)")
    return executed


def _in_processes(steps: list[Step], parallel: int, worker: Callable[[str], None] | None) -> Iterator[Step]:
    """Run `steps` in up to `parallel` fresh processes; yields each step as it finishes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")  # torch and fork do not mix
    with ProcessPoolExecutor(min(parallel, len(steps)), mp_context=context) as pool:
        futures = {pool.submit(step.worker or worker, step.name): step for step in steps}
        for future in as_completed(futures):
            future.result()
            step = futures[future]
            if not step.done():
                raise RuntimeError(f"{step.name}: the worker process ended without finishing the step")
            yield step


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
