"""Services: what handlers reach through ``Context.services``, opened once per process."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

from bot.config import Settings
from bot.metrics import Metrics
from bot.records import open_database, pii_codec
from bot.render import Renderer
from bot.services.actions import CompositeActions, RecordActions
from bot.services.identity import CachingVerifier, MemoryKeyValue, RedisKeyValue, SandboxVerifier, regions
from bot.services.identity.cache import KeyValueStore
from bot.services.payments.config import link_secret
from bot.services.payments.fees import load_fees
from bot.services.payments.links import Sealer
from bot.services.photos import process_pool, profiles_from_env
from bot.services.privacy import Privacy, PrivacyActions, verification_secret
from bot.services.procedure_actions import ProcedureActions
from bot.services.schools import School, SchoolIndex, load_catalogue
from bot.wechat.api import WeChatAPI
from dialogs.engine import Engine
from dialogs.registry import build_engine, load_procedures
from storage.files import FileStore
from storage.keys import KeyBuilder
from storage.sql import schools as sql_schools
from storage.sql.db import Database
from storage.sql.migrate import ensure_schema
from storage.tokens import MemoryTokenCache, RedisTokenCache, TokenCache


@dataclass(frozen=True)
class Services:
    engine: Engine
    actions: CompositeActions
    db: Database
    files: FileStore
    sealer: Sealer


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
    named = {n for spec in engine.specs.values() for s in spec.states for n in (s.prepare, s.on_image) if n}
    named |= {spec.start for spec in engine.specs.values() if spec.start}
    return sorted(named - offered)


@asynccontextmanager
async def open_services(settings: Settings, client: aioredis.Redis | None, renderer: Renderer,
                        clock: Callable[[], float] = time.time,
                        metrics: Metrics | None = None) -> AsyncIterator[Services]:
    procedures = load_procedures(Path(settings.procedures_dir) if settings.procedures_dir else None)
    engine = build_engine(procedures)
    renderer.add_templates(engine.templates())
    keys = KeyBuilder(settings.redis_prefix, settings.wechat_appid)
    async with AsyncExitStack() as stack:
        db = await stack.enter_async_context(open_database(settings))
        await ensure_schema(db)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        tokens: TokenCache = MemoryTokenCache() if client is None else RedisTokenCache(client, keys)
        wechat = WeChatAPI(http, settings, tokens, metrics, clock=clock)
        executor = process_pool(settings.photo_workers) if settings.photo_workers > 0 else None
        if executor is not None:
            stack.callback(executor.shutdown, cancel_futures=True)
        codec = pii_codec(settings)
        secret = verification_secret(codec)
        store: KeyValueStore = MemoryKeyValue() if client is None else RedisKeyValue(client, keys)
        regions.load()
        records = RecordActions(db, codec, CachingVerifier(SandboxVerifier(), store, secret),
                                school_index(await load_schools(db)), clock)
        files, sealer = FileStore.under(settings.data_dir), Sealer(link_secret(settings))
        procs = ProcedureActions(db, {p.name: p for p in procedures}, profiles_from_env(), files, wechat, sealer,
                                 load_fees(), settings.public_url, renderer, clock, executor)
        privacy = PrivacyActions(Privacy(db, codec, files, client, keys, secret, clock))
        actions = CompositeActions(records, procs, privacy)
        missing = check_actions(engine, actions.names())
        if missing:
            raise RuntimeError(f"dialogs name actions nobody implements: {', '.join(missing)}")
        yield Services(engine, actions, db, files, sealer)
