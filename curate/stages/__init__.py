"""The pipeline's stages, in order (DESIGN section 3). A new stage is one module here and one entry
in PIPELINE; `ingest` is built separately because it takes the inputs."""

from __future__ import annotations

from curate.stage import Stage
from curate.stages.decontaminate import Decontaminate
from curate.stages.exact_dedup import ExactDedup
from curate.stages.ingest import Ingest
from curate.stages.longattn import LongAttn
from curate.stages.longreps import LongRePS
from curate.stages.near_dedup import NearDedup
from curate.stages.normalize import Normalize
from curate.stages.quality import Quality
from curate.stages.select import Select
from curate.stages.shard import Shard
from curate.stages.split import Split
from curate.stages.verify import Verify

PIPELINE: dict[str, type[Stage]] = {
    "normalize": Normalize,
    "exact_dedup": ExactDedup,
    "near_dedup": NearDedup,
    "decontaminate": Decontaminate,
    "verify": Verify,
    "quality": Quality,
    # opt-in (enabled: true in the config): long-context path checks and document selection
    "longreps": LongRePS,
    "longattn": LongAttn,
    "split": Split,
    "select": Select,
    "shard": Shard,
}

__all__ = ["PIPELINE", "Ingest", "Stage"]
