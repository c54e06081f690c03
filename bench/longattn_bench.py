"""LongAttn scoring on CPU: tokens/s and peak memory against window length, chunked vs eager attention.

The anchor is what LongAttn's released code (and any `output_attentions=True` pipeline) does: run the
model with eager attention and take the layer's full L x L attention of every head, then compute DS/DU
from it. distillery's scorer rebuilds the layer's queries and keys and walks the queries in chunks,
so only heads x chunk x L scores exist at once. Both score the same random token windows with the
same tiny random Qwen2 (cut after the scored layer), and the script checks they agree on DS and DU.

Each measurement runs in a fresh process; "peak" is the growth of its resident set (VmHWM, reset
after the model is loaded) while scoring, so the model and the interpreter are not counted.

    .venv-bench/bin/python bench/longattn_bench.py
    .venv-bench/bin/python bench/longattn_bench.py --windows 1024,4096,16384 --eager-max 8192 --chunk 256
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _status(field: str) -> int:
    """A /proc/self/status memory figure, in MiB."""
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) // 1024


def build_model(folder: Path, hidden: int, heads: int, layers: int, max_window: int) -> None:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=4096,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_window,
    )
    Qwen2ForCausalLM(config).save_pretrained(folder)


def child(args: argparse.Namespace) -> None:
    """One measurement: score `--repeat` random windows of `--window` tokens; print a JSON line."""
    import torch

    sys.path.insert(0, str(ROOT))
    from curate.longctx.attention import far_attention_mass, layer_queries_keys, load_layer_model
    from curate.longctx.longattn import dependency_stats

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    windows = [torch.randint(0, 4096, (args.window,)) for _ in range(args.repeat)]
    distance = args.window // 4
    if args.method == "chunked":
        lm = load_layer_model(args.model, args.layer)

        def score(ids: torch.Tensor) -> tuple[float, float]:
            query, key = layer_queries_keys(lm, ids)
            return dependency_stats(far_attention_mass(query, key, distance, args.chunk), distance)
    else:
        from transformers import AutoConfig, AutoModel

        config = AutoConfig.from_pretrained(args.model)
        config.num_hidden_layers = args.layer + 1
        model = AutoModel.from_pretrained(args.model, config=config, attn_implementation="eager").eval()

        def score(ids: torch.Tensor) -> tuple[float, float]:
            with torch.no_grad():
                attention = model(ids.view(1, -1), output_attentions=True).attentions[args.layer][0]
            i, j = torch.arange(len(ids)).unsqueeze(1), torch.arange(len(ids)).unsqueeze(0)
            return dependency_stats((attention * (j <= i - distance)).sum(-1), distance)

    score(windows[0][: min(args.window, distance + 64)])  # warm-up (lazy inits), before the peak is reset
    baseline = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current resident set
    started = time.perf_counter()
    results = [score(w) for w in windows]
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "tokens_per_s": args.repeat * args.window / seconds,
                "peak_mib": _status("VmHWM") - baseline,
                "ds": results[0][0],
                "du": results[0][1],
            }
        )
    )


def measure(model: Path, method: str, window: int, args: argparse.Namespace) -> dict | None:
    command = [sys.executable, __file__, "--child", method, "--model", str(model), "--window", str(window)]
    command += ["--chunk", str(args.chunk), "--layer", str(args.layer), "--repeat", str(args.repeat)]
    command += ["--threads", str(args.threads)]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        print(
            f"  {method} L={window}: failed (exit {run.returncode}) {run.stderr.strip()[-300:]}",
            file=sys.stderr,
        )
        return None
    return json.loads(run.stdout.strip().splitlines()[-1])


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--windows", default="1024,2048,4096,8192,16384,32768", help="window lengths L (tokens)"
    )
    parser.add_argument(
        "--eager-max", type=int, default=8192, help="largest L for the eager anchor (its memory grows as L^2)"
    )
    parser.add_argument("--chunk", type=int, default=256, help="queries per block in the chunked scorer")
    parser.add_argument("--chunks", default="64,256,1024", help="chunk sizes for the memory-vs-chunk sweep")
    parser.add_argument("--sweep-window", type=int, default=8192, help="L of the chunk sweep")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument(
        "--layer", type=int, default=1, help="scored layer (the layers before it run with SDPA)"
    )
    parser.add_argument("--repeat", type=int, default=2, help="windows scored per measurement")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", choices=("chunked", "eager"), help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--window", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.method = args.child
        child(args)
        return

    windows = [int(w) for w in args.windows.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        model = Path(folder)
        build_model(model, args.hidden, args.heads, args.layers, max(windows + [args.sweep_window]))
        print(
            f"tiny Qwen2: hidden {args.hidden}, {args.heads} heads, {args.layers} layers; scoring layer {args.layer}, "
            f"k = L/4, chunk {args.chunk}, {args.repeat} windows per point, {args.threads} threads\n"
        )
        rows = [
            (
                "L",
                "chunked tok/s",
                "chunked peak MiB",
                "eager tok/s",
                "eager peak MiB",
                "memory ratio",
                "speed ratio",
                "|dDS|",
            )
        ]
        for window in windows:
            ours = measure(model, "chunked", window, args)
            eager = measure(model, "eager", window, args) if window <= args.eager_max else None
            rows.append(
                (
                    str(window),
                    f"{ours['tokens_per_s']:,.0f}" if ours else "failed",
                    f"{ours['peak_mib']:,}" if ours else "-",
                    f"{eager['tokens_per_s']:,.0f}" if eager else "skipped",
                    f"{eager['peak_mib']:,}" if eager else "-",
                    f"{eager['peak_mib'] / max(ours['peak_mib'], 1):.1f}x" if ours and eager else "-",
                    f"{ours['tokens_per_s'] / eager['tokens_per_s']:.2f}x" if ours and eager else "-",
                    f"{abs(ours['ds'] - eager['ds']):.1e}" if ours and eager else "-",
                )
            )
            print(f"  L={window} done", file=sys.stderr)
        print(table(rows))
        print("\nmemory ratio = eager peak / chunked peak; speed ratio = chunked tok/s / eager tok/s\n")

        rows = [("chunk", f"peak MiB at L={args.sweep_window}", "tok/s", "heads x chunk x L x 4 B (MiB)")]
        for chunk in (int(c) for c in args.chunks.split(",")):
            args.chunk = chunk
            ours = measure(model, "chunked", args.sweep_window, args)
            block = args.heads * chunk * args.sweep_window * 4 / 2**20
            rows.append(
                (
                    str(chunk),
                    f"{ours['peak_mib']:,}" if ours else "failed",
                    f"{ours['tokens_per_s']:,.0f}" if ours else "-",
                    f"{block:,.0f}",
                )
            )
        print(table(rows))


if __name__ == "__main__":
    main()
