"""The SFT loop: packed rows in, a Hugging Face model out.

One optimizer step = `grad_accum` packed rows on each rank (with `global_batch`, that many rows
over all ranks: config.accumulation). Its loss is the sum of the token
losses of every supervised token in the step divided by the number of those tokens, whatever
the rows and ranks they fall in (token-level normalisation): each row's summed loss is divided by
the step's global supervised-token count before backward. Every rank builds the same row list, so
that count is known locally without communication; FSDP then averages gradients over ranks, which
the loss undoes by multiplying by the world size.

Resuming: the row order of an epoch is a function of (seed, epoch), and a checkpoint holds model,
optimizer, scheduler and RNG states, so a resumed run replays exactly the steps an uninterrupted
run would take and ends with the same weights.

Multi-GPU: run the same command under `torchrun --nproc-per-node N`; each decoder layer and then
the whole model are sharded with FSDP2 (`fully_shard`). The same path runs on CPU with gloo.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from distill.errors import UserError, first_line, model_folder
from distill.sft import attention, schedule
from distill.sft.config import ConfigError, SFTConfig
from distill.sft.data import (
    IGNORE_INDEX,
    Example,
    SFTDataError,
    TemplateError,
    encode_conversations,
    read_conversations,
    read_template,
    shard_files,
    stop_token_ids,
)
from distill.sft.packing import FitStats, PackedRow, fit_to_length, pack, pack_row
from distill.sft.reporting import MetricLog, write_model_card

# bf16 dense peak of accelerators we can recognise by name, for MFU.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12, "A800": 312e12}
# Settings that do not change the trajectory of a run, so a resume may change them.
BOOKKEEPING = {"save_every", "keep_checkpoints", "eval_every", "peak_tflops", "report_to"}
# Config attributes of models whose logits are not a plain lm_head(hidden), which TokenLoss assumes.
LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier")


def _ce_sum(head: nn.Module, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(head(hidden).float(), labels, reduction="sum")


class TokenLoss(nn.Module):
    """A causal LM whose forward returns the summed cross-entropy of a packed row's supervised tokens.

    Only supervised positions go through the LM head, in chunks of `chunk_tokens` that are
    recomputed in backward, so the (tokens x vocab) logits are never held at once.
    """

    def __init__(self, lm: nn.Module, chunk_tokens: int = 8192):
        super().__init__()
        self.lm = lm
        self.chunk_tokens = chunk_tokens

    def hidden_states(self, input_ids, position_ids, cu_seqlens, max_len: int) -> torch.Tensor:
        """The decoder's last hidden states of a packed row, each sample attending only to itself."""
        return self.lm.get_decoder()(
            input_ids=input_ids,
            position_ids=position_ids,
            cu_seq_lens_q=cu_seqlens,
            cu_seq_lens_k=cu_seqlens,
            max_length_q=max_len,
            max_length_k=max_len,
            use_cache=False,
        ).last_hidden_state

    def forward(self, input_ids, position_ids, targets, cu_seqlens, max_len: int) -> torch.Tensor:
        hidden = self.hidden_states(input_ids, position_ids, cu_seqlens, max_len)
        keep = targets[0] != IGNORE_INDEX
        hidden, labels = hidden[0, keep], targets[0, keep]
        head = self.lm.get_output_embeddings()
        starts = range(0, labels.numel(), self.chunk_tokens)
        if len(starts) <= 1:
            return _ce_sum(head, hidden, labels)
        parts = [
            checkpoint(
                _ce_sum,
                head,
                hidden[s : s + self.chunk_tokens],
                labels[s : s + self.chunk_tokens],
                use_reentrant=False,
            )
            for s in starts
        ]
        return torch.stack(parts).sum()

    def row_loss(self, row: PackedRow, counted: bool = True) -> torch.Tensor:
        """The row's summed loss; `counted`: the row is part of the step (not a rank's filler
        repeat), for objectives that keep metrics of their own (REDI: distill/sft/redi.py)."""
        return self(row.input_ids, row.position_ids, row.targets, row.cu_seqlens, row.max_len)

    def loss_units(self, rows: list[PackedRow]) -> int:
        """What a step's loss is the mean over: its supervised tokens (REDI: its pairs)."""
        return sum(r.n_supervised for r in rows)

    def pop_metrics(self, env: Dist, prefix: str = "") -> dict[str, float]:
        """The objective's own metrics over the rows counted since the last call (none for SFT)."""
        return {}


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_sum(self, values: list[float]) -> list[float]:
        if self.world == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def setup_distributed() -> Dist:
    """Join the torchrun process group when WORLD_SIZE > 1 (nccl on GPU, gloo on CPU)."""
    cuda = torch.cuda.is_available()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    owns = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
        owns = True
    rank = dist.get_rank() if dist.is_initialized() else 0
    return Dist(rank, world, device, owns)


