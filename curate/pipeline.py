"""`curate`: inputs + a config -> a workspace, stage by stage, resuming what is already committed.

The config (YAML, every key optional):

    format: auto          # or an adapter name, for every input
    source: null          # source name for every row (default: the input's name)
    map: {problem: Question, reference: Answer}   # rename columns before detection (docs/formats.md);
                          # or per input: {"qa/*.csv": {problem: Question}}
    split: train          # the split of DatasetDict folders and hub names (`all`: every split)
    workers: 2
    engine: local         # or ray: every stage on a Ray cluster (docs/ray.md), same output
    ray_address: null     # the cluster to join (default: a local one started for the run)
    stages:
      ingest: {chunk_bytes: 8388608}
      normalize: {}
      near_dedup: {threshold: 0.8}
      verify: {enabled: false}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from curate.engine import ENGINES, make_engine
from curate.errors import CurateError, EmptyResult, did_you_mean
from curate.readers import resolve_inputs
from curate.report import write_report
from curate.schema import STAGE_ALIASES
from curate.stage import Stage, check_keys, run_stages
from curate.stages import PIPELINE, Ingest
from curate.workspace import Workspace, locked, refuse_foreign

CONFIG_KEYS = {"format", "source", "map", "split", "workers", "engine", "ray_address", "stages"}


def load_config(path: str | Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        config = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise CurateError(f"{path}: cannot read the config: {error}") from error
    if not isinstance(config, dict):
        raise CurateError(f"{path}: the config must be a mapping")
    check_keys(str(path), config, CONFIG_KEYS, "key")
    engine = config.get("engine", "local")
    if engine not in ENGINES:
        raise CurateError(
            f"{path}: engine must be one of {', '.join(ENGINES)}, got {engine!r}{did_you_mean(str(engine), ENGINES)}"
        )
    return config


def _stage_name(name: str) -> str:
    """The stage's name now, for a name a config may use (`split` is `domain`)."""
    return STAGE_ALIASES.get(name, name)


def build_stages(inputs: list[str], config: dict[str, Any], until: str | None = None) -> list[Stage]:
    """The configured stages in pipeline order, stopping after `until` when given."""
    until = _stage_name(until) if until is not None else None
    if until is not None and until not in ("ingest", *PIPELINE):
        raise CurateError(
            f"--until {until!r}: no such stage{did_you_mean(until, ['ingest', *PIPELINE])} "
            f"(stages: ingest, {', '.join(PIPELINE)})"
        )
    given = dict(config.get("stages") or {})
    check_keys("config stages", given, ["ingest", *PIPELINE, *STAGE_ALIASES], "stage")
    options = {_stage_name(name): value for name, value in given.items()}
    if len(options) < len(given):
        raise CurateError("config stages: a stage is given under its name and its former name; keep one")
    ingest_options = {
        "format": config.get("format"),
        "source": config.get("source"),
        **{key: config[key] for key in ("map", "split") if config.get(key) is not None},
        **(options.get("ingest") or {}),
    }
    stages: list[Stage] = [Ingest(resolve_inputs(inputs), **ingest_options)]
    for name, cls in PIPELINE.items():
        if until == stages[-1].name:
            break
        stage_options = dict(options.get(name) or {})
        if stage_options.pop("enabled", cls.enabled_by_default):
            stages.append(cls(**stage_options))
    return stages


def curate(
    inputs: list[str],
    out: str | Path,
    config: dict[str, Any] | None = None,
    workers: int | None = None,
    progress: bool = True,
    until: str | None = None,
    force: bool = False,
    engine: str | None = None,
    ray_address: str | None = None,
) -> list[dict]:
    """Run (or resume) the pipeline into workspace `out`; returns each stage's manifest entry.
    With `until`, stop after that stage (later stages of an earlier run are dropped).

    `out` must be new, empty or a workspace (else CurateError, unless `force`); the run holds the
    workspace's lock (a second run is refused with WorkspaceBusy). A stage that keeps no row ends
    the run with EmptyResult (after writing the report) rather than producing empty shards.

    `engine` (default: the config's `engine`, else local) runs the stages in this process or on a
    Ray cluster (`ray_address`, else the config's, else one started for the run): same workspace."""
    config = config or {}
    if config.get("format") == "auto":
        config = {**config, "format": None}
    refuse_foreign(out, force)
    stages = build_stages(inputs, config, until)
    with locked(out, "curate"):
        ws = Workspace.open(out, create=True)
        ws.update_manifest(config=config, inputs=[str(i) for i in inputs])
        workers = workers or int(config.get("workers", 1))
        runner = make_engine(
            engine or config.get("engine") or "local",
            ray_address or config.get("ray_address"),
            workers,
            progress,
        )
        try:
            results = run_stages(
                ws, stages, workers=workers, progress=progress, stop_when_empty=True, engine=runner
            )
        except EmptyResult:
            write_report(ws.root)  # the report shows where every row went
            raise
        finally:
            runner.close()
        write_report(ws.root)
    return results
