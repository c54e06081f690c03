"""Model cards: the README.md written beside every model distillery makes.

`card_text` is the one layout (front matter, title, a short intro, a table of facts, then sections)
that both the merge card here and the SFT card (`distill.sft.reporting`) use; it imports nothing of
distillery, so `merge` stays a library of its own. `write_merge_card` describes one merge step:
its inputs and their roles, the method and every parameter as configured, where the tokenizer came
from, and what each input was trained on when it says so (a `distillery sft` output's
summary.json, an earlier merge's merge_config.yaml).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:  # the card needs only attributes of these; importing them would load torch
    from .plan import StepPlan, StepResult

CARD = "README.md"


def code(value: Any) -> str:
    """A value as inline code in a table cell: strings as they are, the rest as JSON."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table's lines."""
    return [
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def card_text(
    title: str,
    *,
    tags: Sequence[str],
    intro: Sequence[str],
    facts: Sequence[tuple[str, str]],
    sections: Sequence[tuple[str, Sequence[str]]] = (),
) -> str:
    """A model card: YAML front matter (library and tags), `# title`, the intro lines, a two-column
    table of facts, then one `## heading` per section with its lines."""
    meta = {"library_name": "transformers", "tags": list(tags)}
    lines = ["---", yaml.safe_dump(meta, sort_keys=False, width=1000).rstrip(), "---", "", f"# {title}", ""]
    lines += [*intro, "", *table(["", ""], [list(fact) for fact in facts]), ""]
    for heading, body in sections:
        lines += [f"## {heading}", "", *body, ""]
    return "\n".join(lines)


def trained_on(model_dir: Path | None) -> str:
    """What a model folder says about how it was made, or '' when it says nothing."""
    if model_dir is None:
        return ""
    summary_file, merge_file = model_dir / "summary.json", model_dir / "merge_config.yaml"
    if summary_file.is_file():  # written by `distillery sft`
        try:
            summary = json.loads(summary_file.read_text())
        except ValueError:
            return ""
        fit = summary.get("fit") or {}
        parts = [f"on `{summary['data']}`" if summary.get("data") else ""]
        if "kept" in fit:
            parts.append(f"{fit['kept']:,} samples")
        for key, unit in (("steps", "steps"), ("tokens", "tokens")):
            if isinstance(summary.get(key), int):
                parts.append(f"{summary[key]:,} {unit}")
        first, last = summary.get("first_loss"), summary.get("last_loss")
        if isinstance(first, int | float) and isinstance(last, int | float):
            parts.append(f"train loss {first:.4f} -> {last:.4f}")
        return "SFT " + ", ".join(p for p in parts if p)
    if merge_file.is_file():  # an earlier merge (a step of this config, or a merged model)
        try:
            raw = yaml.safe_load(merge_file.read_text()) or {}
        except yaml.YAMLError:
            return "a merge"
        return f"a {raw.get('merge_method', '?')} merge" if isinstance(raw, dict) else "a merge"
    return ""


def _tokenizer(plan: StepPlan) -> str:
    donor = plan.inputs[plan.tokenizer_donor]
    if donor.tokenizer_dir is None:
        return "none (no input had tokenizer files)"
    chosen = f" (tokenizer_source: {plan.step.tokenizer_source})" if plan.step.tokenizer_source else ""
    added = plan.vocabulary.added if plan.vocabulary is not None else []
    union = f", union vocabulary: {len(added):,} tokens added" if added else ""
    return f"`{donor.label}`{chosen}{union}"


def merge_card(plan: StepPlan, result: StepResult) -> str:
    """The card of one merge step's output (text of README.md)."""
    step = plan.step
    base = plan.inputs[plan.base].label if plan.base is not None else None
    own = {spec.ref: dict(spec.parameters) for spec in step.models}
    inputs = [
        [
            code(info.label),
            "base" if index == plan.base else "model",
            ", ".join(
                f"{key}: {json.dumps(value, default=str)}" for key, value in own.get(info.label, {}).items()
            )
            or "-",
            trained_on(info.path) or "-",
        ]
        for index, info in enumerate(plan.inputs)
    ]
    settings = dict(step.raw.get("parameters") or {}) if isinstance(step.raw, dict) else {}
    parameters = table(["parameter", "value"], [[code(k), code(v)] for k, v in settings.items()])
    facts = [
        ("method", code(plan.method.name)),
        ("base model", code(base) if base else "none"),
        ("inputs", str(len(plan.inputs))),
        ("tokenizer", _tokenizer(plan)),
        (
            "dtype",
            code(step.out_dtype or step.dtype) if step.out_dtype or step.dtype else "as the inputs",
        ),
        ("seed", str(step.seed)),
        ("tensors", f"{result.tensors:,} ({result.bytes / 1e6:,.1f} MB)"),
    ]
    sections: list[tuple[str, Sequence[str]]] = [
        ("Inputs", table(["model", "role", "parameters", "made by"], inputs)),
        ("Parameters", parameters if settings else ["None beyond the method's defaults."]),
    ]
    if step.slices is not None:
        sections.append(("Slices", [f"{len(step.slices)} slices; see `merge_config.yaml`."]))
    if plan.notes:
        sections.append(("Notes", [f"- {note}" for note in plan.notes]))
    sections.append(("Config", ["```yaml", yaml.safe_dump(step.raw, sort_keys=False).rstrip(), "```"]))
    return card_text(
        result.out_dir.name if result.out_dir is not None else step.name,
        tags=["distillery", "merge", plan.method.name],
        intro=[
            f"A `{plan.method.name}` merge of {len(plan.inputs)} models with `distillery merge` (step "
            f"`{step.name}`), streamed tensor by tensor over safetensors. The step's config is in "
            "`merge_config.yaml`."
        ],
        facts=facts,
        sections=sections,
    )


def write_merge_card(plan: StepPlan, result: StepResult) -> Path | None:
    """OUT/README.md for a merge step written to a folder (none for an in-memory merge)."""
    if result.out_dir is None:
        return None
    path = result.out_dir / CARD
    path.write_text(merge_card(plan, result))
    return path
