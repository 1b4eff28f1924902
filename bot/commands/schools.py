"""``gradbot schools import FILE.csv [--skip-bad]``: load the MoE university list into the catalogue.

All or nothing by default: a file with rejected rows writes nothing and lists every problem with its
line number, so a half-broken export never half-replaces the catalogue. ``--skip-bad`` imports the
good rows anyway. Schools are upserted by 学校标识码; aliases known to the starter list are kept.
Running processes build their school index at start-up, so restart them to use new rows.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot.config import Settings, SettingsError
from bot.records import open_database
from bot.services.schools import catalogue
from storage.sql import migrate, schools


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("schools", help="the school catalogue")
    sub = p.add_subparsers(dest="schools_command", required=True)
    imp = sub.add_parser("import", help="import a CSV export of the MoE list (全国高等学校名单)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--skip-bad", action="store_true", help="import the valid rows even if some are rejected")
    imp.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        report = catalogue.parse_moe_csv(args.file)
    except (SettingsError, OSError, UnicodeDecodeError) as exc:
        print(f"gradbot schools: {exc}", file=sys.stderr)
        return 2
    for error in report.errors:
        print(f"{args.file}:{error.line}: {error.message}", file=sys.stderr)
    if not report.schools or (report.errors and not args.skip_bad):
        print(f"gradbot schools: nothing imported ({len(report.errors)} rejected rows; fix them or use "
              "--skip-bad)", file=sys.stderr)
        return 1
    new, total = asyncio.run(_store(settings, report.schools))
    print(f"imported {total} schools from {args.file} ({new} new, {total - new} updated, "
          f"{len(report.errors)} rejected)")
    return 0


async def _store(settings: Settings, parsed: tuple[catalogue.School, ...]) -> tuple[int, int]:
    rows = [schools.School(s.code, s.name, s.province, s.city, s.authority, s.level, s.aliases)
            for s in catalogue.with_aliases(parsed)]
    async with open_database(settings) as db:
        await migrate.ensure_schema(db)
        async with db.begin() as conn:
            before = await schools.count(conn)
            await schools.upsert_many(conn, rows)
            return await schools.count(conn) - before, len(rows)
