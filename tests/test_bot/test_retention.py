"""Retention: photo files go N days after the procedure finished, results stay; orphans go; counts reported."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa

from bot.cli import main
from bot.config import Settings
from bot.metrics import Metrics
from bot.services.retention import Retention, finished_states, seconds_until
from dialogs.registry import build_engine
from storage.files import FileStore
from storage.sql import documents, photos, procedures
from storage.sql.db import Database
from storage.sql.migrate import ensure_schema
from storage.sql.tables import audit_log

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
FINISHED = {"photo": ["done", "review__closed"]}


async def photo(db: Database, files: FileStore, openid: str, state: str, days_ago: float,
                data: bytes | None = None) -> tuple[int, str, str]:
    original, fixed = files.put(data or f"original {openid}".encode()), files.put(f"fixed {openid}".encode())
    async with db.begin() as conn:
        await procedures.set_state(conn, openid, "photo", state, at=NOW - timedelta(days=days_ago))
        photo_id = await photos.add(conn, openid, procedure="photo", original_sha256=original, fixed_sha256=fixed,
                                    profile="chsi", ok=False, fixable=True, checks={"size": "too small"})
    return photo_id, original, fixed


def retention(db: Database, files: FileStore, days: int = 30) -> Retention:
    return Retention(db, files, FINISHED, days, clock=NOW.timestamp)


async def test_files_of_procedures_finished_long_enough_go_and_the_results_stay(
    sql_db: Database, tmp_path: Path
) -> None:
    files = FileStore(tmp_path / "files")
    old_done = await photo(sql_db, files, "oOldDone", "done", 31)
    old_closed = await photo(sql_db, files, "oOldClosed", "review__closed", 40)
    recent = await photo(sql_db, files, "oRecentDone", "done", 29)
    unfinished = await photo(sql_db, files, "oStillGoing", "photo", 90)
    assert await retention(sql_db, files).run() == {"photos": 2, "documents": 0, "files": 4, "orphans": 0}
    for _, *digests in (old_done, old_closed):
        assert not any(files.exists(d) for d in digests)
    for _, *digests in (recent, unfinished):
        assert all(files.exists(d) for d in digests)
    async with sql_db.read() as conn:
        kept = await photos.get(conn, old_done[0])
    assert kept is not None and kept.checks == {"size": "too small"} and kept.files_deleted_at is not None
    assert await retention(sql_db, files).run() == {"photos": 0, "documents": 0, "files": 0, "orphans": 0}  # idempotent
    async with sql_db.read() as conn:
        runs = (await conn.execute(sa.select(audit_log.c.details).where(audit_log.c.action == "retention.run"))).all()
    assert [r.details["photos"] for r in runs] == [2, 0]


async def test_a_file_still_needed_by_another_photo_stays(sql_db: Database, tmp_path: Path) -> None:
    files = FileStore(tmp_path / "files")
    _, shared, _ = await photo(sql_db, files, "oDoneShare", "done", 60, data=b"same bytes")
    await photo(sql_db, files, "oBusyShare", "photo", 60, data=b"same bytes")
    counts = await retention(sql_db, files).run()
    assert counts["photos"] == 1 and files.exists(shared)


async def test_dry_run_counts_and_deletes_nothing(sql_db: Database, tmp_path: Path) -> None:
    files = FileStore(tmp_path / "files")
    _, original, fixed = await photo(sql_db, files, "oDryRun", "done", 100)
    orphan = files.put(b"an upload whose row was never written")
    os.utime(files.path(orphan), (NOW.timestamp() - 2 * 86400,) * 2)
    assert await retention(sql_db, files).run(dry_run=True) == {"photos": 1, "documents": 0, "files": 0, "orphans": 1}
    assert files.exists(original) and files.exists(fixed) and files.exists(orphan)


async def test_orphan_files_go_once_a_day_old(sql_db: Database, tmp_path: Path) -> None:
    files = FileStore(tmp_path / "files")
    old, fresh = files.put(b"orphan from yesterday"), files.put(b"upload being recorded right now")
    os.utime(files.path(old), (time.time() - 2 * 86400,) * 2)
    _, kept, _ = await photo(sql_db, files, "oHasRow", "photo", 2)
    os.utime(files.path(kept), (time.time() - 2 * 86400,) * 2)
    counts = await Retention(sql_db, files, FINISHED, 30).run()
    assert counts["orphans"] == 1 and not files.exists(old) and files.exists(fresh) and files.exists(kept)


async def test_uploaded_documents_go_and_generated_pdfs_stay(sql_db: Database, tmp_path: Path) -> None:
    files = FileStore(tmp_path / "files")
    upload, pdf = files.put(b"photo of an ID card"), files.put(b"%PDF receipt")
    async with sql_db.begin() as conn:
        await procedures.set_state(conn, "oDocs", "photo", "done", at=NOW - timedelta(days=45))
        for digest, source in ((upload, "chat"), (pdf, "generated")):
            await documents.add(conn, "oDocs", documents.NewDocument("photo", "id_card", "身份证", digest,
                                                                    "image/jpeg", 20, source))
    counts = await retention(sql_db, files).run()
    assert counts["documents"] == 1 and not files.exists(upload) and files.exists(pdf)
    async with sql_db.read() as conn:
        rows = await documents.for_procedure(conn, "oDocs", "photo")
    assert [d.files_deleted_at is not None for d in rows] == [True, False]  # the rows stay


def test_finished_states_come_from_the_procedure_definitions() -> None:
    finished = finished_states(build_engine())
    assert "done" in finished["hanjiang_photo_2025"]
    assert "bind" not in finished  # built-in dialogs record no procedure progress


@pytest.mark.parametrize(("local", "hour", "wait_h"), [("02:00", 3, 1), ("03:00", 3, 24), ("23:30", 3, 3.5)])
def test_next_run_is_at_the_hour_in_china_time(local: str, hour: int, wait_h: float) -> None:
    now = datetime.fromisoformat(f"2025-06-01T{local}:00+08:00").timestamp()
    assert seconds_until(hour, now) == wait_h * 3600


async def test_cli_prints_the_counts(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    db = Database(settings.sql_url)
    await ensure_schema(db)
    await db.dispose()
    monkeypatch.setenv("GRADBOT_DATA_DIR", str(settings.data_dir))
    import asyncio

    assert await asyncio.to_thread(main, ["retention", "run", "--days", "7", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out) == {"photos": 0, "documents": 0, "files": 0, "orphans": 0, "days": 7,
                                                   "dry_run": True}


async def test_the_nightly_run_happens_once_per_night_across_workers(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    import asyncio
    import contextlib
    from types import SimpleNamespace

    from bot.services.retention import nightly
    from storage.keys import KeyBuilder

    db = Database(settings.sql_url)
    await ensure_schema(db)
    metrics = Metrics()
    state = SimpleNamespace(outbox=SimpleNamespace(redis=redis_client, metrics=metrics,
                                                   keys=KeyBuilder(settings.redis_prefix, settings.wechat_appid)))
    waits: list[float] = []

    async def one_night(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) % 2 == 0:
            raise asyncio.CancelledError  # the worker stops after the first night

    night = datetime.fromisoformat("2025-06-01T02:00:00+08:00").timestamp()
    for _worker in range(2):  # two workers wake up the same night
        with contextlib.suppress(asyncio.CancelledError):
            await nightly(settings, state, clock=lambda: night, sleep=one_night)  # type: ignore[arg-type]
    async with db.read() as conn:
        runs = (await conn.execute(sa.select(audit_log.c.id).where(audit_log.c.action == "retention.run"))).all()
    await db.dispose()
    assert len(runs) == 1 and waits[0] == 3600
    assert metrics.retention_last._value.get() == night  # for the "retention did not run" alert
