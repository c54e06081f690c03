"""What the demo corpus holds: its domains, the defect types planted in it (and which curation
stages should catch each), and its sizes."""

from __future__ import annotations

from dataclasses import dataclass

DOMAINS = ("math", "code", "science")
DEFECTS = ("wrong_answer", "exact_duplicate", "near_duplicate", "contaminated", "truncated", "malicious_code")
# The stages (DESIGN names) expected to drop each defect.
CATCHERS: dict[str, tuple[str, ...]] = {
    "wrong_answer": ("verify",),
    "exact_duplicate": ("exact_dedup",),
    "near_duplicate": ("near_dedup",),
    "contaminated": ("decontaminate",),
    "truncated": ("verify", "quality"),
    "malicious_code": ("verify",),
}
# Which domains get each defect (contamination needs an eval set; malicious code needs code).
DEFECT_DOMAINS = {
    "wrong_answer": DOMAINS,
    "exact_duplicate": DOMAINS,
    "near_duplicate": DOMAINS,
    "contaminated": ("math", "code"),
    "truncated": DOMAINS,
    "malicious_code": ("code",),
}
TEACHER = "demo-teacher"


@dataclass(frozen=True)
class CorpusConfig:
    """Sizes of the corpus. `defect_rate` is the number of planted rows of each defect type as a
    share of a domain's clean rows (at least one each)."""

    seed: int = 0
    math: int = 300
    code: int = 240
    science: int = 60
    eval_math: int = 60
    eval_code: int = 60
    eval_science: int = 20
    defect_rate: float = 0.05
    val_math: int = 0
    val_code: int = 0
    val_science: int = 0

    def clean(self, domain: str) -> int:
        return getattr(self, domain)

    def held_out(self, domain: str) -> int:
        return getattr(self, f"eval_{domain}")

    def validation(self, domain: str) -> int:
        return getattr(self, f"val_{domain}")

    def planted(self, defect: str, domain: str) -> int:
        if domain not in DEFECT_DOMAINS[defect] or self.clean(domain) == 0:
            return 0
        return max(1, round(self.defect_rate * self.clean(domain)))
