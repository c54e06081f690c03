"""SFT configuration: one dataclass, loadable from YAML, defaults from TinyR1's branch-phase recipe.

TinyR1-32B-Preview trained each domain student with lr 1e-5, AdamW betas (0.9, 0.95), weight
decay 0.01, 10% warmup, grad-norm clip 1.0, 16k-token packed sequences without cross-attention,
5 epochs for math and science and 15 for code. The schedule after warmup and the batch size are
per domain in its released configs (recipes/tinyr1.yaml sets them: `constant_with_warmup` and 96
sequences per step for math and code, cosine and 32 for science); cosine decay and 4 x 16k tokens
per rank per step are our defaults.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from distill.sft.schedule import SCHEDULES


class ConfigError(Exception):
    """A bad SFT config file or value."""

    user_error = True


@dataclass
class SFTConfig:
    # optimiser and schedule
    lr: float = 1e-5
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    schedule: str = "cosine"  # after warmup: "cosine" (to min_lr_ratio * lr), "constant_with_warmup"
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0
    # length of training
    epochs: float = 5
    domain_epochs: dict[str, float] = field(default_factory=lambda: {"math": 5, "science": 5, "code": 15})
    max_steps: int | None = None
    # batching: a micro-batch is one packed row of at most batch_tokens tokens (the per-device batch is
    # 1 row); a step is grad_accum micro-batches on each rank, or with global_batch that many rows over
    # all ranks (grad_accum = global_batch / world size, whatever grad_accum says)
    seq_len: int = 16384
    batch_tokens: int = 16384
    grad_accum: int = 4
    global_batch: int | None = None
    overlong: str = "drop"  # "drop" or "truncate" samples longer than seq_len
    # numerics and memory
    bf16: bool = True  # bf16 autocast on GPU; CPU always trains in float32
    gradient_checkpointing: bool = True
    loss_chunk_tokens: int = 8192  # LM head + cross-entropy in chunks of this many tokens
    seed: int = 42
    # bookkeeping
    save_every: int = 500  # steps between resumable checkpoints (0: only the final model)
    keep_checkpoints: int = 2
    eval_every: int = 0  # steps between validation losses (0: only at the end)
    chat_template: str | None = None  # a .jinja path or template text replacing the tokenizer's
    peak_tflops: float | None = None  # accelerator peak for MFU when the GPU is not recognised
    report_to: list[str] | None = None  # tensorboard, wandb; None: each one that is installed
    # mixed domains: {reweight: ddk, every: K, alpha: 0.5, reference: PATH} (distill/sft/ddk.py)
    mix: dict | None = None
    # "sft", or "redi" on preference pairs (distill/sft/redi.py): -log pi(y_w)/|y_w| + alpha log pi(y_l)/|y_l|
    objective: str = "sft"
    alpha: float = 0.8

    def __post_init__(self):
        self.betas = tuple(self.betas)
        checks = [
            (self.lr > 0, "lr must be > 0"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}"),
            (self.overlong in ("drop", "truncate"), "overlong must be 'drop' or 'truncate'"),
            (self.epochs > 0, "epochs must be > 0"),
            (self.max_steps is None or self.max_steps > 0, "max_steps must be > 0"),
            (self.seq_len > 0 and self.grad_accum > 0, "seq_len and grad_accum must be > 0"),
            (self.global_batch is None or self.global_batch > 0, "global_batch must be > 0"),
            (self.batch_tokens >= self.seq_len, "batch_tokens must be >= seq_len (a sample must fit a row)"),
            (len(self.betas) == 2, "betas must have two values"),
            (self.objective in ("sft", "redi"), "objective must be 'sft' or 'redi'"),
            (self.alpha >= 0, "alpha (the REDI weight of the failed trace) must be >= 0"),
            (not (self.objective == "redi" and self.mix), "objective redi trains on pairs, not a domain mix"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        self._check_report_to()
        if self.mix is not None:
            from distill.sft.ddk import parse_mix  # torch: only for runs that reweight

            parse_mix(self.mix)

    def _check_report_to(self) -> None:
        from distill.sft.reporting import REPORTERS, installed

        if self.report_to is None:
            return
        if isinstance(self.report_to, str):
            self.report_to = [self.report_to]
        unknown = sorted(set(self.report_to) - set(REPORTERS))
        if unknown:
            raise ConfigError(f"report_to: unknown logger(s) {unknown}; known: {sorted(REPORTERS)}")
        missing = [name for name in self.report_to if not installed(name)]
        if missing:
            raise ConfigError(
                f"report_to names {', '.join(missing)}, which is not installed: pip install {' '.join(missing)}, "
                "or leave it out of report_to"
            )

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> SFTConfig:
        """Load a YAML file; `overrides` that are not None replace its values."""
        from distill.errors import read_yaml

        values = read_yaml(path, "SFT config", ConfigError) or {}
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a mapping of SFT settings")
        values = values.get("sft", values)  # a recipe may nest the settings under `sft:`
        return cls.from_dict(values, source=str(path), **overrides)

    @classmethod
    def from_dict(cls, values: dict, source: str = "config", **overrides) -> SFTConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown SFT setting(s) {unknown}; known: {sorted(known)}")
        merged = {**values, **{k: v for k, v in overrides.items() if v is not None}}
        try:
            return cls(**merged)
        except TypeError as error:
            raise ConfigError(f"{source}: {error}") from error

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["betas"] = list(self.betas)
        return values

    def epochs_for(self, domain: str) -> float:
        return self.domain_epochs.get(domain, self.epochs)

    def accumulation(self, world: int) -> int:
        """Micro-batches (packed rows) each of `world` ranks takes per optimizer step: grad_accum, or
        global_batch / (world x 1 row per device) when global_batch is set."""
        if self.global_batch is None:
            return self.grad_accum
        per_device = 1  # a micro-batch is one packed row
        accum, rest = divmod(self.global_batch, per_device * world)
        if rest or not accum:
            raise ConfigError(
                f"global_batch {self.global_batch} is not a multiple of {world} rank(s) x {per_device} row per "
                f"device; use a global_batch divisible by the number of processes, or that many processes"
            )
        return accum
