"""删除我的信息 through the chat and ``gradbot students erase/export``: what goes, what stays, nothing leaks."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa

from bot import keys
from bot.cli import main
from bot.config import Settings
from bot.services.identity import make_test_id
from storage.keys import KeyBuilder
from storage.sql import documents, orders, photos, procedures, reviews
from storage.sql import erase as records
from storage.sql.crypto import generate_key
from storage.sql.tables import audit_log, students
from tests.fixtures.app import Gradbot, GradbotFactory
from tests.fixtures.conversation import Student

NAME = "欧阳娜娜"
ID_NUMBER = make_test_id("430102", "19990101", "123")


async def bind(student: Student) -> None:
    for text in ("实名认证", "同意", "1", NAME, ID_NUMBER):
        await student.send(text)
    assert "实名认证完成" in await student.send("确认")


async def holdings(bot: Gradbot, openid: str) -> dict[str, Any]:
    """Everything about the student, plus the photo files' presence and the Redis keys of the account."""
    services = bot.app[keys.SERVICES]
    async with services.db.read() as conn:
        held = await records.export(conn, openid)
    assert held is not None
    return held


async def give_photo_and_paid_order(bot: Gradbot, openid: str, data: bytes = b"jpeg bytes of a face") -> str:
    services = bot.app[keys.SERVICES]
    digest = services.files.put(data)
    async with services.db.begin() as conn:
        photo_id = await photos.add(conn, openid, procedure="hanjiang_photo_2025", original_sha256=digest,
                                    fixed_sha256=None, profile="chsi", ok=True, fixable=False, checks={"ok": 1})
        await procedures.set_state(conn, openid, "hanjiang_photo_2025", "review__wait")
        await reviews.submit(conn, openid=openid, procedure="hanjiang_photo_2025", photo_id=photo_id,
                             documents=[{"name": "collection_code", "value": "AB12CD34"}])
        card = services.files.put(b"scan of an ID card " + data)
        await documents.add(conn, openid, documents.NewDocument("hanjiang_photo_2025", "id_card", "身份证", card,
                                                                "image/jpeg", 40, "chat"))
        no = f"GB20251111{openid[-14:]:0>14}"[:24]
        await orders.create(conn, orders.NewOrder(no, openid, "photo", "photo_collection", 1350), source="test")
        await orders.transition(conn, no, expected="created", to_state="paid", source="test")
    return digest


@pytest.fixture
async def bot_any_db(make_gradbot: GradbotFactory, settings: Settings, sql_url: str) -> Gradbot:
    extra = {} if sql_url.startswith("sqlite") else {"data_key": generate_key()}
    return await make_gradbot(settings.with_(database_url=sql_url, **extra))


async def test_erase_in_the_chat_deletes_everything_but_orders_and_the_audit_trail(
    bot_any_db: Gradbot, redis_client: aioredis.Redis, settings: Settings
) -> None:
    bot = bot_any_db
    student = Student(bot, "oErase_chat_0001")
    await bind(student)
    digest = await give_photo_and_paid_order(bot, student.openid)
    idv = [k async for k in redis_client.scan_iter(match=f"{settings.redis_prefix}:*:idv:*")]
    assert len(idv) == 1  # the cached real-name verdict of this binding

    asked = await student.send("删除我的信息")
    assert "实名信息" in asked and "学校" not in asked and "1 张照片" in asked and "1 笔订单" in asked
    assert await student.where() == "erase/confirm"
    assert "已删除" in await student.send("确认")

    held = await holdings(bot, student.openid)
    left = {table for table, rows in held.items() if rows}
    assert left == {"students", "orders", "order_events", "audit_log"}
    assert held["students"][0]["erased_at"] is not None
    assert not bot.app[keys.SERVICES].files.exists(digest)
    card = hashlib.sha256(b"scan of an ID card jpeg bytes of a face").hexdigest()
    assert not bot.app[keys.SERVICES].files.exists(card)  # the uploaded document's file too
    assert await redis_client.exists(*idv) == 0
    replies = [k async for k in redis_client.scan_iter(match=f"{settings.redis_prefix}:*{{{student.openid}}}:d:*")]
    assert len(replies) == 1  # only the answer to 确认 itself, cached after the erasure
    assert (await student.record()).stack == []
    trail = json.dumps(held["audit_log"], ensure_ascii=False)
    assert "privacy.erase" in trail and ID_NUMBER not in trail and NAME not in trail
    assert "未完成" in await student.send("进度")  # nothing bound any more


async def test_saying_no_keeps_everything(gradbot: Gradbot) -> None:
    student = Student(gradbot, "oErase_keep_0001")
    await bind(student)
    await student.send("删除我的信息")
    assert "没有删除" in await student.send("否")
    assert (await holdings(gradbot, student.openid))["identity_bindings"]


async def test_a_student_we_hold_nothing_on_is_told_so(gradbot: Gradbot) -> None:
    student = Student(gradbot, "oErase_none_0001")
    await student.follow()
    assert "没有保存你的个人信息" in await student.send("删除我的信息")
    assert await student.where() == "none"


