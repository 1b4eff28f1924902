"""Students, schools, school links, procedure progress and orders on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from storage.sql import links, orders, procedures, schools, students
from storage.sql.db import Database
from storage.sql.errors import OpenOrderExists, OrderNotFound, StaleOrderState
from storage.sql.orders import NewOrder
from storage.sql.schools import School
from storage.sql.tables import photos

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
PKU = School("4111010001", "北京大学", "北京市", "北京市", "教育部", "本科", ("北大",))
HUST = School("4142010487", "华中科技大学", "湖北省", "武汉市", "教育部", "本科", ("华科",))
WHPU = School("4142010496", "武汉轻工大学", "湖北省", "武汉市", "湖北省", "本科")


async def test_follow_unfollow_keeps_one_row_with_the_latest_state(sql_db: Database) -> None:
    async with sql_db.begin() as conn:
        await students.follow(conn, "o1", T0)
        await students.unfollow(conn, "o1", T0 + timedelta(days=1))
        await students.ensure(conn, "o1")  # must not resurrect the follow state
    async with sql_db.read() as conn:
        row = await students.get(conn, "o1")
        assert await students.get(conn, "o-unknown") is None
    assert row is not None
    assert (row.following, row.followed_at, row.unfollowed_at) == (False, T0, T0 + timedelta(days=1))
    assert row.created_at == T0 and row.updated_at.tzinfo is not None


async def test_school_catalogue_upserts_by_code_and_lists_by_place(sql_db: Database) -> None:
    async with sql_db.begin() as conn:
        assert await schools.upsert_many(conn, [PKU, HUST]) == 2
        renamed = School(HUST.code, HUST.name, "湖北省", "武汉市", "教育部", "本科", ("华科", "华中大"))
        await schools.upsert_many(conn, [renamed, WHPU])
    async with sql_db.read() as conn:
        assert await schools.count(conn) == 3
        assert await schools.by_place(conn, "湖北省", "武汉市") == [renamed, WHPU]
        assert await schools.by_place(conn, "北京市") == [PKU]
        assert await schools.get(conn, HUST.code) == renamed


async def test_school_link_joins_the_catalogue_and_tolerates_unknown_schools(sql_db: Database) -> None:
    async with sql_db.begin() as conn:
        await schools.upsert_many(conn, [HUST])
        await links.set_link(conn, "o1", school_code=HUST.code, school_name=HUST.name,
                             education_type="regular", level="本科", cohort=2026)
        await links.set_link(conn, "o2", school_code=None, school_name="某新建学院",
                             education_type="adult", level="专科", cohort=2027)
    async with sql_db.read() as conn:
        known, unknown = await links.get(conn, "o1"), await links.get(conn, "o2")
    assert known is not None and (known.province, known.city, known.cohort) == ("湖北省", "武汉市", 2026)
    assert unknown is not None and (unknown.school_code, unknown.province) == (None, None)


async def test_procedure_progress_is_one_row_per_procedure(sql_db: Database) -> None:
    async with sql_db.begin() as conn:
        await procedures.set_state(conn, "o1", "photo", "uploading", next_step="上传证件照")
        await procedures.set_state(conn, "o1", "photo", "accepted", next_step=None)
        await procedures.set_state(conn, "o1", "degree_cert", "started", next_step="填写学校")
    async with sql_db.read() as conn:
        rows = await procedures.for_student(conn, "o1")
    assert [(p.name, p.state, p.next_step) for p in rows] == [
        ("degree_cert", "started", "填写学校"), ("photo", "accepted", None)]


def _order(no: str, item: str = "photo_fix") -> NewOrder:
    return NewOrder(out_trade_no=no, openid="o1", procedure="photo", item=item, amount_fen=1350)


async def test_one_open_order_per_student_and_item(sql_db: Database) -> None:
    async with sql_db.begin() as conn:
        await orders.create(conn, _order("GB0001"), source="dialog")
        await orders.create(conn, _order("GB0002", item="express"), source="dialog")
    with pytest.raises(OpenOrderExists) as caught:
        async with sql_db.begin() as conn:
            await orders.create(conn, _order("GB0003"), source="dialog")
    assert caught.value.out_trade_no == "GB0001"
    async with sql_db.begin() as conn:
        await orders.transition(conn, "GB0001", expected="created", to_state="closed", source="timeout")
        reopened = await orders.create(conn, _order("GB0004"), source="dialog")
    assert reopened.state == "created"


async def test_order_state_changes_once_and_leave_a_trail(sql_db: Database) -> None:
    async with sql_db.begin() as conn:
        await orders.create(conn, _order("GB0001"), source="dialog", at=T0)
        await orders.update_open(conn, "GB0001", prepay_id="wx201", prepay_expires_at=T0 + timedelta(hours=2))
        paid = await orders.transition(conn, "GB0001", expected="created", to_state="paid", source="notify",
                                       at=T0 + timedelta(minutes=3), transaction_id="4200001",
                                       payer_openid="o1", details={"notify_id": "n1"})
        with pytest.raises(StaleOrderState) as stale:  # the duplicate notification
            await orders.transition(conn, "GB0001", expected="created", to_state="paid", source="notify")
        with pytest.raises(OrderNotFound):
            await orders.transition(conn, "GB9999", expected="created", to_state="paid", source="notify")
        with pytest.raises(ValueError, match="transition"):
            await orders.transition(conn, "GB0001", expected="paid", to_state="created", source="x")
        trail = await orders.events(conn, "GB0001")
    assert stale.value.actual == "paid"
    assert (paid.state, paid.paid_at, paid.transaction_id, paid.prepay_id) == (
        "paid", T0 + timedelta(minutes=3), "4200001", "wx201")
    assert [(e.from_state, e.to_state, e.source) for e in trail] == [
        (None, "created", "dialog"), ("created", "paid", "notify")]


@pytest.mark.parametrize("bad", ["GB01", "G" * 33])
async def test_order_number_length_is_enforced_by_the_database(sql_db: Database, bad: str) -> None:
    # A CHECK violation (IntegrityError) on both; PostgreSQL's varchar(32) refuses a long one first.
    with pytest.raises(sa.exc.DBAPIError):
        async with sql_db.begin() as conn:
            await orders.create(conn, _order(bad), source="dialog")


async def test_foreign_keys_are_enforced(sql_db: Database) -> None:
    # SQLite ignores foreign keys unless the connection turns them on.
    with pytest.raises(sa.exc.IntegrityError):
        async with sql_db.begin() as conn:
            await conn.execute(sa.insert(photos).values(
                openid="o-nobody", procedure="photo", original_sha256="0" * 64, profile="passport",
                ok=False, fixable=True, checks={}, status="pending", created_at=T0))


async def test_progress_makes_the_student_row_and_keeps_answers_unless_given(sql_db: Database) -> None:
    async with sql_db.begin() as conn:  # no students row yet: set_state makes it (the foreign key holds)
        await procedures.set_state(conn, "oNew", "photo", "code", at=T0, answers={"code": "AB12CD34"})
        await procedures.set_state(conn, "oNew", "photo", "photo", at=T0 + timedelta(minutes=1))
    async with sql_db.read() as conn:
        student = await students.get(conn, "oNew")
        saved = await procedures.get(conn, "oNew", "photo")
    assert student is not None and student.following and student.created_at == T0
    assert saved is not None and (saved.state, saved.updated_at) == ("photo", T0 + timedelta(minutes=1))
    assert saved.answers == {"code": "AB12CD34"}
