"""`distillery curate --engine ray` on a real two-node Ray cluster started on this machine: the same
workspace as `--engine local`, byte for byte, even when one node's workers are killed mid-stage."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from ray.cluster_utils import Cluster  # noqa: E402

from curate.engine.ray import TASK_GATE  # noqa: E402
from distill.cli import main  # noqa: E402
from tests.conftest import shared_file  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # a Ray cluster and 3 curate runs
FILES = ("math/qwen_math_cot_100.jsonl", "math/math500.jsonl", "code/humaneval.jsonl")
NODE = {"num_cpus": 2, "object_store_memory": 150 * 2**20}
TIMINGS = "verify_timings.csv"  # seconds per verdict: the one file that depends on the machine's speed


@pytest.fixture(scope="module")
def inputs() -> list[str]:
    return [str(shared_file(f)) for f in FILES]


@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes (a head and a worker node), each its own raylet and object store. The test
    process is not connected: each curate run joins it by its address (--ray-address) and leaves."""
    nodes = Cluster(initialize_head=True, head_node_args=NODE)
    nodes.add_node(**NODE)
    nodes.wait_for_nodes()
    yield nodes
    nodes.shutdown()


@pytest.fixture(scope="module")
def config(tmp_path_factory, inputs) -> list[str]:
    """--config with a benchmark of 12 math500 problems, so that decontaminate has hits to find."""
    folder = tmp_path_factory.mktemp("config")
    bench = folder / "bench.jsonl"
    bench.write_text("".join(Path(inputs[1]).read_text().splitlines(keepends=True)[100:112]))
    (folder / "curate.yaml").write_text(f"stages:\n  decontaminate:\n    benchmarks: [{bench}]\n")
    return ["--config", str(folder / "curate.yaml")]


@pytest.fixture(scope="module")
def local_ws(tmp_path_factory, inputs, config) -> Path:
    ws = tmp_path_factory.mktemp("local") / "ws"
    assert main(["curate", *inputs, "--out", str(ws), "--quiet", "--engine", "local", *config]) == 0
    return ws


def _curate_ray(out: str, inputs: list[str], cluster, *more: str) -> None:
    argv = [
        "curate",
        *inputs,
        "--out",
        out,
        "--quiet",
        "--engine",
        "ray",
        "--ray-address",
        cluster.address,
        *more,
    ]
    assert main(argv) == 0
    assert not ray.is_initialized()  # the run joined the cluster at the address, and left it
    cluster.wait_for_nodes()  # both nodes still up (raises otherwise)