@dataclass
class TrainResult:
    out_dir: Path
    steps: int
    first_loss: float | None
    last_loss: float | None
    val_loss: float | None
    tokens: int
    seconds: float
    fit: FitStats
    rows: int
    resumed_from: int = 0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def lr_factor(step: int, total: int, cfg: SFTConfig) -> float:
    """Multiplier of cfg.lr at `step` (0-based): linear warmup, then cfg.schedule (distill.sft.schedule)."""
    return schedule.lr_factor(step, total, cfg.schedule, cfg.warmup_ratio, cfg.min_lr_ratio)


def build_optimizer(model: nn.Module, cfg: SFTConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and norm weights (1-D tensors)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=device.type == "cuda")


def _matmul_params(lm: nn.Module) -> tuple[int, int]:
    """(parameters in the body's matmuls, parameters of the LM head): FLOPs per token are 6 x these."""
    embed, head = lm.get_input_embeddings().weight, lm.get_output_embeddings().weight
    total = sum(p.numel() for p in lm.parameters())
    return total - embed.numel() - (0 if head is embed else head.numel()), head.numel()


def _step_flops(lm_config, body: int, head: int, rows: list[PackedRow]) -> float:
    attn_width = lm_config.num_attention_heads * getattr(
        lm_config, "head_dim", lm_config.hidden_size // lm_config.num_attention_heads
    )
    tokens = sum(r.n_tokens for r in rows)
    supervised = sum(r.n_supervised for r in rows)
    square = sum(n * n for r in rows for n in r.lengths)
    # 6 FLOPs per parameter per token (forward + backward), causal attention 6 * width * n^2 per layer.
    return 6 * body * tokens + 6 * head * supervised + 6 * lm_config.num_hidden_layers * attn_width * square


def _peak_flops(cfg: SFTConfig, device: torch.device) -> float | None:
    if cfg.peak_tflops:
        return cfg.peak_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_FLOPS.items() if k in name), None)


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextlib.contextmanager
def _quiet_single_process():
    # torch.distributed.checkpoint warns on every call without a process group, which is our single-process case.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


