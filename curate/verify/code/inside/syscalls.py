"""Linux system calls the standard library lacks (ctypes): mount, clone with namespaces, prctl,
capabilities, pivot_root."""

from __future__ import annotations

import ctypes
import os
import signal

CLONE_NEWNS, CLONE_PARENT, CLONE_NEWIPC = 0x00020000, 0x00008000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID = 0x10000000, 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
CAP_SETFCAP = 31
_SYSCALLS = {"x86_64": {"clone": 56, "pivot_root": 155}, "aarch64": {"clone": 220, "pivot_root": 41}}

# Bound once here, in the zygote: a runner that resolved them itself would pay for it in copied pages.
libc = ctypes.CDLL(None, use_errno=True)
_syscall = libc.syscall
_syscall.restype = ctypes.c_long
_mount = libc.mount
_mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_prctl = libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_capset = libc.capset
_umount2 = libc.umount2
_unshare = libc.unshare
# clone() as os.fork() does it: holding the GIL (a PyDLL call does not release it).
_clone = ctypes.PyDLL(None, use_errno=True).syscall
_clone.restype = ctypes.c_long
_before_fork = ctypes.pythonapi.PyOS_BeforeFork
_after_fork_child = ctypes.pythonapi.PyOS_AfterFork_Child
_after_fork_parent = ctypes.pythonapi.PyOS_AfterFork_Parent


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


_CAP_HEADER, _NO_CAPS = _CapHeader(0x20080522, 0), (_CapData * 2)()


def _check(result: int) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def _syscall_number(name: str) -> int:
    numbers = _SYSCALLS.get(os.uname().machine)
    if numbers is None:
        raise OSError(38, f"no {name} syscall number known for {os.uname().machine}")
    return numbers[name]


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else os.fsencode(text)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_mount(_bytes(source), _bytes(target), _bytes(fstype), flags, _bytes(data)))


def prctl(option: int, value: int) -> None:
    _check(_prctl(option, value, 0, 0, 0))


def cloner(flags: int):
    """fork() that can also put the child in new namespaces, as a function of no arguments that
    returns 0 in the child and its pid in the parent. The syscall number and the argument are
    made once: after every clone, each object the zygote touches costs it a copied page again
    (73 such faults per clone when they were made per call, 55 now)."""
    number, argument = _syscall_number("clone"), ctypes.c_ulong(flags | signal.SIGCHLD)
    clone, get_errno = _clone, ctypes.get_errno
    before, child, parent = _before_fork, _after_fork_child, _after_fork_parent

    def clone_process() -> int:
        before()
        pid = clone(number, argument, None, None, None, None)
        if pid == 0:
            child()
            return 0
        err = get_errno()
        parent()
        if pid < 0:
            raise OSError(err, f"clone: {os.strerror(err)}")
        return pid

    return clone_process


def drop_capabilities(keep: int = 0) -> None:
    """Drop every capability but those in the `keep` mask (of the first 32), for good."""
    caps = _NO_CAPS
    if keep:
        caps = (_CapData * 2)(_CapData(keep, keep, 0))
    _check(_capset(ctypes.byref(_CAP_HEADER), caps))
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def write_file(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_syscall(_syscall_number("pivot_root"), os.fsencode(new_root), os.fsencode(put_old)))


def umount(target: str, flags: int = 0) -> None:
    _check(_umount2(os.fsencode(target), flags))


def unshare(flags: int) -> None:
    _check(_unshare(flags))
