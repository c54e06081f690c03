"""Start-up of a worker: build the root (unshare mode), drop privileges, fork the zygote, probe,
then serve the host's tasks."""

from __future__ import annotations

import json
import os
import socket
import sys

from .framing import send_frame
from .root import build_root
from .supervisor import Supervisor
from .syscalls import CAP_SETFCAP, PR_SET_DUMPABLE, drop_capabilities, prctl
from .zygote import PRELOAD, zygote_main


def main() -> None:
    config = json.loads(sys.argv[1])
    sys.path += [path for path in config["site_packages"] if os.path.isdir(path)]
    host_in, host_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    sandboxed = config["isolation"] != "none"
    os.environ.pop("PWD", None)  # bwrap's --chdir sets it: runs see the same environment in every mode
    if config.get("cpu") is not None:
        # Supervisor, zygote and runners share one CPU: a wake-up on another (virtual) CPU costs
        # ~30x more, and a sample makes a dozen of them.
        os.sched_setaffinity(0, {config["cpu"]})
    try:
        if config["isolation"] == "unshare":
            build_root(config["binds"], config["links"], config["devices"], config["tmp_mb"])
        if config.get("drop_to"):
            uid, gid = config["drop_to"]
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
        elif config["isolation"] == "unshare":
            # Root of our own user namespace only while building the root. CAP_SETFCAP stays: a
            # runner's user namespace may map our uid 0 only if its creator had it (Linux >= 5.12).
            drop_capabilities(keep=1 << CAP_SETFCAP)
        prctl(PR_SET_DUMPABLE, 0)  # no same-uid process may trace us or read our memory
        sys.set_int_max_str_digits(0)
        for name in PRELOAD:
            __import__(name)
        supervisor_end, zygote_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if os.fork() == 0:
            supervisor_end.close()
            for fd in (host_in, host_out):
                os.close(fd)
            zygote_main(zygote_end, sandboxed, config.get("keep_under_tmp", []))
        zygote_end.close()
        supervisor = Supervisor(host_in, host_out, supervisor_end, sandboxed)
        # One real run before reporting ready: proves that runners can be cloned and set up here.
        probe = supervisor.run_stdin(
            {
                "code": "print(input()[::-1])",
                "cases": [{"input": "ok", "output": "ko"}],
                "limits": config["probe_limits"],
            }
        )
    except Exception as error:  # noqa: BLE001 - tell the host why this isolation cannot work here
        send_frame(host_out, {"ready": False, "message": f"{type(error).__name__}: {error}"})
        return
    supervisor.finish_runners()
    if probe["status"] != "pass":
        send_frame(host_out, {"ready": False, "message": f"probe run failed: {probe['cases']}"})
        return
    send_frame(host_out, {"ready": True, "python": sys.version.split()[0], "uid": os.getuid()})
    supervisor.loop()
    os._exit(0)  # the host hung up: nothing to flush, and tearing the interpreter down is just time
