"""进度: the lines are kept in the session record until an effect may have changed the facts behind them."""

from __future__ import annotations

from typing import Any

from bot import keys
from handlers.dialog import STATUS_KEPT
from tests.fixtures.app import Gradbot
from tests.fixtures.conversation import Student


def sql_reads(bot: Gradbot) -> list[int]:
    """Counts the SQL status lookups from now on: a spy on the app's actions (the console's ticker
    shares the database, so counting transactions would count its ticks too)."""
    actions = bot.app[keys.SERVICES].actions
    lookup = actions.status
    looked = [0]

    async def counting(openid: str) -> Any:
        looked[0] += 1
        return await lookup(openid)

    actions.status = counting  # type: ignore[method-assign]
    return looked


async def bind(student: Student) -> None:
    for text in ("实名认证", "同意", "1", "张三", "{id:430102:19990101:123}"):
        await student.send(text)
    assert "实名认证完成" in await student.send("确认")


async def test_a_second_status_reads_no_sql_and_says_the_same(gradbot: Gradbot) -> None:
    student = Student(gradbot, "oStatusKept_Twice000000001")
    first = await student.send("进度")
    reads = sql_reads(gradbot)
    assert await student.send("查询进度") == first
    assert await student.send("随便说说") and await student.send("状态") == first
    assert reads[0] == 0


async def test_status_after_binding_shows_the_binding(gradbot: Gradbot) -> None:
    student = Student(gradbot, "oStatusKept_Binding0000001")
    assert "✓ 实名认证" not in await student.send("进度")
    await bind(student)
    assert "✓ 实名认证" in await student.send("进度")


async def test_status_after_linking_a_school_shows_the_school(gradbot: Gradbot) -> None:
    student = Student(gradbot, "oStatusKept_School00000001")
    before = await student.send("进度")
    for text in ("关联学校", "湖南", "长沙", "中南大学", "1", "1", "2022级 学位申请"):
        await student.send(text)
    for _ in range(3):
        if await student.where() == "none":
            break
        await student.send("确认")
    after = await student.send("进度")
    assert after != before and "中南大学" in after, student.dump()


async def test_kept_lines_are_read_again_after_a_while(gradbot: Gradbot) -> None:
    student = Student(gradbot, "oStatusKept_Aged0000000001")
    await student.send("进度")
    reads = sql_reads(gradbot)
    gradbot.clock.advance(STATUS_KEPT + 1)
    await student.send("进度")
    assert reads[0] == 1


async def test_an_outside_event_drops_the_kept_lines(gradbot: Gradbot) -> None:
    """A payment, a review or a web upload is written outside the chat, then run in the student's turn."""
    student = Student(gradbot, "oStatusKept_Outside0000001")
    await student.send("进度")
    await gradbot.app[keys.PIPELINE].external(student.openid, "review_approved", "review:kept-1", "{}")
    reads = sql_reads(gradbot)
    await student.send("进度")
    assert reads[0] == 1
