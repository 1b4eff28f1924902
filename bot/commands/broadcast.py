"""``gradbot broadcast send|status|report|preview|pause|resume|cancel`` (docs/console.md).

``send --template NAME --audience 'school=…,stage=…' [--at ISO8601] [--rate N]`` creates the broadcast,
queues its senders (``gradbot worker`` runs them) and shows a progress bar until it ends (or, with
``--at`` in the future or ``--no-wait``, returns at once). ``status ID --json`` prints
``{"id", "total", "sent", "failed", "pending", "state"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bot.config import Settings, SettingsError
from bot.jobs import build_broker
from bot.records import open_database
from bot.services.notify.broadcast import BroadcastError, Draft, control, create, preview
from bot.services.notify.catalog import ProcedureInfo, build_catalog, titles
from bot.services.notify.jobs import start_senders
from bot.services.notify.limiter import CHINA
from bot.services.notify.templates import load_templates
from bot.services.payments.fees import load_fees
from dialogs.registry import load_procedures
from storage.sql import broadcasts, migrate
from storage.sql.broadcasts import Progress
from storage.sql.db import Database
from storage.sql.stages import Audience, AudienceError

FINAL = ("done", "cancelled", "paused")
STALL_S = 30.0
Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("broadcast", help="deadline reminders to many students (template messages)")
    sub = p.add_subparsers(dest="broadcast_command", required=True)
    for name, helptext in (("send", "create and send (or schedule) a broadcast"),
                           ("preview", "exact audience count and the message, without sending")):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument("--template", required=True, help="a template name from the notify templates (use=broadcast)")
        cmd.add_argument("--audience", default="", help="school=CODE,cohort=YEAR,procedure=NAME,stage=STAGE")
        cmd.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="a template variable")
        cmd.add_argument("--title", default="", help="name shown in the console")
        cmd.add_argument("--at", default="", help="ISO 8601 time to send (naive means China time)")
        cmd.add_argument("--rate", type=int, default=0, help="messages per second (default GRADBOT_BROADCAST_RATE)")
        cmd.add_argument("--no-wait", action="store_true", help="return once queued")
        cmd.add_argument("--json", action="store_true", help="print the final status as JSON")
        cmd.set_defaults(func=partial(_main, _send if name == "send" else _preview))
    for name, handler in (("status", _status), ("report", _report)):
        cmd = sub.add_parser(name, help=f"{name} of a broadcast")
        cmd.add_argument("id", type=int)
        cmd.add_argument("--json", action="store_true")
        cmd.set_defaults(func=partial(_main, handler))
    for name in ("pause", "resume", "cancel"):
        cmd = sub.add_parser(name, help=f"{name} a broadcast")
        cmd.add_argument("id", type=int)
        cmd.set_defaults(func=partial(_main, partial(_control, action=name)))


def _main(handler: Handler, args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"gradbot broadcast: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(handler(args, settings))
    except (BroadcastError, AudienceError, ValueError) as exc:
        print(f"gradbot broadcast: {exc}", file=sys.stderr)
        return 2


def _catalog(settings: Settings) -> dict[str, ProcedureInfo]:
    folder = Path(settings.procedures_dir) if settings.procedures_dir else None
    return build_catalog(load_procedures(folder), load_fees())


def _draft(args: argparse.Namespace, settings: Settings, catalog: dict[str, ProcedureInfo]) -> Draft:
    audience = Audience.parse(args.audience)
    info = catalog.get(audience.procedure or "")
    variables = dict(v.split("=", 1) for v in args.var if "=" in v)
    when = datetime.fromisoformat(args.at) if args.at else None
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=CHINA)
    return Draft(args.title or f"{args.template} {args.audience}", args.template,
                 audience.with_orders(info.orders) if info else audience, variables, when,
                 args.rate or settings.broadcast_rate)


async def _preview(args: argparse.Namespace, settings: Settings) -> int:
    catalog = _catalog(settings)
    async with open_database(settings) as db, db.read() as conn:
        shown = await preview(conn, _draft(args, settings, catalog), load_templates(settings.notify_templates),
                              titles(catalog))
    print(json.dumps({"count": shown.count, "template_id": shown.spec.template_id, "url": shown.url,
                      "fields": {name: value for name, _, value in shown.fields}}, ensure_ascii=False, indent=2))
    return 0


async def _send(args: argparse.Namespace, settings: Settings) -> int:
    catalog = _catalog(settings)
    draft = _draft(args, settings, catalog)
    async with open_database(settings) as db:
        await migrate.ensure_schema(db)
        async with db.begin() as conn:
            created = await create(conn, draft, load_templates(settings.notify_templates), titles(catalog),
                                   actor=f"cli:{getpass.getuser()}", now=datetime.now(CHINA))
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            await start_senders(build_broker(settings, client=client), created.id, settings.broadcast_senders)
        finally:
            await client.aclose()
        print(f"broadcast {created.id} queued for {created.send_at.astimezone(CHINA):%Y-%m-%d %H:%M} (China time)",
              file=sys.stderr)
        if args.no_wait or created.send_at.timestamp() > time.time() + 1:
            print(created.id)
            return 0
        final = await watch(db, created.id)
    print(json.dumps(final.to_json()) if args.json else created.id)
    return 0 if final.state == "done" else 1


async def watch(db: Database, broadcast_id: int, every: float = 0.5) -> Progress:
    """A progress bar on stderr until the broadcast is done, cancelled or paused."""
    started, tty = time.monotonic(), sys.stderr.isatty()
    last_line = last_change = time.monotonic()
    seen: tuple[int, int, str] | None = None
    while True:
        async with db.read() as conn:
            progress = await broadcasts.progress(conn, broadcast_id)
        assert progress is not None
        if (progress.sent, progress.failed, progress.state) != seen:
            seen, last_change = (progress.sent, progress.failed, progress.state), time.monotonic()
        elif time.monotonic() - last_change > STALL_S:
            print(f"\nno progress for {STALL_S:.0f} s: is `gradbot worker` running (and `gradbot serve`, "
                  "whose ticker restarts senders)?", file=sys.stderr)
            last_change = time.monotonic()
        line = bar(progress, time.monotonic() - started)
        if tty:
            print("\r" + line, end="", file=sys.stderr, flush=True)
        elif time.monotonic() - last_line >= 5 or progress.state in FINAL:
            print(line, file=sys.stderr, flush=True)
            last_line = time.monotonic()
        if progress.state in FINAL:
            if tty:
                print(file=sys.stderr)
            return progress
        await asyncio.sleep(every)


def bar(p: Progress, elapsed: float, width: int = 30) -> str:
    done = p.sent + p.failed
    share = done / p.total if p.total else 0.0
    filled = int(width * share)
    rate = done / elapsed if elapsed > 0 else 0.0
    return (f"[{'#' * filled}{'.' * (width - filled)}] {share:6.1%}  sent {p.sent}  failed {p.failed}  "
            f"pending {p.pending}  {rate:,.0f}/s  {p.state}")


async def _status(args: argparse.Namespace, settings: Settings) -> int:
    async with open_database(settings) as db, db.read() as conn:
        progress = await broadcasts.progress(conn, args.id)
    if progress is None:
        print(f"gradbot broadcast: no broadcast {args.id}", file=sys.stderr)
        return 1
    print(json.dumps(progress.to_json()) if args.json else bar(progress, 0.0))
    return 0


async def _report(args: argparse.Namespace, settings: Settings) -> int:
    async with open_database(settings) as db, db.read() as conn:
        progress = await broadcasts.progress(conn, args.id)
        report = await broadcasts.report(conn, args.id) if progress else {}
    if progress is None:
        print(f"gradbot broadcast: no broadcast {args.id}", file=sys.stderr)
        return 1
    print(json.dumps({**progress.to_json(), "by_errcode": report}, ensure_ascii=False))
    return 0


async def _control(args: argparse.Namespace, settings: Settings, *, action: str) -> int:
    async with open_database(settings) as db, db.begin() as conn:
        state = await control(conn, args.id, action, actor=f"cli:{getpass.getuser()}", now=datetime.now(CHINA))
    if state is None:
        print(f"gradbot broadcast: cannot {action} broadcast {args.id} in its current state", file=sys.stderr)
        return 1
    if action == "resume":
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            await start_senders(build_broker(settings, client=client), args.id, settings.broadcast_senders)
        finally:
            await client.aclose()
    print(f"broadcast {args.id}: {state}")
    return 0
