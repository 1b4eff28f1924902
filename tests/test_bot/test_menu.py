"""Menu rules (shared by ``gradbot menu push`` and the stand-in) and the command itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.commands.menu import load_menu
from bot.config import Settings
from bot.wechat.menu import validate_menu
from tests.fixtures.wechat import StubHandle, run_gradbot

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "menu.example.toml"


def click(name: str = "按钮", key: str = "K") -> dict[str, str]:
    return {"type": "click", "name": name, "key": key}


def codes(menu: Any) -> list[int]:
    return [p.errcode for p in validate_menu(menu)]


def test_example_menu_is_valid_and_has_the_keys_handlers_expect() -> None:
    menu = load_menu(EXAMPLE)
    assert validate_menu(menu) == []
    leaves = [b for top in menu["button"] for b in top.get("sub_button", [top])]
    assert {b["key"] for b in leaves} == {"BIND", "LINK_SCHOOL", "STATUS", "UPLOAD_PHOTO"}
    assert {b["type"] for b in leaves if b["key"] == "UPLOAD_PHOTO"} == {"pic_photo_or_album"}


@pytest.mark.parametrize(("menu", "expected"), [
    ({"button": []}, [40016]),
    ({"button": [click()] * 4}, [40016]),
    ("not a menu", [40016]),
    ({"button": [click("一二三四五")]}, []),  # 15 bytes
    ({"button": [click("一二三四五六")]}, [40018]),  # 18 bytes
    ({"button": [{"name": "子", "sub_button": [click()] * 6}]}, [40023]),
    ({"button": [{"name": "子", "sub_button": [click("x" * 61)]}]}, [40025]),
    ({"button": [{"type": "teleport", "name": "x"}]}, [40017]),
    ({"button": [{"name": "子", "sub_button": [{"type": "teleport", "name": "x"}]}]}, [40024]),
    ({"button": [{"type": "click", "name": "x"}]}, [40019]),
    ({"button": [click(key="k" * 129)]}, [40019]),
    ({"button": [{"name": "子", "sub_button": [click(key="k" * 129)]}]}, [40026]),
    ({"button": [{"type": "view", "name": "x"}]}, [40020]),
    ({"button": [{"name": "子", "sub_button": [{"type": "view", "name": "x", "url": "u" * 1025}]}]}, [40027]),
    ({"button": [{"type": "media_id", "name": "x"}]}, [40017]),
    ({"button": ["x"]}, [40017]),
    ({"button": [click(""), click(key="")]}, [40018, 40019]),
])
def test_menu_rules(menu: Any, expected: list[int]) -> None:
    assert codes(menu) == expected


def test_problems_say_where_and_why() -> None:
    problem = validate_menu({"button": [click(), {"name": "子", "sub_button": [click("x" * 61)]}]})[0]
    assert problem.where == "button[1].sub_button[0].name"
    assert "61" in str(problem) and "40025" in str(problem)


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    ("[[button]\nname=", "not valid TOML"),
    ('title = "x"\n[[button]]\ntype="click"\nname="a"\nkey="b"\n', "unknown top-level keys ['title']"),
    ('[[button]]\ntype = "click"\nname = "一二三四五六"\nkey = "K"\n', "button[0].name: needs 1-16 bytes"),
])
def test_push_refuses_bad_files_with_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     content: str | None, message: str) -> None:
    path = tmp_path / "menu.toml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert main(["menu", "push", "--file", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_dry_run_only_checks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["menu", "push", "--file", str(EXAMPLE), "--dry-run"]) == 0
    assert "menu is valid" in capsys.readouterr().out


async def test_push_creates_the_menu_through_the_api(settings: Settings, wechat_stub: StubHandle) -> None:
    code, out, err = await run_gradbot(settings.with_(wechat_api_base=wechat_stub.url),
                                       "menu", "push", "--file", str(EXAMPLE))
    assert code == 0, err
    assert "menu created" in out
    assert wechat_stub.state.menu == load_menu(EXAMPLE)


async def test_push_reports_wechat_refusal(settings: Settings, wechat_stub: StubHandle) -> None:
    await wechat_stub.faults(-1, count=0, paths=("menu/create",))
    code, _, err = await run_gradbot(settings.with_(wechat_api_base=wechat_stub.url),
                                     "menu", "push", "--file", str(EXAMPLE))
    assert code == 1
    assert "WeChat refused the menu: errcode -1" in err and "Traceback" not in err
    assert (await wechat_stub.calls())["menu/create"] == 3
