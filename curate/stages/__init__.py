"""The pipeline's stages, in the order of curate.schema.STAGE_NAMES (design §3). A new stage
is one module here, its class in STAGES and its name in STAGE_NAMES; `ingest` is built separately
because it takes the inputs. Stage modules import curate.rows and curate.think for what they
share, never each other."""

from __future__ import annotations

from curate.schema import STAGE_NAMES
from curate.stage import Stage
from curate.stages.decontaminate import Decontaminate
from curate.stages.domain import Domain
from curate.stages.exact_dedup import ExactDedup
from curate.stages.ingest import Ingest
from curate.stages.longattn import LongAttn
from curate.stages.longreps import LongRePS
from curate.stages.near_dedup import NearDedup
from curate.stages.normalize import Normalize
from curate.stages.quality import Quality
from curate.stages.select import Select
from curate.stages.shard import Shard
from curate.stages.verify import Verify

STAGES: tuple[type[Stage], ...] = (
    Ingest,
    Normalize,
    ExactDedup,
    NearDedup,
    Decontaminate,
    Verify,
    Quality,
    LongRePS,
    LongAttn,
    Domain,
    Select,
    Shard,
)
_BY_NAME = {cls.name: cls for cls in STAGES}
assert set(_BY_NAME) == set(STAGE_NAMES), "every stage class has a name in STAGE_NAMES, and back"
# Every stage after ingest, in pipeline order.
PIPELINE: dict[str, type[Stage]] = {name: _BY_NAME[name] for name in STAGE_NAMES if name != "ingest"}

__all__ = ["PIPELINE", "STAGES", "Ingest", "Stage"]
