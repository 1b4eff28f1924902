"""Session records encrypted at rest in Redis: a wrapper around any SessionStore.

A record holds what a student typed in the middle of a dialog: while binding, their name and ID
number sit in it until the binding is saved (and for up to the session TTL if they walk away).
Redis may be shared, persisted to disk (AOF/RDB) and copied into backups, so the record is sealed
with the data keyring (AES-256-GCM, associated data ``session|<openid>``): a record copied under
another student's key does not open. Cached replies are not sealed: they hold rendered, masked text.

A record that does not open (key lost, tampered) reads as no record: the position is rebuilt from
SQL facts, as after a Redis restart.
"""

from __future__ import annotations

import logging

from storage.base import Begin, SessionStore, Turn
from storage.sql.crypto import Keyring
from storage.sql.errors import UndecryptableValue

log = logging.getLogger("storage.sealed")


def context(openid: str) -> str:
    return f"session|{openid}"


def open_record(keyring: Keyring, openid: str, sealed: bytes | None) -> bytes | None:
    """A sealed record's JSON bytes (tools and tests reading Redis directly); None if it does not open."""
    if not sealed:
        return sealed
    try:
        return keyring.decrypt(sealed.decode("ascii"), context(openid)).encode("utf-8")
    except (UndecryptableValue, UnicodeDecodeError) as exc:
        log.warning("session record not readable (%s); starting afresh from SQL facts", exc)
        return None


class SealedSessionStore:
    def __init__(self, inner: SessionStore, keyring: Keyring) -> None:
        self.inner = inner
        self.keyring = keyring

    def seal(self, openid: str, record: bytes) -> bytes:
        return self.keyring.encrypt(record.decode("utf-8"), context(openid)).encode("ascii")

    def open(self, openid: str, sealed: bytes | None) -> bytes | None:
        return open_record(self.keyring, openid, sealed)

    async def begin(self, openid: str, message_key: str, wait: float) -> Begin:
        begin = await self.inner.begin(openid, message_key, wait)
        turn = begin.turn
        if turn is None:
            return begin
        return Begin(turn=Turn(turn.openid, turn.message_key, turn.ticket, self.open(openid, turn.record)))

    async def commit(self, turn: Turn, record: bytes | None, reply: bytes) -> None:
        sealed = self.seal(turn.openid, record) if record else record
        await self.inner.commit(turn, sealed, reply)

    async def release(self, turn: Turn, reply: bytes) -> None:
        await self.inner.release(turn, reply)

    @property
    def renew_every(self) -> float | None:
        return self.inner.renew_every

    async def renew(self, turn: Turn) -> bool:
        return await self.inner.renew(turn)

    async def wait_reply(self, openid: str, message_key: str, timeout: float) -> bytes | None:
        return await self.inner.wait_reply(openid, message_key, timeout)

    async def peek(self, openid: str) -> bytes | None:
        return self.open(openid, await self.inner.peek(openid))

    async def delete(self, openid: str) -> int:
        return await self.inner.delete(openid)

    async def ping(self) -> bool:
        return await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()

    def __getattr__(self, name: str) -> object:
        # Anything else (the Redis client, the key builder) is the wrapped store's.
        return getattr(self.inner, name)
