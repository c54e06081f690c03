"""Merge benchmark: `distillery merge` against mergekit (`mergekit-yaml`) on 0.5B-shaped students.

    .venv-bench/bin/python bench/merge_bench.py                      # linear, ties, arcee_fusion
    .venv-bench/bin/python bench/merge_bench.py --methods new         # the methods added in issue 22
    .venv-bench/bin/python bench/merge_bench.py --methods all
    .venv-bench/bin/python bench/merge_bench.py --methods ties --repeat 2
    .venv-bench/bin/python bench/merge_bench.py --layers 4           # a quick, smaller run

Models: a base and three students of Qwen2.5-0.5B's shape (Qwen2Config: hidden 896, 24 layers,
14 heads, 2 KV heads, intermediate 4864, vocabulary 151936, tied embeddings), random weights in
bfloat16, built with transformers and saved with save_pretrained (safetensors). Each student is
the base plus N(0, 0.002) noise, so task vectors are small as after SFT. They are cached under
bench/out/merge/models (about 1 GB each).

Configs (identical YAML for both tools, dtype bfloat16):
  linear        the three students, weights 0.4 / 0.3 / 0.3
  ties          base + three students, same weights, density 0.5
  arcee_fusion  one step: student 1 fused into student 0
  task_arithmetic, breadcrumbs (density 0.5, gamma 0.01), breadcrumbs_ties, della and
  della_linear (density 0.5, epsilon 0.15), sce (select_topk 0.5): base + three students
  karcher, multislerp: the three students; nuslerp: students 0 and 1 over the base
  nearswap: student 1 into student 0, t 0.001
  passthrough: a frankenmerge, the first 3/4 of student 0's layers stacked on the last 3/4 of
  student 1's (36 layers from 24; 2 from 2). When the layer count changes, mergekit writes the
  tensors, then fails to save the config (transformers 5 checks the new num_hidden_layers
  against the per-layer `layer_types` it copied, see tests/merge/test_merge_examples.py); the
  table then shows nan for its time and says so under the table.

Each run is a fresh child process (`mergekit-yaml CONFIG OUT` with default options, and the
`distillery` console script), with every input file read once beforehand so both start from a
warm page cache. Wall time is the child's; CPU time and peak RSS (ru_maxrss) come from wait4.
This script itself never imports torch: building the models and comparing the outputs run in
children of their own, so no child starts from a fork of a large parent.
The merged tensors of both are compared at the end (max |diff|): mergekit computes ties and
arcee_fusion in bfloat16 when the inputs are bfloat16, distillery in float32, so they agree to
bfloat16 rounding, not bit for bit.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = (0.4, 0.3, 0.3)


def build_models(root: Path, layers: int) -> dict[str, Path]:
    """base, s0, s1, s2 (cached: rebuilt only when missing)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    names = ["base", "s0", "s1", "s2"]
    paths = {name: root / name for name in names}
    if all((path / "config.json").exists() for path in paths.values()):
        return paths
    config = Qwen2Config(
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=layers,
        num_attention_heads=14,
        num_key_value_heads=2,
        vocab_size=151936,
        max_position_embeddings=32768,
        tie_word_embeddings=True,
        rope_theta=1000000.0,
        rms_norm_eps=1e-6,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    base = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    model.save_pretrained(paths["base"])
    for index in range(3):
        generator = torch.Generator().manual_seed(100 + index)
        with torch.no_grad():
            for name, tensor in model.state_dict().items():
                noise = torch.randn(tensor.shape, generator=generator, dtype=torch.float32) * 0.002
                tensor.copy_((base[name].float() + noise).to(torch.bfloat16))
        model.save_pretrained(paths[f"s{index}"])
        print(f"built {paths[f's{index}']}", flush=True)
    return paths


NEW_METHODS = (
    "task_arithmetic",
    "breadcrumbs",
    "breadcrumbs_ties",
    "della",
    "della_linear",
    "sce",
    "karcher",
    "nuslerp",
    "multislerp",
    "nearswap",
    "passthrough",
)


def configs(paths: dict[str, Path], layers: int) -> dict[str, dict]:
    students = [{"model": str(paths[f"s{i}"]), "parameters": {"weight": w}} for i, w in enumerate(WEIGHTS)]
    base = str(paths["base"])

    def sparse(**extra):
        return [
            {"model": s["model"], "parameters": {**s["parameters"], "density": 0.5, **extra}}
            for s in students
        ]

    cut = (layers * 3) // 4
    return {
        "task_arithmetic": {
            "merge_method": "task_arithmetic",
            "base_model": base,
            "dtype": "bfloat16",
            "models": students,
        },
        "breadcrumbs": {
            "merge_method": "breadcrumbs",
            "base_model": base,
            "dtype": "bfloat16",
            "models": sparse(gamma=0.01),
        },
        "breadcrumbs_ties": {
            "merge_method": "breadcrumbs_ties",
            "base_model": base,
            "dtype": "bfloat16",
            "models": sparse(gamma=0.01),
        },
        "della": {
            "merge_method": "della",
            "base_model": base,
            "dtype": "bfloat16",
            "models": sparse(epsilon=0.15),
        },
        "della_linear": {
            "merge_method": "della_linear",
            "base_model": base,
            "dtype": "bfloat16",
            "models": sparse(epsilon=0.15),
        },
        "sce": {
            "merge_method": "sce",
            "base_model": base,
            "dtype": "bfloat16",
            "parameters": {"select_topk": 0.5},
            "models": [{"model": s["model"]} for s in students],
        },
        "karcher": {
            "merge_method": "karcher",
            "dtype": "bfloat16",
            "models": [{"model": s["model"]} for s in students],
        },
        "nuslerp": {
            "merge_method": "nuslerp",
            "base_model": base,
            "dtype": "bfloat16",
            "models": students[:2],
        },
        "multislerp": {"merge_method": "multislerp", "dtype": "bfloat16", "models": students},
        "nearswap": {
            "merge_method": "nearswap",
            "base_model": str(paths["s0"]),
            "dtype": "bfloat16",
            "parameters": {"t": 0.001},
            "models": [{"model": str(paths["s0"])}, {"model": str(paths["s1"])}],
        },
        "passthrough": {
            "merge_method": "passthrough",
            "dtype": "bfloat16",
            "slices": [
                {"sources": [{"model": str(paths["s0"]), "layer_range": [0, cut]}]},
                {"sources": [{"model": str(paths["s1"]), "layer_range": [layers - cut, layers]}]},
            ],
        },
        "linear": {"merge_method": "linear", "models": students, "dtype": "bfloat16"},
        "ties": {
            "merge_method": "ties",
            "base_model": str(paths["base"]),
            "dtype": "bfloat16",
            "models": [
                {"model": s["model"], "parameters": {**s["parameters"], "density": 0.5}} for s in students
            ],
        },
        "arcee_fusion": {
            "merge_method": "arcee_fusion",
            "base_model": str(paths["s0"]),
            "dtype": "bfloat16",
            "models": [{"model": str(paths["s0"])}, {"model": str(paths["s1"])}],
        },
    }


def warm(paths: list[Path]) -> None:
    for directory in paths:
        for file in directory.glob("*.safetensors"):
            with open(file, "rb") as handle:
                while handle.read(1 << 24):
                    pass


def measure(command: list[str], log: Path, env: dict) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in GB, exit code) of a child process."""
    with open(log, "w") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024 / 1e9, process.returncode


def compare(ours: Path, theirs: Path) -> str:
    from safetensors.torch import load_file

    def load(directory: Path) -> dict:
        state = {}
        for file in directory.glob("*.safetensors"):
            state.update(load_file(file))
        return state

    a, b = load(ours), load(theirs)
    common = sorted(set(a) & set(b))
    worst = max((a[n].float() - b[n].float()).abs().max().item() for n in common)
    equal = sum(int((a[n] == b[n]).sum()) for n in common) / sum(a[n].numel() for n in common)
    extra = sorted(set(a) ^ set(b))
    return f"max |diff| {worst:.3g}, {equal:.2%} of entries identical" + (
        f", names differ: {extra}" if extra else ""
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "merge")
    parser.add_argument("--methods", default="linear,ties,arcee_fusion")
    parser.add_argument("--layers", type=int, default=24, help="decoder layers (24 = Qwen2.5-0.5B)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per tool and method (the fastest is kept)"
    )
    parser.add_argument(
        "--passive",
        action="store_true",
        help="run both tools with OMP_WAIT_POLICY=PASSIVE (distillery sets it for itself)",
    )
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)  # internal: build models in a child
    parser.add_argument("--compare", type=Path, nargs=2, help=argparse.SUPPRESS)  # internal: compare outputs
    args = parser.parse_args()
    if args.build:
        build_models(args.build, args.layers)
        return 0
    if args.compare:
        print(compare(*args.compare))
        return 0

    import yaml

    models_dir = args.out / ("models" if args.layers == 24 else f"models-{args.layers}l")
    subprocess.run(
        [sys.executable, __file__, "--build", str(models_dir), "--layers", str(args.layers)], check=True
    )
    paths = {name: models_dir / name for name in ("base", "s0", "s1", "s2")}
    bin_dir = Path(sys.executable).parent
    mergekit = bin_dir / "mergekit-yaml"
    distillery = bin_dir / "distillery"
    if not mergekit.exists():
        print(f"mergekit-yaml not found next to {sys.executable}: install the bench extra", file=sys.stderr)
        return 1

    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"} if args.passive else dict(os.environ)
    rows = []
    methods = {
        "new": ",".join(NEW_METHODS),
        "all": ",".join(["linear", "ties", "arcee_fusion", *NEW_METHODS]),
    }
    for method in methods.get(args.methods, args.methods).split(","):
        config = configs(paths, args.layers)[method]
        config_file = args.out / f"{method}.yaml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        listed = (
            config["models"]
            if "models" in config
            else [s for piece in config["slices"] for s in piece["sources"]]
        )
        inputs = sorted(
            {Path(m["model"]) for m in listed}
            | ({Path(config["base_model"])} if "base_model" in config else set())
        )
        results = {}
        for tool, command in (
            ("distillery", [str(distillery), "merge", str(config_file), "--out"]),
            ("mergekit", [str(mergekit), str(config_file)]),
        ):
            out = args.out / f"{method}-{tool}"
            best = None
            for _ in range(args.repeat):
                shutil.rmtree(out, ignore_errors=True)
                warm(inputs)
                seconds, cpu, rss, code = measure(
                    command + [str(out)], args.out / f"{method}-{tool}.log", env
                )
                if code != 0:
                    print(f"{tool} {method} failed (exit {code}); see {args.out / f'{method}-{tool}.log'}")
                    if tool == "distillery":
                        return 1
                    seconds = math.nan  # mergekit's failure is reported in the table, its memory kept
                best = (seconds, cpu, rss) if best is None or seconds < best[0] else best
            results[tool] = best
            print(
                f"{method:13s} {tool:10s} {best[0]:7.1f} s wall {best[1]:7.1f} s CPU {best[2]:5.2f} GB",
                flush=True,
            )
        agreement = (
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--compare",
                    str(args.out / f"{method}-distillery"),
                    str(args.out / f"{method}-mergekit"),
                ],
                capture_output=True,
                text=True,
            ).stdout.strip()
            or "no output"
        )
        if math.isnan(results["mergekit"][0]):
            agreement += " (mergekit exited with an error after writing tensors)"
        rows.append((method, results, agreement))

    load = os.getloadavg()[0]
    policy = "OMP_WAIT_POLICY=PASSIVE for both" if args.passive else "default environment"
    print(
        f"\n{args.layers}-layer Qwen2 (0.5B shape at 24), bf16, {os.cpu_count()} CPUs, load average {load:.1f}, "
        f"{policy}"
    )
    header = (
        f"{'method':13s} {'distillery s':>12s} {'mergekit s':>10s} {'time ratio':>10s} {'CPU s ours/theirs':>17s} "
        f"{'distillery GB':>13s} {'mergekit GB':>11s} {'RSS ratio':>9s}"
    )
    print(header)
    print("-" * len(header))
    for method, results, _ in rows:
        (ours_s, ours_cpu, ours_gb), (theirs_s, theirs_cpu, theirs_gb) = (
            results["distillery"],
            results["mergekit"],
        )
        cpu = f"{ours_cpu:.0f}/{theirs_cpu:.0f}"
        print(
            f"{method:13s} {ours_s:12.1f} {theirs_s:10.1f} {ours_s / theirs_s:10.2f} {cpu:>17s} "
            f"{ours_gb:13.2f} {theirs_gb:11.2f} {ours_gb / theirs_gb:9.2f}"
        )
    print()
    for method, _, agreement in rows:
        print(f"{method}: distillery vs mergekit output: {agreement}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
