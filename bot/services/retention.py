"""Retention: uploaded files (photos, documents) go N days after their procedure finished; results stay.

``gradbot retention run`` runs it once; ``gradbot worker`` runs it every night at
``GRADBOT_RETENTION_HOUR`` (China time), one worker per night (a Redis key per day). Each run reports
its counts in the log, in the audit trail (``retention.run``) and on the command line.

Files are deleted before the rows are marked, inside the transaction: a crash in between leaves rows
that the next run marks (the files are already gone), never a file the database believes deleted.
A file two rows share (the same bytes sent twice) stays while any unmarked row needs it. Files no row
names at all (an upload whose row was never written) are orphans and go once a day old.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from taskiq import AsyncBroker, TaskiqEvents, TaskiqState

from bot.config import Settings
from bot.services.identity.documents import CHINA_TZ
from dialogs.engine import Engine
from storage.files import FileStore
from storage.sql import audit
from storage.sql import erase as erased
from storage.sql import retention as repo
from storage.sql.db import Database

log = logging.getLogger("bot.retention")
BATCH = 500
ORPHAN_AGE_S = 24 * 3600.0
_DIGEST = re.compile(r"[0-9a-f]{64}")


def finished_states(engine: Engine) -> dict[str, list[str]]:
    """The final states of every tracked procedure: what ``procedures.state`` holds once it is over."""
    return {name: [s.name for s in spec.states if s.final] for name, spec in engine.specs.items() if spec.track}


@dataclass
class Retention:
    db: Database
    files: FileStore
    finished: Mapping[str, list[str]]
    days: int
    clock: Callable[[], float] = time.time

    async def run(self, *, dry_run: bool = False) -> dict[str, int]:
        now = datetime.fromtimestamp(self.clock(), UTC)
        counts = {"photos": 0, "documents": 0, "files": 0, "orphans": 0}
        for table in repo.RETAINED:
            rows, files = await self._table(table, now, dry_run)
            counts[table.name] += rows
            counts["files"] += files
        counts["orphans"] = await self._orphans(dry_run)
        if not dry_run:
            await self._report(counts, now)
        return counts

    async def _table(self, table: sa.Table, now: datetime, dry_run: bool) -> tuple[int, int]:
        """Rows of one table whose files went, and how many files went (a shared file goes with its last row)."""
        rows = files = 0
        while True:
            async with self.db.begin() as conn:
                due = await repo.due_rows(conn, table, self.finished, now - timedelta(days=self.days), BATCH)
                if not due or dry_run:
                    return rows + len(due), files
                await repo.mark_files_deleted(conn, table, [r.id for r in due], now)
                digests = set().union(*(r.digests for r in due))
                gone = digests - await erased.referenced(conn, digests)
                rows += len(due)
                files += sum(self.files.delete(d) for d in gone)

    async def _orphans(self, dry_run: bool) -> int:
        old = [d for d, mtime in stored(self.files) if self.clock() - mtime > ORPHAN_AGE_S]
        removed = 0
        for start in range(0, len(old), BATCH):
            chunk = old[start:start + BATCH]
            async with self.db.read() as conn:
                known = await repo.known_digests(conn, chunk)
            orphans = [d for d in chunk if d not in known]
            removed += len(orphans) if dry_run else sum(self.files.delete(d) for d in orphans)
        return removed

    async def _report(self, counts: dict[str, int], now: datetime) -> None:
        async with self.db.begin() as conn:
            await audit.record(conn, actor="retention", action="retention.run", openid=None, at=now,
                               details={**counts, "days": self.days})
        log.info("retention: files of %d photos and %d documents deleted (%d files), %d orphan files",
                 counts["photos"], counts["documents"], counts["files"], counts["orphans"])


def stored(files: FileStore) -> Iterator[tuple[str, float]]:
    """(digest, mtime) of every file in the store (its two-level fan-out layout)."""
    root = Path(files.root)
    if not root.is_dir():
        return
    for path in root.glob("??/??/*"):
        if _DIGEST.fullmatch(path.name):
            yield path.name, path.stat().st_mtime


def for_settings(settings: Settings, db: Database, clock: Callable[[], float] = time.time) -> Retention:
    from dialogs.registry import build_engine, load_procedures

    extra = Path(settings.procedures_dir) if settings.procedures_dir else None
    engine = build_engine(load_procedures(extra))
    return Retention(db, FileStore.under(settings.data_dir), finished_states(engine), settings.retention_days, clock)


# -- the nightly run inside `gradbot worker` ------------------------------------------------------

def seconds_until(hour: int, now: float) -> float:
    """Seconds from ``now`` to the next ``hour``:00 in China time."""
    local = datetime.fromtimestamp(now, CHINA_TZ)
    target = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if target <= local:
        target += timedelta(days=1)
    return (target - local).total_seconds()


async def nightly(settings: Settings, state: TaskiqState, clock: Callable[[], float] = time.time,
                  sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """Sleep until the retention hour, run once per night across all workers, repeat."""
    while True:
        await sleep(seconds_until(settings.retention_hour, clock()))
        day = datetime.fromtimestamp(clock(), CHINA_TZ).strftime("%Y%m%d")
        outbox = state.outbox
        if not await outbox.redis.set(outbox.keys.retention_run(day), b"1", nx=True, ex=2 * 86400):
            continue  # another worker has it tonight
        try:
            async with Database(settings.sql_url) as db:
                counts = await for_settings(settings, db, clock).run()
        except Exception:  # a failed night must not end the loop; the next night tries again
            log.exception("retention run failed")
            continue
        metrics = getattr(outbox, "metrics", None)
        if metrics is not None:
            metrics.retention.labels(kind="photo_files").inc(counts["files"])
            metrics.retention.labels(kind="orphan_files").inc(counts["orphans"])
            metrics.retention_last.set(clock())


def register(broker: AsyncBroker, settings: Settings) -> None:
    if settings.retention_hour < 0:
        return
    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, partial(_start, settings))
    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, _stop)


async def _start(settings: Settings, state: TaskiqState) -> None:
    state.retention = asyncio.get_running_loop().create_task(nightly(settings, state))


async def _stop(state: TaskiqState) -> Any:
    task: asyncio.Task[None] | None = getattr(state, "retention", None)
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
