"""The pipeline's stages, in order (DESIGN section 3). A new stage is one module here and one entry
in PIPELINE; `ingest` is built separately because it takes the inputs."""

from __future__ import annotations

from curate.stage import Stage
from curate.stages.ingest import Ingest
from curate.stages.normalize import Normalize

PIPELINE: dict[str, type[Stage]] = {
    "normalize": Normalize,
}

__all__ = ["PIPELINE", "Ingest", "Stage"]
