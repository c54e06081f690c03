"""A recipe's `launch:` block: `distillery run` trains the student and joint steps under torchrun
(2 CPU processes, gloo, FSDP2) to the weights the in-process steps train, within the FSDP tolerance
of tests/sft/test_sft_cli.py; the block stays out of the fingerprints (global_batch fixes the batch);
a bad block or a batch the processes cannot share fails at planning."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from distill.recipe import Recipe, Run, run_recipe
from distill.recipe.launch import LaunchError, run_torchrun
from distill.sft.config import ConfigError, SFTConfig

SFT = {
    "lr": 3.0e-3,
    "max_steps": 3,
    "seq_len": 512,
    "batch_tokens": 1024,
    "global_batch": 2,  # 2 rows a step: 2 micro-batches in one process, 1 on each of 2
    "bf16": False,
    "gradient_checkpointing": False,
    "save_every": 2,
    "warmup_ratio": 0.0,
    "report_to": [],
}
RECIPE = {
    "name": "launch",
    "threads": 1,
    "corpus": {
        "seed": 3,
        "math": 24,
        "code": 0,
        "science": 0,
        "eval_math": 4,
        "eval_code": 0,
        "eval_science": 0,
    },
    "curate": {"workers": 1},
    "domains": ["math"],
    "base": {
        "tiny": {
            "vocab_size": 300,
            "hidden_size": 32,
            "num_layers": 2,
            "num_heads": 2,
            "num_kv_heads": 1,
            "intermediate_size": 64,
            "max_positions": 512,
        }
    },
    "sft": {"defaults": SFT},
    "joint": {"max_steps": 2},
    "merge": {
        "merge_method": "linear",
        "dtype": "float32",
        "models": [
            {"model": "base", "parameters": {"weight": 0.5}},
            {"model": "students/math", "parameters": {"weight": 0.5}},
        ],
    },
}
GLOO = {"nproc_per_node": 2, "backend": "gloo"}


def write(path: Path, **changes) -> Path:
    path.write_text(yaml.safe_dump({**RECIPE, **changes}, sort_keys=False))
    return path


def fingerprints(recipe: Path) -> dict[str, str]:
    return {
        step.name: step.fingerprint for step in Run(Recipe.load(recipe, "/nowhere"), progress=False).steps
    }


def test_the_launch_block_is_not_in_the_fingerprint(tmp_path):
    plain = fingerprints(write(tmp_path / "plain.yaml"))
    assert fingerprints(write(tmp_path / "gloo.yaml", launch=GLOO)) == plain
    ray = {"engine": "ray", "num_workers": 2}
    assert fingerprints(write(tmp_path / "ray.yaml", launch=ray)) == plain


def test_without_global_batch_the_world_size_sets_the_batch(tmp_path):
    """grad_accum counts rows per rank: under 2 processes a step has twice the rows, so the students
    (not curate or base) are another model, and their settings say so as global_batch."""
    sft = {"defaults": {k: v for k, v in SFT.items() if k != "global_batch"} | {"grad_accum": 3}}
    plain = fingerprints(write(tmp_path / "plain.yaml", sft=sft))
    launched = fingerprints(write(tmp_path / "gloo.yaml", sft=sft, launch=GLOO))
    changed = {name for name in plain if plain[name] != launched[name]}
    assert changed == {"students/math", "joint", "merge"}
    recipe = Recipe.load(write(tmp_path / "gloo.yaml", sft=sft, launch=GLOO), tmp_path / "out")
    assert recipe.student_settings("math")["global_batch"] == 6


@pytest.mark.parametrize(
    ("launch", "error", "message"),
    [
        (
            {"nproc_per_node": 2, "gpus": 8},
            LaunchError,
            r"unknown launch key\(s\) \['gpus'\] for engine torchrun",
        ),
        ({"nproc_per_node": 0}, LaunchError, "launch.nproc_per_node must be a positive whole number"),
        ({"backend": "mpi"}, LaunchError, "launch.backend must be one of gloo, nccl"),
        ({"engine": "slurm"}, LaunchError, "launch.engine must be one of torchrun, ray"),
        (
            {"engine": "ray", "nproc_per_node": 2},
            LaunchError,
            r"unknown launch key\(s\) \['nproc_per_node'\]",
        ),
        ({"nproc_per_node": 3}, ConfigError, "global_batch 2 is not a multiple of 3 rank"),
        ({"nproc_per_node": 2, "retries": -1}, LaunchError, "launch.retries must be a whole number"),
    ],
)
def test_a_bad_launch_block_fails_at_planning(tmp_path, launch, error, message):
    with pytest.raises(error, match=message):
        Run(Recipe.load(write(tmp_path / "r.yaml", launch=launch), tmp_path / "out"), progress=False)


def test_parallel_steps_with_a_launch_block_are_refused_in_one_line(tmp_path):
    from distill.recipe import RecipeError

    with pytest.raises(RecipeError) as error:
        Run(
            Recipe.load(write(tmp_path / "r.yaml", launch=GLOO, parallel=2), tmp_path / "out"), progress=False
        )
    message = str(error.value)
    assert "\n" not in message and message.startswith("parallel: 2 with a launch: block")
    assert "its own 2 training processes" in message  # why: side-by-side steps would share the devices
    assert getattr(error.value, "user_error", False)
    Run(Recipe.load(write(tmp_path / "one.yaml", launch=GLOO, parallel=1), tmp_path / "out"), progress=False)


def test_retries_restart_the_processes(tmp_path):
    from distill.recipe.launch import RETRIES, parse

    spec = tmp_path / "s.launch.json"
    command = parse(GLOO).torchrun_command(spec)
    assert command[command.index("--max-restarts") + 1] == str(RETRIES) == "2"
    command = parse({**GLOO, "retries": 0}).torchrun_command(spec)
    assert command[command.index("--max-restarts") + 1] == "0"


def test_a_user_error_in_a_launched_process_is_one_line(tmp_path):
    script = "import sys; print('rank 0 says'); print('distillery launch: error: data/x.parquet: no rows'); sys.exit(2)"
    with pytest.raises(LaunchError, match=r"^data/x.parquet: no rows$"):
        run_torchrun([sys.executable, "-c", script], {}, "math", progress=False)
    with pytest.raises(RuntimeError, match=r"math: training under torchrun failed \(exit status 3\)"):
        run_torchrun([sys.executable, "-c", "import sys; sys.exit(3)"], {}, "math", progress=False)
    assert getattr(LaunchError("x"), "user_error", False)  # `distillery run` prints it as one line


def steps_run(lines: list[str]) -> set[str]:
    return {line.split("] ", 1)[1].split(":", 1)[0] for line in lines if "done earlier" not in line}


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    """The recipe run in-process: the reference the launched runs are compared with (copied, not changed)."""
    root = tmp_path_factory.mktemp("plain")
    run_recipe(write(root / "plain.yaml"), root / "out", progress=False, log=lambda line: None)
    return root / "out"


def assert_same_training(plain: Path, launched: Path, step: str) -> None:
    """The step's weights and losses equal the in-process ones within the FSDP tolerance, and it trained."""
    a, b = load_file(plain / step / "model.safetensors"), load_file(launched / step / "model.safetensors")
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-5, (step, worst)
    base = load_file(plain / "base" / "init" / "model.safetensors")
    assert max((a[k] - base[k]).abs().max().item() for k in a) > 1e-4
    losses = [json.loads(line).get("loss") for line in (plain / step / "metrics.jsonl").open()]
    again = [json.loads(line).get("loss") for line in (launched / step / "metrics.jsonl").open()]
    assert again == pytest.approx(losses, abs=1e-5)