def _files(ws: Path) -> dict[str, str]:
    """sha256 of every data file of a workspace (Parquet, side tables, shard manifest)."""
    wanted = [p for p in ws.rglob("*") if p.is_file() and p.suffix in (".parquet", ".csv", ".json")]
    return {
        str(p.relative_to(ws)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in wanted
        if p.name not in (TIMINGS, "manifest.json", "_stage.json") or p.parent.name == "shards"
    }


def _through_verify(files: dict[str, str]) -> dict[str, str]:
    """The files of stages 00 to 05 (ingest to verify) and their rejected rows."""
    return {
        k: v
        for k, v in files.items()
        if k.startswith(("stages/", "rejected/")) and k.split("/")[1][:2] <= "05"
    }


def _sql(ws: Path, query: str, capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["sql", str(ws), query, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def _assert_same_as_local(ray_ws: Path, local_ws: Path, capsys) -> None:
    ray_files, local_files = _files(ray_ws), _files(local_ws)
    assert any(name.startswith("stages/09_shard/shards/") for name in local_files)
    assert ray_files == local_files  # every Parquet file, shards included, byte-identical
    kept = "SELECT row_id, id, domain FROM kept ORDER BY row_id"
    rejected = "SELECT row_id, stage, reason, detail FROM rejected ORDER BY row_id"
    assert _sql(ray_ws, kept, capsys) == _sql(local_ws, kept, capsys)
    assert _sql(ray_ws, rejected, capsys) == _sql(local_ws, rejected, capsys)
    manifest = json.loads((ray_ws / "manifest.json").read_text())
    assert manifest["config"].get("engine") is None  # the CLI flag, not the config, chose the engine
    assert [s["status"] for s in manifest["stages"]] == ["committed"] * 10


def test_ray_engine_writes_the_local_workspace(cluster, local_ws, inputs, config, tmp_path, capsys):
    assert len(cluster.list_all_nodes()) == 2
    ws = tmp_path / "ws"
    _curate_ray(ws.as_uri(), inputs, cluster, *config)  # a file:// URI: a pyarrow filesystem URI
    _assert_same_as_local(ws, local_ws, capsys)
    # the ledger balances: every ingested row is kept or rejected once, with one (stage, reason)
    (balance,) = _sql(
        ws,
        "SELECT (SELECT count(*) FROM traces) AS ingested, (SELECT count(*) FROM kept) AS kept, "
        "(SELECT count(*) FROM rejected) AS rejected, "
        "(SELECT count(DISTINCT row_id) FROM rejected) AS rejected_rows",
        capsys,
    )
    assert balance["ingested"] == 1464 and balance["kept"] > 1000
    assert (
        balance["kept"] + balance["rejected"]
        == balance["ingested"]
        == balance["kept"] + balance["rejected_rows"]
    )
    funnel = {r["stage"]: r for r in _sql(ws, "SELECT * FROM funnel", capsys)}
    assert all(funnel[s]["dropped"] > 0 for s in ("exact_dedup", "near_dedup", "decontaminate", "verify"))


# Ray Data's own bookkeeping actors are left alone: the run's tasks and actors are what is killed.
# (and Ray's agents, with which the raylet fate-shares)
SPARED = ("_StatsActor", "UsageCollection", "Coordinator", "Requester", "Agent")


def _worker_pids(node) -> list[int]:
    """The Ray worker processes of one node (children of its raylet) that run tasks and actors."""
    raylet = psutil.Process(node.all_processes["raylet"][0].process.pid)
    pids = []
    for child in raylet.children(recursive=True):
        try:
            title = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
        if "ray::" in title and not any(name in title for name in SPARED):
            pids.append(child.pid)
    return pids


def _node_running(cluster, title: str):
    """The node with a worker whose title holds `title`, and that worker's pid."""
    for node in cluster.list_all_nodes():
        for pid in _worker_pids(node):
            try:
                name = " ".join(psutil.Process(pid).cmdline())
            except psutil.NoSuchProcess:
                continue
            if title in name:
                return node, pid
    return None


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _node_of(cluster, pid: int):
    return next(((n, pid) for n in cluster.list_all_nodes() if pid in _worker_pids(n)), None)


class _Gate:
    """The Ray engine's test gate (curate.engine.ray.TASK_GATE): StageContext.map tasks of the function
    named in `hold` say they run (`<pid>.running`) and wait there until `hold` names another one."""

    def __init__(self, folder: Path):
        self.folder, self.module = folder, None
        folder.mkdir()

    def hold(self, module: str | None) -> None:
        self.module = module
        if module is None:
            (self.folder / "hold").unlink(missing_ok=True)
        else:
            (self.folder / "hold").write_text(module)

    def running(self) -> int | None:
        """The pid of a worker waiting inside a task of the held function, if one is."""
        for marker in sorted(self.folder.glob("*.running")):
            if self.module and marker.read_text() == self.module:
                return int(marker.name.split(".")[0])
        return None


class _Killer(threading.Thread):
    """For each step of the plan: once `find()` names a node (and the pid of the worker inside the
    stage's task), kills every worker process of that node, then calls `after()`."""

    def __init__(self, cluster, plan: list[tuple[str, object, object]]):
        super().__init__(daemon=True)
        self.cluster, self.plan, self.killed, self.stop = cluster, plan, [], threading.Event()

    def run(self) -> None:
        for stage, find, after in self.plan:
            while not self.stop.is_set():
                found = find()
                if found is not None:
                    node, inside = found
                    pids = _worker_pids(node)
                    for pid in pids:
                        try:
                            psutil.Process(pid).kill()
                        except psutil.NoSuchProcess:
                            pass
                    self.killed.append((stage, inside, pids))
                    after()
                    break
                time.sleep(0.02)


def test_killed_workers_mid_dedup_and_mid_verify_still_give_the_local_output(
    cluster, local_ws, inputs, config, tmp_path, capsys, monkeypatch
):
    ws = tmp_path / "ws"
    stages = ws / "stages"
    gate = _Gate(tmp_path / "gate")
    gate.hold("curate.dedup.tasks.key_rows")
    monkeypatch.setenv(TASK_GATE, str(gate.folder))

    def waiting_task():
        pid = gate.running()
        return _node_of(cluster, pid) if pid is not None else None

    def verify_actor():
        return _node_running(cluster, "_VerdictActor") if (stages / ".tmp-05_verify").exists() else None

    plan = [
        # exact_dedup's key task (StageContext.map) waits at the gate: its node's workers are killed
        # while it is provably inside the task; then the gate moves on and Ray's retry runs it again
        ("exact_dedup", waiting_task, lambda: gate.hold("curate.dedup.tasks.row_keys")),
        # the same inside near_dedup's first task (its row keys)
        ("near_dedup", waiting_task, lambda: gate.hold(None)),
        # verify's actors hold the math worker pools and code sandboxes
        ("verify", verify_actor, lambda: None),
    ]
    killer = _Killer(cluster, plan)
    killer.start()
    try:
        # the stages after verify: the first test
        _curate_ray(str(ws), inputs, cluster, "--until", "verify", *config)
    finally:
        killer.stop.set()
        killer.join(5)
        gate.hold(None)
    assert [stage for stage, _, _ in killer.killed] == ["exact_dedup", "near_dedup", "verify"]
    for _, inside, pids in killer.killed:
        assert inside in pids and _gone(inside)  # the worker inside the stage's task was killed
    ray_files, local_files = _through_verify(_files(ws)), _through_verify(_files(local_ws))
    assert len(ray_files) > 10 and ray_files == local_files
    rejected = "SELECT row_id, stage, reason, detail FROM rejected ORDER BY row_id"
    assert _sql(ws, rejected, capsys) == [
        r
        for r in _sql(local_ws, rejected, capsys)
        if r["stage"] not in ("quality", "domain", "select", "shard")
    ]
    # the engine is not part of a stage's fingerprint: the local engine resumes the Ray-built stages
    capsys.readouterr()
    assert main(["curate", *inputs, "--out", str(ws), "--quiet", "--engine", "local", *config]) == 0
    table = [line.split() for line in capsys.readouterr().out.splitlines() if line[:2].isdigit()]
    reused = [row[1] for row in table if row[-1] == "reused"]
    assert reused == ["ingest", "normalize", "exact_dedup", "near_dedup", "decontaminate", "verify"]
    _assert_same_as_local(ws, local_ws, capsys)
