"""DDK-style domain reweighting (Liu et al. 2024, arXiv 2407.16154) for SFT on several domains' rows.

SFT config `mix: {reweight: ddk, every: K, alpha: 0.5, reference: PATH}`. Every K optimizer steps
(and before the first), the trainer measures the student's mean token loss on each domain's
validation rows, ℓ_S[i], and compares it with a reference's, ℓ_T[i]. The domain weights follow the
paper's factor smooth updating, starting from uniform r_0 = 1/N:

    ψ[i] = r_prev[i] · exp(ℓ_S[i] / ℓ_T[i])
    r[i] = alpha · ψ[i] / Σ_j ψ[j] + (1 - alpha) / N

so a domain where the student lags its reference more gets more of the next interval's rows, and no
domain falls below (1 - alpha) / N. The interval's rows are then drawn by those weights: each
packed row holds one domain's samples (each domain is packed on its own) and every row of a step
picks its domain by the weights and a row of that domain at random, seeded by (seed, step), so a
run and its resumed copy draw the same rows. The number of steps is what it would be without
reweighting (epochs count the rows of all domains packed together), so a reweighted run has the
same budget.

The reference: `reference: PATH`, a model folder sharing the student's tokenizer (the teacher, or
any stronger model), measured once on the same rows. Without it (a distillation from traces has no
teacher weights), the reference is the model the run starts from, measured before the first step:
the ratio is then the student's loss relative to the base's, and a domain the student has improved
least on gets the most rows. The weights and losses are logged to metrics.jsonl as
`ddk_weight/<domain>`, `ddk_loss/<domain>` and `ddk_reference_loss/<domain>` at each update (under
the 1-based number of the first step they apply to: 1, K + 1, ...), and are kept in every checkpoint, so a resumed run continues with the weights it had.

A domain is read from each row's `domain` column (curate's shards have one), else from a file
named `{split}-{domain}-NNNNN.parquet` (the recipe's mixed training folders). Every domain needs
validation rows: without them there is nothing to measure it on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distill.sft.config import ConfigError, SFTConfig
from distill.sft.data import (
    Example,
    SFTDataError,
    TemplateError,
    encode_conversations,
    read_conversations,
    read_template,
    shard_files,
)
from distill.sft.packing import FitStats, PackedRow, fit_to_length, pack, pack_row
from distill.sft.trainer import TokenLoss, TrainingData, load_model, validation_loss

MIX_KEYS = ("reweight", "every", "alpha", "reference")
REWEIGHTS = ("ddk",)


@dataclass(frozen=True)
class Mix:
    """The `mix` setting of an SFT config, checked."""

    reweight: str
    every: int
    alpha: float = 0.5
    reference: str | None = None


def parse_mix(values: Any) -> Mix:
    """The Mix of a config's `mix` mapping; a ConfigError naming the bad key otherwise."""
    if not isinstance(values, dict):
        raise ConfigError(f"mix must be a mapping like {{reweight: ddk, every: 50}}, not {values!r}")
    unknown = sorted(set(values) - set(MIX_KEYS))
    if unknown:
        raise ConfigError(f"unknown mix key(s) {unknown}; known: {list(MIX_KEYS)}")
    if values.get("reweight") not in REWEIGHTS:
        raise ConfigError(f"mix.reweight must be one of {list(REWEIGHTS)}, not {values.get('reweight')!r}")
    every, alpha = values.get("every"), values.get("alpha", 0.5)
    if not isinstance(every, int) or isinstance(every, bool) or every <= 0:
        raise ConfigError(f"mix.every must be a whole number of steps > 0, not {every!r}")
    if not isinstance(alpha, int | float) or not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"mix.alpha must be a number in [0, 1], not {alpha!r}")
    reference = values.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise ConfigError(f"mix.reference must be a model folder, not {reference!r}")
    return Mix(values["reweight"], every, float(alpha), reference)