@pytest.mark.slow
def test_launched_students_equal_the_in_process_ones(plain, tmp_path):
    """The same recipe in-process, then with `launch: {nproc_per_node: 2, backend: gloo}` in a copy of
    the run whose joint step is gone and whose student was killed after its step-2 checkpoint: only
    those two steps train again, under torchrun (the student resumed from the 1-process checkpoint),
    to the same weights and losses as in-process (FSDP tolerance: 1e-5)."""
    launched = tmp_path / "launched"
    shutil.copytree(plain, launched, symlinks=True)
    shutil.rmtree(launched / "joint")
    student = launched / "students" / "math"
    assert (student / "checkpoints" / "step-00000002").is_dir()
    for name in ("model.safetensors", "summary.json"):
        (student / name).unlink()
    marker = launched / ".steps" / "students__math.json"  # what the engine leaves when a step is killed
    marker.with_suffix(".pending").write_text(
        json.dumps({"fingerprint": json.loads(marker.read_text())["fingerprint"]})
    )
    marker.unlink()

    lines: list[str] = []
    results = run_recipe(
        write(tmp_path / "launched.yaml", launch=GLOO), launched, progress=False, log=lines.append
    )
    assert steps_run(lines) == {"students/math", "joint"}  # curate, base (and merge: same fingerprint) kept
    assert results["steps"]["joint"]["processes"] == results["steps"]["students/math"]["processes"] == 2
    summary = json.loads((student / "summary.json").read_text())
    assert summary["resumed_from"] == 2 and summary["rows_per_step"] == 2 and summary["world"] == 2
    for step in ("students/math", "joint"):
        assert_same_training(plain, launched, step)


