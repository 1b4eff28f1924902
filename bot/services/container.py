"""Services: what handlers reach through ``Context.services``, opened once per process."""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import redis.asyncio as aioredis

from bot.config import Settings
from bot.records import open_database, pii_codec
from bot.services.actions import RecordActions
from bot.services.identity import CachingVerifier, MemoryKeyValue, RedisKeyValue, SandboxVerifier
from bot.services.identity.cache import KeyValueStore
from bot.services.schools import School, SchoolIndex, load_catalogue
from dialogs.actions import Actions
from dialogs.engine import Engine
from dialogs.registry import build_engine
from storage.keys import KeyBuilder
from storage.sql import schools as sql_schools
from storage.sql.db import Database
from storage.sql.migrate import ensure_schema


@dataclass(frozen=True)
class Services:
    engine: Engine
    actions: Actions


@functools.lru_cache(maxsize=4)
def school_index(catalogue: tuple[School, ...]) -> SchoolIndex:
    """Costs about a second of pinyin work, so it is built once per distinct catalogue."""
    return SchoolIndex(catalogue)


async def load_schools(db: Database) -> tuple[School, ...]:
    """The catalogue from SQL, seeded from the shipped starter list on an empty database."""
    async with db.begin() as conn:
        if await sql_schools.count(conn) == 0:
            starter = [s for s in load_catalogue() if s.code]
            await sql_schools.upsert_many(conn, [sql_schools.School(
                s.code, s.name, s.province, s.city, s.authority, s.level, s.aliases) for s in starter])
        rows = await sql_schools.all_schools(conn)
    extra = tuple(s for s in load_catalogue() if not s.code)  # listed, code still unconfirmed
    return tuple(School(r.code, r.name, r.province, r.city, r.authority, r.level, r.aliases) for r in rows) + extra


def check_actions(engine: Engine, offered: set[str]) -> list[str]:
    """Action names the dialog definitions use that no implementation offers."""
    named = {s.prepare for spec in engine.specs.values() for s in spec.states if s.prepare}
    named |= {spec.start for spec in engine.specs.values() if spec.start}
    return sorted(named - offered)


@asynccontextmanager
async def open_services(settings: Settings, client: aioredis.Redis | None,
                        clock: Callable[[], float] = time.time) -> AsyncIterator[Services]:
    async with open_database(settings) as db:
        await ensure_schema(db)
        codec = pii_codec(settings)
        secret = hashlib.sha256(codec.keyring.lookup_hash("identity-cache").encode()).digest()
        store: KeyValueStore = (MemoryKeyValue() if client is None else
                                RedisKeyValue(client, KeyBuilder(settings.redis_prefix, settings.wechat_appid)))
        verifier = CachingVerifier(SandboxVerifier(), store, secret)
        actions = RecordActions(db, codec, verifier, school_index(await load_schools(db)), clock)
        engine = build_engine()
        missing = check_actions(engine, actions.names())
        if missing:
            raise RuntimeError(f"dialogs name actions nobody implements: {', '.join(missing)}")
        yield Services(engine, actions)