def ddk_weights(
    student_loss: Sequence[float], reference_loss: Sequence[float], previous: Sequence[float], alpha: float
) -> np.ndarray:
    """The next domain weights: previous · exp(ℓ_S / ℓ_T), normalised, mixed with uniform by `alpha`."""
    ratio = np.asarray(student_loss, dtype=np.float64) / np.asarray(reference_loss, dtype=np.float64)
    # exp of a ratio minus its max: the same normalised weights, no overflow for a huge ratio
    psi = np.asarray(previous, dtype=np.float64) * np.exp(ratio - ratio.max())
    return alpha * psi / psi.sum() + (1.0 - alpha) / len(psi)


def row_domains(path: Path, rows: int) -> list[str]:
    """The domain of each of the `rows` rows of parquet file `path`."""
    import pyarrow.parquet as pq

    if "domain" in pq.read_schema(path).names:
        return [str(d) for d in pq.read_table(path, columns=["domain"]).column("domain").to_pylist()]
    parts = path.stem.split("-")
    if len(parts) >= 3:
        return ["-".join(parts[1:-1])] * rows
    raise SFTDataError(
        f"{path}: mix.reweight needs each row's domain: a `domain` column, or files named "
        "{split}-{domain}-NNNNN.parquet"
    )


@dataclass
class DomainData(TrainingData):
    """Training data packed per domain, drawn by domain weights (see the module docstring)."""

    names: list[str] = field(default_factory=list)  # the domains, sorted
    domain_bins: list[list[list[int]]] = field(default_factory=list)  # per domain: each packed row's examples
    val_by_domain: list[list[Example]] = field(default_factory=list)
    weights: np.ndarray = field(default_factory=lambda: np.ones(0))  # the current domain weights
    rows_per_epoch: int = 0  # packed rows of all domains together: the budget of an unweighted run

    def steps_per_epoch(self, rows_per_step: int) -> int:
        # Per-domain packing leaves a few more part-filled rows; the steps are those of the same data
        # packed together, so a reweighted run and an unweighted one train for as many steps.
        return math.ceil(self.rows_per_epoch / rows_per_step)

    def step_bins(self, step: int, rows_per_step: int, seed: int) -> list[tuple[int, int]]:
        """(domain, row of that domain) of each row of step `step`, drawn by the current weights."""
        rng = np.random.default_rng([seed, step])
        picked = rng.choice(len(self.names), size=rows_per_step, p=self.weights)
        return [(int(d), int(rng.integers(len(self.domain_bins[d])))) for d in picked]

    def step_rows(self, step: int, rows_per_step: int, seed: int) -> list[PackedRow]:
        return [
            pack_row([self.train[i] for i in self.domain_bins[d][b]])
            for d, b in self.step_bins(step, rows_per_step, seed)
        ]


def load_domain_data(cfg: SFTConfig, data_dir: str | Path, tokenizer, stop_ids: set[int]) -> DomainData:
    """The training and validation examples of `data_dir`, grouped by domain and packed per domain."""
    template = read_template(cfg.chat_template)

    def split(name: str) -> dict[str, list[Example]]:
        found: dict[str, list[Example]] = {}
        for path in shard_files(data_dir, name):
            conversations = read_conversations([path])
            try:
                examples = encode_conversations(
                    tokenizer, conversations, stop_ids=stop_ids, template=template
                )
            except TemplateError as error:
                raise TemplateError(f"{path}: {error}") from error
            for domain, example in zip(row_domains(path, len(examples)), examples, strict=True):
                found.setdefault(domain, []).append(example)
        return found

    by_domain, val = split("train"), split("val")
    names = sorted(by_domain)
    if not names:
        raise SFTDataError(f"{data_dir}: no training sample (no train shards)")
    missing = [d for d in names if d not in val]
    if missing:
        raise SFTDataError(
            f"{data_dir}: mix.reweight measures each domain on its validation rows, and domain(s) "
            f"{missing} have none (val-* files with rows of that domain)"
        )
    train: list[Example] = []
    domain_bins, fits = [], []
    for domain in names:
        kept, fit = fit_to_length(by_domain[domain], cfg.seq_len, cfg.overlong)
        if not kept:
            raise SFTDataError(
                f"{data_dir}: no training sample of domain {domain!r} fits seq_len={cfg.seq_len}"
            )
        offset = len(train)
        train += kept
        domain_bins.append([[offset + i for i in b] for b in pack(kept, cfg.batch_tokens)])
        fits.append(fit)
    fit = FitStats(*(sum(getattr(f, k) for f in fits) for k in ("kept", "dropped", "truncated")))
    val_by_domain = [fit_to_length(val[d], cfg.seq_len, cfg.overlong)[0] for d in names]
    return DomainData(
        train=train,
        val=[e for examples in val_by_domain for e in examples],
        fit=fit,
        bins=[b for bins in domain_bins for b in bins],
        names=names,
        domain_bins=domain_bins,
        val_by_domain=val_by_domain,
        weights=np.full(len(names), 1.0 / len(names)),
        rows_per_epoch=len(pack(train, cfg.batch_tokens)),
    )


