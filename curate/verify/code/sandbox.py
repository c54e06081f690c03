"""Start, feed and stop one sandboxed worker (the supervisor and zygote of the inside package).

Isolation modes, strongest first:

bwrap    bubblewrap builds the worker a fresh root holding only the system directories and the
         interpreter (read-only), a private /tmp, /dev and /proc, and new PID, network, IPC and UTS
         namespaces. Run by root, bwrap keeps only CAP_SETUID/CAP_SETGID for the worker, which uses
         them to become `nobody` before anything else (as root, RLIMIT_NPROC would not apply and
         runs could read root's files); run by a user, bwrap also makes a user namespace.
unshare  the same view built by the worker itself with mount(2) and pivot_root(2), inside the
         namespaces that util-linux `unshare` creates (plus a user namespace when not root). Used
         when bwrap is missing or refused.
none     no isolation at all: only resource limits, a process group and a temporary folder.
         Never chosen automatically (`isolation="none"`, CLI `--unsafe-no-isolation`).

In both sandboxed modes every run also gets its own user, PID, mount and IPC namespaces (see
inside/), so a run cannot see the worker, its files or an earlier run.
"""

from __future__ import annotations

import functools
import hashlib
import json
import marshal
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from curate.verify.code import inside, judges, languages
from curate.verify.code.inside import framing

ISOLATIONS = ("bwrap", "unshare", "none")
NOBODY = 65534  # who the worker becomes when distillery runs as root
START_TIMEOUT_S = 60.0
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
SANDBOX_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    # Numeric libraries start one thread per core at import; a run has a small process budget.
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
_INSIDE = Path(inside.__file__).parent
# The sandbox code as one archive: marshal of [(module, code)] in load order, `code` being a code
# object compiled here when the worker runs this very interpreter (compiling ~3,000 lines costs each
# worker tens of milliseconds of its start), else the source. The worker reads the archive from its
# stdin (exactly its length, so the task frames after it stay in the pipe) and executes each module
# as `inside.<name>`. Passed as `-c` text instead, compiling it would leave ~4 MB more resident in
# the zygote, and every runner's fork copies the page tables of all of it. For the same reason
# `-S`: the site-packages the host names are put on sys.path without running their .pth hooks.
_SOURCES = [(name, (_INSIDE / f"{name}.py").read_text()) for name in inside.MODULES]
_BOOTSTRAP = (
    "import marshal, os, sys, types\n"
    "size, data = int(sys.argv[1]), b''\n"
    "while len(data) < size:\n"
    "    data += os.read(0, size - len(data)) or sys.exit('truncated archive')\n"
    "del sys.argv[1]\n"
    "sys.modules['inside'] = package = types.ModuleType('inside')\n"
    "package.__path__ = []\n"
    "for name, code in marshal.loads(data):\n"
    "    module = sys.modules['inside.' + name] = types.ModuleType('inside.' + name)\n"
    "    module.__package__, module.__file__ = 'inside', name + '.py'\n"
    "    exec(compile(code, module.__file__, 'exec') if type(code) is str else code, module.__dict__)\n"
    "del data, code\n"
    "module.main()\n"
)
_archive_lock = threading.Lock()


@functools.lru_cache(maxsize=8)
def _archive(python: str) -> bytes:
    """The archive for a worker running `python`: compiled code when that is this interpreter,
    from a cache file shared by the processes of this machine; else the sources."""
    if os.path.realpath(python) != os.path.realpath(sys.executable):
        return marshal.dumps(_SOURCES)
    key = hashlib.sha256(marshal.dumps([sys.version, _SOURCES])).hexdigest()[:24]
    path = languages.cache_root() / "sandbox" / f"inside-{key}.marshal"
    with _archive_lock:
        try:
            return path.read_bytes()
        except OSError:
            pass
        archive = marshal.dumps([(name, compile(source, f"{name}.py", "exec")) for name, source in _SOURCES])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
            partial.write_bytes(archive)
            os.replace(partial, path)
        except OSError:  # no cache folder here: compiled again by the next process
            pass
        return archive


class IsolationError(RuntimeError):
    """No sandbox can be started here (and running without one was not asked for)."""

    user_error = True


class WorkerError(RuntimeError):
    """A worker died or stopped answering; the task it had gets an `error` verdict."""


_LAYOUT = (
    "import json, site, sys; "
    "print(json.dumps([[sys.base_prefix, sys.base_exec_prefix], sys.prefix, site.getsitepackages()]))"
)


@functools.lru_cache(maxsize=8)
def _layout(python: str) -> tuple[list[str], str, list[str]]:
    """(installation prefixes, sys.prefix, site-packages folders) of an interpreter, as it sees them
    when started normally (the worker starts with -S, so it is told its site-packages instead)."""
    # Compared as given, not resolved: two virtual environments share one real binary.
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        import site

        return [sys.base_prefix, sys.base_exec_prefix], sys.prefix, site.getsitepackages()
    out = subprocess.run(
        [python, "-I", "-c", _LAYOUT], capture_output=True, text=True, timeout=30, check=True
    )
    return tuple(json.loads(out.stdout))  # type: ignore[return-value]


