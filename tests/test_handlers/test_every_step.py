"""Back and cancel at every step of every dialog, driven through HTTP like a student would."""

from __future__ import annotations

import pytest

from tests.fixtures.app import Gradbot
from tests.fixtures.conversation import Student

# (start word, happy-path answers, the state reached after each answer)
WALKS = {
    "bind": ("实名认证", ["同意", "1", "张三", "{id:430102:19990101:131}"],
             ["bind/consent", "bind/choose_type", "bind/ask_name", "bind/ask_id", "bind/confirm"]),
    "link_school": ("关联学校", ["湖南", "长沙", "湖南师大", "1", "2", "2022级 学位申请"],
                    ["link_school/province", "link_school/city", "link_school/school",
                     "link_school/education_type", "link_school/level", "link_school/cohort",
                     "link_school/confirm"]),
}
CASES = [(name, k) for name, (_, answers, _) in WALKS.items() for k in range(len(answers) + 1)]


async def _walk(student: Student, name: str, k: int) -> list[str]:
    start, answers, states = WALKS[name]
    await student.send(start)
    for answer in answers[:k]:
        await student.send(answer)
    assert await student.where() == states[k]
    return states


@pytest.mark.parametrize(("name", "k"), CASES)
async def test_back_returns_to_the_previous_step(gradbot_on_both_databases: Gradbot, name: str, k: int) -> None:
    student = Student(gradbot_on_both_databases, f"oBack_{name}_{k}")
    states = await _walk(student, name, k)
    await student.send("返回")
    assert await student.where() == states[max(k - 1, 0)], student.dump()


@pytest.mark.parametrize(("name", "k"), CASES)
async def test_cancel_leaves_the_dialog_and_saves_nothing(
    gradbot_on_both_databases: Gradbot, name: str, k: int
) -> None:
    student = Student(gradbot_on_both_databases, f"oCancel_{name}_{k}")
    await _walk(student, name, k)
    reply = await student.send("取消")
    assert "已退出" in reply and await student.where() == "none", student.dump()
    status = await student.send("进度")
    assert "✓" not in status, student.dump()
