"""Console pages over real HTTP: the funnel and its CSV, student lookup, windows with automatic
reminders, composing a broadcast with its exact count and preview, and bad input on each."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime

import pytest

from bot.services.notify.limiter import CHINA
from storage.sql import broadcasts, windows
from tests.fixtures.console import HANJIANG, PROCEDURE, ConsoleWorld, id_number_for, seed_stages

# HTTP-level tests run on PostgreSQL (production); the repositories run on both backends.
pytestmark = pytest.mark.parametrize("sql_url", ["postgresql"], indirect=True)


async def _staged(world: ConsoleWorld) -> dict[str, str]:
    async with world.db.begin() as conn:
        at = await seed_stages(conn, world.pii)
    for step, openid in at.items():
        if step != "unfollowed":
            await world.stub.interaction(openid, "subscribe")
    return at


async def test_the_funnel_counts_every_stage_and_exports_as_csv(console_world: ConsoleWorld) -> None:
    world = console_world
    await _staged(world)
    admin = await world.signed_in("boss", role="admin", schools_=())
    resp = await admin.get(f"/console/?procedure={PROCEDURE}&school={HANJIANG.code}")
    assert resp.status == 200
    resp = await admin.get(f"/console/funnel.csv?procedure={PROCEDURE}&school={HANJIANG.code}")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(admin.last.lstrip("\ufeff"))))
    assert len(rows) == 1 and rows[0]["school_name"] == HANJIANG.name
    counts = {k: int(v) for k, v in rows[0].items() if k in ("followed", "bound", "linked", "photo_passed",
                                                               "paid", "submitted", "approved", "rejected")}
    # linked and beyond: linked, photo, paid, submitted, approved, rejected (all follow the account).
    assert counts == {"followed": 6, "bound": 6, "linked": 6, "photo_passed": 5, "paid": 4, "submitted": 3,
                      "approved": 1, "rejected": 1}


async def test_a_bad_filter_is_a_clear_400(console_world: ConsoleWorld) -> None:
    browser = await console_world.signed_in("li")
    resp = await browser.get("/console/?cohort=abc")
    assert resp.status == 400 and "年级应为数字年份" in browser.last


async def test_lookup_by_masked_id_full_id_and_name_shows_masks_only(console_world: ConsoleWorld) -> None:
    world = console_world
    at = await _staged(world)
    openid = at["submitted"]
    number = id_number_for(openid)
    browser = await world.signed_in("li")
    for query in (number, f"{number[:4]}**********{number[-4:]}", number[-4:]):
        resp = await browser.get("/console/students", params={"q": query})
        assert resp.status == 200 and f"/console/students/{openid}" in browser.last, query
        assert number not in browser.last.replace(f"value=\"{query}\"", "")
    resp = await browser.get("/console/students", params={"q": "张小明"})
    assert browser.last.count("/console/students/o") == 6  # every bound student of this school is a 张小明
    resp = await browser.get("/console/students", params={"q": openid})
    assert "没有找到" in browser.last  # openids are for admins
    resp = await browser.get(f"/console/students/{openid}")
    assert resp.status == 200 and "review.submit" in browser.last and "张**" in browser.last


async def test_windows_create_automatic_reminders_before_the_close(console_world: ConsoleWorld) -> None:
    world = console_world
    admin = await world.signed_in("boss", role="admin", schools_=())
    await admin.get("/console/windows")
    form = {"procedure": "hanjiang_photo_2025", "school": HANJIANG.code, "cohort": "0", "opens": "2030-03-11",
            "closes": "2030-05-05", "remind_days": "7,1", "remind_template": "deadline_reminder"}
    resp = await admin.post("/console/windows", form)
    assert resp.status == 200 and "截止前 7 天" in admin.last
    async with world.db.read() as conn:
        window = await windows.find_exact(conn, "hanjiang_photo_2025", HANJIANG.code, 0)
        assert window is not None
        made = await broadcasts.for_window(conn, window.id)
    assert [(b.days_before, b.state, b.send_at.astimezone(CHINA).replace(tzinfo=None)) for b in made] == [
        (7, "scheduled", datetime(2030, 4, 28, 9, 0)), (1, "scheduled", datetime(2030, 5, 4, 9, 0))]
    assert made[0].audience["stage"] == "not_finished" and made[0].variables["closes"] == "2030-05-05"
    form.update(remind_days="1", closes="2030-05-10")
    await admin.post("/console/windows", form)
    async with world.db.read() as conn:
        moved = {b.days_before: b for b in await broadcasts.for_window(conn, window.id)}
    assert moved[7].state == "cancelled" and moved[1].send_at.astimezone(CHINA).date() == date(2030, 5, 9)
    resp = await admin.post("/console/windows", {**form, "closes": "2030-01-01"})
    assert resp.status == 400


async def test_the_seeded_procedure_window_is_listed(console_world: ConsoleWorld) -> None:
    admin = await console_world.signed_in("boss", role="admin", schools_=())
    await admin.get("/console/windows")
    assert re.search(r"2025-03-11</td><td>2025-05-05", admin.last)  # seed 003's window, from its procedure file


async def test_compose_shows_the_exact_count_and_preview_then_sends(console_world: ConsoleWorld) -> None:
    world = console_world
    at = await _staged(world)
    admin = await world.signed_in("boss", role="admin", schools_=())
    query = {"preview": "1", "title": "催办", "template": "deadline_reminder", "procedure": PROCEDURE,
             "school": HANJIANG.code, "stage": "not_paid", "rate": "50",
             "var_message": "请尽快缴费，逾期将无法完成本次图像采集的登记手续"}
    resp = await admin.get("/console/broadcasts/new", params=query)
    assert resp.status == 200
    assert re.search(r'id="audience-count">1<', admin.last)  # only the one with a passed photo and no payment
    assert "请尽快缴费，逾期将无法完成本次图像采集…" in admin.last  # the preview is cut to 20 characters, as sent
    form = {k: v for k, v in query.items() if k != "preview"}
    resp = await admin.post("/console/broadcasts", form)
    assert resp.status == 200 and 'id="live-progress"' in admin.last
    found = re.search(r"/console/broadcasts/(\d+)/status.json", admin.last)
    assert found is not None
    broadcast_id = int(found.group(1))
    await world.wait_inbox(at["photo"])
    status = await admin.http.get(f"{admin.base}/console/broadcasts/{broadcast_id}/status.json")
    body = await status.json()
    assert set(body) >= {"id", "total", "sent", "failed", "pending", "state"} and body["total"] == 1


async def test_compose_refuses_a_missing_message_and_a_stage_without_procedure(console_world: ConsoleWorld) -> None:
    admin = await console_world.signed_in("boss", role="admin", schools_=())
    base = {"preview": "1", "title": "x", "template": "deadline_reminder"}
    resp = await admin.get("/console/broadcasts/new", params={**base, "stage": "all", "var_message": ""})
    assert resp.status == 400 and "请填写" in admin.last
    resp = await admin.get("/console/broadcasts/new", params={**base, "stage": "not_paid", "var_message": "x"})
    assert resp.status == 400 and "请选择办理事项" in admin.last
    resp = await admin.post("/console/broadcasts", {"title": "x", "template": "nope", "stage": "all"})
    assert resp.status == 400 and "没有名为" in admin.last
