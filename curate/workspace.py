"""The workspace on disk (design §3) and its atomic, resumable stage commits.

    WS/manifest.json                 config, inputs, and per stage: fingerprint, status, counts
    WS/stages/NN_<stage>/part-*.parquet   rows that survived stage NN (+ side tables, _stage.json)
    WS/rejected/NN_<stage>.parquet   rows dropped by stage NN, whole, with stage, reason, detail

A stage is written into `stages/.tmp-NN_<stage>/` and committed by one rename; its rejected file is
moved into place just before, so a crash leaves either a committed stage or an orphan that
`Workspace.open` deletes. A stage is reused on rerun when its fingerprint (a hash of everything
its output depends on: the previous stage's fingerprint, its own options and inputs, and the code
that computes it, see curate.codehash) matches.

    WS/.lock                         held (flock) by the run writing the workspace: pid, host, start

One run at a time writes a workspace (`locked`); `refuse_foreign` keeps a workspace out of a
folder that already holds something else.

A workspace location is a path or a `file://` URI (`local_path`); other filesystem URIs (s3://)
are refused with what is missing for them (docs/ray.md, "The workspace").
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.errors import CurateError, WorkspaceBusy

MANIFEST = "manifest.json"
LOCK = ".lock"
STAGE_INFO = "_stage.json"
FORMAT_VERSION = 1


def local_path(location: str | Path) -> Path:
    """The local folder a workspace location names: a plain path (local, or a shared mount such as
    NFS), or a pyarrow filesystem URI on the local filesystem (`file:///abs/path`). Other schemes
    (s3://, gs://, hdfs://) are a CurateError: the workspace is written with local file operations."""
    if isinstance(location, Path) or "://" not in location:
        return Path(location)
    scheme = location.split("://", 1)[0].lower()
    if scheme != "file":
        raise CurateError(
            f"{location}: a {scheme}:// workspace is not supported yet (the workspace needs a folder "
            "with renames and file locks); use a local or shared path, see docs/ray.md"
        )
    import pyarrow as pa
    from pyarrow.fs import FileSystem

    try:
        return Path(FileSystem.from_uri(location)[1])
    except (pa.ArrowInvalid, ValueError) as error:
        raise CurateError(f"{location}: not a file:// URI of an absolute path ({error})") from None


def stage_label(index: int, name: str) -> str:
    """A stage's folder and rejected-file name: `NN_<stage>`."""
    return f"{index:02d}_{name}"


@dataclass(frozen=True)
class StageDir:
    index: int
    name: str
    path: Path

    @property
    def label(self) -> str:
        return stage_label(self.index, self.name)

    def parts(self) -> list[Path]:
        return sorted(self.path.glob("part-*.parquet"))

    def info(self) -> dict[str, Any]:
        return json.loads((self.path / STAGE_INFO).read_text())


class Workspace:
    def __init__(self, root: str | Path):
        self.root = local_path(root)
        self.stages_dir = self.root / "stages"
        self.rejected_dir = self.root / "rejected"

    @classmethod
    def open(cls, root: str | Path, create: bool = False) -> Workspace:
        ws = cls(root)
        if not (ws.root / MANIFEST).exists():
            if not create:
                raise CurateError(
                    f"{root}: not a distillery workspace (no {MANIFEST}); run `distillery curate` first"
                )
            ws.root.mkdir(parents=True, exist_ok=True)
            ws.write_manifest({"format_version": FORMAT_VERSION, "created": _now(), "stages": []})
        ws.stages_dir.mkdir(exist_ok=True)
        ws.rejected_dir.mkdir(exist_ok=True)
        if create:
            ws._clean_orphans()
        return ws

    # manifest -------------------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.root / MANIFEST).read_text())

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_json_atomic(self.root / MANIFEST, manifest)

    def update_manifest(self, **fields: Any) -> None:
        manifest = self.manifest()
        manifest.update(fields)
        self.write_manifest(manifest)

    # stages ---------------------------------------------------------------------------------
    def committed(self) -> list[StageDir]:
        """Committed stages in pipeline order."""
        found = []
        for path in sorted(self.stages_dir.glob("[0-9][0-9]_*")):
            if (path / STAGE_INFO).exists():
                index, name = path.name.split("_", 1)
                found.append(StageDir(int(index), name, path))
        return found

    def stage(self, name: str) -> StageDir | None:
        return next((s for s in self.committed() if s.name == name), None)

    def last(self) -> StageDir | None:
        committed = self.committed()
        return committed[-1] if committed else None

    def is_current(self, index: int, name: str, fingerprint: str) -> bool:
        path = self.stages_dir / stage_label(index, name)
        if not (path / STAGE_INFO).exists():
            return False
        return json.loads((path / STAGE_INFO).read_text()).get("fingerprint") == fingerprint

    def rejected_path(self, index: int, name: str) -> Path:
        return self.rejected_dir / f"{stage_label(index, name)}.parquet"

    def begin(self, index: int, name: str) -> Path:
        """A fresh temporary folder for stage `index`; drops it and every later stage first."""
        self.invalidate_from(index)
        tmp = self.stages_dir / f".tmp-{stage_label(index, name)}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        return tmp

    def commit(self, index: int, name: str, tmp: Path, info: dict[str, Any]) -> StageDir:
        """Make a stage visible: rejected file first, then the folder rename that is the commit."""
        write_json_atomic(tmp / STAGE_INFO, info)
        rejected = tmp / "rejected.parquet"
        if rejected.exists():
            os.replace(rejected, self.rejected_path(index, name))
        final = self.stages_dir / stage_label(index, name)
        os.replace(tmp, final)
        _fsync_dir(self.stages_dir)
        manifest = self.manifest()
        manifest["stages"] = [s for s in manifest.get("stages", []) if s["index"] < index] + [info]
        self.write_manifest(manifest)
        return StageDir(index, name, final)

    def invalidate_from(self, index: int) -> None:
        """Remove committed stage `index` and everything after it (their inputs changed)."""
        for stage in self.committed():
            if stage.index >= index:
                shutil.rmtree(stage.path)
                self.rejected_path(stage.index, stage.name).unlink(missing_ok=True)
        manifest = self.manifest()
        manifest["stages"] = [s for s in manifest.get("stages", []) if s["index"] < index]
        self.write_manifest(manifest)

    def rejected_files(self) -> list[Path]:
        committed = {s.label for s in self.committed()}
        return [p for p in sorted(self.rejected_dir.glob("*.parquet")) if p.stem in committed]

    def _clean_orphans(self) -> None:
        for tmp in self.stages_dir.glob(".tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)
        committed = {s.label for s in self.committed()}
        for orphan in self.rejected_dir.glob("*.parquet"):
            if orphan.stem not in committed:
                orphan.unlink()


def refuse_foreign(
    out: str | Path, force: bool = False, what: str = "workspace", markers: tuple[str, ...] = (MANIFEST,)
) -> None:
    """Refuse to write into a folder that holds other things (a model, a dataset, a home
    directory) unless `force`: a rerun there would replace them without a word. A folder holding
    one of `markers` is this command's own earlier output, and fine."""
    root = local_path(out)
    if force or not root.exists() or any((root / marker).exists() for marker in markers):
        return
    if not root.is_dir():
        raise CurateError(f"{out}: exists and is not a folder; choose another --out")
    entries = sorted(p.name for p in root.iterdir() if p.name != LOCK)  # a workspace being made
    if entries:
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise CurateError(
            f"{out}: not empty and not a distillery {what} (holds {shown}); "
            "choose a new or empty --out, or pass --force to write into it anyway"
        )


@contextlib.contextmanager
def locked(root: str | Path, command: str = "curate") -> Iterator[None]:
    """Hold the workspace's lock for a run: `flock` on WS/.lock, which records pid, host and start.
    The kernel drops the lock when its holder dies (even by SIGKILL), so a lock file whose process
    is gone is stale by construction: the next run takes it, says so, and resumes."""
    path = local_path(root) / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_lock(fd)
            raise WorkspaceBusy(
                f"{root}: the workspace is in use by another run ({_describe(holder)}); "
                "wait for it to finish (or stop it), then rerun"
            ) from None
        previous = _read_lock(fd)
        if previous.get("pid") and previous.get("running"):
            print(
                f"note: {root}: a previous run ({_describe(previous)}) ended without finishing; "
                "resuming after its last committed stage",
                file=sys.stderr,
            )
        _write_lock(
            fd,
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": _now(),
                "command": command,
                "running": True,
            },
        )
        try:
            yield
        finally:  # ended, well or with an error: only a killed run leaves `running` behind
            _write_lock(fd, {**_read_lock(fd), "running": False})
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _read_lock(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        return json.loads(os.read(fd, 4096) or b"{}")
    except ValueError:
        return {}


def _write_lock(fd: int, data: dict[str, Any]) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(data).encode())


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "holder unknown"
    return f"pid {holder.get('pid')} on {holder.get('host')}, {holder.get('command')} since {holder.get('started')}"


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