async def test_a_photo_file_another_student_also_sent_stays(gradbot: Gradbot) -> None:
    a, b = Student(gradbot, "oErase_share_000A"), Student(gradbot, "oErase_share_000B")
    digest = await give_photo_and_paid_order(gradbot, a.openid, b"the same bytes")
    await give_photo_and_paid_order(gradbot, b.openid, b"the same bytes")
    await a.send("删除我的信息")
    await a.send("确认")
    assert gradbot.app[keys.SERVICES].files.exists(digest)
    assert (await holdings(gradbot, b.openid))["photos"]


def _cli_env(monkeypatch: pytest.MonkeyPatch, s: Settings) -> None:
    for name, value in {"REDIS_URL": s.redis_url, "REDIS_PREFIX": s.redis_prefix, "DATA_DIR": str(s.data_dir),
                        "WECHAT_APPID": s.wechat_appid, "DATABASE_URL": s.database_url}.items():
        monkeypatch.setenv(f"GRADBOT_{name}", value)


async def test_cli_erase_takes_the_turn_and_deletes_the_session(
    gradbot: Gradbot, settings: Settings, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    student = Student(gradbot, "oErase_cli_00001")
    await bind(student)
    await student.send("关联学校")  # a dialog in progress: its record is in Redis
    session_key = KeyBuilder(settings.redis_prefix, settings.wechat_appid).session(student.openid)
    assert await redis_client.exists(session_key)
    _cli_env(monkeypatch, settings)
    assert await _cli(["students", "erase", student.openid, "--actor", "staff:wang"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["deleted"]["identity_bindings"] == 1 and out["kept"]["audit_log"] >= 1
    assert not await redis_client.exists(session_key)
    async with gradbot.app[keys.SERVICES].db.read() as conn:
        actors = (await conn.execute(sa.select(audit_log.c.actor).where(audit_log.c.action == "privacy.erase"))).all()
    assert actors == [("staff:wang",)]
    assert await _cli(["students", "erase", "oNobody_at_all_01"]) == 1


async def test_cli_export_holds_every_table_and_reveals_only_when_asked(
    gradbot: Gradbot, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    tmp_path: Any,
) -> None:
    student = Student(gradbot, "oExport_cli_0001")
    await bind(student)
    digest = await give_photo_and_paid_order(gradbot, student.openid)
    _cli_env(monkeypatch, settings)
    assert await _cli(["students", "export", student.openid, "--files", str(tmp_path / "out")]) == 0
    masked = capsys.readouterr().out
    found = json.loads(masked)
    assert set(found["records"]) >= {"students", "identity_bindings", "photos", "reviews", "orders", "audit_log"}
    card = hashlib.sha256(b"scan of an ID card jpeg bytes of a face").hexdigest()
    assert found["files"] == sorted([digest, card]) and (tmp_path / "out" / digest).exists()
    assert ID_NUMBER not in masked and NAME not in masked and "name_enc" not in masked and "id_hmac" not in masked
    assert await _cli(["students", "export", student.openid, "--reveal"]) == 0
    revealed = json.loads(capsys.readouterr().out)
    assert revealed["identity"] == {"id_type": "resident_id", "name": NAME, "id_number": ID_NUMBER}
    async with gradbot.app[keys.SERVICES].db.read() as conn:
        stmt = sa.select(audit_log.c.details).where(audit_log.c.action == "privacy.export")
        assert [d["revealed"] for d in (await conn.execute(stmt)).scalars()] == [False, True]


async def test_erased_students_row_is_marked_and_kept_for_the_orders(gradbot: Gradbot) -> None:
    student = Student(gradbot, "oErase_mark_0001")
    await give_photo_and_paid_order(gradbot, student.openid)
    await student.send("删除我的信息")
    await student.send("确认")
    async with gradbot.app[keys.SERVICES].db.read() as conn:
        row = (await conn.execute(sa.select(students).where(students.c.openid == student.openid))).one()
        order = await orders.latest(conn, student.openid, "photo_collection")
    assert row.erased_at is not None and order is not None and order.state == "paid"


async def _cli(argv: list[str]) -> int:
    """The CLI runs its own event loop (asyncio.run), so it goes to a thread here."""
    import asyncio

    return await asyncio.to_thread(main, argv)


async def test_held_counts_what_an_erasure_deletes_and_the_paid_orders_it_keeps(bot_any_db: Gradbot) -> None:
    student = Student(bot_any_db, "oErase_held_0001")
    await student.follow()
    services = bot_any_db.app[keys.SERVICES]
    async with services.db.read() as conn:
        assert await records.held(conn, "oErase_nobody_01") is None
        nothing = await records.held(conn, student.openid)
    assert nothing is not None and not any(nothing.rows.values()) and nothing.paid_orders == 0
    await give_photo_and_paid_order(bot_any_db, student.openid)
    async with services.db.read() as conn:
        held = await records.held(conn, student.openid)
        exported = await records.export(conn, student.openid)
    assert held is not None and exported is not None and held.paid_orders == 1
    assert held.rows == {t: len(exported[t]) for t in held.rows}  # the same rows an export lists
    assert set(held.rows) == {t.name for t in records.student_tables()} - records.KEPT_TABLES
