"""A student's rights over their data: erase (删除我的信息, ``gradbot students erase``) and export.

Erasure deletes every SQL row about the student except what a legal duty keeps (storage/sql/erase.py),
the files no other row needs, the cached real-name verdict in Redis (its key is an HMAC of the name
and number, so it is computed from the binding before that goes) and the cached replies. The
session record goes with the student's turn: the dialog path ends with an empty record, the CLI
deletes it while holding the turn.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.config import Settings, SettingsError
from bot.privacy import mask_openid
from bot.records import data_keyring
from bot.services.identity import IdType, verification_key
from dialogs.actions import Call, ProcedureStatus
from dialogs.engine import Effect
from storage.base import SessionStore
from storage.files import FileStore
from storage.keys import KeyBuilder
from storage.redis import forget_student
from storage.sealed import SealedSessionStore
from storage.sql import audit, identity
from storage.sql import erase as records
from storage.sql.db import Database
from storage.sql.erase import Erasure
from storage.sql.identity import PiiCodec

log = logging.getLogger("bot.privacy")
Prepare = Callable[[Call], Awaitable[Mapping[str, Any]]]
Apply = Callable[[Effect, Call], Awaitable[None]]
Start = Callable[[Call], Awaitable[tuple[str, dict[str, Any]] | None]]
# What the confirmation lists, by table (tables not named here are counted under "其他记录").
LABELS = {"identity_bindings": "实名信息", "school_links": "学校信息", "procedures": "办理进度",
          "reviews": "提交的审核材料", "documents": "上传和生成的材料", "verifications": "实名核验记录",
          "notifications": "通知记录"}


@dataclass
class Privacy:
    db: Database
    codec: PiiCodec
    files: FileStore
    redis: aioredis.Redis | None
    keys: KeyBuilder
    verification_secret: bytes = field(repr=False)
    clock: Callable[[], float] = time.time

    async def erase(self, openid: str, *, actor: str, now: float | None = None) -> Erasure | None:
        """Erase in one transaction; files and Redis entries go before it commits (a retry is harmless)."""
        at = datetime.fromtimestamp(now or self.clock(), UTC)
        async with self.db.begin() as conn:
            cache_key = await self._verification_cache_key(conn, openid)
            erasure = await records.erase(conn, openid, actor=actor, at=at)
            if erasure is None:
                return None
            removed = sum(self.files.delete(d) for d in erasure.unreferenced_files)
            await self._forget_cached(openid, cache_key)
        log.info("erased %s: %s, %d files; kept %s", mask_openid(openid),
                 {k: v for k, v in erasure.deleted.items() if v}, removed, erasure.kept)
        return erasure

    async def holdings(self, openid: str) -> dict[str, Any]:
        """What an erasure would delete (labels for the student) and how many paid orders stay."""
        async with self.db.read() as conn:
            held = await records.held(conn, openid)
        if held is None:
            return {"held": [], "paid_orders": 0}
        labels = [LABELS.get(t, "其他记录") for t, n in held.rows.items() if n and t in _ERASABLE]
        photos = held.rows.get("photos", 0)
        if photos:
            labels.append(f"{photos} 张照片")
        return {"held": list(dict.fromkeys(labels)), "paid_orders": held.paid_orders}

    async def export(self, openid: str, *, reveal: bool, actor: str) -> dict[str, Any] | None:
        """Everything held about the student; clear name and number only with ``reveal`` (audited)."""
        async with self.db.begin() as conn:
            held = await records.export(conn, openid)
            if held is None:
                return None
            clear = await identity.reveal(conn, self.codec.keyring, openid) if reveal else None
            await audit.record(conn, actor=actor, action="privacy.export", openid=openid,
                               details={"revealed": clear is not None})
        out: dict[str, Any] = {"openid": openid, "exported_at": datetime.now(UTC).isoformat(), "records": held}
        if clear is not None:
            out["identity"] = {"id_type": clear.id_type, "name": clear.name, "id_number": clear.id_number}
        named = {v for rows in held.values() for row in rows for k, v in row.items() if k.endswith("sha256") and v}
        out["files"] = sorted(d for d in named if self.files.exists(d))
        return out

    async def _verification_cache_key(self, conn: Any, openid: str) -> str | None:
        clear = await identity.reveal(conn, self.codec.keyring, openid)
        if clear is None or self.redis is None:
            return None
        id_type = IdType.parse(clear.id_type) or IdType.RESIDENT_ID
        return self.keys.identity_verification(
            verification_key(self.verification_secret, id_type, clear.name, clear.id_number))

    async def _forget_cached(self, openid: str, cache_key: str | None) -> None:
        """The cached verdict and replies (the session record goes with the student's turn)."""
        if self.redis is None:
            return
        try:
            if cache_key is not None:
                await self.redis.delete(cache_key)
            await forget_student(self.redis, self.keys, openid)
        except (RedisError, OSError) as exc:
            # Neither holds a clear name or number, and both expire by themselves: log, go on.
            log.warning("cached entries of %s not removed: %s", mask_openid(openid), exc)


_ERASABLE = frozenset(t.name for t in records.student_tables()) - records.KEPT_TABLES - {"photos"}


def seal_sessions(settings: Settings, store: SessionStore) -> SessionStore:
    """Session records encrypted with the data keyring (storage/sealed.py). Without a keyring the
    services refuse to start anyway; an app handed ready-made services (tests) then runs unsealed."""
    try:
        keyring = data_keyring(settings)
    except SettingsError:
        return store
    return SealedSessionStore(store, keyring)


def verification_secret(codec: PiiCodec) -> bytes:
    """The key of the real-name verdict cache (derived from the data key, so every worker agrees)."""
    return hashlib.sha256(codec.keyring.lookup_hash("identity-cache").encode()).digest()


class PrivacyActions:
    """The erase dialog's actions (an ActionParts of bot.services.actions.CompositeActions)."""

    def __init__(self, privacy: Privacy) -> None:
        self.privacy = privacy
        self.prepares: dict[str, Prepare] = {}
        self.effects: dict[str, Apply] = {"erase_student": self.erase_student}
        self.starts: dict[str, Start] = {"erase_start": self.erase_start}

    async def erase_start(self, call: Call) -> tuple[str, dict[str, Any]] | None:
        found = await self.privacy.holdings(call.openid)
        return ("confirm", found) if found["held"] else ("nothing", found)

    async def erase_student(self, effect: Effect, call: Call) -> None:
        await self.privacy.erase(call.openid, actor=call.openid, now=call.now or None)

    async def status(self, openid: str) -> list[ProcedureStatus]:
        return []
