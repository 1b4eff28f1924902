"""The review queue on both backends: submit, supersede, leases, decisions, scopes, audit."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from storage.sql import audit, reviews
from storage.sql.db import Database
from storage.sql.identity import PiiCodec
from storage.sql.reviews import ReviewConflict
from tests.fixtures.console import HANJIANG, HUNNU, PROCEDURE, T0, add_photo, add_schools, seed_student

A, B, C = "oReviewStudentA_0001_xyz", "oReviewStudentB_0002_xyz", "oReviewStudentC_0003_xyz"


async def _paid_students(db: Database, pii: PiiCodec) -> None:
    async with db.begin() as conn:
        await add_schools(conn)
        await seed_student(conn, pii, A, "paid", at=T0)
        await seed_student(conn, pii, B, "paid", at=T0 + timedelta(minutes=5))
        await seed_student(conn, pii, C, "paid", school=HUNNU, at=T0 + timedelta(minutes=10))


async def _submit(db: Database, openid: str, minutes: int, photo: bool = True) -> int:
    async with db.begin() as conn:
        photo_id = await add_photo(conn, openid) if photo else None
        return await reviews.submit(conn, openid=openid, procedure=PROCEDURE, photo_id=photo_id,
                                    documents=[{"kind": "note", "value": "x"}], at=T0 + timedelta(minutes=minutes))


async def test_submit_snapshots_the_school_and_a_resubmission_supersedes(sql_db: Database, pii: PiiCodec) -> None:
    await _paid_students(sql_db, pii)
    first = await _submit(sql_db, A, 20)
    second = await _submit(sql_db, A, 30)
    async with sql_db.read() as conn:
        old, new = await reviews.get(conn, first), await reviews.get(conn, second)
        trail = [e.action for e in await audit.for_student(conn, A)]
    assert old is not None and new is not None
    assert (old.state, new.state) == ("superseded", "pending")
    assert (new.school_code, new.cohort, new.documents) == (HANJIANG.code, 2025, [{"kind": "note", "value": "x"}])
    assert trail.count("review.submit") == 2


async def test_a_rejected_student_resubmits_as_a_new_pending_item(sql_db: Database, pii: PiiCodec) -> None:
    await _paid_students(sql_db, pii)
    first = await _submit(sql_db, A, 20)
    async with sql_db.begin() as conn:
        await reviews.decide(conn, first, reviewer="li", approve=False, reasons=[{"code": "incomplete"}])
    second = await _submit(sql_db, A, 40)
    async with sql_db.read() as conn:
        assert [r.state for r in await reviews.for_student(conn, A)] == ["pending", "rejected"]
        latest = await reviews.latest(conn, A, PROCEDURE)
    assert latest is not None and latest.id == second


async def test_queue_is_oldest_first_and_scoped_to_the_reviewers_schools(sql_db: Database, pii: PiiCodec) -> None:
    await _paid_students(sql_db, pii)
    late, early, other = await _submit(sql_db, B, 50), await _submit(sql_db, A, 20), await _submit(sql_db, C, 10)
    async with sql_db.read() as conn:
        assert [r.id for r in await reviews.queue(conn, schools=None)] == [other, early, late]
        assert [r.id for r in await reviews.queue(conn, schools=[HANJIANG.code])] == [early, late]
        assert await reviews.queue(conn, schools=[]) == []
        assert await reviews.pending_count(conn, schools=[HUNNU.code]) == 1


async def test_two_reviewers_at_once_never_get_the_same_item(sql_db: Database, pii: PiiCodec) -> None:
    await _paid_students(sql_db, pii)
    ids = {await _submit(sql_db, A, 20), await _submit(sql_db, B, 30), await _submit(sql_db, C, 40)}

    async def take(name: str) -> int | None:
        async with sql_db.begin() as conn:
            item = await reviews.claim_next(conn, reviewer=name, schools=None, now=T0 + timedelta(hours=1))
        return item.id if item else None

    got = await asyncio.gather(*(take(f"r{i}") for i in range(5)))
    taken = [g for g in got if g is not None]
    assert sorted(taken) == sorted(ids)  # three items, three different reviewers, two get nothing


async def test_a_lease_keeps_an_item_until_it_expires(sql_db: Database, pii: PiiCodec) -> None:
    await _paid_students(sql_db, pii)
    item = await _submit(sql_db, A, 20)
    now = T0 + timedelta(hours=1)
    async with sql_db.begin() as conn:
        mine = await reviews.claim_next(conn, reviewer="li", schools=None, now=now)
        assert mine is not None and mine.id == item
        assert await reviews.claim_next(conn, reviewer="wang", schools=None, now=now + timedelta(minutes=5)) is None
        again = await reviews.claim_next(conn, reviewer="li", schools=None, now=now + timedelta(minutes=5))
        assert again is not None and again.id == item  # one's own item comes back first
        later = await reviews.claim_next(conn, reviewer="wang", schools=None, now=now + timedelta(minutes=16))
    assert later is not None and later.claimed_by == "wang"


async def test_decisions_need_the_lease_and_happen_once(sql_db: Database, pii: PiiCodec) -> None:
    await _paid_students(sql_db, pii)
    item = await _submit(sql_db, A, 20)
    now = T0 + timedelta(hours=1)
    async with sql_db.begin() as conn:
        assert await reviews.claim(conn, item, reviewer="li", now=now)
    with pytest.raises(ReviewConflict):
        async with sql_db.begin() as conn:
            await reviews.decide(conn, item, reviewer="wang", approve=True, at=now)
    reasons = [{"code": "photo_quality", "text": "照片质量不符合要求", "items": ["head_size"]}]
    async with sql_db.begin() as conn:
        decided = await reviews.decide(conn, item, reviewer="li", approve=False, reasons=reasons, note="请重拍", at=now)
    assert (decided.state, decided.decided_by, decided.reasons, decided.note) == ("rejected", "li", reasons, "请重拍")
    assert decided.claimed_by is None
    with pytest.raises(ReviewConflict):
        async with sql_db.begin() as conn:
            await reviews.decide(conn, item, reviewer="li", approve=True, at=now)
    async with sql_db.read() as conn:
        entry = next(e for e in await audit.for_student(conn, A) if e.action == "review.reject")
    assert (entry.actor, entry.at, entry.details["reasons"]) == ("li", now, ["photo_quality"])


async def test_release_hands_the_item_to_the_next_reviewer(sql_db: Database, pii: PiiCodec) -> None:
    await _paid_students(sql_db, pii)
    item = await _submit(sql_db, A, 20, photo=False)
    async with sql_db.begin() as conn:
        assert await reviews.claim(conn, item, reviewer="li")
        assert not await reviews.claim(conn, item, reviewer="wang")
        assert await reviews.release(conn, item, reviewer="li")
        assert await reviews.claim(conn, item, reviewer="wang")
        got = await reviews.get(conn, item)
    assert got is not None and got.photo_id is None
