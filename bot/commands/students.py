"""``gradbot students show OPENID [--json]``: one student's records, with personal data masked.

The JSON shape is a contract (scripts and the console rely on it)::

    {"openid", "binding": {"id_type", "name_masked", "id_masked", "verified"} | null,
     "school": {"name", "code", "province", "city", "education_type", "level", "cohort"} | null,
     "procedures": [{"name", "state", "next_step"}]}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.commands import students_privacy
from bot.config import Settings, SettingsError
from bot.records import open_database
from storage.sql import identity, links, migrate, procedures, students, verifications


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("students", help="look up student records")
    sub = p.add_subparsers(dest="students_command", required=True)
    show = sub.add_parser("show", help="show one student's records (personal data masked)")
    show.add_argument("openid")
    show.add_argument("--json", action="store_true", help="print the contract JSON")
    show.set_defaults(func=run_show)
    students_privacy.add_subcommands(sub)  # erase, export (docs/privacy.md)


def run_show(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"gradbot students: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_show(settings, args.openid, args.json))


async def _show(settings: Settings, openid: str, as_json: bool) -> int:
    async with open_database(settings) as db:
        if await migrate.current(db) is None:
            print("gradbot students: the database has no schema yet; run `gradbot db upgrade`", file=sys.stderr)
            return 2
        async with db.read() as conn:
            summary = await student_summary(conn, openid)
    if summary is None:
        print(f"gradbot students: no student with openid {openid!r}", file=sys.stderr)
        return 1
    print(json.dumps(summary, ensure_ascii=False, indent=2) if as_json else _as_text(summary))
    return 0


async def student_summary(conn: AsyncConnection, openid: str) -> dict[str, Any] | None:
    if await students.get(conn, openid) is None:
        return None
    return {
        "openid": openid,
        "binding": await _binding(conn, openid),
        "school": await _school(conn, openid),
        "procedures": [
            {"name": p.name, "state": p.state, "next_step": p.next_step}
            for p in await procedures.for_student(conn, openid)
        ],
    }


async def _binding(conn: AsyncConnection, openid: str) -> dict[str, str] | None:
    binding = await identity.get(conn, openid)
    if binding is None:
        return None
    return {**binding.masked(), "verified": await verifications.status(conn, binding)}


async def _school(conn: AsyncConnection, openid: str) -> dict[str, Any] | None:
    link = await links.get(conn, openid)
    if link is None:
        return None
    return {"name": link.school_name, "code": link.school_code, "province": link.province, "city": link.city,
            "education_type": link.education_type, "level": link.level, "cohort": link.cohort}


def _as_text(summary: dict[str, Any]) -> str:
    lines = [f"openid: {summary['openid']}"]
    binding, school = summary["binding"], summary["school"]
    lines.append("identity: " + (
        f"{binding['name_masked']} {binding['id_type']} {binding['id_masked']} ({binding['verified']})"
        if binding else "not bound"))
    lines.append("school: " + (
        f"{school['name']} [{school['code'] or '-'}] {school['education_type']} {school['level']} "
        f"{school['cohort']}" if school else "none"))
    lines.extend(f"procedure {p['name']}: {p['state']} (next: {p['next_step'] or '-'})"
                 for p in summary["procedures"])
    return "\n".join(lines)
