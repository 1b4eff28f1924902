"""Procedure documents and answers on both backends: the latest file per slot, only one's own rows,
answers kept with the progress (and left alone by a write that does not name them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.sql import documents, procedures
from storage.sql.db import Database
from storage.sql.documents import NewDocument

T0 = datetime(2025, 4, 1, 2, 0, tzinfo=UTC)


def _doc(slot: str, digest: str, source: str = "chat", kind: str | None = None) -> NewDocument:
    return NewDocument("hunnu_degree_2025", slot, "身份证 人像面", digest, "image/jpeg", 1234, source, kind)


async def test_the_latest_upload_per_slot_and_only_ones_own(sql_db: Database) -> None:
    async with sql_db.begin() as conn:
        first = await documents.add(conn, "o1", _doc("docs__id_card1", "a" * 64), at=T0)
        second = await documents.add(conn, "o1", _doc("docs__id_card1", "b" * 64), at=T0 + timedelta(minutes=1))
        other = await documents.add(conn, "o2", _doc("docs__id_card1", "c" * 64, kind="CET-4"), at=T0)
    async with sql_db.read() as conn:
        latest = await documents.latest(conn, "o1", "hunnu_degree_2025", "docs__id_card1")
        assert latest is not None and latest.id == second and latest.sha256 == "b" * 64
        assert await documents.get(conn, other, "o1") is None  # someone else's id finds nothing
        assert [d.id for d in await documents.many(conn, "o1", [first, second, other])] == [first, second]
        theirs = await documents.get(conn, other, "o2")
        assert theirs is not None and theirs.kind == "CET-4" and theirs.created_at == T0
        assert await documents.latest(conn, "o1", "hunnu_degree_2025", "docs__diploma") is None


async def test_answers_ride_with_the_progress(sql_db: Database) -> None:
    async with sql_db.begin() as conn:
        await procedures.set_state(conn, "o1", "csust_degree_english", "subject", at=T0,
                                   answers={"subject": "英语", "status": "已毕业", "thesis": "良"})
        await procedures.set_state(conn, "o1", "csust_degree_english", "fee__wait", at=T0)  # answers untouched
    async with sql_db.read() as conn:
        saved = await procedures.get(conn, "o1", "csust_degree_english")
        listed = await procedures.for_student(conn, "o1")
    assert saved is not None and saved.state == "fee__wait" and saved.answers["thesis"] == "良"
    assert [p.state for p in listed] == ["fee__wait"]