class Checkpoints:
    """Resumable checkpoints in OUT/checkpoints/step-NNNNNNNN (torch.distributed.checkpoint, sharded)."""

    def __init__(self, out: Path, env: Dist, keep: int):
        self.root, self.env, self.keep = out / "checkpoints", env, keep

    def completed(self) -> list[Path]:
        return sorted(p for p in self.root.glob("step-*") if (p / "trainer_state.json").is_file())

    def latest(self) -> Path | None:
        completed = self.completed()
        return completed[-1] if completed else None

    def save(self, step: int, model, optimizer, scheduler, meta: dict) -> None:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        final = self.root / f"step-{step:08d}"
        tmp = final.with_name(final.name + ".tmp")
        if self.env.main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        self.env.barrier()
        model_state, optim_state = get_state_dict(model, optimizer)
        state = {"model": model_state, "optim": optim_state}
        with _quiet_single_process():
            dcp.save(state, checkpoint_id=tmp, no_dist=self.env.world == 1)
        extra = {"scheduler": scheduler.state_dict(), "rng": _rng_state()}
        torch.save(extra, tmp / f"rank-{self.env.rank}.pt")
        self.env.barrier()
        if self.env.main:
            (tmp / "trainer_state.json").write_text(json.dumps({"step": step, **meta}, indent=2))
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)  # a checkpoint appears only once complete
            for old in self.completed()[: -self.keep]:
                shutil.rmtree(old)
        self.env.barrier()

    def load(self, path: Path, model, optimizer, scheduler) -> dict:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        model_state, optim_state = get_state_dict(model, optimizer)
        state = {"model": model_state, "optim": optim_state}
        with _quiet_single_process():
            dcp.load(state, checkpoint_id=path, no_dist=self.env.world == 1)
        set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
        # Every rank is seeded alike: a checkpoint saved by fewer ranks (a recipe given a `launch:` block
        # after a crash) gives its rank 0's RNG and scheduler states to the others.
        own = path / f"rank-{self.env.rank}.pt"
        extra = torch.load(own if own.is_file() else path / "rank-0.pt", weights_only=False)
        scheduler.load_state_dict(extra["scheduler"])
        _set_rng_state(extra["rng"])
        return json.loads((path / "trainer_state.json").read_text())


def _check_resumable(saved: dict, cfg: SFTConfig, fingerprint: dict, path: Path) -> None:
    now = {k: v for k, v in cfg.to_dict().items() if k not in BOOKKEEPING}
    before = {k: v for k, v in saved["config"].items() if k not in BOOKKEEPING}
    changed = sorted(k for k in now if now[k] != before.get(k))
    if changed or saved["data"] != fingerprint:
        what = f"settings {changed}" if changed else "training data"
        raise ConfigError(
            f"{path}: cannot resume, the {what} changed since this checkpoint; use a new --out or delete "
            f"{path.parent}"
        )


def accumulate_gradients(model: TokenLoss, rows: list[PackedRow], env: Dist, autocast) -> tuple[float, int]:
    """Forward and backward this rank's share of one step's rows (rows[rank::world]).

    Gradients add up to d(sum of token losses of the whole step / supervised tokens of the whole
    step): the token-level mean over all rows and ranks, however the tokens are spread among them.
    Returns this rank's summed token loss and the step's supervised-token count (the model's
    `loss_units`: REDI divides by the step's pairs instead).
    """
    n_supervised = model.loss_units(rows)
    mine = rows[env.rank :: env.world]
    local = torch.zeros((), dtype=torch.float64, device=env.device)
    for k in range(math.ceil(len(rows) / env.world)):
        # A rank short of rows at the end of an epoch repeats one with weight 0, so that every rank
        # takes part in the same FSDP collectives.
        weight = env.world / max(1, n_supervised) if k < len(mine) else 0.0
        row = (mine[k] if k < len(mine) else rows[0]).to(env.device)
        with autocast:
            loss_sum = model.row_loss(row, counted=bool(weight))
        (loss_sum * weight).backward()
        if weight:
            local += loss_sum.detach().double()
    return local.item(), n_supervised


def _shard_model(model: TokenLoss) -> None:
    from torch.distributed.fsdp import fully_shard

    layer_types = tuple(getattr(model.lm, "_no_split_modules", None) or ())
    for module in model.lm.modules():
        if type(module).__name__ in layer_types:
            fully_shard(module)
    fully_shard(model)