@pytest.mark.slow
def test_students_trained_by_ray_train_across_two_nodes_equal_the_in_process_ones(plain, tmp_path):
    """`launch: {engine: ray, num_workers: 2}` on a real Ray cluster of two nodes started here (one CPU
    each, so Ray Train's TorchTrainer puts one worker on each): the student equals the in-process one."""
    pytest.importorskip("ray.train.torch")
    from ray.cluster_utils import Cluster

    launched = tmp_path / "launched"
    shutil.copytree(plain, launched, symlinks=True)
    shutil.rmtree(launched / "students" / "math")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        launch = {"engine": "ray", "num_workers": 2, "backend": "gloo", "address": cluster.address}
        lines: list[str] = []
        results = run_recipe(
            write(tmp_path / "ray.yaml", launch=launch), launched, progress=False, log=lines.append
        )
    finally:
        cluster.shutdown()
    assert steps_run(lines) == {"students/math"}
    assert results["steps"]["students/math"]["processes"] == 2
    assert_same_training(plain, launched, "students/math")


@pytest.mark.slow
def test_a_ray_train_worker_killed_midway_restarts_from_the_last_checkpoint(plain, tmp_path):
    """`launch: {engine: ray, num_workers: 2}` on a two-node Ray cluster: once the student has written a
    checkpoint, one of its two Ray Train worker processes is killed (SIGKILL). Ray Train's
    FailureConfig (launch.retries) starts the workers again, they resume from the trainer's newest
    checkpoint, and the student equals the one trained in-process without a failure."""
    pytest.importorskip("ray.train.torch")
    import signal
    import threading
    import time

    import psutil
    from ray.cluster_utils import Cluster

    changes = {"sft": {"defaults": {**SFT, "max_steps": 40, "save_every": 4}}, "joint": None, "merge": None}
    reference = tmp_path / "reference"
    shutil.copytree(plain, reference, symlinks=True)
    run_recipe(write(tmp_path / "long.yaml", **changes), reference, progress=False, log=lambda line: None)
    launched = tmp_path / "launched"
    shutil.copytree(plain, launched, symlinks=True)
    shutil.rmtree(launched / "students" / "math")
    first = launched / "students" / "math" / "checkpoints" / "step-00000004" / "trainer_state.json"
    killed: list[int] = []
    stop = threading.Event()

    def kill_one_worker_once() -> None:
        while not stop.is_set() and not first.is_file():
            time.sleep(0.02)
        while not stop.is_set() and not killed:
            # Only this test's own processes: the cluster's nodes are children of this process.
            for process in psutil.Process().children(recursive=True):
                try:
                    if "RayTrainWorker" in " ".join(process.cmdline()):
                        process.send_signal(signal.SIGKILL)
                        killed.append(process.pid)
                        return
                except psutil.Error:
                    continue
            time.sleep(0.02)

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    killer = threading.Thread(target=kill_one_worker_once)
    try:
        cluster.add_node(num_cpus=1)
        launch = {
            "engine": "ray",
            "num_workers": 2,
            "backend": "gloo",
            "address": cluster.address,
            "retries": 1,
        }
        killer.start()
        results = run_recipe(
            write(tmp_path / "ray.yaml", launch=launch, **changes),
            launched,
            progress=False,
            log=lambda line: None,
        )
    finally:
        stop.set()
        killer.join()
        cluster.shutdown()
    assert len(killed) == 1
    summary = json.loads((launched / "students" / "math" / "summary.json").read_text())
    assert summary["steps"] == 40 and summary["world"] == 2
    assert summary["resumed_from"] >= 4  # restarted from a checkpoint, not from step 0
    assert results["steps"]["students/math"]["processes"] == 2
    assert_same_training(reference, launched, "students/math")


