"""The workspace on disk (DESIGN section 3) and its atomic, resumable stage commits.

    WS/manifest.json                 config, inputs, and per stage: fingerprint, status, counts
    WS/stages/NN_<stage>/part-*.parquet   rows that survived stage NN (+ side tables, _stage.json)
    WS/rejected/NN_<stage>.parquet   rows dropped by stage NN, whole, with stage, reason, detail

A stage is written into `stages/.tmp-NN_<stage>/` and committed by one rename; its rejected file is
moved into place just before, so a crash leaves either a committed stage or an orphan that
`Workspace.open` deletes. A stage is reused on rerun when its fingerprint (a hash of everything
its output depends on: the previous stage's fingerprint, its own config, the code version) matches.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.errors import CurateError

MANIFEST = "manifest.json"
STAGE_INFO = "_stage.json"
FORMAT_VERSION = 1


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
        self.root = Path(root)
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
