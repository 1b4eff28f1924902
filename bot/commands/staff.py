"""``gradbot staff add|list|passwd|disable|enable``: staff accounts of the console (docs/console.md).

The password is prompted twice on a terminal, or read from the first line of stdin otherwise
(``printf '%s\\n' "$PW" | gradbot staff add li --role reviewer --school 4142010518``).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import re
import sys
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from bot.config import Settings, SettingsError
from bot.console.auth import hash_password
from bot.records import open_database
from storage.sql import migrate, schools, staff
from storage.sql.staff import StaffExists

USERNAME = re.compile(r"^[A-Za-z0-9_.-]{2,32}$")
MIN_PASSWORD = 10


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("staff", help="staff accounts of the console")
    sub = p.add_subparsers(dest="staff_command", required=True)
    add = sub.add_parser("add", help="create an account (password prompted, or the first line of stdin)")
    add.add_argument("username")
    add.add_argument("--role", choices=("reviewer", "admin"), required=True)
    add.add_argument("--school", action="append", default=[], metavar="CODE",
                     help="a school (MoE code) a reviewer may see; repeatable")
    add.set_defaults(func=partial(_main, _add))
    listing = sub.add_parser("list", help="list accounts")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=partial(_main, _list))
    passwd = sub.add_parser("passwd", help="set a new password")
    passwd.add_argument("username")
    passwd.set_defaults(func=partial(_main, _passwd))
    for name, active in (("disable", False), ("enable", True)):
        cmd = sub.add_parser(name, help=f"{name} an account")
        cmd.add_argument("username")
        cmd.set_defaults(func=partial(_main, partial(_set_active, active=active)))


Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def _main(handler: Handler, args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"gradbot staff: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(handler(args, settings))


def read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Again: "):
            raise ValueError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return password


async def _add(args: argparse.Namespace, settings: Settings) -> int:
    if not USERNAME.match(args.username):
        print("gradbot staff: username: 2-32 letters, digits, '.', '_' or '-'", file=sys.stderr)
        return 2
    if args.role == "reviewer" and not args.school:
        print("gradbot staff: a reviewer needs at least one --school CODE", file=sys.stderr)
        return 2
    try:
        password_hash = hash_password(_check_password(read_password()))
    except ValueError as exc:
        print(f"gradbot staff: {exc}", file=sys.stderr)
        return 2
    async with open_database(settings) as db:
        await migrate.ensure_schema(db)
        async with db.begin() as conn:
            unknown = [c for c in args.school if await schools.get(conn, c) is None]
            if unknown:
                print(f"gradbot staff: unknown school code(s): {', '.join(unknown)}", file=sys.stderr)
                return 2
            try:
                await staff.add(conn, username=args.username, password_hash=password_hash, role=args.role,
                                schools=args.school, actor=f"cli:{getpass.getuser()}")
            except StaffExists as exc:
                print(f"gradbot staff: {exc}", file=sys.stderr)
                return 1
    print(f"staff account {args.username} ({args.role}) created")
    return 0


async def _list(args: argparse.Namespace, settings: Settings) -> int:
    async with open_database(settings) as db:
        await migrate.ensure_schema(db)
        async with db.read() as conn:
            users = await staff.all_users(conn)
    rows: list[dict[str, Any]] = [{"username": u.username, "role": u.role, "schools": u.schools, "active": u.active,
             "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None} for u in users]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    for r in [] if args.json else rows:
        print(f"{r['username']:<20} {r['role']:<9} {'active' if r['active'] else 'disabled':<9} "
              f"{','.join(r['schools']) or '-'}")
    return 0


async def _passwd(args: argparse.Namespace, settings: Settings) -> int:
    try:
        password_hash = hash_password(_check_password(read_password()))
    except ValueError as exc:
        print(f"gradbot staff: {exc}", file=sys.stderr)
        return 2
    async with open_database(settings) as db, db.begin() as conn:
        done = await staff.set_password(conn, args.username, password_hash, actor=f"cli:{getpass.getuser()}")
    if not done:
        print(f"gradbot staff: no account named {args.username!r}", file=sys.stderr)
    return 0 if done else 1


async def _set_active(args: argparse.Namespace, settings: Settings, *, active: bool) -> int:
    async with open_database(settings) as db, db.begin() as conn:
        done = await staff.set_active(conn, args.username, active, actor=f"cli:{getpass.getuser()}")
    if not done:
        print(f"gradbot staff: no account named {args.username!r}", file=sys.stderr)
    return 0 if done else 1
