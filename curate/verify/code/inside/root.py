"""`unshare` mode: the worker builds its own read-only root, as bwrap does for the other mode."""

from __future__ import annotations

import os

from .syscalls import (
    MNT_DETACH,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    mount,
    pivot_root,
    umount,
)


def build_root(binds: list[list[str]], links: list[list[str]], devices: list[str], tmp_mb: int) -> None:
    """`unshare` mode: give this mount namespace a fresh read-only root holding only `binds`, as bwrap
    does (we already are in new mount, PID, network, IPC and UTS namespaces)."""
    sources = [(os.open(src, os.O_PATH | os.O_CLOEXEC), dest) for src, dest in binds if os.path.exists(src)]
    nodes = [
        (os.open(f"/dev/{name}", os.O_PATH | os.O_CLOEXEC), name)
        for name in devices
        if os.path.exists(f"/dev/{name}")
    ]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    base = "/tmp"
    mount("tmpfs", base, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    os.makedirs(base + "/tmp", mode=0o755)  # first: an interpreter under /tmp is bound inside it
    mount("tmpfs", base + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={tmp_mb}m")
    for fd, dest in sources:
        target = base + dest
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            os.makedirs(target, mode=0o755, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            open(target, "w").close()
        mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
        mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for target, link in links:
        os.symlink(target, base + link)
    os.makedirs(base + "/dev", mode=0o755)
    mount("tmpfs", base + "/dev", "tmpfs", MS_NOSUID, "mode=0755,size=64k")
    for fd, name in nodes:
        open(f"{base}/dev/{name}", "w").close()
        mount(f"/proc/self/fd/{fd}", f"{base}/dev/{name}", None, MS_BIND)
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, f"{base}/dev/{name}")
    os.mkdir(base + "/dev/shm", 0o1777)
    os.makedirs(base + "/proc", mode=0o755)
    try:
        mount("proc", base + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except PermissionError:  # a masked /proc forbids a fresh one without privileges: reuse it
        mount("/proc", base + "/proc", None, MS_BIND | MS_REC)
    for fd, _ in sources + nodes:
        os.close(fd)
    os.chdir(base)
    pivot_root(".", ".")
    umount(".", MNT_DETACH)
    os.chdir("/")
    mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    mount(None, "/dev", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID)
