"""Signing in and what the console refuses: wrong passwords, lockout, CSRF, roles, school scopes."""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest
import sqlalchemy as sa
from yarl import URL

from storage.sql import broadcasts, reviews
from storage.sql.tables import audit_log
from tests.fixtures.console import HUNNU, PASSWORD, ConsoleWorld

# HTTP-level tests run on PostgreSQL (production); the repositories run on both backends.
pytestmark = pytest.mark.parametrize("sql_url", ["postgresql"], indirect=True)

STUDENT = "oAuthStudent_0001_abcdefghij"


async def test_sign_in_sets_a_safe_cookie_and_replaces_the_anonymous_session(console_world: ConsoleWorld) -> None:
    world = console_world
    await world.add_staff("li")
    browser = world.browser()
    resp = await browser.get("/console/login")
    before = resp.cookies["gb_console"]
    assert before["httponly"] and before["samesite"] == "Strict" and before["path"] == "/console/"
    resp = await browser.post("/console/login", {"username": "li", "password": PASSWORD},
                              allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/console/"
    after = SimpleCookie(resp.headers["Set-Cookie"])["gb_console"]
    assert after.value != before.value  # a planted session id would be useless
    resp = await browser.get("/console/")
    assert resp.status == 200 and "办理进度概览" in browser.last
    assert resp.headers["Cache-Control"] == "no-store" and "frame-ancestors 'none'" in resp.headers[
        "Content-Security-Policy"]


async def test_a_wrong_password_is_refused_and_audited(console_world: ConsoleWorld) -> None:
    world = console_world
    await world.add_staff("li")
    browser = world.browser()
    resp = await browser.login("li", "not the password")
    assert resp.status == 401 and "用户名或密码不正确" in browser.last
    resp = await browser.login("nobody", "whatever-it-is")
    assert resp.status == 401 and "用户名或密码不正确" in browser.last  # the same answer: no user enumeration
    resp = await browser.get("/console/", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/console/login")
    async with world.db.read() as conn:
        failed = (await conn.execute(sa.select(audit_log.c.actor).where(
            audit_log.c.action == "console.login_failed").order_by(audit_log.c.id))).scalars().all()
    assert failed == ["li", "nobody"]


async def test_five_failures_lock_the_account_even_for_the_right_password(console_world: ConsoleWorld) -> None:
    world = console_world
    await world.add_staff("li")
    browser = world.browser()
    for _ in range(5):
        assert (await browser.login("li", "wrong-password")).status == 401
    resp = await browser.login("li", PASSWORD)
    assert resp.status == 429 and "锁定" in browser.last
    other = await world.signed_in("wang")  # another account is not locked
    assert (await other.get("/console/")).status == 200


async def test_a_form_without_the_csrf_token_changes_nothing(console_world: ConsoleWorld) -> None:
    world = console_world
    review_id = await world.seed(STUDENT, "submitted")
    browser = await world.signed_in("li")
    await browser.get(f"/console/reviews/{review_id}")
    resp = await browser.post(f"/console/reviews/{review_id}", {"action": "approve"}, csrf="forged")
    assert resp.status == 403 and "表单已过期" in browser.last
    resp = await browser.http.post(f"{browser.base}/console/reviews/{review_id}", data={"action": "approve"})
    assert resp.status == 403
    async with world.db.read() as conn:
        review = await reviews.get(conn, review_id)
    assert review is not None and review.state == "pending"
    assert await world.stub.inbox(STUDENT) == []


async def test_reviewers_cannot_reach_admin_pages(console_world: ConsoleWorld) -> None:
    world = console_world
    browser = await world.signed_in("li")
    for path in ("/console/broadcasts", "/console/broadcasts/new", "/console/windows"):
        resp = await browser.get(path)
        assert resp.status == 403 and "没有权限" in browser.last, path
    resp = await browser.post("/console/broadcasts", {"title": "x", "template": "deadline_reminder",
                                                      "stage": "all", "var_message": "x"})
    assert resp.status == 403
    async with world.db.read() as conn:
        assert await broadcasts.recent(conn) == []


async def test_reviewers_see_only_their_schools(console_world: ConsoleWorld) -> None:
    world = console_world
    elsewhere = await world.seed(STUDENT, "submitted", school=HUNNU)
    browser = await world.signed_in("li")  # a reviewer for 汉江师范学院 only
    assert (await browser.get(f"/console/reviews/{elsewhere}")).status == 404
    assert (await browser.get(f"/console/reviews/{elsewhere}/photo/original")).status == 404
    assert (await browser.get(f"/console/students/{STUDENT}")).status == 404
    resp = await browser.post("/console/reviews/next", {}, allow_redirects=False)
    assert resp.headers["Location"] == "/console/reviews?empty=1"
    admin = await world.signed_in("boss", role="admin", schools_=())
    assert (await admin.get(f"/console/reviews/{elsewhere}")).status == 200


async def test_sign_out_ends_the_session(console_world: ConsoleWorld) -> None:
    world = console_world
    browser = await world.signed_in("li")
    cookie = browser.http.cookie_jar.filter_cookies(URL(browser.base + "/console/"))["gb_console"].value
    assert (await browser.post("/console/logout", {}, allow_redirects=False)).status == 302
    replay = world.browser()
    replay.http.cookie_jar.update_cookies({"gb_console": cookie})
    resp = await replay.get("/console/", allow_redirects=False)
    assert resp.status == 302  # the old session id no longer works


async def test_sign_in_redirects_only_inside_the_console(console_world: ConsoleWorld) -> None:
    world = console_world
    await world.add_staff("li")
    browser = world.browser()
    await browser.get("/console/login?next=https://evil.example/")
    resp = await browser.post("/console/login", {"username": "li", "password": PASSWORD,
                                                 "next": "https://evil.example/"}, allow_redirects=False)
    assert resp.headers["Location"] == "/console/"
