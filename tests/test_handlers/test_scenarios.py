"""Scenario files: conversations walked through the real app over HTTP, one file per story."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.app import Gradbot
from tests.fixtures.conversation import Student

SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.toml"))
STORIES = {p.stem: tomllib.loads(p.read_text(encoding="utf-8")) for p in SCENARIOS}


def _dig(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        tree = tree[int(part)] if isinstance(tree, list) else tree[part]
    return tree


async def _act(student: Student, step: dict[str, Any]) -> str:
    if "send" in step:
        return await student.send(step["send"])
    if "click" in step:
        return await student.click(step["click"])
    if "follow" in step:
        return await student.follow()
    if "image" in step:
        return await student.image(step["image"])
    return ""


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
async def test_scenario(path: Path, gradbot_on_both_databases: Gradbot) -> None:
    scenario = STORIES[path.stem]
    gradbot = gradbot_on_both_databases
    students: dict[str, Student] = {}
    for number, step in enumerate(scenario["steps"], 1):
        who = step.get("as", "main")
        student = students.setdefault(who, Student(gradbot, f"oScenario_{path.stem[:12]}_{who}"))
        gradbot.clock.advance(step.get("advance", 1))
        if step.get("forget_session"):
            await student.forget_session()
        reply = await _act(student, step)
        where = f"{path.name} step {number}\n{student.dump()}"
        for needle in step.get("expect", []):
            assert needle in reply, where
        for needle in step.get("expect_not", []):
            assert needle not in reply, where
        if "state" in step:
            assert await student.where() == step["state"], where
        for dotted, value in step.get("show", {}).items():
            assert _dig(await student.summary(), dotted) == value, where
