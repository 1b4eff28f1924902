"""Wiring of the SQL records layer from Settings: the database, and the data keys for personal data.

Storage takes key material as plain values; this is the one place that decides where it comes
from. Production sets ``GRADBOT_DATA_KEY`` (every worker must share it). The embedded demo, on
SQLite and without that variable, gets a random key generated once into ``<data_dir>/data.key``
(mode 0600); losing that file makes the encrypted names and ID numbers unreadable.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bot.config import Settings, SettingsError
from bot.privacy import mask_id, mask_name
from storage.sql.crypto import Keyring, generate_key
from storage.sql.db import Database
from storage.sql.errors import KeyringError
from storage.sql.identity import PiiCodec

log = logging.getLogger("bot.records")
KEY_FILE = "data.key"


def data_keyring(settings: Settings) -> Keyring:
    current = settings.data_key or _embedded_key(settings)
    previous = [p for p in settings.data_key_previous.split(",") if p.strip()]
    try:
        return Keyring(current, previous)
    except KeyringError as exc:
        raise SettingsError(f"GRADBOT_DATA_KEY(_PREVIOUS): {exc} (make one with `gradbot db new-key`)") from None


def pii_codec(settings: Settings) -> PiiCodec:
    return PiiCodec(data_keyring(settings), mask_name=mask_name, mask_id=mask_id)


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings.sql_url)
    try:
        yield db
    finally:
        await db.dispose()


def _embedded_key(settings: Settings) -> str:
    if not settings.sql_url.startswith("sqlite"):
        raise SettingsError(
            "GRADBOT_DATA_KEY is required with a shared database (all workers need the same key); "
            "make one with `gradbot db new-key`"
        )
    path = settings.data_dir / KEY_FILE
    if not path.exists():
        _create_key_file(path)
    return path.read_text(encoding="ascii").strip()


def _create_key_file(path: Path) -> None:
    """Write to a private temp file, then hard-link it into place: two workers starting at once
    both end up reading whichever key won, never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(generate_key() + "\n")
    try:
        os.link(tmp, path)
        log.warning("no GRADBOT_DATA_KEY: generated a data key in %s (keep it safe and back it up; "
                    "without it stored names and ID numbers cannot be read)", path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
