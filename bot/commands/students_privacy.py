"""``gradbot students erase OPENID`` and ``gradbot students export OPENID [--reveal] [--files DIR]``.

Erase prints ``{"openid", "deleted": {table: rows}, "kept": {table: rows}, "files_removed"}``; it
takes the student's turn first, so a message being handled at that moment cannot write the session
back. Export prints everything held (docs/privacy.md); ``--reveal`` adds the clear name and ID number
and is audited, ``--files DIR`` copies the stored photo files there.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import Settings, SettingsError
from bot.records import open_database, pii_codec
from storage.base import LockLost, SessionStore, StoreUnavailable
from storage.files import FileStore
from storage.keys import KeyBuilder
from storage.sql import migrate

if TYPE_CHECKING:
    from bot.services.privacy import Privacy

TURN_WAIT = 30.0


def add_subcommands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    erase = sub.add_parser("erase", help="erase a student's data (keeps paid orders and the audit trail)")
    erase.add_argument("openid")
    erase.add_argument("--actor", default="", help="who asked (audit); default cli:<user>")
    erase.set_defaults(func=run_erase)
    export = sub.add_parser("export", help="print everything held on a student as JSON")
    export.add_argument("openid")
    export.add_argument("--reveal", action="store_true", help="include the clear name and ID number (audited)")
    export.add_argument("--files", type=Path, help="copy the student's stored photo files into this directory")
    export.add_argument("--actor", default="", help="who asked (audit); default cli:<user>")
    export.set_defaults(func=run_export)


def run_erase(args: argparse.Namespace) -> int:
    return _run(lambda s: _erase(s, args.openid, _actor(args)))


def run_export(args: argparse.Namespace) -> int:
    return _run(lambda s: _export(s, args.openid, _actor(args), args.reveal, args.files))


def _run(job: Any) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"gradbot students: {exc}", file=sys.stderr)
        return 2
    try:
        return int(asyncio.run(job(settings)))
    except SettingsError as exc:
        print(f"gradbot students: {exc}", file=sys.stderr)
        return 2


def _actor(args: argparse.Namespace) -> str:
    return str(args.actor or f"cli:{getpass.getuser()}")


@asynccontextmanager
async def _privacy(settings: Settings) -> AsyncIterator[tuple[Privacy, SessionStore] | None]:
    # Imported here: `gradbot students show` should not pay for loading the whole app.
    from bot.app import redis_client, session_store
    from bot.services.privacy import Privacy, verification_secret

    async with open_database(settings) as db:
        if await migrate.current(db) is None:
            print("gradbot students: the database has no schema yet; run `gradbot db upgrade`", file=sys.stderr)
            yield None
            return
        client = None if settings.memory_state else redis_client(settings)
        store = session_store(settings, client)
        codec = pii_codec(settings)
        keys = KeyBuilder(settings.redis_prefix, settings.wechat_appid)
        try:
            yield Privacy(db, codec, FileStore.under(settings.data_dir), client, keys, verification_secret(codec),
                          time.time), store
        finally:
            await store.close()


async def _erase(settings: Settings, openid: str, actor: str) -> int:
    async with _privacy(settings) as opened:
        if opened is None:
            return 2
        privacy, store = opened
        try:
            begin = await store.begin(openid, f"erase:{uuid.uuid4().hex}", TURN_WAIT)
        except (StoreUnavailable, LockLost) as exc:
            print(f"gradbot students: Redis unavailable or the student is busy ({exc}); nothing erased, "
                  "try again", file=sys.stderr)
            return 1
        assert begin.turn is not None  # a fresh message key is never a duplicate
        try:
            erasure = await privacy.erase(openid, actor=actor)
            await store.delete(openid)
        except BaseException:
            await store.release(begin.turn, b"[]")  # do not leave the student blocked for a lease
            raise
        await store.commit(begin.turn, b"", b"[]")
    if erasure is None:
        print(f"gradbot students: no student with openid {openid!r}", file=sys.stderr)
        return 1
    print(json.dumps({"openid": openid, "deleted": erasure.deleted, "kept": erasure.kept,
                      "files_removed": len(erasure.unreferenced_files)}, ensure_ascii=False, indent=2))
    return 0


async def _export(settings: Settings, openid: str, actor: str, reveal: bool, files_dir: Path | None) -> int:
    async with _privacy(settings) as opened:
        if opened is None:
            return 2
        privacy, store = opened
        found = await privacy.export(openid, reveal=reveal, actor=actor)
        if found is not None:
            found["session"] = await _session(store, openid)
    if found is None:
        print(f"gradbot students: no student with openid {openid!r}", file=sys.stderr)
        return 1
    if files_dir is not None:
        _copy_files(privacy.files, found["files"], files_dir)
    if reveal:
        print("gradbot students: the output holds a clear name and ID number; hand it to the student only",
              file=sys.stderr)
    print(json.dumps(found, ensure_ascii=False, indent=2))
    return 0


async def _session(store: SessionStore, openid: str) -> Any:
    """The dialog position kept in Redis (decoded), or a note when Redis cannot be read."""
    try:
        raw = await store.peek(openid)
    except StoreUnavailable:
        return {"unavailable": "Redis could not be read"}
    return json.loads(raw) if raw else None


SUFFIXES = ((b"\xff\xd8", ".jpg"), (b"\x89PNG", ".png"), (b"%PDF", ".pdf"), (b"GIF8", ".gif"))


def _copy_files(files: FileStore, digests: list[str], target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    for digest in digests:
        data = files.get(digest)
        suffix = next((s for magic, s in SUFFIXES if data.startswith(magic)), "")
        (target / f"{digest}{suffix}").write_bytes(data)
