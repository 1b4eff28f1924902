"""``gradbot db upgrade|current|new-key|rotate-key``: schema migrations and data key rotation."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from bot.config import Settings, SettingsError
from bot.records import data_keyring, open_database
from storage.sql import migrate
from storage.sql.crypto import generate_key
from storage.sql.db import Database
from storage.sql.errors import RecordError
from storage.sql.rotation import key_usage, rotate


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("db", help="database schema and data keys")
    sub = p.add_subparsers(dest="db_command", required=True)
    up = sub.add_parser("upgrade", help="migrate the schema (default: to the newest revision)")
    up.add_argument("--revision", default="head")
    up.set_defaults(func=lambda a: _run(_upgrade, a))
    sub.add_parser("current", help="show the schema revision and which data keys rows use").set_defaults(
        func=lambda a: _run(_current, a))
    sub.add_parser("new-key", help="print a fresh random data key for GRADBOT_DATA_KEY").set_defaults(
        func=_new_key)
    rot = sub.add_parser("rotate-key", help="re-encrypt rows under GRADBOT_DATA_KEY_PREVIOUS with the current key")
    rot.add_argument("--batch", type=int, default=200, help="rows per transaction")
    rot.set_defaults(func=lambda a: _run(_rotate, a))


Action = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]


def _run(action: Action, args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        return asyncio.run(action(settings, args))
    except (SettingsError, RecordError) as exc:
        print(f"gradbot db: {exc}", file=sys.stderr)
        return 2


async def _upgrade(settings: Settings, args: argparse.Namespace) -> int:
    async with open_database(settings) as db:
        revision = await migrate.upgrade(db, args.revision)
    print(f"database at revision {revision}")
    return 0


async def _current(settings: Settings, args: argparse.Namespace) -> int:
    kids = _known_kids(settings)
    async with open_database(settings) as db:
        revision = await migrate.current(db)
        usage = await _usage(db) if revision else {}
    head = migrate.head()
    print(f"revision {revision or 'none (empty database)'}; newest {head}")
    for kid, rows in sorted(usage.items()):
        print(f"key {kid} ({kids.get(kid, 'UNKNOWN')}): {rows} identity rows")
    return 0 if revision == head else 1


def _known_kids(settings: Settings) -> dict[str, str]:
    """Key id → role; empty when no key is configured (the revision is still worth showing)."""
    try:
        keyring = data_keyring(settings)
    except SettingsError as exc:
        print(f"gradbot db: {exc}", file=sys.stderr)
        return {}
    return {kid: "current" if kid == keyring.current.kid else "previous" for kid in keyring.kids}


async def _usage(db: Database) -> dict[str, int]:
    async with db.read() as conn:
        return await key_usage(conn)


def _new_key(args: argparse.Namespace) -> int:
    print(generate_key())
    return 0


async def _rotate(settings: Settings, args: argparse.Namespace) -> int:
    keyring = data_keyring(settings)
    async with open_database(settings) as db:
        report = await rotate(db, keyring, batch=args.batch)
    print(f"re-encrypted {report.rotated} rows under key {report.current_kid}")
    for kid, rows in report.unknown.items():
        print(f"{rows} rows are under key {kid}, which is neither current nor previous", file=sys.stderr)
    return 1 if report.unknown else 0
