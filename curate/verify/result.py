"""The verdict shared by the math and code verifiers."""

from __future__ import annotations

from dataclasses import asdict, dataclass

# Only `pass` is kept by default. `invalid_reference` is never a pass: a gold answer or test spec
# we cannot parse says nothing about the response.
STATUSES = (
    "pass", "fail", "no_answer", "no_reference", "invalid_reference", "timeout", "error", "unsupported", "prompt",
)  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    status: str
    extracted: str | None = None  # the answer or code taken from the response
    detail: str = ""  # free text (math) or JSON of per-case results (code)
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown verification status {self.status!r}; expected one of {STATUSES}")

    def as_dict(self) -> dict:
        return asdict(self)
