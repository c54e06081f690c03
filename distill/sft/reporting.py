"""What an SFT run leaves for people to read: the metric log and the model card.

Every step's metrics go to OUT/metrics.jsonl and, per `report_to`, to TensorBoard event files
(OUT/tensorboard/, `tensorboard --logdir OUT`) and to Weights & Biases (offline unless WANDB_MODE
says otherwise: the run syncs later with `wandb sync OUT/wandb`). `report_to` left unset means every
one of them that is installed; named explicitly, each must be installed. README.md is the model
card: base, data, settings and results.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from merge.card import card_text, code, table

# report_to name -> the module it needs
REPORTERS = {"tensorboard": "tensorboard", "wandb": "wandb"}


def installed(name: str) -> bool:
    return importlib.util.find_spec(REPORTERS[name]) is not None


def reporters(report_to: list[str] | None) -> list[str]:
    """The backends to log to: `report_to`, or every installed one when it is None."""
    return [name for name in REPORTERS if installed(name)] if report_to is None else list(report_to)


class MetricLog:
    """Appends each step's record to metrics.jsonl and forwards it to the configured backends.
    On a resumed run, lines past the resumed step (logged before a crash the checkpoint does not
    hold) are dropped first, and TensorBoard discards its own events past that step too."""

    def __init__(self, out: Path, report_to: list[str] | None, start_step: int, config: dict[str, Any]):
        self.path = out / "metrics.jsonl"
        if start_step and self.path.exists():
            lines = [
                line
                for line in self.path.read_text().splitlines()
                if line and json.loads(line)["step"] <= start_step
            ]
            self.path.write_text("".join(line + "\n" for line in lines))
        elif not start_step:
            self.path.unlink(missing_ok=True)
        self.tensorboard = self.wandb = None
        names = reporters(report_to)
        if "tensorboard" in names:
            from torch.utils.tensorboard import SummaryWriter

            # Resumed: the reader drops the events a crashed attempt logged past the checkpoint.
            self.tensorboard = SummaryWriter(
                str(out / "tensorboard"), purge_step=start_step + 1 if start_step else None
            )
        if "wandb" in names:
            import wandb

            self.wandb = wandb.init(
                project=os.environ.get("WANDB_PROJECT", "distillery"),
                name=out.name,
                dir=str(out),
                config=config,
                mode=os.environ.get("WANDB_MODE", "offline"),
            )

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        step = record["step"]
        scalars = {
            ("val/loss" if key == "val_loss" else f"train/{key}"): value
            for key, value in record.items()
            if key != "step"
        }
        if self.tensorboard is not None:
            for tag, value in scalars.items():
                self.tensorboard.add_scalar(tag, value, step)
        if self.wandb is not None:
            self.wandb.log(scalars, step=step)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.wandb is not None:
            self.wandb.finish()


def write_model_card(out: Path, base: Path, data_dir: Path, summary: dict[str, Any]) -> Path:
    """OUT/README.md: what the model was trained from, on what, with which settings, and how it went."""
    fit, config = summary["fit"], summary["config"]

    def loss(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    shards = sorted(p.name for p in Path(data_dir).glob("*.parquet"))
    rows = [
        ("base model", f"`{base}`"),
        ("training data", f"`{data_dir}` ({', '.join(shards) or 'no parquet files'})"),
        (
            "samples",
            f"{fit['kept']} kept, {fit['dropped']} dropped, {fit['truncated']} truncated (over seq_len)",
        ),
        ("steps", str(summary["steps"])),
        ("train loss", f"{loss(summary['first_loss'])} -> {loss(summary['last_loss'])}"),
        ("val loss", loss(summary["val_loss"])),
        ("tokens", f"{summary['tokens']:,}"),
    ]
    text = card_text(
        out.name,
        tags=["distillery", "sft", "distillation"],
        intro=[
            f"A full fine-tune of `{base}` with `distillery sft` (packed sequences, loss on the assistant",
            "turns only). Metrics per step: `metrics.jsonl` (and `tensorboard/` when logged).",
        ],
        facts=rows,
        sections=[
            (
                "Settings",
                table(["setting", "value"], [[f"`{k}`", code(json.dumps(v))] for k, v in config.items()]),
            )
        ],
    )
    path = out / "README.md"
    path.write_text(text)
    return path
