"""Take the code out of a model response.

Order of preference (the first that yields code wins):
1. the answer after the last `</think>` (a reasoning trace's drafts come before it), then the
   whole response;
2. in that text, the last fenced block tagged with the target language (```python, ```py, ...),
   preferring the last one that defines the entry point when one is given;
3. else the last untagged fenced block that parses as the language;
4. else a final fence that was opened but never closed (a truncated response);
5. else, when there is no fence at all, the whole text if it parses as code (a bare solution).
Nothing found: None, which the verifier reports as `no_answer`.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from curate.think import split_reasoning

LANGUAGES = {
    "python": ("python", "py", "python3", "py3", "python2"),
    "cpp": ("cpp", "c++", "cc", "cxx", "hpp", "h++"),
    "c": ("c", "h"),
    "java": ("java",),
    "rust": ("rust", "rs"),
    "go": ("go", "golang"),
    "javascript": ("javascript", "js", "node"),
}
_OPENING = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\s]*)[^`]*$")
_CODE_START = re.compile(
    r"^(def |class |import |from |print\(|if __name__|for |while |[A-Za-z_]\w* = )", re.M
)


@dataclass(frozen=True)
class Block:
    language: str  # the fence's info word, lower case ("" when untagged)
    body: str
    closed: bool


def fenced_blocks(text: str) -> list[Block]:
    """Every fenced code block (``` or ~~~, any length >= 3), in order."""
    blocks, lines, index = [], text.splitlines(), 0
    while index < len(lines):
        opening = _OPENING.match(lines[index])
        index += 1
        if not opening:
            continue
        fence, body = opening["fence"], []
        closed = False
        while index < len(lines):
            line = lines[index]
            index += 1
            stripped = line.strip()
            if (
                stripped
                and stripped[0] == fence[0]
                and set(stripped) == {fence[0]}
                and len(stripped) >= len(fence)
            ):
                closed = True
                break
            body.append(line)
        blocks.append(Block(opening["info"].lower().lstrip("{.").rstrip("}"), "\n".join(body) + "\n", closed))
    return blocks


def parses(code: str, language: str) -> bool:
    """Does `code` parse as `language`? Python only; other languages are taken on trust."""
    if language != "python":
        return bool(code.strip())
    try:
        ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return bool(code.strip())


def _defines(code: str, entry_point: str) -> bool:
    name = re.match(r"[A-Za-z_]\w*", entry_point)
    return (
        bool(name) and re.search(rf"^\s*(async\s+def|def|class)\s+{name.group(0)}\b", code, re.M) is not None
    )


def _pick(blocks: list[Block], entry_point: str | None) -> str | None:
    if not blocks:
        return None
    if entry_point:
        defining = [block for block in blocks if _defines(block.body, entry_point)]
        if defining:
            return defining[-1].body
    return blocks[-1].body


def _from_text(text: str, language: str, entry_point: str | None) -> str | None:
    aliases = LANGUAGES.get(language, (language,))
    blocks = fenced_blocks(text)
    closed = [block for block in blocks if block.closed and block.body.strip()]
    tagged = [block for block in closed if block.language in aliases]
    found = _pick(tagged, entry_point)
    if found is None:
        untagged = [block for block in closed if not block.language and parses(block.body, language)]
        found = _pick(untagged, entry_point)
    if found is None and blocks and not blocks[-1].closed:
        last = blocks[-1]
        if (last.language in aliases or not last.language) and last.body.strip():
            found = last.body
    if (
        found is None
        and not blocks
        and language == "python"
        and _CODE_START.search(text)
        and parses(text, language)
    ):
        found = text if text.endswith("\n") else text + "\n"
    return found


def extract_code(
    response: str | None, language: str = "python", entry_point: str | None = None
) -> str | None:
    """The solution code in `response`, or None when it holds none."""
    if not response or not response.strip():
        return None
    # Tags glued to a fence (`<think>```python`) would hide it: give them lines of their own.
    texts = [response.replace("<think>", "<think>\n").replace("</think>", "\n</think>\n")]
    parts = split_reasoning(response)
    if parts.reasoning is not None:
        texts.insert(0, parts.answer)
    for text in texts:
        found = _from_text(text, language, entry_point)
        if found is not None:
            return found
    return None


def fence_language(response: str, among: tuple[str, ...] = tuple(LANGUAGES)) -> str | None:
    """The language (a LANGUAGES key) of the last closed code block of the answer (after `</think>`),
    else of the whole response, counting only blocks tagged as one of `among` (a ```text block of
    sample output after the code does not count). None without one."""
    tags = {alias: name for name in among for alias in (name, *LANGUAGES.get(name, ()))}
    parts = split_reasoning(response)
    for text in ([parts.answer] if parts.reasoning is not None else []) + [response]:
        tagged = [
            block
            for block in fenced_blocks(text)
            if block.closed and block.language in tags and block.body.strip()
        ]
        if tagged:
            return tags[tagged[-1].language]
    return None
