"""A recipe's `launch:` block: its SFT steps (students, joint) train on several processes, started
by `distillery run` itself, with the trainer the in-process steps use (distill.sft.trainer: FSDP2
over the ranks, its checkpoints and resume).

    launch: {nproc_per_node: 8}                      torchrun on this node (nccl on GPUs)
    launch: {nproc_per_node: 2, backend: gloo}       2 CPU processes (what the tests run)
    launch: {nproc_per_node: 8, nnodes: 4, master_addr: HOST, master_port: 29500}
                                                     torchrun on 4 nodes; each other node runs the
                                                     command the step logs (same paths, shared disk)
    launch: {engine: ray, num_workers: 16, use_gpu: true, address: auto}
                                                     Ray Train's TorchTrainer over a Ray cluster
    retries: 2 (either engine; the default)          restarts of the step's processes after one dies
                                                     (torchrun --max-restarts, Ray Train's
                                                     FailureConfig.max_failures); each restart resumes
                                                     from the trainer's newest checkpoint

Each launched process runs `main` here on a spec file (the step's settings and folders) written to
the run's marker folder. The block is not part of a step's fingerprint: what the model depends on
is the SFT settings, and the one of them that the number of processes changes, the rows per step,
is fixed by `global_batch`; a recipe that gives `grad_accum` (per rank) instead gets global_batch =
grad_accum x world size from the schema (Recipe.launched), so changing the world size redoes the
step (its batch changed) while changing the backend, port or engine does not.
"""

from __future__ import annotations

import codecs
import importlib.util
import json
import os
import socket
import subprocess
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENGINES = ("torchrun", "ray")
BACKENDS = ("gloo", "nccl")
KEYS = {
    "torchrun": ("engine", "nproc_per_node", "nnodes", "backend", "master_addr", "master_port", "retries"),
    "ray": ("engine", "num_workers", "use_gpu", "backend", "address", "retries"),
}
# A process that dies (a preempted node, an OOM kill) costs at most the steps since the newest
# checkpoint, so a few restarts are cheap; a failure that repeats (a user error, a bug) still ends
# the step after them, with its own message.
RETRIES = 2
ERROR = "distillery launch: error: "  # how a launched process reports a user error on its last line


class LaunchError(Exception):
    """A bad `launch:` block, or a user error reported by a launched training process."""

    user_error = True


