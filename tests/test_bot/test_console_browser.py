"""The console in a real headless Chromium (Debian's ``chromium``, driven by Playwright; no browser
download): a reviewer signs in and rejects a submission with the keyboard, and the student's template
message arrives in the stand-in; an admin composes a broadcast and watches it finish; cross-site and
role-violating requests are refused. Screenshots go to pytest's temp folder, or to docs/screenshots/ under
GRADBOT_UPDATE_SCREENSHOTS=1 (tests/fixtures/screenshots.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.fixtures.console import HANJIANG, PASSWORD, PROCEDURE, ConsoleWorld, openid_for
from tests.fixtures.screenshots import Shots

# HTTP-level tests run on PostgreSQL (production); the repositories run on both backends.
pytestmark = pytest.mark.parametrize("sql_url", ["postgresql"], indirect=True)

CHROMIUM = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else shutil.which("chromium")
STUDENT = "oBrowserStudent_0001_abcdefg"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if CHROMIUM is None:
        reason = "Debian's chromium is not installed (make test installs it: apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI=true: browser tests must run)", pytrace=False)
        pytest.skip(reason)
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield launched
        await launched.close()


async def sign_in(browser: Browser, world: ConsoleWorld, username: str, **viewport: int) -> Page:
    context = await browser.new_context(viewport={"width": viewport.get("width", 1280),
                                                  "height": viewport.get("height", 860)}, locale="zh-CN")
    page = await context.new_page()
    await page.goto(world.base + "/console/")
    await expect(page).to_have_url(f"{world.base}/console/login?next=/console/")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator("h1")).to_have_text("办理进度概览")
    return page


async def test_a_reviewer_rejects_with_the_keyboard_and_the_student_is_told(browser: Browser,
                                                                             console_world: ConsoleWorld,
                                                                             shots: Shots) -> None:
    world = console_world
    review_id = await world.seed(STUDENT, "submitted", photo=world.store_photos())
    await world.add_staff("li")
    page = await sign_in(browser, world, "li")
    await page.goto(world.base + "/console/reviews")
    await page.click("#take-next")
    await expect(page).to_have_url(f"{world.base}/console/reviews/{review_id}")
    original = page.locator("img[alt='学生上传的原图']")
    await expect(original).to_have_count(1)
    assert await original.evaluate("img => img.complete && img.naturalWidth") == 512  # the photo really loads
    await page.keyboard.press("1")  # 照片质量不符合要求
    await page.fill("#note", "请在光线均匀的地方重新拍摄")
    await page.locator("#note").blur()
    await shots.take(page, "console-review.png", full_page=True)
    await page.keyboard.press("r")  # reject
    await expect(page).to_have_url(f"{world.base}/console/reviews?empty=1")
    [message] = await world.wait_inbox(STUDENT)
    data = {k: v["value"] for k, v in message["payload"]["data"].items()}
    assert data["phrase2"] == "未通过" and data["thing3"].startswith("照片质量不符合要求")


async def test_an_admin_sends_a_broadcast_and_watches_it_finish(browser: Browser, console_world: ConsoleWorld,
                                                               shots: Shots) -> None:
    world = console_world
    openids = [openid_for(i, "web") for i in range(12)]
    for n, openid in enumerate(openids):
        await world.seed(openid, "photo" if n % 3 else "paid")
    await world.add_staff("boss", role="admin", schools_=())
    page = await sign_in(browser, world, "boss")
    await page.goto(f"{world.base}/console/?procedure={PROCEDURE}")
    await shots.take(page, "console-dashboard.png", full_page=True)
    await page.goto(world.base + "/console/broadcasts/new")
    await page.fill("#title", "图像采集缴费提醒")
    await page.select_option("#procedure", PROCEDURE)
    await page.select_option("#school", HANJIANG.code)
    await page.select_option("#stage", "not_paid")
    await page.fill("#var_message", "请在截止前完成缴费")
    await page.click("#preview-button")
    await expect(page.locator("#audience-count")).to_have_text("8")
    await shots.take(page, "console-broadcast-preview.png", full_page=True)
    await page.click("#send-button")
    await expect(page.locator("#p-state")).to_have_text("已完成", timeout=30_000)
    await expect(page.locator("#p-sent")).to_have_text("8")
    await expect(page.locator("table")).to_contain_text("已发送")  # the final report, drawn after the end
    await shots.take(page, "console-broadcast.png", full_page=True)
    delivered = [len(await world.stub.inbox(o)) for o in openids]
    assert delivered == [0 if n % 3 == 0 else 1 for n in range(12)]


async def test_forged_and_forbidden_requests_are_refused(browser: Browser, console_world: ConsoleWorld,
                                                         shots: Shots) -> None:
    world = console_world
    review_id = await world.seed(STUDENT, "submitted", photo=world.store_photos())
    await world.add_staff("li")
    page = await sign_in(browser, world, "li", width=390, height=844)  # a phone
    await page.goto(f"{world.base}/console/reviews/{review_id}")
    await shots.take(page, "console-review-phone.png", full_page=True)
    # A request from the page's own script without the form's token: refused, nothing decided.
    status = await page.evaluate("""async (url) => (await fetch(url, {method: 'POST',
        headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'action=approve'})).status""",
                                 f"{world.base}/console/reviews/{review_id}")
    assert status == 403
    # A reviewer opening an admin page gets the refusal page.
    response = await page.goto(world.base + "/console/broadcasts/new")
    assert response is not None and response.status == 403
    await expect(page.locator(".error")).to_contain_text("没有权限")
    assert await world.stub.inbox(STUDENT) == []
