"""redi/<domain>: REDI after a student's SFT (docs/sft.md, REDI). The workspace's preference pairs
of the domain (curate.preferences: its passing traces against verify's `fail` drops, by the
recipe's `redi.pairs` rule) are written to OUT/redi_pairs/<domain>, then the student
students/<domain> is trained on them with `objective: redi` into redi/<domain>.

Settings (Recipe.redi_settings): the student's own, then REDI_DEFAULTS, then `redi.defaults`.
The learning rate defaults to LR_SCALE x the student's: the paper runs REDI at 1e-6 after SFT, a
tenth of TinyR1's SFT rate (1e-5, our default), so TinyR1-style students get the paper's 1e-6 and a
tiny CPU student at 1e-4 gets 1e-5.
"""

from __future__ import annotations

from typing import Any

from distill.recipe.schema import Recipe, RecipeError
from distill.recipe.steps.training import train

REDI_DEFAULTS = {"objective": "redi", "alpha": 0.8, "epochs": 1}
LR_SCALE = 0.1


def run(recipe: Recipe, domain: str, progress: bool) -> dict[str, Any]:
    from curate.preferences import PairRule, write_preferences

    folder = recipe.out / "redi_pairs" / domain
    written = write_preferences(recipe.workspace, folder, [domain], PairRule(**recipe.redi_pairs()))
    pairs = sum(w["rows"] for w in written if w["split"] == "train")
    if not pairs:
        raise RecipeError(
            f"{recipe.workspace}: no REDI pair for domain {domain!r}: no problem in its shards has a trace "
            "that verify failed (status fail); drop the domain from redi.domains, or set `redi: null` (in a "
            "variant that keeps unverified traces, say)"
        )
    student = recipe.out / "students" / domain
    summary = train(
        recipe.redi_settings(domain),
        f"redi settings for {domain}",
        folder / domain,
        student,
        recipe.out / "redi" / domain,
        progress,
    )
    return {"pairs": pairs, **summary}
