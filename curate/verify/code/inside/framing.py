"""Messages between host, supervisor and runners: a 4-byte little-endian length, then JSON.

The only part of the sandbox code the host imports (sandbox.py talks to the supervisor with it)."""

from __future__ import annotations

import json
import os
import select
import struct
import time

MAX_FRAME = 1 << 28
HEADER = struct.Struct("<I")


class Timeout(Exception):
    """A deadline passed while waiting for the other side."""


class ProtocolError(Exception):
    """The other side sent something that is not a well-formed frame."""


def _wait_readable(fd: int, deadline: float | None) -> None:
    if deadline is None:
        return
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
        raise Timeout


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes | None:
    chunks, missing = [], size
    while missing:
        _wait_readable(fd, deadline)
        chunk = os.read(fd, min(missing, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def frame(message: object) -> bytes:
    payload = json.dumps(message, separators=(",", ":")).encode()
    return HEADER.pack(len(payload)) + payload


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def send_frame(fd: int, message: object) -> None:
    write_all(fd, frame(message))


def recv_frame(fd: int, deadline: float | None = None) -> object:
    """The next message; EOFError when the other side closed, Timeout, or ProtocolError."""
    header = _read_exact(fd, HEADER.size, deadline)
    if header is None:
        raise EOFError
    (size,) = HEADER.unpack(header)
    if size > MAX_FRAME:
        raise ProtocolError(f"frame of {size} bytes")
    body = _read_exact(fd, size, deadline)
    if body is None:
        raise EOFError
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:
        raise ProtocolError(f"unreadable frame: {error}") from None
