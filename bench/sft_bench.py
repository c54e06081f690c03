"""SFT benchmark: distillery's trainer against TRL's SFTTrainer, same model, shard and batch shape.

    .venv-bench/bin/python bench/sft_bench.py                   # CPU, 40 steps, tiny Qwen2
    .venv-bench/bin/python bench/sft_bench.py --steps 20 --hidden 64
    .venv-bench/bin/python bench/sft_bench.py --preset qwen0.5b --steps 30   # on a GPU machine: MFU

Data: MATH-500 (../shared/data/math/math500.jsonl) as a math shard in the contract's format:
user = problem, assistant = "<think>\\n{solution}\\n</think>\\n\\nThe answer is $\\boxed{answer}$";
450 rows train, 50 held out. A byte-level BPE tokenizer is trained on the shard and a Qwen2 is
built from a config (random weights); both tools start from that same saved base.

Settings shared by both: packed rows of --batch-tokens tokens (TRL: packing=True, strategy "bfd",
padding-free, max_length = batch tokens, batch size 1), one row per optimizer step, AdamW betas
(0.9, 0.95), weight decay 0.01, lr --lr with 10% warmup then cosine, grad-norm clip 1.0, loss only
on the assistant reply (TRL: prompt-completion data, completion-only loss), float32 on CPU
(bf16 autocast on GPU for both), no gradient checkpointing, no checkpoints saved.

Speed: tokens per second over steps 2..N (the first step pays one-off warm-up), each step timed
from the end of the previous one, data loading included: distillery from its metrics.jsonl,
TRL from a callback (`num_input_tokens_seen` between consecutive step ends).
Loss: both training curves are printed side by side, and both final models are scored on the
same 50 held-out rows by one plain evaluation (each row alone through the stock SDPA model,
mean token loss over assistant tokens + EOS), so "matching loss" is checked on equal terms.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / ".." / "shared" / "data" / "math" / "math500.jsonl"
# Qwen2.5-0.5B's shape (494M parameters with its 151936-row embedding), for a GPU run.
PRESETS = {
    "tiny": {},
    "qwen0.5b": dict(
        hidden_size=896,
        num_layers=24,
        num_heads=14,
        num_kv_heads=2,
        intermediate_size=4864,
        vocab_size=151936,
        max_positions=32768,
    ),
}


def conversations() -> list[list[dict]]:
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    return [
        [
            {"role": "user", "content": r["problem"]},
            {
                "role": "assistant",
                "content": f"<think>\n{r['solution']}\n</think>\n\nThe answer is $\\boxed{{{r['answer']}}}$.",
            },
        ]
        for r in rows
    ]


def prepare(root: Path, args) -> tuple[Path, Path, list]:
    """Shard (train/val parquet) and the shared base model; returns (shard dir, base dir, held-out rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from distill.sft.tiny import build_model, train_tokenizer

    rows = conversations()
    train, heldout = rows[:450], rows[450:]
    shard = root / "shards" / "math"
    shard.mkdir(parents=True, exist_ok=True)
    for name, part in (("train-00000.parquet", train), ("val-00000.parquet", heldout)):
        table = pa.table(
            {
                "id": [f"math500-{name}-{i}" for i in range(len(part))],
                "problem_id": [f"p{i}" for i in range(len(part))],
                "domain": ["math"] * len(part),
                "messages": part,
            }
        )
        pq.write_table(table, shard / name)
    tokenizer = train_tokenizer([m["content"] for c in rows for m in c], vocab_size=args.vocab)
    shape = dict(
        hidden_size=args.hidden,
        num_layers=args.layers,
        num_heads=args.heads,
        num_kv_heads=max(1, args.heads // 2),
        intermediate_size=3 * args.hidden,
        max_positions=max(4096, args.batch_tokens),
    )
    shape.update(PRESETS[args.preset])
    model = build_model(tokenizer, seed=0, **shape)
    base = root / "base"
    model.save_pretrained(base)
    tokenizer.save_pretrained(base)
    params = sum(p.numel() for p in model.parameters())
    print(
        f"model: Qwen2 {params / 1e6:.1f}M parameters, vocabulary {model.config.vocab_size}; tokenizer {len(tokenizer)}"
    )
    return shard, base, heldout


def run_distillery(shard: Path, base: Path, out: Path, args) -> dict:
    from distill.sft.config import SFTConfig
    from distill.sft.trainer import train

    config = SFTConfig(
        lr=args.lr,
        seq_len=args.batch_tokens,
        batch_tokens=args.batch_tokens,
        grad_accum=1,
        max_steps=args.steps,
        gradient_checkpointing=False,
        save_every=0,
        seed=args.seed,
    )
    started = time.perf_counter()
    train(config, shard, base, out, resume=False, progress=False)
    wall = time.perf_counter() - started
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    return {
        "losses": [r["loss"] for r in steps],
        "tokens": [r["tokens"] for r in steps],
        "seconds": [r["tokens"] / r["tokens_per_s"] for r in steps],
        "mfu": [r["mfu"] for r in steps if "mfu" in r],
        "wall": wall,
    }


def run_trl(shard: Path, base: Path, out: Path, args) -> dict:
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    def to_prompt_completion(row):
        return {"prompt": row["messages"][:-1], "completion": row["messages"][-1:]}

    dataset = load_dataset("parquet", data_files=str(shard / "train-*.parquet"), split="train")
    dataset = dataset.map(to_prompt_completion, remove_columns=dataset.column_names)

    class StepClock(TrainerCallback):
        def __init__(self):
            self.last, self.seen, self.seconds, self.tokens = None, 0, [], []

        def on_step_begin(self, args_, state, control, **kwargs):
            if self.last is None:
                self.last = time.perf_counter()

        def on_step_end(self, args_, state, control, **kwargs):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            now = time.perf_counter()
            self.seconds.append(now - self.last)
            self.tokens.append(state.num_input_tokens_seen - self.seen)
            self.last, self.seen = now, state.num_input_tokens_seen

    config = SFTConfig(
        output_dir=str(out),
        max_steps=args.steps,
        learning_rate=args.lr,
        lr_scheduler_type="cosine",
        warmup_steps=0.1,  # a fraction of max_steps, as warmup_ratio was before transformers 5
        weight_decay=0.01,
        adam_beta1=0.9,
        adam_beta2=0.95,
        max_grad_norm=1.0,
        per_device_train_batch_size=1,
        gradient_accumulation_steps=1,
        max_length=args.batch_tokens,
        packing=True,
        packing_strategy="bfd",
        completion_only_loss=True,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=args.seed,
        bf16=torch.cuda.is_available(),
        include_num_input_tokens_seen="all",
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    attn = "flash_attention_2" if args.trl_flash else "sdpa"
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, attn_implementation=attn)
    clock = StepClock()
    started = time.perf_counter()
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(base),
        callbacks=[clock],
    )
    trainer.train()
    wall = time.perf_counter() - started
    trainer.save_model(str(out))
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {"losses": losses, "tokens": clock.tokens, "seconds": clock.seconds, "mfu": [], "wall": wall}


def heldout_loss(model_dir: Path, base: Path, heldout: list) -> float:
    """Mean token loss on held-out rows, each alone through the stock SDPA model (same for both tools)."""
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from distill.sft.data import IGNORE_INDEX, encode_conversations

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for example in encode_conversations(tokenizer, heldout):
            ids = torch.tensor(example.input_ids, dtype=torch.long, device=device)[None]
            labels = torch.tensor(example.labels, dtype=torch.long, device=device)
            logits = model(input_ids=ids).logits[0].float()
            total += F.cross_entropy(
                logits[:-1], labels[1:], ignore_index=IGNORE_INDEX, reduction="sum"
            ).item()
            count += int((labels[1:] != IGNORE_INDEX).sum())
    return total / count


def throughput(run: dict) -> float:
    return sum(run["tokens"][1:]) / sum(run["seconds"][1:])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-tokens", type=int, default=4096, help="packed row length = sequence length")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=2048, help="tokenizer vocabulary trained on the shard")
    parser.add_argument(
        "--preset", choices=sorted(PRESETS), default="tiny", help="model shape (overrides sizes)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, help="torch CPU threads for both (default: torch's choice)")
    parser.add_argument("--skip-trl", action="store_true", help="distillery only (e.g. the GPU MFU run)")
    parser.add_argument("--trl-flash", action="store_true", help="TRL with flash_attention_2 (GPU)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "sft")
    args = parser.parse_args()
    if not DATA.exists():
        print(f"shared data absent: {DATA}")
        return 1

    import datasets
    import torch
    from transformers.utils import logging

    logging.disable_progress_bar()  # keep the output to the two runs' figures
    datasets.disable_progress_bars()
    if args.threads:
        torch.set_num_threads(args.threads)
    shutil.rmtree(args.out, ignore_errors=True)
    shard, base, heldout = prepare(args.out, args)
    device = (
        torch.cuda.get_device_name()
        if torch.cuda.is_available()
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(f"device: {device}; {args.steps} steps of one {args.batch_tokens}-token packed row")

    runs = {"distillery": run_distillery(shard, base, args.out / "distillery", args)}
    if not args.skip_trl:
        import trl

        print(f"TRL {trl.__version__}")
        runs["trl"] = run_trl(shard, base, args.out / "trl", args)

    print("\nloss by step")
    names = list(runs)
    print("step  " + "  ".join(f"{n:>10}" for n in names))
    for step in range(max(len(r["losses"]) for r in runs.values())):
        cells = [f"{r['losses'][step]:10.4f}" if step < len(r["losses"]) else " " * 10 for r in runs.values()]
        print(f"{step + 1:4d}  " + "  ".join(cells))

    print("\nresult")
    rows = []
    for name, run in runs.items():
        final = statistics.mean(run["losses"][-5:])
        rows.append(
            [
                name,
                f"{throughput(run):,.0f}",
                f"{sum(run['tokens']):,}",
                f"{run['wall']:.1f}s",
                f"{final:.4f}",
                f"{heldout_loss(args.out / name, base, heldout):.4f}",
                f"{100 * statistics.mean(run['mfu']):.1f}%" if run["mfu"] else "-",
            ]
        )
    headers = ["trainer", "tokens/s", "tokens", "wall (all)", "loss last 5", "held-out loss", "MFU"]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    for row in [headers] + rows:
        print("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))
    if "trl" in runs:
        ratio = throughput(runs["distillery"]) / throughput(runs["trl"])
        print(f"\ntokens/s ratio distillery / TRL: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