@dataclass(frozen=True)
class Launch:
    engine: str = "torchrun"
    nproc_per_node: int = 1
    nnodes: int = 1
    backend: str | None = None  # None: nccl where CUDA is available, else gloo
    master_addr: str | None = None  # torchrun over several nodes: the rendezvous host (default: this one)
    master_port: int | None = None
    num_workers: int = 1  # ray
    use_gpu: bool | None = None  # ray; None: when this machine has CUDA
    address: str | None = None  # ray: the cluster to join (None: a local cluster for the step)
    retries: int = RETRIES  # restarts of the processes after a failure, each resuming from a checkpoint
    threads: int | None = None  # the recipe's `threads`, set in every process

    @property
    def world(self) -> int:
        """The number of training processes (ranks)."""
        return self.num_workers if self.engine == "ray" else self.nproc_per_node * self.nnodes

    def train(self, spec: dict[str, Any], spec_file: Path, progress: bool, log=print) -> None:
        """Train `spec` (settings, source, data, base, out) on `world` processes; returns when the
        model is in spec["out"]. Raises LaunchError for a user error reported by a process."""
        spec = {**spec, "progress": progress, "threads": self.threads, "backend": self.backend}
        spec_file.parent.mkdir(parents=True, exist_ok=True)
        spec_file.write_text(json.dumps(spec, indent=2))
        if self.engine == "ray":
            self._train_on_ray(spec, spec_file)
            return
        command = self.torchrun_command(spec_file)
        if self.nnodes > 1:
            log(f"{spec['source']}: on each of the other {self.nnodes - 1} node(s), run: {' '.join(command)}")
        run_torchrun(command, self._environment(), spec["source"], progress)

    def torchrun_command(self, spec_file: Path) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            str(self.nproc_per_node),
            "--max-restarts",
            str(self.retries),
        ]
        if self.nnodes > 1:
            # c10d rendezvous: every node runs this same command; the host at the endpoint holds the store.
            host = self.master_addr or socket.gethostname()
            endpoint = f"{host}:{self.master_port or 29500}"
            command += ["--nnodes", str(self.nnodes), "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint]
            command += ["--rdzv-id", spec_file.stem.replace(".", "_")]
        elif self.master_port is not None:
            command += ["--master-addr", "127.0.0.1", "--master-port", str(self.master_port)]
        else:
            command.append("--standalone")  # a free port on this machine
        return [*command, "-m", "distill.recipe.launch", str(spec_file)]

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.backend == "gloo":
            env["CUDA_VISIBLE_DEVICES"] = ""  # gloo trains on the CPU
        if self.threads:
            env["OMP_NUM_THREADS"] = str(self.threads)
        return env

    def _train_on_ray(self, spec: dict[str, Any], spec_file: Path) -> None:
        import ray
        from ray.train import FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer

        joined = not ray.is_initialized()
        if joined:
            ray.init(address=self.address, log_to_driver=bool(spec["progress"]))
        try:
            use_gpu = self.use_gpu
            if use_gpu is None:
                use_gpu = bool(ray.cluster_resources().get("GPU"))
            backend = self.backend or ("nccl" if use_gpu else "gloo")
            trainer = TorchTrainer(
                ray_worker,
                train_loop_config=spec,
                scaling_config=ScalingConfig(num_workers=self.num_workers, use_gpu=use_gpu),
                torch_config=TorchConfig(backend=backend),
                # Ray keeps its own run state there; the model and checkpoints go to spec["out"] as always.
                # A worker that dies fails the group; Ray starts it again (up to `retries` times) and
                # every worker resumes from the trainer's newest checkpoint in spec["out"].
                run_config=RunConfig(
                    name=spec_file.stem.replace(".", "_"),
                    storage_path=str(spec_file.parent),
                    failure_config=FailureConfig(max_failures=self.retries),
                ),
            )
            try:
                trainer.fit()
            except Exception as error:
                message = _reported_error(str(error))
                if message:
                    raise LaunchError(message) from error
                raise
        finally:
            if joined:
                ray.shutdown()


def parse(values: Any, threads: Any = None) -> Launch | None:
    """The Launch of a recipe's `launch:` mapping (None when absent); every key checked."""
    if values is None:
        return None
    if not isinstance(values, dict):
        raise LaunchError(f"`launch` must be a mapping, not {type(values).__name__}")
    engine = values.get("engine", "torchrun")
    if engine not in ENGINES:
        raise LaunchError(f"launch.engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    unknown = sorted(set(values) - set(KEYS[engine]))
    if unknown:
        raise LaunchError(
            f"unknown launch key(s) {unknown} for engine {engine}; known: {sorted(KEYS[engine])}"
        )
    for key in ("nproc_per_node", "nnodes", "num_workers", "master_port"):
        value = values.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise LaunchError(f"launch.{key} must be a positive whole number, not {value!r}")
    retries = values.get("retries", RETRIES)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise LaunchError(f"launch.retries must be a whole number of restarts >= 0, not {retries!r}")
    if engine == "ray" and importlib.util.find_spec("ray") is None:
        raise LaunchError("launch: {engine: ray} needs Ray: pip install 'distillery[ray]'")
    backend = values.get("backend")
    if backend is not None and backend not in BACKENDS:
        raise LaunchError(f"launch.backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    return Launch(**values, threads=int(threads) if threads else None)


def run_torchrun(command: list[str], env: dict[str, str], source: str, progress: bool) -> None:
    """Run torchrun, echoing its output (rank 0's progress bar) when `progress`, keeping the end of it
    for the error message."""
    tail: deque[str] = deque(maxlen=400)
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process:
        assert process.stdout is not None
        while chunk := os.read(process.stdout.fileno(), 1 << 16):
            text = decoder.decode(chunk)
            tail.append(text)
            if progress:
                sys.stderr.write(text)
                sys.stderr.flush()
    output = "".join(tail)
    if process.returncode:
        message = _reported_error(output)
        if message:
            raise LaunchError(message)
        raise RuntimeError(
            f"{source}: training under torchrun failed (exit status {process.returncode}); the end of its "
            f"output:\n{output[-4000:]}"
        )


def _reported_error(output: str) -> str | None:
    lines = [line for line in output.splitlines() if ERROR in line]
    return lines[-1].split(ERROR, 1)[1].strip() if lines else None


def work(spec: dict[str, Any]) -> None:
    """In one training process (a torchrun rank or a Ray Train worker): train the spec's step."""
    import torch
    import torch.distributed as dist

    from distill.recipe.schema import check_sft
    from distill.sft.trainer import train

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    own_group = (
        int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized() and spec.get("backend")
    )
    if own_group:
        dist.init_process_group(spec["backend"])  # else the trainer picks nccl on GPUs, gloo on CPU
    if not spec["progress"]:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    try:
        config = check_sft(spec["settings"], spec["source"])
        train(config, spec["data"], spec["base"], spec["out"], resume=True, progress=spec["progress"])
    finally:
        if own_group:
            dist.destroy_process_group()


def ray_worker(spec: dict[str, Any]) -> None:
    """Ray Train's loop per worker: its process group and RANK/WORLD_SIZE are set up by Ray."""
    try:
        work(spec)
    except Exception as error:
        if getattr(error, "user_error", False):
            raise RuntimeError(f"{ERROR}{error}") from None
        raise


def main(argv: list[str] | None = None) -> int:
    """`python -m distill.recipe.launch SPEC.json`, under torchrun."""
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(argv[0]).read_text())
    try:
        work(spec)
    except Exception as error:
        if not getattr(error, "user_error", False):
            raise
        if os.environ.get("RANK", "0") == "0":
            print(f"{ERROR}{error}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
