"""CompositeActions.status: every part's lines, in part order, from one read transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.services.actions import CompositeActions, RecordActions
from bot.services.identity import SandboxVerifier
from bot.services.schools import SchoolIndex
from dialogs.actions import ProcedureStatus
from storage.sql import procedures
from storage.sql.db import Database
from storage.sql.identity import PiiCodec
from storage.sql.migrate import ensure_schema

OPENID = "oStatusLines0000000000000001"


@dataclass
class Progress:
    """A part that reads its lines in the caller's transaction (as ProcedureActions does)."""

    db: Database
    prepares: dict[str, Any] = field(default_factory=dict)
    effects: dict[str, Any] = field(default_factory=dict)
    starts: dict[str, Any] = field(default_factory=dict)

    async def status(self, openid: str) -> list[ProcedureStatus]:
        async with self.db.read() as conn:
            return await self.status_in(conn, openid)

    async def status_in(self, conn: AsyncConnection, openid: str) -> list[ProcedureStatus]:
        rows = await procedures.for_student(conn, openid)
        return [ProcedureStatus("progress", "进度", False, f"{len(rows)} 项")]


@dataclass
class Quiet:
    """A part with no SQL of its own (as the privacy part)."""

    prepares: dict[str, Any] = field(default_factory=dict)
    effects: dict[str, Any] = field(default_factory=dict)
    starts: dict[str, Any] = field(default_factory=dict)

    async def status(self, openid: str) -> list[ProcedureStatus]:
        return [ProcedureStatus("quiet", "安静", True, "无")]


def count_begins(db: Database) -> list[int]:
    begins = [0]

    @event.listens_for(db.engine.sync_engine, "begin")
    def _count(_conn: Any) -> None:
        begins[0] += 1

    return begins


async def test_lines_come_in_part_order_from_one_transaction(sql_db: Database, pii: PiiCodec) -> None:
    records = RecordActions(sql_db, pii, SandboxVerifier(), SchoolIndex(()))
    actions = CompositeActions(records, Quiet(), Progress(sql_db))
    begins = count_begins(sql_db)
    lines = await actions.status(OPENID)
    assert [line.name for line in lines] == ["bind", "link_school", "quiet", "progress"]
    assert lines[0].state == "未完成" and lines[3].state == "0 项"
    assert begins[0] == 1


async def test_parts_on_another_database_read_on_their_own(sql_db: Database, pii: PiiCodec,
                                                           tmp_path: Any) -> None:
    other = Database(f"sqlite+aiosqlite:///{tmp_path / 'other.sqlite3'}")
    try:
        await ensure_schema(other)
        records = RecordActions(sql_db, pii, SandboxVerifier(), SchoolIndex(()))
        actions = CompositeActions(records, Progress(other))
        mine, theirs = count_begins(sql_db), count_begins(other)
        lines = await actions.status(OPENID)
        assert [line.name for line in lines] == ["bind", "link_school", "progress"]
        assert (mine[0], theirs[0]) == (1, 1)
    finally:
        await other.dispose()