def interpreter_paths(python: str) -> list[str]:
    """What the sandbox must show for `python` to start and import its packages, and nothing more:
    its installation (stdlib, binary) and, for a virtual environment, only the interpreter link,
    pyvenv.cfg and site-packages, not the rest of the folder (often a clone of a repository)."""
    installation, prefix, site_packages = _layout(python)
    paths = [*installation, os.path.abspath(python)]
    if os.path.abspath(prefix) not in map(os.path.abspath, installation):
        paths += [os.path.join(prefix, "pyvenv.cfg"), *site_packages]
    paths += [os.path.realpath(path) for path in paths]
    return [os.path.abspath(path) for path in paths if os.path.exists(path)]


def _cache_folders() -> list[str]:
    """The precompiled-header cache (languages.py) and the built judges (judges.py), made now so
    that what is built there later is seen."""
    made = []
    for folder in (languages.pch_root(), judges.cache_folder()):
        if folder is None:
            continue
        try:
            folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        except OSError:
            continue
        made.append(str(folder))
    return made


def mount_plan(python: str) -> tuple[list[list[str]], list[list[str]]]:
    """(links, binds) for the sandbox root: [target, link] symlinks and [source, dest] read-only binds
    (of folders, and of single files such as a virtual environment's interpreter link)."""
    links, binds = [], []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            links.append([os.readlink(path), path])
        elif os.path.isdir(path):
            binds.append([path, path])
    covered = [dest for _, dest in binds]
    for path in [*interpreter_paths(python), *_cache_folders()]:
        if any(path == c or path.startswith(c.rstrip("/") + "/") for c in covered):
            continue
        # A wider path already planned covers this one; a narrower one is replaced by this one.
        binds = [b for b in binds if not b[1].startswith(path.rstrip("/") + "/")]
        binds.append([path, path])
        covered = [dest for _, dest in binds]
    return links, binds


def _bwrap_command(links: list[list[str]], binds: list[list[str]], as_root: bool, tmp_mb: int) -> list[str]:
    # No --die-with-parent: its signal fires when the *thread* that started bwrap exits. The worker
    # ends with us anyway: the supervisor reads EOF on its task pipe and exits.
    command = [
        "bwrap", "--new-session", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
        "--unshare-cgroup-try", "--clearenv",
    ]  # fmt: skip
    if not as_root:
        command.append("--unshare-user")
    for key, value in SANDBOX_ENV.items():
        command += ["--setenv", key, value]
    for target, link in links:
        command += ["--symlink", target, link]
    # /tmp before the binds, so that an interpreter living under /tmp is bound inside it.
    command += ["--dev", "/dev", "--proc", "/proc", "--size", str(tmp_mb << 20), "--tmpfs", "/tmp"]
    made = {"/", "/tmp"} | {dest for _, dest in binds}
    for _, dest in binds:
        # bwrap copies the host's modes for parents it creates (/root is 0700): once the worker is
        # `nobody` it could not reach its own interpreter.
        for parent in reversed(Path(dest).parents):
            if str(parent) not in made:
                command += ["--perms", "0755", "--dir", str(parent)]
                made.add(str(parent))
    for source, dest in binds:
        command += ["--ro-bind", source, dest]
    # Read-only root and /dev (their tmpfs belongs to the user when bwrap runs unprivileged):
    # a run may write its own /tmp and /dev/shm only, and those are private to it.
    command += ["--remount-ro", "/", "--remount-ro", "/dev", "--chdir", "/tmp"]
    if as_root:
        command += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    return command


def _unshare_command(as_root: bool) -> list[str]:
    command = ["unshare", "--mount", "--pid", "--net", "--ipc", "--uts", "--fork", "--kill-child"]
    if not as_root:
        command.append("--map-root-user")  # caps in our own user namespace, to build the root
    return command


def worker_command(
    isolation: str, python: str, tmp_mb: int, probe_limits: dict, cpu: int | None = None
) -> list[str]:
    """The full command line that starts one worker under `isolation` (pinned to `cpu` if given)."""
    as_root = os.geteuid() == 0
    links, binds = mount_plan(python)
    config: dict = {"isolation": isolation, "probe_limits": probe_limits, "tmp_mb": tmp_mb, "cpu": cpu}
    config["site_packages"] = _layout(python)[2]
    # A run gets a fresh /tmp: interpreter directories under /tmp must be bound again on top of it.
    config["keep_under_tmp"] = [dest for _, dest in binds if dest.startswith("/tmp/")]
    if isolation == "bwrap":
        prefix = _bwrap_command(links, binds, as_root, tmp_mb)
    elif isolation == "unshare":
        prefix = _unshare_command(as_root)
        config["links"], config["binds"] = links, binds
        config["devices"] = list(DEVICES)
    elif isolation == "none":
        prefix = []
    else:
        raise ValueError(f"unknown isolation {isolation!r}; expected one of {ISOLATIONS}")
    if as_root and isolation != "none":
        config["drop_to"] = [NOBODY, NOBODY]
    size = str(len(_archive(python)))
    return [*prefix, python, "-I", "-B", "-S", "-c", _BOOTSTRAP, size, json.dumps(config)]


