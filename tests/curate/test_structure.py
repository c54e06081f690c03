"""The stage package's structure: stage modules share helpers through curate.rows and
curate.think, never through each other, and the pipeline order is written once."""

from __future__ import annotations

import ast
from pathlib import Path

import curate.stages
from curate.schema import STAGE_NAMES
from curate.stages import PIPELINE, STAGES

STAGES_DIR = Path(curate.stages.__file__).parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_stage_module_imports_another():
    modules = sorted(p for p in STAGES_DIR.glob("*.py") if p.name != "__init__.py")
    assert len(modules) == len(STAGES)
    for path in modules:
        others = {m for m in imported_modules(path) if m.startswith("curate.stages")}
        assert not others, f"{path.name} imports {sorted(others)}"


def test_the_pipeline_order_is_the_schema_order():
    assert ["ingest", *PIPELINE] == list(STAGE_NAMES)
    assert [cls.name for cls in STAGES] == list(STAGE_NAMES)
