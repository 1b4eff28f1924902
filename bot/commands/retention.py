"""``gradbot retention run [--days N] [--dry-run]``: delete photo files past retention, print the counts.

The same run happens nightly inside ``gradbot worker`` (docs/privacy.md). Prints
``{"photos": n, "documents": n, "files": n, "orphans": n, "days": N, "dry_run": bool}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from bot.config import Settings, SettingsError
from bot.records import open_database
from storage.sql import migrate


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("retention", help="delete photo files past the retention period")
    sub = p.add_subparsers(dest="retention_command", required=True)
    run = sub.add_parser("run", help="run retention once now and print what it deleted")
    run.add_argument("--days", type=int, default=None, help="override GRADBOT_RETENTION_DAYS")
    run.add_argument("--dry-run", action="store_true", help="count only, delete nothing")
    run.set_defaults(func=run_once)


def run_once(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        if args.days is not None:
            settings = settings.with_(retention_days=args.days)
    except SettingsError as exc:
        print(f"gradbot retention: {exc}", file=sys.stderr)
        return 2
    if settings.retention_days < 0:
        print("gradbot retention: --days must be 0 or more", file=sys.stderr)
        return 2
    return asyncio.run(_run(settings, args.dry_run))


async def _run(settings: Settings, dry_run: bool) -> int:
    from bot.services.retention import for_settings  # loads the dialog definitions: only when running

    async with open_database(settings) as db:
        if await migrate.current(db) is None:
            print("gradbot retention: the database has no schema yet; run `gradbot db upgrade`", file=sys.stderr)
            return 2
        counts = await for_settings(settings, db).run(dry_run=dry_run)
    print(json.dumps({**counts, "days": settings.retention_days, "dry_run": dry_run}))
    return 0
