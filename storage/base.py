"""Interfaces of the per-student state: dedup, FIFO turn-taking, the session record, the reply cache."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

IN_FLIGHT = b"P"  # dedup marker while the first delivery of a message is still being handled


def in_flight(value: object) -> bool:
    """Whether a dedup value is the in-flight marker: ``P``, or ``P:<ticket>`` in the Redis store, which
    names the turn handling it so that a retry can tell a live turn from one whose process died."""
    return isinstance(value, bytes) and (value == IN_FLIGHT or value.startswith(b"P:"))


class StoreUnavailable(Exception):
    """The state store cannot be reached; the caller answers "busy" and loses nothing durable."""


class LockLost(Exception):
    """Our turn was given away (lease expired) before we finished; the step must not be saved."""


@dataclass(frozen=True, slots=True)
class Turn:
    """Held while one message of one student is handled; ``record`` is the saved session (or None)."""

    openid: str
    message_key: str
    ticket: int
    record: bytes | None


@dataclass(frozen=True, slots=True)
class Begin:
    """Either our turn, or a duplicate with what the first delivery left (IN_FLIGHT or its reply)."""

    turn: Turn | None = None
    cached: bytes | None = None

    @property
    def duplicate(self) -> bool:
        return self.turn is None


class SessionStore(Protocol):
    async def begin(self, openid: str, message_key: str, wait: float) -> Begin:
        """Dedup, then wait (FIFO, at most ``wait`` seconds) for this student's turn; LockLost on timeout."""

    async def commit(self, turn: Turn, record: bytes | None, reply: bytes) -> None:
        """Save the record (None keeps it, b"" deletes it), cache the reply, pass the turn on."""

    async def release(self, turn: Turn, reply: bytes) -> None:
        """Pass the turn on without touching the record (the step failed); cache ``reply``."""

    @property
    def renew_every(self) -> float | None:
        """How often a step that is still running must call ``renew``; None: the turn has no lease."""

    async def renew(self, turn: Turn) -> bool:
        """Extend the turn's lease (a long step keeps its turn); False if the turn was already lost."""

    async def wait_reply(self, openid: str, message_key: str, timeout: float) -> bytes | None:
        """The reply cached for a message, waiting while it is IN_FLIGHT; None if it never came."""

    async def peek(self, openid: str) -> bytes | None:
        """The saved record, read without taking a turn (lookups, status pages)."""

    async def delete(self, openid: str) -> int:
        """Forget the student's record and cached replies (erasure); how many keys went."""

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...