@dataclass
class TrainingData:
    """Tokenised, length-filtered examples and their packing into rows."""

    train: list[Example]
    val: list[Example]
    fit: FitStats
    bins: list[list[int]]  # example indices of each packed training row

    def fingerprint(self) -> dict:
        return {"samples": len(self.train), "rows": len(self.bins), "tokens": int(sum(map(len, self.train)))}

    def step_rows(self, step: int, rows_per_step: int, seed: int) -> list[PackedRow]:
        """The rows of optimizer step `step`: each epoch walks the rows in a (seed, epoch) permutation."""
        epoch, index = divmod(step, self.steps_per_epoch(rows_per_step))
        order = np.random.default_rng(seed + epoch).permutation(len(self.bins))
        chosen = order[index * rows_per_step : (index + 1) * rows_per_step]
        return [self.row(b) for b in chosen]

    def row(self, index: int) -> PackedRow:
        """Packed training row `index` (materialised only when a step needs it)."""
        return pack_row([self.train[i] for i in self.bins[index]])

    def val_rows(self, batch_tokens: int) -> list[PackedRow]:
        return [pack_row([self.val[i] for i in b]) for b in pack(self.val, batch_tokens)]

    def steps_per_epoch(self, rows_per_step: int) -> int:
        return math.ceil(len(self.bins) / rows_per_step)


def load_data(cfg: SFTConfig, data_dir: str | Path, tokenizer, stop_ids: set[int]) -> TrainingData:
    template = read_template(cfg.chat_template)

    def split(name: str) -> tuple[list[Example], FitStats]:
        examples = []
        for path in shard_files(data_dir, name):  # one shard at a time: only token arrays stay in memory
            conversations = read_conversations([path])
            try:
                examples += encode_conversations(
                    tokenizer, conversations, stop_ids=stop_ids, template=template
                )
            except TemplateError as error:
                raise TemplateError(f"{path}: {error}") from error
        return fit_to_length(examples, cfg.seq_len, cfg.overlong)

    train_examples, fit = split("train")
    if not train_examples:
        raise SFTDataError(
            f"{data_dir}: no training sample (no train shards, or none fits seq_len={cfg.seq_len})"
        )
    val_examples, _ = split("val")
    return TrainingData(train_examples, val_examples, fit, pack(train_examples, cfg.batch_tokens))


def load_model(base: str | Path, cfg: SFTConfig):
    """The causal LM in float32 (master weights) with the packed attention."""
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM

    try:
        lm = AutoModelForCausalLM.from_pretrained(
            base, dtype=torch.float32, attn_implementation=attention.register()
        )
    except (OSError, ValueError, SafetensorError) as error:
        raise UserError(f"{base}: cannot load the model ({first_line(error)})") from error
    for name in LOGIT_TRANSFORMS:
        if getattr(lm.config.get_text_config(), name, None) not in (None, 1.0):
            raise ConfigError(f"{base}: models with `{name}` are not supported by this trainer")
    lm.config.use_cache = False
    if cfg.gradient_checkpointing:
        kwargs = {"use_reentrant": False}
        if hasattr(lm, "activation_checkpointing_enable"):  # transformers >= 5
            lm.activation_checkpointing_enable(kwargs)
        else:
            lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    return lm


def validation_loss(model: TokenLoss, rows: list[PackedRow], env: Dist, autocast) -> float | None:
    """Mean token loss over `rows`, split among ranks."""
    if not rows:
        return None
    model.eval()
    mine = rows[env.rank :: env.world]
    total = torch.zeros((), dtype=torch.float64, device=env.device)
    with torch.no_grad(), autocast:
        # Every rank runs the same number of forwards (FSDP gathers collectively); extras weigh 0.
        for k in range(math.ceil(len(rows) / env.world)):
            loss = model.row_loss((mine[k] if k < len(mine) else rows[0]).to(env.device), k < len(mine))
            if k < len(mine):
                total += loss.double()
    model.train()
    loss_sum, count = env.all_sum([total.item(), model.loss_units(mine)])
    return loss_sum / count


