"""The demo's staff account and the account menu it pushes to the stand-in.

Both run while gradbot boots; the SQL and API modules are imported inside the functions so the
orchestrator itself starts in a fraction of a second.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.config import Settings

STAFF_USER = "demo"
PASSWORD_FILE = Path("demo") / "staff-password"
MENU_FILE = Path(__file__).with_name("menu.toml")


@dataclass(frozen=True, slots=True)
class StaffLogin:
    username: str
    password: str
    created: bool


async def ensure_staff(settings: Settings) -> StaffLogin:
    """The demo admin, created on first start; its password is kept in the data dir (mode 0600) so a
    later start prints the same one. A lost password file gets a new password."""
    from storage.sql import staff
    from storage.sql.db import Database

    path = settings.data_dir / PASSWORD_FILE
    known = path.read_text(encoding="utf-8").strip() if path.exists() else ""
    async with Database(settings.sql_url) as db, db.begin() as conn:
        user = await staff.get(conn, STAFF_USER)
        if user is not None and known:
            return StaffLogin(STAFF_USER, known, created=False)
        password = secrets.token_urlsafe(12)
        hash_password = _hasher()
        if user is None:
            await staff.add(conn, username=STAFF_USER, password_hash=hash_password(password), role="admin",
                            schools=[], actor="demo")
        else:
            await staff.set_password(conn, STAFF_USER, hash_password(password), actor="demo")
    _write_private(path, password + "\n")
    return StaffLogin(STAFF_USER, password, created=user is None)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


async def push_menu(settings: Settings, path: Path = MENU_FILE) -> int:
    """Create the account menu at the stand-in, as ``gradbot menu push`` does; returns the button count."""
    import aiohttp

    from bot.commands.menu import load_menu
    from bot.wechat.api import WeChatAPI
    from bot.wechat.menu import validate_menu
    from storage.tokens import MemoryTokenCache

    menu = load_menu(path)
    problems = validate_menu(menu)
    if problems:
        raise ValueError(f"{path}: {problems[0]}")
    async with aiohttp.ClientSession() as http:
        await WeChatAPI(http, settings, MemoryTokenCache()).create_menu(menu)
    return len(menu["button"])


def _hasher() -> Callable[[str], str]:
    """argon2id with argon2-cffi's defaults: what bot.console.auth hashes and verifies (importing that
    module would pull in the whole console, seconds the demo's start does not have)."""
    from argon2 import PasswordHasher

    return PasswordHasher().hash