class Worker:
    """One sandboxed worker process. run() sends a task and returns the supervisor's result."""

    def __init__(
        self, isolation: str, python: str, tmp_mb: int, probe_limits: dict, cpu: int | None = None
    ) -> None:
        self.isolation, self.cpu, self._python = isolation, cpu, python
        self._command = worker_command(isolation, python, tmp_mb, probe_limits, cpu)
        self._process: subprocess.Popen | None = None
        self._stderr = None
        self.info: dict = {}

    def start(self) -> None:
        self._stderr = tempfile.TemporaryFile()
        # bwrap clears the environment and sets SANDBOX_ENV itself; the others inherit this one.
        env = {"PATH": SANDBOX_ENV["PATH"]} if self.isolation == "bwrap" else dict(SANDBOX_ENV)
        self._process = subprocess.Popen(
            self._command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            cwd="/",
            start_new_session=True,
        )
        try:
            self._process.stdin.write(_archive(self._python))  # type: ignore[union-attr]
            self._process.stdin.flush()  # type: ignore[union-attr]
            ready = self._receive(time.monotonic() + START_TIMEOUT_S)
        except (WorkerError, OSError) as error:
            text = self.stderr_text()
            self.stop()
            raise WorkerError(f"{self.isolation} worker did not start: {error}: {text}") from None
        if not ready.get("ready"):
            text = self.stderr_text()
            self.stop()
            raise WorkerError(f"{self.isolation} worker did not start: {ready.get('message')} {text}".strip())
        self.info = ready

    def cpu_seconds(self) -> float:
        """CPU time used so far by this worker's processes: each one's own time plus that of the
        children it reaped (the supervisor reaps every runner), read from /proc."""
        if self._process is None:
            return 0.0
        total, pending = 0.0, [self._process.pid]
        while pending:
            pid = pending.pop()
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{pid}/task/{pid}/children") as handle:
                    pending += [int(child) for child in handle.read().split()]
            except OSError:  # ended meanwhile: its time went to whoever reaped it
                continue
            total += sum(int(ticks) for ticks in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        return total

    def stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read()[-2000:].decode("utf-8", "replace").strip()

    def _receive(self, deadline: float) -> dict:
        assert self._process is not None and self._process.stdout is not None
        try:
            message = framing.recv_frame(self._process.stdout.fileno(), deadline)
        except framing.Timeout:
            raise WorkerError("no answer in time") from None
        except (EOFError, OSError, framing.ProtocolError) as error:
            raise WorkerError(f"worker ended ({type(error).__name__}, exit {self._process.poll()})") from None
        if not isinstance(message, dict):
            raise WorkerError("malformed answer")
        return message

    def run(self, task: dict, timeout: float) -> dict:
        """Send one task; on a dead or silent worker, stop it (the next run restarts it) and raise."""
        if self._process is None or self._process.poll() is not None:
            self.start()
        assert self._process is not None and self._process.stdin is not None
        try:
            framing.send_frame(self._process.stdin.fileno(), task)
            return self._receive(time.monotonic() + timeout)
        except (OSError, WorkerError) as error:
            self.stop()
            raise WorkerError(str(error)) from None

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.stdin.close()  # type: ignore[union-attr]
            process.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if process.poll() is None:
            try:
                os.killpg(process.pid, 9)
            except ProcessLookupError:
                pass
            process.wait()
        process.stdout.close()  # type: ignore[union-attr]
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


_resolved: dict[tuple[str, str], str] = {}
_resolve_lock = threading.Lock()


def candidates(requested: str) -> list[str]:
    """The modes to try, in order, for a requested isolation (`auto` means any sandbox, never none)."""
    if requested == "auto":
        return [mode for mode in ("bwrap", "unshare") if shutil.which(mode)]
    if requested not in ISOLATIONS:
        raise ValueError(f"unknown isolation {requested!r}; expected auto or one of {ISOLATIONS}")
    return [requested]


def start_worker(
    requested: str, python: str, tmp_mb: int, probe_limits: dict, cpu: int | None = None
) -> Worker:
    """A started worker in the first mode that works here; the answer is remembered per interpreter."""
    key = (requested, python)
    with _resolve_lock:
        known = _resolved.get(key)
    tried = []
    for mode in [known] if known else candidates(requested):
        worker = Worker(mode, python, tmp_mb, probe_limits, cpu)
        try:
            worker.start()
        except (WorkerError, OSError) as error:
            tried.append(f"{mode}: {error}")
            continue
        with _resolve_lock:
            _resolved[key] = mode
        return worker
    if requested == "auto" and not tried:
        tried.append("neither bwrap nor unshare is installed")
    raise IsolationError(
        "cannot start a sandbox for untrusted code (" + "; ".join(tried) + "). Install bubblewrap "
        "(apt-get install bubblewrap), or pass --unsafe-no-isolation / isolation='none' to run the "
        "code without any isolation."
    )
