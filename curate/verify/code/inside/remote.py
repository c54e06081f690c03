"""The test's view of the solution: a Session of requests to a serving runner and Remote proxies
of the values that stay in it, plus the exceptions that test code cannot catch."""

from __future__ import annotations

import builtins
import collections
import socket

from .framing import ProtocolError, Timeout, frame, recv_frame, write_all
from .values import PLAIN, decode


class SolutionDied(BaseException):
    """The runner ended or stopped answering; test code cannot catch this."""


class SolutionTimeout(BaseException):
    """The time limit passed; test code cannot catch this."""


class HarnessError(Exception):
    """The test asked for something the harness cannot do (not the solution's fault)."""


class Session:
    """Request/answer over the channel to a serving runner, with a deadline for every answer."""

    def __init__(self, channel: socket.socket, deadline: float, planned: list[bytes] | None = None) -> None:
        self.channel, self.deadline, self.calls = channel, deadline, 0
        self.planned = collections.deque(planned or ())  # requests queued before the test ran

    def send_bytes(self, data: bytes) -> None:
        """Send a request. Queued requests are answered first: a test that strays from the plan
        has their answers read and dropped."""
        while self.planned:
            self.planned.popleft()
            try:
                self.receive()
            except Exception:  # noqa: BLE001 - an answer nobody asked for, dropped
                pass
        try:
            write_all(self.channel.fileno(), data)
        except OSError:
            raise SolutionDied("the solution process stopped answering") from None

    def receive(self) -> object:
        """The runner's next answer: its value, or the exception it raised, raised here."""
        try:
            reply = recv_frame(self.channel.fileno(), self.deadline)
        except Timeout:
            raise SolutionTimeout from None
        except (EOFError, OSError, ProtocolError) as error:
            raise SolutionDied(f"the solution process stopped answering ({type(error).__name__})") from None
        if type(reply) is not dict or len(reply) != 1:
            raise SolutionDied("the solution process sent a malformed reply")
        if "raised" in reply:
            raise _solution_exception(reply["raised"])
        if "ok" not in reply:
            raise SolutionDied("the solution process sent a malformed reply")
        return reply["ok"]

    def value(self, data: object) -> object:
        try:
            return decode(data, lambda number, type_name: Remote(self, number, type_name))
        except ProtocolError as error:
            raise SolutionDied(f"the solution returned an unreadable value ({error})") from None

    def call(self, message: dict, args: tuple, kwargs: dict) -> object:
        self.calls += 1
        frame = call_frame(message, list(args), kwargs)
        if self.planned and self.planned[0] == frame:
            self.planned.popleft()  # already queued: its answer is next in line
        else:
            self.send_bytes(frame)
        return self.value(self.receive())


def call_frame(message: dict, args: list, kwargs: dict) -> bytes:
    message["args"] = _encode_argument(args)
    message["kwargs"] = {"dict": [[key, _encode_argument(value)] for key, value in kwargs.items()]}
    return frame(message)


def _solution_exception(described: object) -> BaseException:
    """The exception the test sees when the solution raised: a builtin of the same name (so a test
    may expect a ValueError), never one the test could mistake for a harness event."""
    try:
        name, message = described
        name, message = str(name), str(message)
    except (TypeError, ValueError):
        return SolutionDied("the solution process sent a malformed reply")
    kind = getattr(builtins, name, None)
    if name in ("SystemExit", "KeyboardInterrupt", "GeneratorExit"):
        return SolutionDied(f"the solution raised {name}")
    if isinstance(kind, type) and issubclass(kind, Exception):
        try:
            return kind(message)
        except Exception:  # noqa: BLE001 - builtins with unusual constructors (UnicodeError subclasses)
            pass
    return RuntimeError(f"{name}: {message}")


class Remote:
    """A value that lives in the solution's process. It can be called and its attributes read;
    it equals nothing but itself, so an object with a lying __eq__ never passes a comparison."""

    __slots__ = ("_session", "_ref", "_type")

    def __init__(self, session: Session, ref: int, type_name: str) -> None:
        self._session, self._ref, self._type = session, ref, type_name

    def __call__(self, *args: object, **kwargs: object) -> object:
        return self._session.call({"op": "call", "ref": self._ref}, args, kwargs)

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        session = self._session
        session.send_bytes(frame({"op": "getattr", "ref": self._ref, "name": name}))
        return session.value(session.receive())

    def __repr__(self) -> str:
        return f"<{self._type} object of the solution>"


def _encode_argument(value: object) -> object:
    """Arguments the test passes to the solution: plain data, or values that came from the solution."""
    if type(value) is Remote:
        return {"ref": [value._ref, value._type]}
    kind = type(value)
    if kind in PLAIN:
        return value
    if kind is list:
        return [_encode_argument(item) for item in value]
    if kind in (tuple, set, frozenset):
        return {kind.__name__: [_encode_argument(item) for item in value]}
    if kind is dict:
        return {"dict": [[_encode_argument(k), _encode_argument(v)] for k, v in value.items()]}
    if kind is bytes:
        return {"bytes": value.hex()}
    if kind is complex:
        return {"complex": [value.real, value.imag]}
    raise HarnessError(f"the test passes a {kind.__name__} to the solution; only plain data can cross")