class Reweighting:
    """The trainer's hook: `due(step)`, then `update(step, model, ...)` sets `data.weights` and returns
    the record for metrics.jsonl; `state()` / `restore()` carry it through checkpoints."""

    def __init__(self, cfg: SFTConfig, data: DomainData, tokenizer):
        self.mix, self.data, self.cfg = parse_mix(cfg.mix), data, cfg
        self.rows = [
            [pack_row([examples[i] for i in b]) for b in pack(examples, cfg.batch_tokens)]
            for examples in data.val_by_domain
        ]
        self.reference_loss: list[float] | None = None
        if self.mix.reference:
            self._check_tokenizer(tokenizer)

    def _check_tokenizer(self, tokenizer) -> None:
        from transformers import AutoTokenizer

        from distill.errors import model_folder

        folder = model_folder(Path(self.mix.reference), "mix.reference model")
        if AutoTokenizer.from_pretrained(folder).get_vocab() != tokenizer.get_vocab():
            raise ConfigError(
                f"mix.reference {folder}: its tokenizer differs from the student's, so their token losses "
                "cannot be compared; leave `reference` out to compare with the base"
            )

    def due(self, step: int) -> bool:
        return step % self.mix.every == 0

    def losses(self, model: TokenLoss, env, autocast) -> list[float]:
        return [validation_loss(model, rows, env, autocast) for rows in self.rows]

    def update(self, step: int, model: TokenLoss, env, autocast) -> dict[str, Any]:
        """Measure the student, set the weights for steps `step` .. `step + every - 1`."""
        student = self.losses(model, env, autocast)
        if self.reference_loss is None:
            self.reference_loss = self._reference(env, autocast) if self.mix.reference else list(student)
        self.data.weights = ddk_weights(student, self.reference_loss, self.data.weights, self.mix.alpha)
        # Logged at the 1-based number of the first step they apply to, like the loss of that step (so a
        # resumed run, which measures again at its first step, replaces a line logged past its checkpoint).
        record: dict[str, Any] = {"step": step + 1}
        for name, weight, loss, ref in zip(
            self.data.names, self.data.weights, student, self.reference_loss, strict=True
        ):
            record.update(
                {
                    f"ddk_weight/{name}": float(weight),
                    f"ddk_loss/{name}": loss,
                    f"ddk_reference_loss/{name}": ref,
                }
            )
        return record

    def _reference(self, env, autocast) -> list[float]:
        lm = load_model(
            self.mix.reference, SFTConfig(**{**self.cfg.to_dict(), "gradient_checkpointing": False})
        )
        reference = TokenLoss(lm, self.cfg.loss_chunk_tokens).to(env.device)
        losses = self.losses(reference, env, autocast)
        del reference, lm
        return losses

    def state(self) -> dict[str, Any]:
        return {"weights": [float(w) for w in self.data.weights], "reference_loss": self.reference_loss}

    def restore(self, state: dict[str, Any] | None) -> None:
        if state:
            self.data.weights = np.asarray(state["weights"], dtype=np.float64)
            self.reference_loss = state["reference_loss"]
