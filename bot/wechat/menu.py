"""Rules of ``POST /cgi-bin/menu/create``, checked before sending (``gradbot menu push``) and by the stand-in.

Limits (reference/wechat.md §2.7): 1-3 top-level buttons, 1-5 sub-buttons each; a name is at most
16 bytes at the top level and 60 in a sub-menu (UTF-8: a Chinese character is 3 bytes); ``key`` at
most 128 bytes, ``url`` at most 1024. Each problem carries the errcode WeChat would answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KEY_TYPES = frozenset({"click", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album",
                       "pic_weixin", "location_select"})
URL_TYPES = frozenset({"view", "miniprogram"})
OTHER_TYPES = {"media_id": "media_id", "view_limited": "media_id", "article_id": "article_id",
               "article_view_limited": "article_id"}
TYPES = KEY_TYPES | URL_TYPES | frozenset(OTHER_TYPES)

# (top level, sub-menu) errcode and errmsg, as WeChat spells them.
_CODES = {
    "size": ((40016, "invalid button size"), (40023, "invalid sub button size")),
    "type": ((40017, "invalid button type"), (40024, "invalid sub button type")),
    "name": ((40018, "invalid button name size"), (40025, "invalid sub button name size")),
    "key": ((40019, "invalid button key size"), (40026, "invalid sub button key size")),
    "url": ((40020, "invalid button url size"), (40027, "invalid sub button url size")),
}
NAME_BYTES = (16, 60)
KEY_BYTES = 128
URL_BYTES = 1024


@dataclass(frozen=True, slots=True)
class MenuProblem:
    errcode: int
    errmsg: str  # WeChat's wording
    where: str  # e.g. button[2].sub_button[0].name
    detail: str  # for people: what is wrong and the limit

    def __str__(self) -> str:
        return f"{self.where}: {self.detail} (WeChat would answer {self.errcode} {self.errmsg})"


def _problem(rule: str, sub: bool, where: str, detail: str) -> MenuProblem:
    errcode, errmsg = _CODES[rule][sub]
    return MenuProblem(errcode, errmsg, where, detail)


def _size(value: Any) -> int:
    return len(value.encode()) if isinstance(value, str) else 0


def _bounded(rule: str, button: Mapping[str, Any], limit: int, sub: bool, where: str) -> list[MenuProblem]:
    n = _size(button.get(rule))
    if 1 <= n <= limit:
        return []
    return [_problem(rule, sub, f"{where}.{rule}", f"needs 1-{limit} bytes of text, has {n}")]


def _leaf(button: Mapping[str, Any], sub: bool, where: str) -> list[MenuProblem]:
    kind = button.get("type")
    if kind not in TYPES:
        return [_problem("type", sub, f"{where}.type", f"unknown type {kind!r}")]
    if kind in KEY_TYPES:
        return _bounded("key", button, KEY_BYTES, sub, where)
    if kind in URL_TYPES:
        return _bounded("url", button, URL_BYTES, sub, where)
    needed = OTHER_TYPES[str(kind)]
    if button.get(needed):
        return []
    return [_problem("type", sub, f"{where}.{needed}", f"type {kind} needs {needed}")]


def _button(button: Any, where: str) -> list[MenuProblem]:
    if not isinstance(button, Mapping):
        return [_problem("type", False, where, "must be a table")]
    problems = _bounded("name", button, NAME_BYTES[0], False, where)
    subs = button.get("sub_button")
    if subs is None or subs == []:
        return problems + _leaf(button, False, where)
    if not isinstance(subs, list) or not 1 <= len(subs) <= 5:
        count = len(subs) if isinstance(subs, list) else 0
        return [*problems, _problem("size", True, f"{where}.sub_button", f"needs 1-5 sub-buttons, has {count}")]
    for i, sub in enumerate(subs):
        here = f"{where}.sub_button[{i}]"
        if not isinstance(sub, Mapping):
            problems.append(_problem("type", True, here, "must be a table"))
            continue
        problems += _bounded("name", sub, NAME_BYTES[1], True, here) + _leaf(sub, True, here)
    return problems


def validate_menu(menu: Any) -> list[MenuProblem]:
    """Every rule the menu breaks, in order; empty when WeChat would accept it."""
    buttons = menu.get("button") if isinstance(menu, Mapping) else None
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        count = len(buttons) if isinstance(buttons, list) else 0
        return [_problem("size", False, "button", f"needs 1-3 top-level buttons, has {count}")]
    return [p for i, b in enumerate(buttons) for p in _button(b, f"button[{i}]")]