def train(
    cfg: SFTConfig,
    data_dir: str | Path,
    base: str | Path,
    out_dir: str | Path,
    resume: bool = True,
    progress: bool = True,
) -> TrainResult:
    """Fine-tune the causal LM at `base` on the shards in `data_dir`; write the model to `out_dir`."""
    from tqdm.auto import tqdm
    from transformers import AutoTokenizer, GenerationConfig

    base = model_folder(base, "base model")
    env = setup_distributed()
    out = Path(out_dir)
    try:
        _seed_all(cfg.seed)
        try:
            tokenizer = AutoTokenizer.from_pretrained(base)
        except (OSError, ValueError) as error:
            raise UserError(
                f"{base}: cannot load its tokenizer ({first_line(error)}); the folder needs the tokenizer "
                "files (tokenizer.json, tokenizer_config.json) saved with the model"
            ) from error
        try:
            generation_config = GenerationConfig.from_pretrained(base)
        except OSError:  # no generation_config.json: the tokenizer's EOS is the only stop token
            generation_config = None
        stop_ids = stop_token_ids(tokenizer, generation_config)
        reweighting = None
        if cfg.mix:  # domains drawn by DDK weights (distill/sft/ddk.py)
            from distill.sft import ddk

            data = ddk.load_domain_data(cfg, data_dir, tokenizer, stop_ids)
            reweighting = ddk.Reweighting(cfg, data, tokenizer)
        elif cfg.objective == "redi":  # preference pairs (distill/sft/redi.py)
            from distill.sft import redi

            data = redi.load_pair_data(cfg, data_dir, tokenizer, stop_ids)
        else:
            data = load_data(cfg, data_dir, tokenizer, stop_ids)
        rows_per_step = env.world * cfg.accumulation(env.world)  # global_batch rows when it is set
        total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * data.steps_per_epoch(rows_per_step)))

        lm = load_model(base, cfg)
        tied = _tied_duplicates(lm)
        if cfg.objective == "redi":
            model = redi.PairLoss(lm, cfg.loss_chunk_tokens, cfg.alpha).to(env.device)
        else:
            model = TokenLoss(lm, cfg.loss_chunk_tokens).to(env.device)
        if env.world > 1:
            _shard_model(model)
        optimizer = build_optimizer(model, cfg, env.device)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total_steps, cfg))
        checkpoints = Checkpoints(out, env, cfg.keep_checkpoints)

        start_step = 0
        latest = checkpoints.latest() if resume else None
        if latest is not None:
            saved = json.loads((latest / "trainer_state.json").read_text())
            _check_resumable(saved, cfg, data.fingerprint(), latest)
            state = checkpoints.load(latest, model, optimizer, scheduler)
            start_step = state["step"]
            if reweighting is not None:
                reweighting.restore(state.get("mix"))
        metrics = None
        if env.main:
            out.mkdir(parents=True, exist_ok=True)
            metrics = MetricLog(out, cfg.report_to, start_step, cfg.to_dict())
        env.barrier()

        on_gpu = env.device.type == "cuda"
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16) if on_gpu and cfg.bf16 else contextlib.nullcontext()
        )
        body_params, head_params = _matmul_params(lm)
        peak = _peak_flops(cfg, env.device)
        val_rows = data.val_rows(cfg.batch_tokens)
        bar = tqdm(
            total=total_steps,
            initial=start_step,
            disable=not (progress and env.main),
            desc="sft",
            unit="step",
        )
        first_loss = last_loss = None
        tokens_seen, train_seconds = 0, 0.0
        model.train()
        for step in range(start_step, total_steps):
            if reweighting is not None and reweighting.due(step):
                record = reweighting.update(step, model, env, autocast)
                if env.main:
                    metrics.write(record)
            started = time.perf_counter()
            rows = data.step_rows(step, rows_per_step, cfg.seed)
            loss_sum, n_units = accumulate_gradients(model, rows, env, autocast)
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip or float("inf"))
            if hasattr(grad_norm, "full_tensor"):  # a DTensor under FSDP
                grad_norm = grad_norm.full_tensor()
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            (loss_total,) = env.all_sum([loss_sum])
            if on_gpu:
                torch.cuda.synchronize(env.device)
            seconds = time.perf_counter() - started

            done = step + 1
            loss = loss_total / max(1, n_units)
            tokens = sum(r.n_tokens for r in rows)
            tokens_seen, train_seconds = tokens_seen + tokens, train_seconds + seconds
            first_loss = loss if first_loss is None else first_loss
            last_loss = loss
            record = {
                "step": done,
                "epoch": round(done / data.steps_per_epoch(rows_per_step), 4),
                "loss": loss,
                "lr": lr,
                "grad_norm": float(grad_norm),
                "tokens": tokens,
                "supervised_tokens": sum(r.n_supervised for r in rows),
                "tokens_per_s": tokens / seconds,
                "padding_pct": 100.0 * (1 - tokens / (len(rows) * cfg.batch_tokens)),
                **model.pop_metrics(env),  # REDI: chosen_logp, rejected_logp, margin
            }
            if peak:
                record["mfu"] = (
                    _step_flops(lm.config, body_params, head_params, rows) / seconds / peak / env.world
                )
            if cfg.eval_every and done % cfg.eval_every == 0 and done < total_steps:
                record["val_loss"] = validation_loss(model, val_rows, env, autocast)
                record.update(model.pop_metrics(env, "val_"))
            if env.main:
                metrics.write(record)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{record['tokens_per_s']:.0f}")
            if cfg.save_every and done % cfg.save_every == 0 and done < total_steps:
                meta = {"config": cfg.to_dict(), "data": data.fingerprint(), "total_steps": total_steps}
                if reweighting is not None:
                    meta["mix"] = reweighting.state()
                checkpoints.save(done, model, optimizer, scheduler, meta)
        bar.close()

        val_loss = validation_loss(model, val_rows, env, autocast)
        val_metrics = model.pop_metrics(env, "val_")
        if env.main:
            if val_loss is not None:
                metrics.write({"step": total_steps, "val_loss": val_loss, **val_metrics})
            metrics.close()
        _save_final(model, lm, tokenizer, out, env, tied)
        result = TrainResult(
            out_dir=out,
            steps=total_steps,
            first_loss=first_loss,
            last_loss=last_loss,
            val_loss=val_loss,
            tokens=tokens_seen,
            seconds=train_seconds,
            fit=data.fit,
            rows=len(data.bins),
            resumed_from=start_step,
        )
        if env.main:
            summary = {k: v for k, v in vars(result).items() if k not in ("out_dir", "fit")}
            summary.update(fit=vars(data.fit), tokens_per_s=result.tokens_per_s, config=cfg.to_dict())
            summary.update(base=str(base), data=str(data_dir))  # what a merge card of this model names
            summary.update(world=env.world, rows_per_step=rows_per_step)  # derived with global_batch
            (out / "summary.json").write_text(json.dumps(summary, indent=2))
            write_model_card(out, base, Path(data_dir), summary)
        return result
    finally:
        if env.owns_group:
            dist.destroy_process_group()


def _tied_duplicates(lm: nn.Module) -> set[str]:
    """Names of parameters that are another parameter (tied embeddings): saved once, under the first name."""
    seen, duplicates = set(), set()
    for name, param in lm.named_parameters(remove_duplicate=False):
        if id(param) in seen:
            duplicates.add(name)
        seen.add(id(param))
    return duplicates


def _save_final(model: TokenLoss, lm, tokenizer, out: Path, env: Dist, tied: set[str]) -> None:
    """Hugging Face safetensors + tokenizer in `out`, gathered to rank 0 when sharded."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if env.main:
        # The packed attention is not saved: transformers keeps `attn_implementation` out of config.json.
        state = {k.removeprefix("lm."): v for k, v in state.items() if k.removeprefix("lm.") not in tied}
        lm.save_pretrained(out, state_dict=state)
        tokenizer.save_pretrained(out)
    env.barrier()