@pytest.mark.slow
def test_torchrun_over_two_nodes_runs_with_the_command_it_logs(plain, tmp_path, capsys):
    """`nnodes: 2`: the step starts its torchrun agent and logs the command for the other node; a second
    agent started with that command (here on the same machine) joins the c10d rendezvous, and the
    student trained over the two "nodes" equals the in-process one."""
    import socket
    import subprocess
    import threading
    import time

    from distill.recipe.launch import parse

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launch = {
        "nproc_per_node": 1,
        "nnodes": 2,
        "backend": "gloo",
        "master_addr": "127.0.0.1",
        "master_port": port,
    }
    launched = tmp_path / "launched"
    shutil.copytree(plain, launched, symlinks=True)
    shutil.rmtree(launched / "students" / "math")
    spec = launched / ".steps" / "students__math.launch.json"
    command = parse(launch, threads=1).torchrun_command(spec)
    other: dict = {}

    def other_node() -> None:  # what the user runs on the second node once the step has written its spec
        deadline = time.monotonic() + 300
        while not spec.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
        other["done"] = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)

    thread = threading.Thread(target=other_node)
    thread.start()
    try:
        results = run_recipe(
            write(tmp_path / "nodes.yaml", launch=launch), launched, progress=False, log=print
        )
    finally:
        thread.join(timeout=330)
    assert other["done"].returncode == 0, other["done"].stdout[-2000:] + other["done"].stderr[-2000:]
    assert f"math: on each of the other 1 node(s), run: {' '.join(command)}" in capsys.readouterr().out
    assert results["steps"]["students/math"]["processes"] == 2
    assert_same_training(plain, launched, "students/math")


def test_tinyr1_recipe_carries_the_released_per_domain_settings(tmp_path):
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "tinyr1.yaml"
    values = yaml.safe_load(recipe.read_text())
    values["inputs"] = [str(tmp_path / "traces.jsonl")]  # planning reads the trace files' checksums
    (tmp_path / "traces.jsonl").write_text("{}\n")
    run = Run(Recipe(values, tmp_path / "out", recipe.parent), progress=False)
    configs = {d: SFTConfig.from_dict(run.recipe.student_settings(d)) for d in ("math", "code", "science")}
    assert {d: c.schedule for d, c in configs.items()} == {
        "math": "constant_with_warmup",
        "code": "constant_with_warmup",
        "science": "cosine",
    }
    assert {d: c.global_batch for d, c in configs.items()} == {"math": 96, "code": 96, "science": 32}
    assert run.recipe.launch().world == 8  # 1 sequence per GPU x 12 / 12 / 4 micro-batches x 8 GPUs
    assert {d: c.accumulation(8) for d, c in configs.items()} == {"math": 12, "code": 12, "science": 4}
