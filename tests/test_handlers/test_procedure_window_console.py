"""The window staff set in the console decides whether a student may start a procedure, over the dates
in the procedure file, and the student hears the dates in force. Staff and student both go through
HTTP: the admin's browser posts /console/windows, the student writes the start word to the callback.

Seed 003 (hanjiang_photo_2025) has the file window 2025-03-11 – 2025-05-05; today is 2025-04-01.
"""

from __future__ import annotations

from datetime import date

from storage.sql import windows
from tests.fixtures.console import HANJIANG, PROCEDURE, ConsoleWorld, StaffBrowser
from tests.fixtures.conversation import Student
from tests.fixtures.procedure import china_time

START = "图像采集"  # a start word of the procedure
CLOSED = "不在办理时间"


async def _set_window(admin: StaffBrowser, opens: str, closes: str) -> None:
    await admin.get("/console/windows")
    resp = await admin.post("/console/windows", {"procedure": PROCEDURE, "school": HANJIANG.code, "cohort": "0",
                                                 "opens": opens, "closes": closes, "remind_days": ""})
    assert resp.status == 200 and f"{opens}</td><td>{closes}" in admin.last, admin.last[:500]


async def test_staff_close_the_window_then_reopen_it_and_the_start_check_follows(console_world: ConsoleWorld) -> None:
    world = console_world
    world.gradbot.clock.now = china_time("2025-04-01T10:00:00")
    admin = await world.signed_in("boss", role="admin", schools_=())
    async with world.db.read() as conn:  # the console lists the file's window, seeded at start-up
        seeded = await windows.find_exact(conn, PROCEDURE, HANJIANG.code, 0)
    assert seeded is not None and (str(seeded.opens), str(seeded.closes)) == ("2025-03-11", "2025-05-05")

    early = Student(world.gradbot, "oWindow_Student_0000000000001")
    reply = await early.send(START)  # nothing set by staff yet: the file's window, open today
    assert "同意" in reply and await early.where() == "bind/consent", early.dump()

    await _set_window(admin, "2025-03-11", "2025-03-31")  # closed yesterday
    student = Student(world.gradbot, "oWindow_Student_0000000000002")
    reply = await student.send(START)
    assert CLOSED in reply and "2025年3月11日至2025年3月31日" in reply, student.dump()
    assert "2025-05-05" not in reply and await student.where() == "none"

    await _set_window(admin, "2025-03-11", "2025-04-30")  # reopened
    reply = await student.send(START)
    assert CLOSED not in reply and "同意" in reply and await student.where() == "bind/consent", student.dump()


async def test_a_console_window_reopens_what_the_file_has_closed(console_world: ConsoleWorld) -> None:
    world = console_world
    world.gradbot.clock.now = china_time("2025-05-10T10:00:00")  # after the file's 2025-05-05
    admin = await world.signed_in("boss", role="admin", schools_=())
    student = Student(world.gradbot, "oWindow_Student_0000000000003")
    reply = await student.send(START)
    assert CLOSED in reply and "2025年3月11日至2025年5月5日" in reply, student.dump()  # the file's dates

    await _set_window(admin, "2025-03-11", "2025-05-31")
    reply = await student.send(START)
    assert "同意" in reply and await student.where() == "bind/consent", student.dump()


async def test_a_row_only_seeded_from_the_file_is_not_a_staff_edit(console_world: ConsoleWorld) -> None:
    world = console_world
    world.gradbot.clock.now = china_time("2025-04-01T10:00:00")
    async with world.db.begin() as conn:  # seeded from an older version of the file, never edited by staff
        await windows.put(conn, procedure=PROCEDURE, school_code=HANJIANG.code, opens=date(2025, 3, 11),
                          closes=date(2025, 3, 31), actor=windows.SEEDED_BY)
    student = Student(world.gradbot, "oWindow_Student_0000000000004")
    reply = await student.send(START)  # the file's window (to 2025-05-05) applies
    assert "同意" in reply and await student.where() == "bind/consent", student.dump()
