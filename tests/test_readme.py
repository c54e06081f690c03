"""The README is the front door: its file tree names every module there is, and no module that is gone."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "curate", "distill", "merge", "sql")
SUFFIXES = (".py", ".sql", ".yaml")
# Folders of data and of benchmark outputs, not of code.
NOT_MODULES = {"data", "out", "__pycache__"}


def tree_paths(readme: str) -> set[str]:
    """The file paths the README's tree block spells, from its two-space indentation."""
    block = readme.split("## The tree", 1)[1].split("```", 2)[1]
    stack: list[str] = []
    paths = set()
    for line in block.splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2
        name = line.split()[0]
        stack[depth:] = [name.rstrip("/")]
        if not name.endswith("/"):
            paths.add("/".join(stack))
    return paths


def modules_on_disk() -> set[str]:
    found = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            rel = path.relative_to(ROOT)
            if path.suffix in SUFFIXES and path.name != "__init__.py" and not NOT_MODULES & set(rel.parts):
                found.add(rel.as_posix())
    return found


def test_the_readme_tree_lists_every_module():
    listed = tree_paths((ROOT / "README.md").read_text())
    on_disk = modules_on_disk()
    assert not on_disk - listed, f"modules missing from the README tree: {sorted(on_disk - listed)}"
    assert not listed - on_disk, f"README tree names modules that do not exist: {sorted(listed - on_disk)}"
